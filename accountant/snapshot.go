package accountant

import "time"

// Active counts calls in progress with one label set.
type Active struct {
	Initiated    int
	Ongoing      int
	Participants int // participant entries in state ongoing
}

// Snapshot is an immutable copy of one app's state, published by the Poller
// after every poll and read by the collector without locks.
type Snapshot struct {
	App    string
	Totals map[Labels]*Totals
	Active map[Labels]Active
	// Up is true when the last poll succeeded.
	Up bool
	// LastSuccess is the end of the last successful poll; zero before one.
	LastSuccess time.Time
	// Interval is the configured time between polls.
	Interval  time.Duration
	Tracked   int
	Abandoned uint64
	// API counts the poller's requests and errors.
	API APIStats
	// StateRecovered is true when the state file could not be read at start
	// and was moved aside.
	StateRecovered bool
}

// snapshot copies the ledger's exported view.
func (l *Ledger) snapshot(app string) *Snapshot {
	s := &Snapshot{
		App:       app,
		Totals:    make(map[Labels]*Totals, len(l.totals)),
		Active:    map[Labels]Active{},
		Tracked:   len(l.tracked),
		Abandoned: l.Abandoned,
	}
	for k, t := range l.totals {
		s.Totals[k] = t.clone()
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
