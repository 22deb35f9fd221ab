// Package accountant turns the Calls API's paginated log of calls into exact
// counters. The Ledger holds the state and the counting rules (no I/O); the
// Poller reads the API and feeds the Ledger; state.go persists the Ledger.
//
// The rule that makes counting exactly-once: a call is counted at the first
// observation of a final status, and its session id then goes into the done
// set. Every later observation of a done id is ignored, whichever page,
// endpoint or poll it comes from.
package accountant

import (
	"sort"
	"strings"

	"github.com/cometchat-exporter/cometchat-exporter/cometchat"
)

// Labels is the bounded label set of a call. Unknown values become "other".
type Labels struct {
	CallType     string `json:"call_type"`
	Mode         string `json:"mode"`
	ReceiverType string `json:"receiver_type"`
}

// Final statuses, as exposed in the status label.
var FinalStatuses = []string{"ended", "unanswered", "rejected", "canceled", "other"}

// Participant states, as exposed in the state label.
var ParticipantStates = []string{"ongoing", "ended", "unanswered", "rejected", "other"}

// Bucket bounds of the histograms. Changing them invalidates persisted
// histograms (the state file records them).
var (
	DurationBuckets    = []float64{5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 14400, 21600}
	ParticipantBuckets = []float64{1, 2, 3, 4, 5, 8, 10, 15, 20, 30, 50, 100}
)

// Histogram is a fixed-bucket histogram; Buckets holds per-bucket (not
// cumulative) counts, the +Inf bucket being Count minus their sum.
type Histogram struct {
	Buckets []uint64 `json:"buckets"`
	Count   uint64   `json:"count"`
	Sum     float64  `json:"sum"`
}

func (h *Histogram) observe(bounds []float64, v float64) {
	if len(h.Buckets) != len(bounds) {
		h.Buckets = make([]uint64, len(bounds))
	}
	if i := sort.SearchFloat64s(bounds, v); i < len(bounds) {
		h.Buckets[i]++
	}
	h.Count++
	h.Sum += v
}

// Cumulative returns the counts per upper bound, as Prometheus wants them.
func (h *Histogram) Cumulative(bounds []float64) map[float64]uint64 {
	out := make(map[float64]uint64, len(bounds))
	var acc uint64
	for i, b := range bounds {
		if i < len(h.Buckets) {
			acc += h.Buckets[i]
		}
		out[b] = acc
	}
	return out
}

// Totals are the counters of finished calls with one label set.
type Totals struct {
	Calls               map[string]uint64 `json:"calls"`        // by final status
	Participants        map[string]uint64 `json:"participants"` // by participant state
	AudioSeconds        float64           `json:"audio_seconds"`
	VideoSeconds        float64           `json:"video_seconds"`
	CallsRecorded       uint64            `json:"calls_recorded"`
	Recordings          uint64            `json:"recordings"`
	RecordingSeconds    float64           `json:"recording_seconds"`
	Duration            Histogram         `json:"duration"`
	ParticipantsPerCall Histogram         `json:"participants_per_call"`
}

func newTotals() *Totals {
	return &Totals{Calls: map[string]uint64{}, Participants: map[string]uint64{}}
}

func (t *Totals) clone() *Totals {
	c := *t
	c.Calls = make(map[string]uint64, len(t.Calls))
	for k, v := range t.Calls {
		c.Calls[k] = v
	}
	c.Participants = make(map[string]uint64, len(t.Participants))
	for k, v := range t.Participants {
		c.Participants[k] = v
	}
	c.Duration.Buckets = append([]uint64(nil), t.Duration.Buckets...)
	c.ParticipantsPerCall.Buckets = append([]uint64(nil), t.ParticipantsPerCall.Buckets...)
	return &c
}

// Tracked is a call seen in progress, watched until it is final.
type Tracked struct {
	Labels       Labels `json:"labels"`
	Status       string `json:"status"` // initiated or ongoing
	TS           int64  `json:"ts"`
	Participants int    `json:"participants"` // participant entries in state ongoing
	NotFound     int    `json:"not_found,omitempty"`
	seenPoll     uint64
}

// Outcome is what one observation did to the ledger.
type Outcome int

// Outcomes of Observe.
const (
	Duplicate Outcome = iota // already counted or marked as history
	Counted                  // reached a final status: counted now
	Tracking                 // in progress: tracked (new or updated)
	History                  // final before the first poll: remembered, not counted
	TooOld                   // unknown, final, older than the floor: not counted
)

// Ledger is the exact state of one app. It is not safe for concurrent use:
// the Poller owns it and publishes Snapshots.
type Ledger struct {
	totals  map[Labels]*Totals
	done    map[string]int64 // session id -> timestamp, for pruning
	tracked map[string]*Tracked

	// Initialized is set by the first successful poll; before it, final
	// calls are history.
	Initialized bool
	// Floor: an unknown final call whose timestamp is below it is either
	// history never read or a call counted long ago whose id was pruned, so
	// it is not counted. Zero means every unknown call counts.
	Floor int64
	// Watermark is the newest call timestamp seen.
	Watermark int64
	// LastTotal is meta.pagination.total of the previous successful poll.
	LastTotal int
	// Abandoned counts tracked calls dropped after Get Call kept answering
	// not found.
	Abandoned uint64
	dirty     bool
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{totals: map[Labels]*Totals{}, done: map[string]int64{}, tracked: map[string]*Tracked{}}
}

// Known reports whether the id is counted, history or tracked.
func (l *Ledger) Known(id string) bool {
	if _, ok := l.done[id]; ok {
		return true
	}
	_, ok := l.tracked[id]
	return ok
}

// Observation rules for calls that are final and unknown.
type observeMode struct {
	// backfillFrom, during the first poll, counts history calls with a
	// timestamp at or after it; zero counts none.
	backfillFrom int64
	poll         uint64
}

// Observe applies one observation of a call.
func (l *Ledger) Observe(c *cometchat.Call, m observeMode) Outcome {
	id := c.SessionID
	if _, ok := l.done[id]; ok {
		return Duplicate
	}
	status, final := NormalizeStatus(c)
	ts := c.Timestamp()
	if t, ok := l.tracked[id]; ok {
		if final {
			delete(l.tracked, id)
			l.count(c, status, ts)
			return Counted
		}
		l.track(t, c, status, m.poll)
		return Tracking
	}
	if !final {
		t := &Tracked{}
		l.tracked[id] = t
		l.track(t, c, status, m.poll)
		return Tracking
	}
	if !l.Initialized {
		if m.backfillFrom > 0 && ts >= m.backfillFrom {
			l.count(c, status, ts)
			return Counted
		}
		l.done[id] = l.doneTS(ts)
		l.dirty = true
		return History
	}
	if ts > 0 && ts < l.Floor {
		return TooOld
	}
	l.count(c, status, ts)
	return Counted
}

func (l *Ledger) track(t *Tracked, c *cometchat.Call, status string, poll uint64) {
	n := 0
	for _, p := range c.Participants {
		if normalize(p.State, ParticipantStates) == "ongoing" {
			n++
		}
	}
	next := Tracked{Labels: LabelsOf(c), Status: status, TS: c.Timestamp(), Participants: n, seenPoll: t.seenPoll}
	if next.TS == 0 {
		next.TS = t.TS
	}
	if next != *t { // only a real change needs the state file rewritten
		l.dirty = true
	}
	*t = next
	t.seenPoll = poll
}

// doneTS is the timestamp a done entry is pruned by; a call without any
// timestamp is kept as if it were the newest.
func (l *Ledger) doneTS(ts int64) int64 {
	if ts > 0 {
		return ts
	}
	return l.Watermark
}

func (l *Ledger) count(c *cometchat.Call, status string, ts int64) {
	l.done[c.SessionID] = l.doneTS(ts)
	l.dirty = true
	lb := LabelsOf(c)
	t := l.totals[lb]
	if t == nil {
		t = newTotals()
		l.totals[lb] = t
	}
	t.Calls[status]++
	t.AudioSeconds += nonNegative(c.AudioMinutesOrSum()) * 60
	t.VideoSeconds += nonNegative(c.VideoMinutesOrSum()) * 60
	for _, p := range c.Participants {
		t.Participants[normalize(p.State, ParticipantStates)]++
	}
	if c.HasRecording {
		t.CallsRecorded++
	}
	for _, r := range c.Recordings {
		t.Recordings++
		t.RecordingSeconds += nonNegative(r.DurationMinutes) * 60
	}
	if status == "ended" {
		start := c.StartedAt
		if start <= 0 {
			start = c.InitiatedAt
		}
		if start > 0 && c.EndedAt >= start {
			t.Duration.observe(DurationBuckets, float64(c.EndedAt-start))
		}
	}
	t.ParticipantsPerCall.observe(ParticipantBuckets, float64(max(c.TotalParticipants, 0)))
}

// Untrack drops a tracked call without counting it.
func (l *Ledger) Untrack(id string) {
	if _, ok := l.tracked[id]; ok {
		delete(l.tracked, id)
		l.Abandoned++
		l.dirty = true
	}
}

// Prune keeps at most capacity done ids, dropping the oldest first, but
// never one at or after keepFrom. The floor rises above what was dropped, so
// a dropped id can never be counted again.
func (l *Ledger) Prune(capacity int, keepFrom int64) {
	if len(l.done) <= capacity {
		return
	}
	ts := make([]int64, 0, len(l.done))
	for _, t := range l.done {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	// Drop every entry with a timestamp <= cut, so ties go together.
	cut := min(ts[len(ts)-capacity-1], keepFrom-1)
	if cut < l.Floor {
		return
	}
	for id, t := range l.done {
		if t <= cut {
			delete(l.done, id)
		}
	}
	l.Floor = cut + 1
	l.dirty = true
}

func nonNegative(v float64) float64 {
	if v < 0 || v != v {
		return 0
	}
	return v
}

// LabelsOf returns the bounded labels of a call.
func LabelsOf(c *cometchat.Call) Labels {
	return Labels{
		CallType:     normalize(c.Type, []string{"audio", "video"}),
		Mode:         normalize(c.Mode, []string{"call", "meet", "presenter"}),
		ReceiverType: normalize(c.ReceiverType, []string{"user", "group"}),
	}
}

func normalize(v string, allowed []string) string {
	v = strings.ToLower(strings.TrimSpace(v))
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	return "other"
}

// NormalizeStatus maps a call's status to its label and says whether it is
// final. In progress: initiated (also ringing, calling) and ongoing (also
// started, active, in progress). Final: ended, unanswered, rejected, canceled
// (also cancelled) and any other non-empty value, as "other". A call without
// a status is in progress unless it has an end time.
func NormalizeStatus(c *cometchat.Call) (status string, final bool) {
	s := strings.ToLower(strings.TrimSpace(c.Status))
	s = strings.NewReplacer("-", "", "_", "", " ", "").Replace(s)
	switch s {
	case "initiated", "ringing", "calling", "pending":
		return "initiated", false
	case "ongoing", "started", "active", "inprogress", "joined":
		return "ongoing", false
	case "ended", "unanswered", "rejected", "canceled":
		return s, true
	case "cancelled":
		return "canceled", true
	case "":
		if c.EndedAt > 0 {
			return "other", true
		}
		return "initiated", false
	default:
		return "other", true
	}
}
