package accountant

import (
	"time"

	"github.com/cometchat-exporter/cometchat-exporter/billing"
)

// Active counts calls in progress with one label set.
type Active struct {
	Initiated    int
	Ongoing      int
	Participants int // participant entries in state ongoing
}

// Snapshot is an immutable copy of one app's state, published by the Poller
// after every poll and read by the collector without locks.
type Snapshot struct {
	App string
	// Totals and Abandoned are the counters as last persisted (with a state
	// file): what a restart continues from, so never more than that.
	Totals    map[Labels]*Totals
	Abandoned uint64
	// Seen counts the distinct calls this ledger has learned (counted,
	// history or tracked), as last persisted: set against Listed, it
	// checks the count against the API's own.
	Seen uint64
	// Listed is meta.pagination.total of the last head scan's first page,
	// the calls the API says it lists; 0 when the server sends none.
	Listed int
	// Exemplars name the last calls counted into Totals.
	Exemplars map[Labels]*Exemplars
	// Started is when the counters of Totals and Abandoned began counting
	// from zero (persisted with them); zero when unknown.
	Started time.Time
	// StatsStarted is when the in-memory counters (API and State) began:
	// the poller's start, carried over a reload.
	StatsStarted time.Time
	// Active and Tracked are the calls in progress now.
	Active  map[Labels]Active
	Tracked int
	// Remembered is the number of ids in the dedupe set now.
	Remembered int
	// Up is true when the listings of the last poll succeeded.
	Up bool
	// LastSuccess is the end of the last successful poll; zero before one.
	LastSuccess time.Time
	// Interval is the configured time between polls.
	Interval time.Duration
	// API counts the poller's requests and errors.
	API APIStats
	// StateRecovered is true when the state file could not be read at start
	// and was moved aside.
	StateRecovered bool
	// State is set when the app persists to a state file.
	State *StateStats
	// Plan is the app's billing plan, nil without one; Billing the
	// current period's usage as last persisted.
	Plan    *billing.Plan
	Billing BillingPeriod
}

// StateStats describe the state file's writes.
type StateStats struct {
	// LastWrite is the time of the last successful write; zero when none
	// happened yet (a first start before its first poll).
	LastWrite time.Time
	// Failures counts failed writes; WrittenBytes the bytes written.
	Failures     uint64
	WrittenBytes uint64
	// Failing is whether the last write failed.
	Failing bool
}

// counters is the part of a snapshot that must never run ahead of what is
// persisted.
type counters struct {
	totals    map[Labels]*Totals
	abandoned uint64
	seen      uint64
	exemplars map[Labels]*Exemplars
	started   int64
	billing   BillingPeriod
}

func (l *Ledger) counters() counters {
	c := counters{totals: make(map[Labels]*Totals, len(l.totals)), abandoned: l.Abandoned, seen: l.Learned,
		exemplars: make(map[Labels]*Exemplars, len(l.exemplars)), started: l.Started, billing: l.Billing}
	for k, t := range l.totals {
		c.totals[k] = t.clone()
	}
	for k, e := range l.exemplars {
		c.exemplars[k] = e.clone()
	}
	return c
}

// snapshot builds a snapshot from persisted counters and the ledger's
// calls in progress.
func (l *Ledger) snapshot(app string, c counters) *Snapshot {
	s := &Snapshot{
		App:       app,
		Totals:    c.totals,
		Abandoned: c.abandoned,
		Seen:      c.seen,
		Listed:    l.LastTotal,
		Exemplars: c.exemplars,
		Active:    map[Labels]Active{},
		Tracked:   len(l.tracked),

		Remembered: l.Remembered(),
	}
	if l.plan.Enabled() {
		s.Plan, s.Billing = &l.plan, c.billing
	}
	if c.started > 0 {
		s.Started = time.Unix(c.started, 0)
	}
	for _, t := range l.tracked {
		a := s.Active[t.Labels]
		if t.Status == "ongoing" {
			a.Ongoing++
		} else {
			a.Initiated++
		}
		a.Participants += t.Participants
		s.Active[t.Labels] = a
	}
	return s
}
