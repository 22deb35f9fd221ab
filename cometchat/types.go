// Package cometchat is a client for the CometChat Calls API (List Calls and
// Get Call). It knows nothing about Prometheus: it returns typed calls and
// typed errors, and reports each request to an optional observer.
package cometchat

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// Call is one call as the Calls API describes it. Decoding is lenient: a
// missing, null or mistyped field leaves the zero value, floats are accepted
// where integers are documented (and the reverse), and unknown fields are
// ignored.
type Call struct {
	SessionID         string        `json:"sessionId"`
	Type              string        `json:"type"`
	Mode              string        `json:"mode"`
	ReceiverType      string        `json:"receiverType"`
	Status            string        `json:"status"`
	Initiator         string        `json:"initiator"`
	Receiver          string        `json:"receiver"`
	InitiatedAt       int64         `json:"initiatedAt"`
	StartedAt         int64         `json:"startedAt"`
	EndedAt           int64         `json:"endedAt"`
	AudioMinutes      float64       `json:"totalAudioMinutes"`
	VideoMinutes      float64       `json:"totalVideoMinutes"`
	DurationMinutes   float64       `json:"totalDurationInMinutes"`
	TotalDuration     string        `json:"totalDuration"`
	TotalParticipants int64         `json:"totalParticipants"`
	HasRecording      bool          `json:"hasRecording"`
	Participants      []Participant `json:"participants"`
	Recordings        []Recording   `json:"recordings"`

	// hasAudio and hasVideo record whether the call-level minute fields were
	// present at all, so that the accountant can fall back to the sum over
	// participants when they are not.
	hasAudio, hasVideo bool
}

// Participant is one participant entry of a call. Invited users who never
// joined have no device, join or leave time.
type Participant struct {
	UID             string  `json:"uid"`
	DeviceID        string  `json:"deviceId"`
	IsJoined        bool    `json:"isJoined"`
	JoinedAt        int64   `json:"joinedAt"`
	LeftAt          int64   `json:"leftAt"`
	State           string  `json:"state"`
	AudioMinutes    float64 `json:"totalAudioMinutes"`
	VideoMinutes    float64 `json:"totalVideoMinutes"`
	DurationMinutes float64 `json:"totalDurationInMinutes"`
}

// Recording is one recording entry of a call.
type Recording struct {
	RID             string  `json:"rid"`
	DurationMinutes float64 `json:"duration"`
	StartTime       int64   `json:"startTime"`
	EndTime         int64   `json:"endTime"`
	URL             string  `json:"recording_url"`
}

// Timestamp is the time the API sorts calls by: initiatedAt, falling back to
// startedAt and then endedAt when a field is missing. Zero means unknown.
func (c *Call) Timestamp() int64 {
	switch {
	case c.InitiatedAt > 0:
		return c.InitiatedAt
	case c.StartedAt > 0:
		return c.StartedAt
	default:
		return c.EndedAt
	}
}

// AudioMinutesOrSum is totalAudioMinutes, or the sum over participants when
// the call-level field is absent.
func (c *Call) AudioMinutesOrSum() float64 {
	if c.hasAudio {
		return c.AudioMinutes
	}
	var s float64
	for _, p := range c.Participants {
		s += p.AudioMinutes
	}
	return s
}

// VideoMinutesOrSum is totalVideoMinutes, or the sum over participants when
// the call-level field is absent.
func (c *Call) VideoMinutesOrSum() float64 {
	if c.hasVideo {
		return c.VideoMinutes
	}
	var s float64
	for _, p := range c.Participants {
		s += p.VideoMinutes
	}
	return s
}

// rawCall mirrors Call with lenient field types.
type rawCall struct {
	SessionID         flexString      `json:"sessionId"`
	Type              flexString      `json:"type"`
	Mode              flexString      `json:"mode"`
	ReceiverType      flexString      `json:"receiverType"`
	Status            flexString      `json:"status"`
	Initiator         flexString      `json:"initiator"`
	Receiver          flexString      `json:"receiver"`
	InitiatedAt       flexFloat       `json:"initiatedAt"`
	StartedAt         flexFloat       `json:"startedAt"`
	EndedAt           flexFloat       `json:"endedAt"`
	AudioMinutes      *flexFloat      `json:"totalAudioMinutes"`
	VideoMinutes      *flexFloat      `json:"totalVideoMinutes"`
	DurationMinutes   flexFloat       `json:"totalDurationInMinutes"`
	TotalDuration     flexString      `json:"totalDuration"`
	TotalParticipants flexFloat       `json:"totalParticipants"`
	HasRecording      flexBool        `json:"hasRecording"`
	Participants      json.RawMessage `json:"participants"`
	Recordings        json.RawMessage `json:"recordings"`
}

type rawParticipant struct {
	UID             flexString `json:"uid"`
	DeviceID        flexString `json:"deviceId"`
	IsJoined        flexBool   `json:"isJoined"`
	JoinedAt        flexFloat  `json:"joinedAt"`
	LeftAt          flexFloat  `json:"leftAt"`
	State           flexString `json:"state"`
	AudioMinutes    flexFloat  `json:"totalAudioMinutes"`
	VideoMinutes    flexFloat  `json:"totalVideoMinutes"`
	DurationMinutes flexFloat  `json:"totalDurationInMinutes"`
	// Participants that never joined carry their duration as totalDuration.
	TotalDuration flexFloat `json:"totalDuration"`
}

type rawRecording struct {
	RID             flexString `json:"rid"`
	DurationMinutes flexFloat  `json:"duration"`
	StartTime       flexFloat  `json:"startTime"`
	EndTime         flexFloat  `json:"endTime"`
	URL             flexString `json:"recording_url"`
}

// UnmarshalJSON decodes a call leniently. It fails only when the value is not
// a JSON object.
func (c *Call) UnmarshalJSON(b []byte) error {
	var r rawCall
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	*c = Call{
		SessionID:         string(r.SessionID),
		Type:              string(r.Type),
		Mode:              string(r.Mode),
		ReceiverType:      string(r.ReceiverType),
		Status:            string(r.Status),
		Initiator:         string(r.Initiator),
		Receiver:          string(r.Receiver),
		InitiatedAt:       int64(r.InitiatedAt),
		StartedAt:         int64(r.StartedAt),
		EndedAt:           int64(r.EndedAt),
		DurationMinutes:   float64(r.DurationMinutes),
		TotalDuration:     string(r.TotalDuration),
		TotalParticipants: int64(r.TotalParticipants),
		HasRecording:      bool(r.HasRecording),
	}
	if r.AudioMinutes != nil {
		c.AudioMinutes, c.hasAudio = float64(*r.AudioMinutes), true
	}
	if r.VideoMinutes != nil {
		c.VideoMinutes, c.hasVideo = float64(*r.VideoMinutes), true
	}
	for _, raw := range objects(r.Participants) {
		var p rawParticipant
		if json.Unmarshal(raw, &p) != nil {
			continue
		}
		d := float64(p.DurationMinutes)
		if d == 0 {
			d = float64(p.TotalDuration)
		}
		c.Participants = append(c.Participants, Participant{
			UID: string(p.UID), DeviceID: string(p.DeviceID), IsJoined: bool(p.IsJoined),
			JoinedAt: int64(p.JoinedAt), LeftAt: int64(p.LeftAt), State: string(p.State),
			AudioMinutes: float64(p.AudioMinutes), VideoMinutes: float64(p.VideoMinutes),
			DurationMinutes: d,
		})
	}
	for _, raw := range objects(r.Recordings) {
		var rec rawRecording
		if json.Unmarshal(raw, &rec) != nil {
			continue
		}
		c.Recordings = append(c.Recordings, Recording{
			RID: string(rec.RID), DurationMinutes: float64(rec.DurationMinutes),
			StartTime: int64(rec.StartTime), EndTime: int64(rec.EndTime), URL: string(rec.URL),
		})
	}
	return nil
}

// objects splits a raw JSON array into its object elements; anything else
// (null, a scalar, an object instead of an array) yields nothing.
func objects(raw json.RawMessage) []json.RawMessage {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		return nil
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return nil
	}
	out := items[:0]
	for _, it := range items {
		if t := bytes.TrimSpace(it); len(t) > 0 && t[0] == '{' {
			out = append(out, t)
		}
	}
	return out
}

// flexFloat accepts a number, a numeric string, a bool or null. Anything else
// decodes to zero without an error.
type flexFloat float64

func (f *flexFloat) UnmarshalJSON(b []byte) error {
	*f = 0
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	switch b[0] {
	case '"':
		var s string
		if json.Unmarshal(b, &s) == nil {
			*f = flexFloat(parseNumberOrClock(s))
		}
	case 't':
		*f = 1
	default:
		if v, err := strconv.ParseFloat(string(b), 64); err == nil {
			*f = flexFloat(v)
		}
	}
	return nil
}

// parseNumberOrClock reads "12.5" as 12.5 and a timer string "HH:MM:SS" as
// minutes.
func parseNumberOrClock(s string) float64 {
	s = strings.TrimSpace(s)
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		return v
	}
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0
	}
	var secs float64 // [HH:]MM:SS
	for _, p := range parts {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil {
			return 0
		}
		secs = secs*60 + v
	}
	return secs / 60
}

// flexString accepts a string, or renders a number or bool as text; null,
// objects and arrays decode to "".
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	*s = ""
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	switch b[0] {
	case '"':
		var v string
		if json.Unmarshal(b, &v) == nil {
			*s = flexString(v)
		}
	case '{', '[', 'n':
	default:
		*s = flexString(b)
	}
	return nil
}

// flexBool accepts true/false, 0/1 and their string forms.
type flexBool bool

func (v *flexBool) UnmarshalJSON(b []byte) error {
	*v = false
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	switch strings.ToLower(s) {
	case "true", "1", "yes":
		*v = true
	}
	return nil
}
