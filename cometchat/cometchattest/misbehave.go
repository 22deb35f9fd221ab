package cometchattest

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Misbehaviours are the ways the fake can depart from the reference all at
// once, by name, as --demo.misbehave takes them: a user can watch what each
// does to the exporter's counts (nothing) and to its anomaly and cost
// metrics (see docs/anomalies.md).
var Misbehaviours = map[string]string{
	"unsorted":             "every 50th new call is listed first, whatever its time, until the next one takes its place",
	"millis":               "every 50th new call carries its timestamps in milliseconds (and sorts first)",
	"null_initiated_at":    "every 50th new call has a null initiatedAt (and sorts first)",
	"no_session_id":        "every 50th new call is listed without its sessionId",
	"failing_page":         "page 3 of the list answers 500 for 5 minutes in every 10",
	"no_total":             "meta.pagination has no total and no total_pages",
	"no_current_page":      "meta.pagination has no current_page",
	"ignore_status_filter": "status=ongoing filters nothing",
	"ignore_per_page":      "perPage is ignored: pages are always 25 long",
	"repeat_across_pages":  "every page starts with the last call of the page before",
	"late_listing":         "every 50th new call is listed only once 60 more (every other time 400 more) new calls have arrived, below calls initiated after it",
}

// MisbehaviourNames lists the names, sorted.
func MisbehaviourNames() []string {
	var out []string
	for k := range Misbehaviours {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// misbehaviour is what Misbehave turned on that acts per call.
type misbehaviour struct {
	quirks  []Quirk // given in turn to every 50th new call
	unsort  bool
	added   int
	pinned  string
	started time.Time
	page    bool
	late    bool
	hidden  []*entry // not listed yet (late listing)
	lates   int
}

// lateBy is how many new calls a late-listed call waits for before it is
// listed, in turn: within an overlap of a minute or two at busy traffic,
// and far beyond one.
var lateBy = [...]int{60, 400}

// quirkEvery: one new call in this many gets a quirk.
const quirkEvery = 50

// Misbehave turns on the named misbehaviours (see Misbehaviours). Call it
// before serving.
func (s *Server) Misbehave(names ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := &misbehaviour{started: time.Now()}
	for _, name := range names {
		switch name = strings.TrimSpace(name); name {
		case "unsorted":
			m.unsort = true
		case "millis":
			m.quirks = append(m.quirks, QuirkMillis)
		case "null_initiated_at":
			m.quirks = append(m.quirks, QuirkNullInitiatedAt)
		case "no_session_id":
			m.quirks = append(m.quirks, QuirkNoSessionID)
		case "failing_page":
			m.page = true
		case "no_total":
			s.OmitTotal = true
		case "no_current_page":
			s.OmitCurrentPage = true
		case "ignore_status_filter":
			s.IgnoreStatusFilter = true
		case "ignore_per_page":
			s.IgnorePerPage = true
		case "repeat_across_pages":
			s.RepeatAcrossPages = true
		case "late_listing":
			m.late = true
		default:
			return fmt.Errorf("unknown misbehaviour %q (one of %s)", name, strings.Join(MisbehaviourNames(), ", "))
		}
	}
	s.misbehave = m
	if m.page {
		s.faults.mu.Lock()
		prev := s.faults.schedule
		s.faults.schedule = func(r *http.Request, endpoint string) Fault {
			q := r.URL.Query()
			if endpoint == "list_calls" && q.Get("page") == "3" && q.Get("status") == "" && time.Since(m.started)%(10*time.Minute) < 5*time.Minute {
				return ServerErrorJSON
			}
			if prev != nil {
				return prev(r, endpoint)
			}
			return None
		}
		s.faults.mu.Unlock()
	}
	return nil
}

// ListLate lists now every call the late_listing misbehaviour holds
// back, and returns how many.
func (s *Server) ListLate() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.misbehave
	if m == nil {
		return 0
	}
	n := len(m.hidden)
	for _, e := range m.hidden {
		e.hidden = 0
	}
	m.hidden = nil
	return n
}

// LateListed returns how many calls the late_listing misbehaviour has
// held back so far.
func (s *Server) LateListed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.misbehave == nil {
		return 0
	}
	return s.misbehave.lates
}

// hiding reports whether some calls are not listed yet (s.mu held).
func (m *misbehaviour) hiding() bool { return m != nil && len(m.hidden) > 0 }

// add applies the per-call misbehaviours to a new entry (s.mu held).
func (m *misbehaviour) add(s *Server, e *entry) {
	if m == nil {
		return
	}
	m.added++
	kept := m.hidden[:0]
	for _, h := range m.hidden {
		if h.hidden--; h.hidden > 0 {
			kept = append(kept, h)
		}
	}
	clear(m.hidden[len(kept):])
	m.hidden = kept
	switch {
	case m.added%quirkEvery == quirkEvery/5 && m.late:
		e.hidden = lateBy[m.lates%len(lateBy)]
		m.lates++
		m.hidden = append(m.hidden, e)
	case m.added%quirkEvery == 0 && len(m.quirks) > 0:
		e.quirk = m.quirks[(m.added/quirkEvery)%len(m.quirks)]
	case m.added%quirkEvery == quirkEvery/2 && m.unsort:
		if old, ok := s.calls[m.pinned]; ok {
			old.pin = 0
		}
		e.pin, m.pinned = 1, e.call.SessionID
	}
}
