// Package cometchat is a client for the CometChat Calls API (List Calls and
// Get Call). It knows nothing about Prometheus: it returns typed calls and
// typed errors, and reports each request to an optional observer.
package cometchat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
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
	HasTranscription  bool          `json:"hasTranscription"`
	Participants      []Participant `json:"participants"`
	Recordings        []Recording   `json:"recordings"`
	// ScaledTimestamps: a call timestamp came in milliseconds or
	// microseconds and was converted to seconds.
	ScaledTimestamps bool `json:"-"`
	// NoInitiatedAt: initiatedAt was missing or unusable; Timestamp falls
	// back to startedAt or endedAt.
	NoInitiatedAt bool `json:"-"`
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

// wireCall mirrors Call with lenient field types. It is decoded in one
// pass; a field of the wrong JSON type (an object where a list belongs)
// is left empty rather than failing the call.
type wireCall struct {
	SessionID         flexString        `json:"sessionId"`
	Type              flexString        `json:"type"`
	Mode              flexString        `json:"mode"`
	ReceiverType      flexString        `json:"receiverType"`
	Status            flexString        `json:"status"`
	Initiator         flexString        `json:"initiator"`
	Receiver          flexString        `json:"receiver"`
	InitiatedAt       flexFloat         `json:"initiatedAt"`
	StartedAt         flexFloat         `json:"startedAt"`
	EndedAt           flexFloat         `json:"endedAt"`
	AudioMinutes      flexFloat         `json:"totalAudioMinutes"`
	VideoMinutes      flexFloat         `json:"totalVideoMinutes"`
	DurationMinutes   flexFloat         `json:"totalDurationInMinutes"`
	TotalDuration     flexString        `json:"totalDuration"`
	TotalParticipants flexFloat         `json:"totalParticipants"`
	HasRecording      flexBool          `json:"hasRecording"`
	HasTranscription  flexBool          `json:"hasTranscription"`
	Participants      []wireParticipant `json:"participants"`
	Recordings        []wireRecording   `json:"recordings"`
}

type wireParticipant struct {
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

type wireRecording struct {
	RID             flexString `json:"rid"`
	DurationMinutes flexFloat  `json:"duration"`
	StartTime       flexFloat  `json:"startTime"`
	EndTime         flexFloat  `json:"endTime"`
	URL             flexString `json:"recording_url"`
}

// lenientUnmarshal decodes b into v, ignoring values of the wrong JSON type
// (encoding/json leaves them empty and goes on); invalid JSON is an error.
func lenientUnmarshal(b []byte, v any) error {
	err := json.Unmarshal(b, v)
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return nil
	}
	return err
}

// UnmarshalJSON decodes a call leniently. It fails only on invalid JSON.
func (c *Call) UnmarshalJSON(b []byte) error {
	var w wireCall
	if err := lenientUnmarshal(b, &w); err != nil {
		return err
	}
	*c = w.call()
	return nil
}

// key names an entry by the fields that do not change over its life.
func (w *wireCall) key() string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%v|%s|%s|%s|%s|%s", float64(w.InitiatedAt), w.Initiator, w.Receiver, w.Type, w.Mode, w.ReceiverType)
	return "nosid-" + strconv.FormatUint(h.Sum64(), 16)
}

func (w *wireCall) call() Call {
	c := Call{
		SessionID:         string(w.SessionID),
		Type:              string(w.Type),
		Mode:              string(w.Mode),
		ReceiverType:      string(w.ReceiverType),
		Status:            string(w.Status),
		Initiator:         string(w.Initiator),
		Receiver:          string(w.Receiver),
		InitiatedAt:       unixTime(w.InitiatedAt),
		StartedAt:         unixTime(w.StartedAt),
		EndedAt:           unixTime(w.EndedAt),
		ScaledTimestamps:  scaled(w.InitiatedAt) || scaled(w.StartedAt) || scaled(w.EndedAt),
		DurationMinutes:   float64(w.DurationMinutes),
		TotalDuration:     string(w.TotalDuration),
		TotalParticipants: toInt(w.TotalParticipants),
		AudioMinutes:      float64(w.AudioMinutes),
		VideoMinutes:      float64(w.VideoMinutes),
		HasRecording:      bool(w.HasRecording),
		HasTranscription:  bool(w.HasTranscription),
	}
	c.NoInitiatedAt = c.InitiatedAt == 0
	for _, p := range w.Participants {
		if p == (wireParticipant{}) {
			continue // null, or not an object
		}
		d := float64(p.DurationMinutes)
		if d == 0 {
			d = float64(p.TotalDuration)
		}
		c.Participants = append(c.Participants, Participant{
			UID: string(p.UID), DeviceID: string(p.DeviceID), IsJoined: bool(p.IsJoined),
			JoinedAt: unixTime(p.JoinedAt), LeftAt: unixTime(p.LeftAt), State: string(p.State),
			AudioMinutes: float64(p.AudioMinutes), VideoMinutes: float64(p.VideoMinutes),
			DurationMinutes: d,
		})
	}
	for _, r := range w.Recordings {
		if r == (wireRecording{}) {
			continue
		}
		c.Recordings = append(c.Recordings, Recording{
			RID: string(r.RID), DurationMinutes: float64(r.DurationMinutes),
			StartTime: unixTime(r.StartTime), EndTime: unixTime(r.EndTime), URL: string(r.URL),
		})
	}
	return c
}

// maxUnixTime is the year 5138: a larger number of seconds is a timestamp
// in milliseconds (13 digits: 2001 to 2286) or microseconds (16 digits),
// which unixTime converts, or not a time at all.
const maxUnixTime = 1e11

// unixTime converts a timestamp field to Unix seconds. Milliseconds and
// microseconds are recognised by their size and divided down (see
// scaled). Values that are none of these (NaN, Infinity, 1e308,
// negatives, 12, 14 or 15 digits) are read as missing, so that they can never
// move a watermark or a floor.
func unixTime(f flexFloat) int64 {
	v := float64(f)
	switch {
	case v > 0 && v < maxUnixTime:
		return int64(v)
	case v >= 1e12 && v < 1e13: // milliseconds
		return int64(v / 1e3)
	case v >= 1e15 && v < 1e16: // microseconds
		return int64(v / 1e6)
	}
	return 0
}

// scaled reports whether unixTime converted f from a smaller unit.
func scaled(f flexFloat) bool {
	v := float64(f)
	return unixTime(f) > 0 && v >= maxUnixTime
}

// toInt converts a count field. A value that does not fit an int64 (NaN,
// Infinity, 1e308) becomes math.MaxInt64, which the accountant's sanity
// caps reject, instead of Go's undefined float-to-int conversion.
func toInt(f flexFloat) int64 {
	if v := float64(f); v == v && v > -9e18 && v < 9e18 {
		return int64(v)
	}
	return math.MaxInt64
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
		*f = flexFloat(parseNumberOrClock(unquote(b)))
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

// unquote reads a JSON string that encoding/json has already validated,
// without a second pass when it has no escapes.
func unquote(b []byte) string {
	if len(b) >= 2 && bytes.IndexByte(b, '\\') < 0 {
		return string(b[1 : len(b)-1])
	}
	var v string
	json.Unmarshal(b, &v)
	return v
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
		*s = flexString(unquote(b))
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
