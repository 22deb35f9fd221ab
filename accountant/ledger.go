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
	"maps"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/cometchat-exporter/cometchat-exporter/billing"
	"github.com/cometchat-exporter/cometchat-exporter/cometchat"
)

// Labels is the bounded label set of a call. Unknown values become "other".
type Labels struct {
	CallType     string `json:"call_type"`
	Mode         string `json:"mode"`
	ReceiverType string `json:"receiver_type"`
}

// Final statuses, as exposed in the status label.
var FinalStatuses = []string{"ended", "unanswered", "rejected", "canceled", "busy", "other"}

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
	// Native and NativeZero are the same observations in native buckets
	// of NativeSchema, by bucket index (see native.go).
	Native     map[int]uint64 `json:"native,omitempty"`
	NativeZero uint64         `json:"native_zero,omitempty"`
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
	h.observeNative(v)
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
	Calls        map[string]uint64 `json:"calls"`        // by final status
	Participants map[string]uint64 `json:"participants"` // by participant state
	// AudioSeconds and VideoSeconds are the call-level totalAudioMinutes
	// and totalVideoMinutes x 60, exactly as reported; the Participant
	// figures are the sums over the call's participant entries. The API
	// reference is ambiguous about which one is what (see README).
	AudioSeconds            float64   `json:"audio_seconds"`
	VideoSeconds            float64   `json:"video_seconds"`
	ParticipantAudioSeconds float64   `json:"participant_audio_seconds,omitempty"`
	ParticipantVideoSeconds float64   `json:"participant_video_seconds,omitempty"`
	CallsRecorded           uint64    `json:"calls_recorded"`
	CallsTranscribed        uint64    `json:"calls_transcribed,omitempty"`
	Recordings              uint64    `json:"recordings"`
	RecordingSeconds        float64   `json:"recording_seconds"`
	Duration                Histogram `json:"duration"`
	ParticipantsPerCall     Histogram `json:"participants_per_call"`
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
	c.Duration.Native, c.ParticipantsPerCall.Native = maps.Clone(t.Duration.Native), maps.Clone(t.ParticipantsPerCall.Native)
	return &c
}

// Tracked is a call seen in progress, watched until it is final.
type Tracked struct {
	Labels       Labels `json:"labels"`
	Status       string `json:"status"` // initiated or ongoing
	TS           int64  `json:"ts"`
	Participants int    `json:"participants"` // participant entries in state ongoing
	// NotFound counts Get Call answers "not found" in a row.
	NotFound int `json:"not_found,omitempty"`
	// Failures counts other failed Get Calls in a row; Checks counts Get
	// Calls in a row that found the call still in progress. Both space out
	// the next check (see planRecheck).
	Failures int `json:"failures,omitempty"`
	Checks   int `json:"checks,omitempty"`
	// NextCheck is the Unix time before which Get Call is not asked again.
	NextCheck int64 `json:"next_check,omitempty"`
	seenPoll  uint64
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
	totals map[Labels]*Totals
	// exemplars name the last calls counted, per label set. They are hints
	// for a graph, not counts: kept in memory only, gone after a restart
	// until calls are counted again.
	exemplars map[Labels]*Exemplars
	// done is the dedupe set: the key (idKey) of every call counted or
	// taken as history, with its timestamp, for pruning.
	done    idTable
	tracked map[string]*Tracked
	// undated holds the keys of final calls that carry no timestamp at
	// all, in the order they were added. They cannot be pruned by time
	// (nothing says how old they are), so they have a bounded set of their
	// own.
	undated map[uint64]uint64

	ledgerScalars
	changes changes
	// plan is the app's billing plan (configuration, not state).
	plan billing.Plan
}

// ledgerScalars are the ledger's single values, persisted as one block.
type ledgerScalars struct {
	// Initialized is set by the first successful poll; before it, final
	// calls are history.
	Initialized bool `json:"initialized"`
	// Started is when this ledger began counting (Unix seconds): every
	// call counter has counted since then, from zero, so it is their
	// created timestamp. Zero for a ledger from before it was recorded.
	Started int64 `json:"started,omitempty"`
	// Floor: an unknown final call whose timestamp is below it is either
	// history never read or a call counted long ago whose id was pruned, so
	// it is not counted. Zero means every unknown call counts.
	Floor int64 `json:"floor"`
	// Watermark is the newest call timestamp seen.
	Watermark int64 `json:"watermark"`
	// LastTotal is meta.pagination.total at the first page of the latest
	// head scan, and LearnedAtTotal the value of accounted() just before
	// that page was observed. Learned counts every id that ever became known
	// (tracked, counted or history), from any listing or Get Call. Missing
	// estimates the calls the list held then that no poll had found:
	// each new total adds its growth, each id learned since subtracts one.
	// Missing above what was learned since makes a poll read deeper.
	// TotalEmpty: LastTotal is 0 because the list was empty, a total that
	// counts (else 0 is no total). A total is a baseline only once a head
	// scan that read it has completed (see Poller.foldTotal).
	LastTotal      int    `json:"last_total"`
	TotalEmpty     bool   `json:"total_empty,omitempty"`
	Learned        uint64 `json:"learned,omitempty"`
	LearnedAtTotal uint64 `json:"learned_at_total,omitempty"`
	Missing        int    `json:"missing,omitempty"`
	// ResumePage is the page a head scan failed at: the pages above it
	// were read. A first poll goes on from there; a later poll jumps there
	// once it has read the new calls at the head. New calls only push the
	// list down, so no entry can move above that page unread.
	ResumePage int `json:"resume_page,omitempty"`
	// SweepMark is the newest call timestamp the last completed sweep (or
	// the first poll) read: a sweep reads down to it, so that a call any
	// scan since missed (a gap the list total did not reveal) is found.
	SweepMark int64 `json:"sweep_mark,omitempty"`
	// Abandoned counts tracked calls dropped after Get Call kept answering
	// not found.
	Abandoned  uint64 `json:"abandoned"`
	UndatedSeq uint64 `json:"undated_seq,omitempty"`
	// HoleLow, when set, is the newest call time below the lowest part of
	// the list a scan read around (pages that kept failing) and no sweep
	// has read through since: sweeps read down to it, and nothing below
	// it is pruned.
	HoleLow int64 `json:"hole_low,omitempty"`
	// HistoryGapFrom and HistoryGapTo span the call times of the list
	// pages the first poll read around (they kept failing): history there
	// is not known by id until a sweep has read it (see history).
	HistoryGapFrom int64 `json:"history_gap_from,omitempty"`
	HistoryGapTo   int64 `json:"history_gap_to,omitempty"`
	// Uncountable counts the list entries that can never be learned (no
	// sessionId, or listed late below the floor), each once: the estimate
	// of missing calls takes them as found (see accounted).
	Uncountable uint64 `json:"uncountable,omitempty"`
	// Billing is the current billing period's usage (with a plan).
	Billing BillingPeriod `json:"billing,omitempty"`
}

// BillingPeriod is the minutes of the calls that ended in one billing
// period, both figures (see Totals), in seconds.
type BillingPeriod struct {
	// Start is the period's start (Unix seconds); 0 before the first.
	Start                   int64   `json:"start,omitempty"`
	AudioSeconds            float64 `json:"audio_seconds,omitempty"`
	VideoSeconds            float64 `json:"video_seconds,omitempty"`
	ParticipantAudioSeconds float64 `json:"participant_audio_seconds,omitempty"`
	ParticipantVideoSeconds float64 `json:"participant_video_seconds,omitempty"`
}

// rollBilling starts the period holding now if it is newer than the
// current one; a clock set back never reopens an older one.
func (l *Ledger) rollBilling(now time.Time) {
	if !l.plan.Enabled() {
		return
	}
	l.replan(now)
	if start, _ := l.plan.Period(now); start.Unix() > l.Billing.Start {
		l.Billing = BillingPeriod{Start: start.Unix()}
	}
}

// replan starts the period holding now afresh when the current one is not
// a period of the plan (its day or zone changed by a reload): the old
// figure measured another period, and keeping its start would hold the
// new periods' calls out until it passed.
func (l *Ledger) replan(now time.Time) {
	if cur := l.Billing.Start; cur != 0 {
		if s, _ := l.plan.Period(time.Unix(cur, 0)); s.Unix() != cur {
			start, _ := l.plan.Period(now)
			l.Billing = BillingPeriod{Start: start.Unix()}
		}
	}
}

// bill adds a call's minutes to the period in which it ended. A call that
// ended in a period already closed (counted late, after the rollover) is
// not added: that period's figure was final when it closed.
func (l *Ledger) bill(endedAt int64, b BillingPeriod) {
	if !l.plan.Enabled() {
		return
	}
	l.replan(time.Unix(endedAt, 0))
	start, _ := l.plan.Period(time.Unix(endedAt, 0))
	switch s := start.Unix(); {
	case s > l.Billing.Start:
		l.Billing = BillingPeriod{Start: s}
	case s < l.Billing.Start:
		return
	}
	l.Billing.AudioSeconds += b.AudioSeconds
	l.Billing.VideoSeconds += b.VideoSeconds
	l.Billing.ParticipantAudioSeconds += b.ParticipantAudioSeconds
	l.Billing.ParticipantVideoSeconds += b.ParticipantVideoSeconds
}

// accounted is every list entry the estimate of missing calls takes as
// found: the ids learned, and the entries that cannot be.
func (l *Ledger) accounted() uint64 { return l.Learned + l.Uncountable }

// haveTotal reports whether LastTotal is a list total to compare the next
// one with.
func (l *Ledger) haveTotal() bool { return l.LastTotal > 0 || l.TotalEmpty }

// changes are the keys changed since the ledger was last persisted; the
// journal records their current values (or their removal). The scalars
// are compared with their persisted copy instead: a poll that changed
// nothing a restart needs writes nothing. Past maxChanges keys (a
// backfill, a catch-up, a disk that fails for a while) the keys are
// dropped and overflow set: a record that large is no cheaper than a
// snapshot, which needs no record, so the next save writes one.
type changes struct {
	saved    ledgerScalars
	totals   map[Labels]struct{}
	done     map[uint64]struct{}
	undated  map[uint64]struct{}
	tracked  map[string]struct{}
	overflow bool
}

// maxChanges is the most keys a record of changes holds (about 20 bytes
// each in the journal, under a snapshot of 50,000 ids).
const maxChanges = 10_000

func (c *changes) len() int { return len(c.totals) + len(c.done) + len(c.undated) + len(c.tracked) }

func (c *changes) any() bool { return c.overflow || c.len() > 0 }

// scalarsChanged reports whether a scalar differs from what was persisted.
func (l *Ledger) scalarsChanged() bool { return l.ledgerScalars != l.changes.saved }

// mark records that key k of the set m changed.
func mark[K comparable](c *changes, m *map[K]struct{}, k K) {
	if c.overflow {
		return
	}
	if c.len() >= maxChanges {
		*c = changes{saved: c.saved, overflow: true}
		return
	}
	if *m == nil {
		*m = map[K]struct{}{}
	}
	(*m)[k] = struct{}{}
}

// Exemplar is a call counted into a series: its session id, the value it
// added there, and when it was counted.
type Exemplar struct {
	SessionID string
	Value     float64
	At        time.Time
	ts        int64 // the call's timestamp: the newest call is kept
}

// newer reports whether a call with timestamp ts replaces e: a poll counts
// a page newest first, and the exemplar is the newest call.
func (e Exemplar) newer(ts int64) bool { return e.SessionID == "" || ts >= e.ts }

// Exemplars are one label set's last counted calls: by final status, and
// by duration bucket (index i is DurationBuckets[i]; the last index is the
// calls beyond the largest bound).
type Exemplars struct {
	Calls    map[string]Exemplar
	Duration []Exemplar
}

func (e *Exemplars) clone() *Exemplars {
	c := &Exemplars{Calls: make(map[string]Exemplar, len(e.Calls)), Duration: append([]Exemplar(nil), e.Duration...)}
	for k, v := range e.Calls {
		c.Calls[k] = v
	}
	return c
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{totals: map[Labels]*Totals{}, exemplars: map[Labels]*Exemplars{},
		tracked: map[string]*Tracked{}, undated: map[uint64]uint64{}}
}

// begin records when a ledger that has not counted yet started counting.
func (l *Ledger) begin(now time.Time) {
	if l.Started == 0 && !l.Initialized {
		l.Started = now.Unix()
	}
}

// Changed reports whether the ledger changed since it was last persisted.
func (l *Ledger) Changed() bool { return l.changes.any() || l.scalarsChanged() }

// Known reports whether the id is counted, history or tracked.
func (l *Ledger) Known(id string) bool {
	if l.isDone(id) {
		return true
	}
	_, ok := l.tracked[id]
	return ok
}

// Remembered is the number of ids in the dedupe set (done and undated).
func (l *Ledger) Remembered() int { return l.done.Len() + len(l.undated) }

// Observation rules for calls that are final and unknown.
type observeMode struct {
	// backfillFrom, during the first poll, counts history calls with a
	// timestamp at or after it; zero counts none.
	backfillFrom int64
	poll         uint64
	at           time.Time // when the poll observes, for exemplars
	// listedAt is where an undated call sits: in the head scan, the time
	// of the last dated entry in place before it (MaxInt64 at the top of
	// the list); MaxInt64 for a webhook's call, which is new; 0 where
	// unknown (the ongoing listing).
	listedAt int64
	// head: the observation comes from the head scan.
	head bool
}

// Observe applies one observation of a call. invalid is the number of
// values of the call that could not be counted (not finite, negative or
// beyond the sanity caps); they count as zero.
func (l *Ledger) Observe(c *cometchat.Call, m observeMode) (o Outcome, invalid int) {
	id := c.SessionID
	if l.isDone(id) {
		return Duplicate, 0
	}
	status, final := NormalizeStatus(c)
	ts := c.Timestamp()
	if t, ok := l.tracked[id]; ok {
		if final {
			// Remembered by the timestamp the call carries now: one that
			// lost its timestamps goes to the undated set, which is not
			// pruned by age, since later listings show it without one.
			l.untrack(id)
			return Counted, l.count(c, status, ts, m.at)
		}
		l.track(id, t, c, status, m.poll)
		return Tracking, 0
	}
	if !final {
		if m.head && ts > 0 && ts < l.Floor {
			// In progress below the floor, unknown: a call from before the
			// start that no poll saw (README, Limits); only the ongoing
			// listing, which shows calls in progress at any depth, tracks
			// such a call.
			return TooOld, 0
		}
		l.learn()
		t := &Tracked{}
		l.tracked[id] = t
		l.track(id, t, c, status, m.poll)
		return Tracking, 0
	}
	if l.history(ts, c.EndedAt, m.listedAt) {
		if m.backfillFrom > 0 && ts >= m.backfillFrom {
			l.learn()
			return Counted, l.count(c, status, ts, m.at)
		}
		if ts > 0 && ts < l.Floor {
			return TooOld, 0
		}
		l.learn()
		l.remember(id, ts)
		return History, 0
	}
	if ts > 0 && ts < l.Floor {
		return TooOld, 0
	}
	l.learn()
	return Counted, l.count(c, status, ts, m.at)
}

// history reports whether a final call first seen now, initiated at ts
// and ended at end, is history: over before this ledger started counting.
// The line is a time, not a poll or a page, so a call that ended after the
// start is counted whichever scan reads it first, a first poll resumed
// after a failure included. The first poll remembers history by id; after
// it, an unknown call is counted whatever its times say (it was listed
// late), except one that ended before the start inside the part of the
// list the first poll had to read around (HistoryGap): history not read
// by id yet. A call without an end is dated by its start. One without any
// time is history in the first poll, and after it, while that gap is
// open, where it is listed inside the gap or where its place is unknown
// (see observeMode.listedAt). In a ledger
// from before Started was recorded, the first poll takes every final call
// for history.
func (l *Ledger) history(ts, end, listedAt int64) bool {
	gap := func(t int64) bool { return l.HistoryGapTo > 0 && t >= l.HistoryGapFrom && t <= l.HistoryGapTo }
	if end <= 0 {
		end = ts
	}
	switch {
	case !l.Initialized:
		return l.Started == 0 || end <= l.Started
	case ts <= 0:
		return l.HistoryGapTo > 0 && listedAt != math.MaxInt64 && (listedAt == 0 || gap(listedAt))
	}
	return end <= l.Started && gap(ts)
}

func (l *Ledger) isDone(id string) bool {
	k := idKey(id)
	if _, ok := l.done.Get(k); ok {
		return true
	}
	_, ok := l.undated[k]
	return ok
}

func (l *Ledger) learn() { l.Learned++ }

func (l *Ledger) track(id string, t *Tracked, c *cometchat.Call, status string, poll uint64) {
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
	// Seen: the re-check streaks start over. After a Get Call the poller
	// sets them (planRecheck) from what they were before.
	if next != *t { // only a real change needs the state rewritten
		mark(&l.changes, &l.changes.tracked, id)
	}
	*t = next
	t.seenPoll = poll
}

func (l *Ledger) untrack(id string) {
	delete(l.tracked, id)
	mark(&l.changes, &l.changes.tracked, id)
}

// remember puts an id into the dedupe set: done by timestamp, or undated.
func (l *Ledger) remember(id string, ts int64) {
	k := idKey(id)
	if ts > 0 {
		l.done.Put(k, ts)
		mark(&l.changes, &l.changes.done, k)
		return
	}
	l.UndatedSeq++
	l.undated[k] = l.UndatedSeq
	mark(&l.changes, &l.changes.undated, k)
}

// Sanity caps: a value beyond them is not a measurement (a week of minutes
// for one call, a million participant entries) and counts as zero.
const (
	maxMinutes      = 7 * 24 * 60
	maxParticipants = 1_000_000
)

// minutes returns v as a countable number of minutes, or 0 and false.
func minutes(v float64) (float64, bool) {
	if v >= 0 && v <= maxMinutes { // false for NaN
		return v, true
	}
	return 0, false
}

func (l *Ledger) count(c *cometchat.Call, status string, ts int64, at time.Time) (invalid int) {
	l.remember(c.SessionID, ts)
	lb := LabelsOf(c)
	t := l.totals[lb]
	if t == nil {
		t = newTotals()
		l.totals[lb] = t
	}
	ex := l.exemplars[lb]
	if ex == nil {
		ex = &Exemplars{Calls: map[string]Exemplar{}, Duration: make([]Exemplar, len(DurationBuckets)+1)}
		l.exemplars[lb] = ex
	}
	if ex.Calls[status].newer(ts) {
		ex.Calls[status] = Exemplar{SessionID: c.SessionID, Value: 1, At: at, ts: ts}
	}
	mark(&l.changes, &l.changes.totals, lb)
	add := func(sum *float64, mins float64) {
		if m, ok := minutes(mins); ok {
			*sum += m * 60
		} else {
			invalid++
		}
	}
	t.Calls[status]++
	before := BillingPeriod{AudioSeconds: t.AudioSeconds, VideoSeconds: t.VideoSeconds,
		ParticipantAudioSeconds: t.ParticipantAudioSeconds, ParticipantVideoSeconds: t.ParticipantVideoSeconds}
	defer func() {
		// Billed in the period it ended in; without an end, or with one
		// more than a day ahead of the clock (a bad timestamp must not move
		// the period into the future for good), in the period it is
		// counted in.
		ended := c.EndedAt
		if now := at.Unix(); ended <= 0 || ended > now+86400 {
			ended = now
		}
		l.bill(ended, BillingPeriod{AudioSeconds: t.AudioSeconds - before.AudioSeconds, VideoSeconds: t.VideoSeconds - before.VideoSeconds,
			ParticipantAudioSeconds: t.ParticipantAudioSeconds - before.ParticipantAudioSeconds,
			ParticipantVideoSeconds: t.ParticipantVideoSeconds - before.ParticipantVideoSeconds})
	}()
	add(&t.AudioSeconds, c.AudioMinutes)
	add(&t.VideoSeconds, c.VideoMinutes)
	for _, p := range c.Participants {
		t.Participants[normalize(p.State, ParticipantStates)]++
		add(&t.ParticipantAudioSeconds, p.AudioMinutes)
		add(&t.ParticipantVideoSeconds, p.VideoMinutes)
	}
	if c.HasRecording {
		t.CallsRecorded++
	}
	if c.HasTranscription {
		t.CallsTranscribed++
	}
	for _, r := range c.Recordings {
		t.Recordings++
		add(&t.RecordingSeconds, r.DurationMinutes)
	}
	if status == "ended" {
		start := c.StartedAt
		if start <= 0 {
			start = c.InitiatedAt
		}
		if start > 0 && c.EndedAt >= start {
			if d := float64(c.EndedAt - start); d <= maxMinutes*60 {
				t.Duration.observe(DurationBuckets, d)
				if i := sort.SearchFloat64s(DurationBuckets, d); ex.Duration[i].newer(ts) {
					ex.Duration[i] = Exemplar{SessionID: c.SessionID, Value: d, At: at, ts: ts}
				}
			} else {
				invalid++
			}
		}
	}
	n := c.TotalParticipants
	if n < 0 || n > maxParticipants {
		n = 0
		invalid++
	}
	t.ParticipantsPerCall.observe(ParticipantBuckets, float64(n))
	return invalid
}

// Reschedule replaces a tracked call's re-check streaks and time.
func (l *Ledger) Reschedule(id string, t Tracked) {
	cur := l.tracked[id]
	if cur == nil {
		return
	}
	next := *cur
	next.NotFound, next.Failures, next.Checks, next.NextCheck = t.NotFound, t.Failures, t.Checks, t.NextCheck
	if next != *cur {
		*cur = next
		mark(&l.changes, &l.changes.tracked, id)
	}
}

// Untrack drops a tracked call without counting it.
func (l *Ledger) Untrack(id string) {
	if _, ok := l.tracked[id]; ok {
		l.untrack(id)
		l.Abandoned++
	}
}

// Prune keeps at most capacity ids in the dedupe set. Undated ids may use a
// tenth of it, the oldest of them going first. Dated ids go oldest first,
// but never one at or after keepFrom; the floor rises above what was
// dropped, so a dropped id can never be counted again.
func (l *Ledger) Prune(capacity int, keepFrom int64) {
	undatedCap := max(capacity/10, 1)
	for len(l.undated) > undatedCap {
		oldest, seq := uint64(0), uint64(math.MaxUint64)
		for id, s := range l.undated {
			if s < seq {
				oldest, seq = id, s
			}
		}
		delete(l.undated, oldest)
		mark(&l.changes, &l.changes.undated, oldest)
	}
	capacity = max(capacity-len(l.undated), 1)
	if l.done.Len() <= capacity {
		return
	}
	ts := make([]int64, 0, l.done.Len())
	for _, t := range l.done.All {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	// Drop every entry with a timestamp <= cut, so ties go together.
	cut := min(ts[len(ts)-capacity-1], keepFrom-1)
	if cut < l.Floor {
		return
	}
	l.setFloor(cut + 1)
}

// setFloor raises the floor and drops the done ids below it: they can
// never be counted again, so remembering them is useless.
func (l *Ledger) setFloor(floor int64) {
	l.done.DeleteFunc(func(k uint64, t int64) bool {
		if t < floor {
			mark(&l.changes, &l.changes.done, k)
			return true
		}
		return false
	})
	l.Floor = floor
}

// The known values of the call labels; any other value is "other".
var (
	CallTypes     = []string{"audio", "video"}
	Modes         = []string{"call", "meet", "presenter"}
	ReceiverTypes = []string{"user", "group"}
)

// KnownLabelSets returns every combination of the known label values
// (2 x 3 x 2 = 12), whose series exist from the start at zero.
func KnownLabelSets() []Labels {
	var out []Labels
	for _, t := range CallTypes {
		for _, m := range Modes {
			for _, r := range ReceiverTypes {
				out = append(out, Labels{CallType: t, Mode: m, ReceiverType: r})
			}
		}
	}
	return out
}

// LabelsOf returns the bounded labels of a call.
func LabelsOf(c *cometchat.Call) Labels {
	return Labels{
		CallType:     normalize(c.Type, CallTypes),
		Mode:         normalize(c.Mode, Modes),
		ReceiverType: normalize(c.ReceiverType, ReceiverTypes),
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
// (also cancelled), busy (the callee was on another call) and any other
// non-empty value, as "other". A call without
// a status is in progress unless it has an end time.
func NormalizeStatus(c *cometchat.Call) (status string, final bool) {
	s := strings.ToLower(strings.TrimSpace(c.Status))
	s = strings.NewReplacer("-", "", "_", "", " ", "").Replace(s)
	switch s {
	case "initiated", "ringing", "calling", "pending":
		return "initiated", false
	case "ongoing", "started", "active", "inprogress", "joined":
		return "ongoing", false
	case "ended", "unanswered", "rejected", "canceled", "busy":
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
