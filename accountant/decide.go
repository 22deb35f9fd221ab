package accountant

import (
	"hash/fnv"
	"math"
	"time"

	"github.com/cometchat-exporter/cometchat-exporter/cometchat"
)

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

// paginationProblem names what is wrong with a page's meta.pagination, or
// returns "" when nothing is: missing altogether, another page than the
// one asked for, a count that is not the page's size, or total_pages that
// does not follow from total and per_page.
func paginationProblem(page, entries int, pg cometchat.Pagination) string {
	switch {
	case pg == (cometchat.Pagination{}) && entries > 0:
		return "missing"
	case pg.CurrentPage > 0 && pg.CurrentPage != page:
		return "current_page"
	case pg.Count > 0 && pg.Count != entries:
		return "count"
	case pg.Total > 0 && pg.PerPage > 0 && pg.TotalPages > 0 && pg.TotalPages != (pg.Total+pg.PerPage-1)/pg.PerPage:
		return "total_pages"
	case pg.PerPage > 0 && entries > pg.PerPage+1: // one more: a call repeated from the page before
		return "per_page"
	}
	return ""
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
// where a failed scan stopped: the pages between were read by it. A first
// poll that resumes reads the head first too: calls that arrived since
// its failed attempt are there, and they are new, not history.
func following(page int, s scanState) int {
	if s.PastKnown > 0 && s.Resume > page+1 {
		return s.Resume
	}
	return page + 1
}

// entryFact is what the stop rules need of one listed entry.
type entryFact struct {
	TS    int64 // the call's time; 0 when it has none
	Known bool  // known before this poll
}

// outOfPlace flags the dated entries of a page (in list order) that break
// the newest-first order. Where an entry is newer than the last one in
// place before it, one of the two is out of place; the entry after it
// decides which: an old call listed first is blamed, not the page of new
// calls after it, and a new call listed among old ones is blamed, not its
// neighbours. prev is the last in-place time of the page before (0 for
// none); prevOut reports that it was the one out of place. Undated entries
// are never flagged.
func outOfPlace(es []entryFact, prev int64) (flags []bool, prevOut bool) {
	flags = make([]bool, len(es))
	last, lastAt := prev, -1 // the last entry in place; -1: prev, or none
	if prev <= 0 {
		last = math.MaxInt64
	}
	for k, e := range es {
		if e.TS <= 0 {
			continue
		}
		if e.TS <= last {
			last, lastAt = e.TS, k
			continue
		}
		next := int64(0)
		for _, n := range es[k+1:] {
			if n.TS > 0 {
				next = n.TS
				break
			}
		}
		if next > 0 && next <= last {
			flags[k] = true // newer than what comes before and after it
			continue
		}
		if lastAt >= 0 {
			flags[lastAt] = true // the entry before was the old one
		} else {
			prevOut = true
		}
		last, lastAt = e.TS, k
	}
	return flags, prevOut
}

// pastLine reports whether a page shows the scan has passed line: its
// last dated entries in list order, out-of-place ones left out, are older
// than line (and known before this poll, with known set), at least two in
// a row, or one when it is the only entry of the page. One entry alone
// never decides where a scan stops unless it is all the page holds: not
// when the others are out of place or undated.
func pastLine(es []entryFact, flags []bool, line int64, known bool) bool {
	run, dated := 0, 0
	counting := true
	for i := len(es) - 1; i >= 0; i-- {
		e := es[i]
		if e.TS <= 0 || flags[i] {
			continue
		}
		dated++
		if counting && e.TS < line && (!known || e.Known) {
			run++
		} else {
			counting = false
		}
	}
	return run >= 2 || (len(es) == 1 && run == 1)
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
// an older file), then every period, and at retryAt when a scan read
// around a page that failed (see holeRetry). A first poll reads
// everything anyway.
func sweepDue(initialized bool, last, retryAt, now time.Time, every time.Duration) bool {
	return initialized && (last.IsZero() || now.Sub(last) >= every || (!retryAt.IsZero() && !now.Before(retryAt)))
}

// readThrough reports whether a sweep that stopped so read everything down
// to where it was meant to: past the previous sweep's mark (which a part
// read around lowers to below it), the floor, or the end of the list. A
// sweep cut short by the page limit, a full dedupe set or a server that
// cannot page completes, but leaves what was read around unread.
func readThrough(v verdict) bool {
	switch v {
	case stopEnd, stopKnown, stopFloor:
		return true
	}
	return false
}

// holeRetry returns when a sweep next reads a part of the list that a
// scan read around, after streak scans in a row did: the poll interval,
// doubling with each, never later than the sweep period.
func holeRetry(streak int, now time.Time, interval, every time.Duration) time.Time {
	d := interval
	for i := 1; i < streak && d < every; i++ {
		d *= 2
	}
	return now.Add(min(d, every))
}

// maxSkippedInARow: a scan reads around this many failing pages in a row
// at most; past that the API is failing, not a page, and the poll fails.
const maxSkippedInARow = 3

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
// than by one Get Call each. The batch holds only calls not counted yet:
// a storm of repeated deliveries costs nothing.
func pollInstead(batch int) bool { return batch > hintPollThreshold }

// hintCoalesce: a call is looked up for a hint that does not say it is
// over at most once in this window (40 participants joining a meeting
// cost one Get Call, not 40). A hint that says it is over is always
// looked up: that is what gets the call counted.
const hintCoalesce = 10 * time.Second

// hintDue reports whether a hint costs a Get Call, given when its call was
// last looked up for a hint (zero for never).
func hintDue(h Hint, last time.Time) bool {
	return h.Final || last.IsZero() || h.Received.Sub(last) >= hintCoalesce || h.Received.Before(last)
}

// maxHintLookups bounds the calls remembered for hintDue.
const maxHintLookups = 4096

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

// phase is an app's offset within the poll interval, from its name (FNV-1a):
// stable across restarts, and spread evenly over many apps, so that a
// thousand apps started together do not poll together again.
func phase(app string, interval time.Duration) time.Duration {
	if interval <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(app))
	return time.Duration(h.Sum64() % uint64(interval))
}

// The cheapest way to learn what ended. After the head scan and the
// ongoing listing, the tracked calls that neither showed have most likely
// ended: a list page below the head tells the state of every call it
// holds, Get Call one call's.

// pageBelowPays decides whether one more list page below the oldest call
// read (bottom) is cheaper than Get Calls: at least two of the tracked
// calls still to check (their times, unordered; 0 for none) lie within the
// page, which reaches about span seconds further back, as the last page
// read did.
func pageBelowPays(unchecked []int64, bottom, span int64) bool {
	if span <= 0 || bottom <= 0 || bottom == math.MaxInt64 {
		return false
	}
	n := 0
	for _, ts := range unchecked {
		if ts > 0 && ts <= bottom && ts >= bottom-span {
			n++
		}
	}
	return n >= 2
}

// maxPagesBelow bounds the pages read below the head in one poll.
const maxPagesBelow = 5

// resetsMissing reports whether a head scan that completed sets the
// estimate of missing calls (ledger Missing) to what it learned, as if
// the total counted nothing else unknown: after a first poll; at a new
// baseline (rebase: the last total was not usable, so its growth is not
// known); when it read all it could (exhausted: what the total still
// counts is out of reach); and when it learned more than the estimate
// (the total grew by less than the list shows: an estimate below what
// was found would hide the next missing call).
func resetsMissing(first, rebase, exhausted bool, missing, learned int) bool {
	return first || rebase || exhausted || missing < learned
}

// How far back a head scan re-reads. A call listed late (after calls
// initiated after it) lands below the newest call the last poll read;
// the overlap re-read finds it there. Where the list total has accounted
// exactly for what the last busy head scans learned, a call listed late
// also shows as a call the total counts and no poll found, and the scan
// reads deeper for it (MissingLeft): the re-read then shrinks to a margin
// for calls of the same seconds, and a poll at busy traffic reads one
// head page instead of the overlap's. A sweep always re-reads the whole
// overlap: the backstop for a total that is blind (a call removed as
// another is listed late).
const (
	// agreeingScans is how many busy head scans in a row the total must
	// have accounted for exactly before the re-read shrinks.
	agreeingScans = 3
	// trustedReRead is the re-read while the total agrees.
	trustedReRead = 10 * time.Second
)

// totalCheck is what a head scan showed of the list total.
type totalCheck struct {
	Total   int     // the total of the scan's first page; 0 when absent
	Skipped bool    // the scan read around a failing page
	Stop    verdict // why it stopped
	Learned int     // ids the scan learned
	// Residual is the calls the total counts that no poll has found, after
	// the scan: negative when the total grew by less than was found.
	Residual int
}

// totalAgrees returns how many busy head scans in a row the list total
// has accounted for exactly, after one more (streak before it). A scan
// that learned nothing neither builds nor breaks the streak (an idle
// total agrees with anything); one without a total, that read around a
// page, did not reach the known calls or the list's end, or left the
// total at odds with what was found, breaks it.
func totalAgrees(streak int, c totalCheck) int {
	switch {
	case c.Total <= 0 || c.Skipped || c.Residual != 0:
		return 0
	case c.Stop != stopKnown && c.Stop != stopEnd:
		return 0
	case c.Learned == 0:
		return streak
	}
	return streak + 1
}

// reRead returns how far behind the newest call read the head scan
// re-reads: the overlap, or trustedReRead (never more than the overlap)
// once the total has agreed agreeingScans times in a row and the scan is
// not a sweep.
func reRead(streak int, sweep bool, overlap time.Duration) time.Duration {
	if sweep || streak < agreeingScans {
		return overlap
	}
	return min(overlap, trustedReRead)
}
