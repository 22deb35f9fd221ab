package accountant

import "time"

// This file holds the poller's decisions with many cases, as pure
// functions over values: whether to read another page of the list, and
// when to ask Get Call about a tracked call again. The poller's loops call
// them; decide_test.go has a row per case.

// pageFacts is what one page of the head scan showed.
type pageFacts struct {
	Page        int // the page asked for, from 1
	CurrentPage int // meta.pagination.current_page; 0 when absent
	TotalPages  int // meta.pagination.total_pages; 0 when absent
	PerPage     int // meta.pagination.per_page, else the perPage asked for
	Entries     int // entries on the page, unusable ones included
	// NewInScan counts ids that no earlier page of this scan showed.
	NewInScan int
	// Crossed: the page holds a call that was known before this poll and
	// is older than the overlap cutoff: the scan has reached what earlier
	// polls read.
	Crossed bool
	// BelowFloor: the page holds a call older than the floor, where no
	// unknown call is counted any more.
	BelowFloor bool
	// SweptTo: in a sweep, the page holds a call known before this poll
	// and older than where the previous sweep began (see sweepDue).
	SweptTo bool
}

// scanState is what the scan knows beyond the page.
type scanState struct {
	// First: the first poll, which reads the whole history (up to the
	// dedupe capacity) so that history is known by id.
	First bool
	// Full: in the first poll, the dedupe set is full and the backfill
	// window (if any) is covered.
	Full bool
	// StalePages counts the pages in a row, this one included, that
	// brought no new id.
	StalePages int
	// MissingLeft is how many calls the list total says exist that no
	// poll has found yet.
	MissingLeft int
	// PastKnown counts the pages read since the scan first reached known
	// calls (Crossed), this one included: the deep read for missing calls.
	PastKnown int
	// MaxPages bounds that deep read (to the dedupe capacity plus the
	// calls missing, in pages). The read down to the known calls is never
	// bounded: after a long outage every call above them is new.
	MaxPages int
	// Resume is the page a failed scan stopped at (ledger ResumePage).
	Resume int
	// Sweep: this scan reads on until SweptTo (see sweepDue).
	Sweep bool
}

// verdict is the decision after a page.
type verdict int

const (
	readOn          verdict = iota
	stopEnd                 // the last page
	stopIgnoresPage         // the server serves another page than asked
	stopStale               // pages bring nothing new: a server ignoring page, or the list shifting faster than it is read
	stopKnown               // reached what earlier polls read, nothing is missing
	stopFloor               // reached the floor
	stopFull                // first poll: the dedupe set is full
	stopPageLimit
)

var verdictNames = [...]string{"read on", "end of list", "server ignores page", "stale pages",
	"reached known calls", "reached the floor", "dedupe set full", "page limit"}

func (v verdict) String() string { return verdictNames[v] }

// maxStalePages is how many pages in a row may bring nothing new before a
// scan without current_page gives up. One such page is normal: exactly one
// page of new calls arrived between two requests, so the next page repeats
// the last one.
const maxStalePages = 2

// listEnd says whether a page is the last any scan can read: the end of
// the list, or a server that served another page than the one asked for.
func listEnd(f pageFacts) verdict {
	switch {
	case f.Entries == 0:
		return stopEnd
	case f.CurrentPage > 0 && f.CurrentPage != f.Page:
		return stopIgnoresPage
	case f.TotalPages > 0 && f.Page >= f.TotalPages:
		return stopEnd
	case f.TotalPages == 0 && f.PerPage > 0 && f.Entries < f.PerPage:
		return stopEnd
	}
	return readOn
}

// nextPage decides whether the head scan reads another page.
func nextPage(f pageFacts, s scanState) verdict {
	if v := listEnd(f); v != readOn {
		return v
	}
	switch {
	case f.CurrentPage == 0 && f.NewInScan == 0 && s.StalePages >= maxStalePages:
		return stopStale
	case s.First && s.Full:
		return stopFull
	case s.First:
		return readOn
	case f.BelowFloor:
		return stopFloor
	case s.PastKnown >= s.MaxPages:
		return stopPageLimit
	case f.Crossed && s.MissingLeft <= 0 && (!s.Sweep || f.SweptTo):
		return stopKnown
	default:
		return readOn
	}
}

// following returns the page to read after page. A deep read goes on from
// where a failed scan stopped: the pages between were read by it.
func following(page int, s scanState) int {
	if !s.First && s.PastKnown > 0 && s.Resume > page+1 {
		return s.Resume
	}
	return page + 1
}

// exhausted reports whether a scan that stopped so has read everything it
// could: whatever the list total still counts as missing cannot be found
// by reading deeper (it is below the floor, or the server cannot page),
// and is written off rather than searched for again at every poll.
func exhausted(v verdict, pagesRead, stalePages int) bool {
	switch v {
	case stopEnd, stopFloor, stopPageLimit, stopIgnoresPage:
		return true
	case stopStale:
		// Only when no page after the first brought anything: the server
		// ignores page. Stale pages after fresh ones are a fast-moving list;
		// the next poll searches again.
		return stalePages == pagesRead-1
	}
	return false
}

// sweepDue reports whether this poll's head scan is a sweep: reading on
// past what the last polls read, down to where the previous sweep began.
// The list total finds the calls a scan left unread (see ledgerScalars,
// Missing); a sweep is the backstop for whatever that estimate gets
// wrong, at the cost of reading each call once more per period. It is
// due at the first poll after a start (a kill can revert the state to
// an older file) and then every period. A first poll reads everything
// anyway.
func sweepDue(initialized bool, last, now time.Time, every time.Duration) bool {
	return initialized && (last.IsZero() || now.Sub(last) >= every)
}

// sweepCompleted reports whether a sweep that stopped so read all it had
// to: down to where the previous one began, as far as the list goes, or
// as deep as the dedupe set reaches (the page limit). A sweep cut short by
// stale pages is tried again at the next poll.
func sweepCompleted(v verdict) bool {
	switch v {
	case stopEnd, stopIgnoresPage, stopKnown, stopFloor, stopFull, stopPageLimit:
		return true
	}
	return false
}

// Webhook hints (see Poller.Hint).
const (
	// hintWindow gathers the hints of a burst into one batch.
	hintWindow = 100 * time.Millisecond
	// hintPollThreshold: a batch larger than this costs more Get Calls
	// than one poll costs list requests, so a poll runs instead.
	hintPollThreshold = 20
	// A call the API does not show (or not as final) yet is looked up
	// again after hintRetryAfter, maxHintTries times in all.
	hintRetryAfter = time.Second
	maxHintTries   = 3
	// maxHintsQueued bounds the queue; hints beyond it are dropped and
	// left to the next poll.
	maxHintsQueued = 4096
)

// pollInstead reports whether a batch of hints is better served by a poll
// than by one Get Call each.
func pollInstead(batch int) bool { return batch > hintPollThreshold }

// checkResult is what a Get Call of a tracked call found.
type checkResult int

const (
	checkInProgress checkResult = iota // the call is still initiated or ongoing
	checkFailed                        // an error other than not found
	checkNotFound
)

// Re-check timing of tracked calls that no listing shows.
const (
	// staleAfter: a call in progress for longer than this is stuck (a
	// ringing call is over in about a minute), or a long meeting; it is
	// re-checked with backoff rather than at every poll.
	staleAfter = 10 * time.Minute
	// maxRecheck caps the backoff.
	maxRecheck = 10 * time.Minute
)

// planRecheck returns the tracked call updated after a Get Call that did
// not make it final: its streaks and the time before which it is not
// asked about again. A call that a listing stopped showing is always
// fetched at the next poll (NextCheck is zero until a check says
// otherwise), so a meeting that leaves the ongoing listing is counted at
// once; a call found still in progress is fetched again at the next poll
// until it is stale, then with backoff; a failing call backs off at once.
func planRecheck(t Tracked, res checkResult, now time.Time, interval time.Duration) Tracked {
	backoff := func(n int) int64 {
		d := interval
		for i := 1; i < n && d < maxRecheck; i++ {
			d *= 2
		}
		return now.Add(min(d, maxRecheck)).Unix()
	}
	switch res {
	case checkFailed:
		t.Failures++
		t.NextCheck = backoff(t.Failures)
	case checkNotFound:
		t.NotFound++
		t.Failures, t.NextCheck = 0, 0
	case checkInProgress:
		t.NotFound, t.Failures = 0, 0
		if t.TS > 0 && now.Sub(time.Unix(t.TS, 0)) < staleAfter {
			t.Checks, t.NextCheck = 0, 0
			break
		}
		t.Checks++
		t.NextCheck = backoff(t.Checks)
	}
	return t
}

// recheckDue reports whether a tracked call that no listing showed this
// poll is asked about now.
func recheckDue(t *Tracked, now time.Time) bool { return now.Unix() >= t.NextCheck }
