package accountant

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cometchat-exporter/cometchat-exporter/cometchat"
)

func TestNextPage(t *testing.T) {
	later := scanState{MaxPages: 100}
	first := scanState{First: true}
	full := pageFacts{Page: 2, CurrentPage: 2, TotalPages: 10, PerPage: 25, Entries: 25, NewInScan: 25}
	with := func(f pageFacts, mod func(*pageFacts)) pageFacts { mod(&f); return f }
	state := func(s scanState, mod func(*scanState)) scanState { mod(&s); return s }
	cases := []struct {
		name string
		f    pageFacts
		s    scanState
		want verdict
	}{
		{"empty page", pageFacts{Page: 1, PerPage: 25}, later, stopEnd},
		{"a full page of new calls", full, later, readOn},
		{"last page by total_pages", with(full, func(f *pageFacts) { f.Page, f.CurrentPage = 10, 10 }), later, stopEnd},
		{"short page without total_pages", with(full, func(f *pageFacts) { f.TotalPages, f.Entries = 0, 24 }), later, stopEnd},
		{"full page without total_pages", with(full, func(f *pageFacts) { f.TotalPages = 0 }), later, readOn},
		{"server answers page 1 when asked for 2", with(full, func(f *pageFacts) { f.CurrentPage = 1 }), later, stopIgnoresPage},
		{"one page shift with current_page: nothing new, read on",
			with(full, func(f *pageFacts) { f.NewInScan = 0 }), state(later, func(s *scanState) { s.StalePages = 1 }), readOn},
		{"stale pages with current_page are shifts, never a stop",
			with(full, func(f *pageFacts) { f.NewInScan = 0 }), state(later, func(s *scanState) { s.StalePages = 5 }), readOn},
		{"one page shift without current_page: read on",
			with(full, func(f *pageFacts) { f.CurrentPage, f.NewInScan = 0, 0 }), state(later, func(s *scanState) { s.StalePages = 1 }), readOn},
		{"two stale pages without current_page: the server ignores page",
			with(full, func(f *pageFacts) { f.CurrentPage, f.NewInScan = 0, 0 }), state(later, func(s *scanState) { s.StalePages = 2 }), stopStale},
		{"first poll reads on", full, first, readOn},
		{"first poll stops when the dedupe set is full", full, state(first, func(s *scanState) { s.Full = true }), stopFull},
		{"first poll ignores the overlap", with(full, func(f *pageFacts) { f.Crossed = true }), first, readOn},
		{"later poll reached known calls", with(full, func(f *pageFacts) { f.Crossed = true }), later, stopKnown},
		{"a sweep reads on past the known calls", with(full, func(f *pageFacts) { f.Crossed = true }),
			state(later, func(s *scanState) { s.Sweep = true }), readOn},
		{"a sweep stops where the previous one began", with(full, func(f *pageFacts) { f.Crossed, f.SweptTo = true, true }),
			state(later, func(s *scanState) { s.Sweep = true }), stopKnown},
		{"reached known calls but some are missing: read on",
			with(full, func(f *pageFacts) { f.Crossed = true }), state(later, func(s *scanState) { s.MissingLeft = 3 }), readOn},
		{"missing calls but reached the floor",
			with(full, func(f *pageFacts) { f.Crossed, f.BelowFloor = true, true }), state(later, func(s *scanState) { s.MissingLeft = 3 }), stopFloor},
		{"deep read past known calls: page limit", with(full, func(f *pageFacts) { f.Crossed = true }),
			state(later, func(s *scanState) { s.PastKnown, s.MissingLeft = 100, 5 }), stopPageLimit},
		{"no limit on the way down to known calls", with(full, func(f *pageFacts) { f.Page, f.CurrentPage, f.TotalPages = 900, 900, 0 }), later, readOn},
		{"the end wins over a stale streak", with(full, func(f *pageFacts) { f.CurrentPage, f.NewInScan, f.Entries, f.TotalPages = 0, 0, 3, 0 }),
			state(later, func(s *scanState) { s.StalePages = 2 }), stopEnd},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, nextPage(tc.f, tc.s), "got %v", nextPage(tc.f, tc.s))
		})
	}
}

func TestListEnd(t *testing.T) {
	page := pageFacts{Page: 2, CurrentPage: 2, TotalPages: 3, PerPage: 25, Entries: 25}
	assert.Equal(t, readOn, listEnd(page))
	page.Page, page.CurrentPage = 3, 3
	assert.Equal(t, stopEnd, listEnd(page), "last of total_pages")
	page.CurrentPage = 1
	assert.Equal(t, stopIgnoresPage, listEnd(page), "asked for 3, served 1")
	assert.Equal(t, stopEnd, listEnd(pageFacts{Page: 1, PerPage: 25, Entries: 7}), "short page, no total_pages")
	assert.Equal(t, stopEnd, listEnd(pageFacts{Page: 1, PerPage: 25}), "empty page")
}

func TestFollowing(t *testing.T) {
	assert.Equal(t, 2, following(1, scanState{}), "next page")
	assert.Equal(t, 2, following(1, scanState{Resume: 9}), "not past known calls yet: read on")
	assert.Equal(t, 9, following(2, scanState{Resume: 9, PastKnown: 1}), "deep read: jump to where the failed scan stopped")
	assert.Equal(t, 10, following(9, scanState{Resume: 9, PastKnown: 2}), "past it: next page")
	assert.Equal(t, 3, following(2, scanState{Resume: 3, PastKnown: 1}), "the next page anyway")
	assert.Equal(t, 9, following(2, scanState{First: true, Resume: 9, PastKnown: 1}), "a first poll reads the head, then jumps")
	assert.Equal(t, 2, following(1, scanState{First: true, Resume: 9}), "a first poll resuming reads the head first")
}

func TestExhausted(t *testing.T) {
	assert.True(t, exhausted(stopEnd, 3, 0))
	assert.True(t, exhausted(stopFloor, 3, 0))
	assert.True(t, exhausted(stopIgnoresPage, 2, 0))
	assert.True(t, exhausted(stopStale, 3, 2), "nothing after page 1 was new: the server ignores page")
	assert.False(t, exhausted(stopStale, 6, 2), "fresh pages before the stale ones: the list moved, search again")
	assert.False(t, exhausted(stopKnown, 2, 0))
}

func TestPlanRecheck(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	interval := 30 * time.Second
	at := func(d time.Duration) int64 { return now.Add(d).Unix() }
	ringing := Tracked{Status: "initiated", TS: at(-time.Minute)}
	stuck := Tracked{Status: "initiated", TS: at(-2 * time.Hour)}
	cases := []struct {
		name string
		t    Tracked
		res  checkResult
		want Tracked
	}{
		{"fresh call still ringing: next poll", ringing, checkInProgress, ringing},
		{"stale call still ringing: backoff starts at the interval", stuck, checkInProgress,
			Tracked{Status: "initiated", TS: stuck.TS, Checks: 1, NextCheck: at(30 * time.Second)}},
		{"stale call, fourth check: 4 minutes", Tracked{TS: stuck.TS, Checks: 3}, checkInProgress,
			Tracked{TS: stuck.TS, Checks: 4, NextCheck: at(4 * time.Minute)}},
		{"stale call, capped at 10 minutes", Tracked{TS: stuck.TS, Checks: 9}, checkInProgress,
			Tracked{TS: stuck.TS, Checks: 10, NextCheck: at(10 * time.Minute)}},
		{"call without a timestamp is stale", Tracked{}, checkInProgress, Tracked{Checks: 1, NextCheck: at(30 * time.Second)}},
		{"first failure: one interval", ringing, checkFailed,
			Tracked{Status: "initiated", TS: ringing.TS, Failures: 1, NextCheck: at(30 * time.Second)}},
		{"third failure: four intervals", Tracked{TS: ringing.TS, Failures: 2}, checkFailed,
			Tracked{TS: ringing.TS, Failures: 3, NextCheck: at(2 * time.Minute)}},
		{"failures are capped too", Tracked{TS: ringing.TS, Failures: 40}, checkFailed,
			Tracked{TS: ringing.TS, Failures: 41, NextCheck: at(10 * time.Minute)}},
		{"not found: next poll, streak grows, failures reset", Tracked{TS: ringing.TS, Failures: 2, NotFound: 1, NextCheck: 5}, checkNotFound,
			Tracked{TS: ringing.TS, NotFound: 2}},
		{"found in progress ends the failure streak", Tracked{TS: ringing.TS, Failures: 5, NotFound: 2}, checkInProgress,
			Tracked{TS: ringing.TS}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, planRecheck(tc.t, tc.res, now, interval))
		})
	}
	assert.True(t, recheckDue(&Tracked{}, now), "never checked: due")
	assert.True(t, recheckDue(&Tracked{NextCheck: now.Unix()}, now))
	assert.False(t, recheckDue(&Tracked{NextCheck: now.Unix() + 1}, now))
}

func TestSweepDue(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	cases := []struct {
		name        string
		initialized bool
		last, retry time.Time
		want        bool
	}{
		{"first poll: it reads everything anyway", false, time.Time{}, time.Time{}, false},
		{"first poll after a start", true, time.Time{}, time.Time{}, true},
		{"a period after the last sweep", true, now.Add(-time.Hour), time.Time{}, true},
		{"within the period", true, now.Add(-59 * time.Minute), time.Time{}, false},
		{"within the period, a page to read again", true, now.Add(-time.Minute), now, true},
		{"within the period, a page to read again later", true, now.Add(-time.Minute), now.Add(time.Second), false},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, sweepDue(tc.initialized, tc.last, tc.retry, now, time.Hour), tc.name)
	}
}

func TestSweepCompleted(t *testing.T) {
	for v, want := range map[verdict]bool{
		stopEnd: true, stopIgnoresPage: true, stopKnown: true, stopFloor: true, stopFull: true,
		stopPageLimit: true, stopStale: false,
	} {
		assert.Equal(t, want, sweepCompleted(v), v.String())
	}
}

func TestReadThrough(t *testing.T) {
	for v, want := range map[verdict]bool{
		stopEnd: true, stopKnown: true, stopFloor: true,
		stopPageLimit: false, stopFull: false, stopIgnoresPage: false, stopStale: false,
	} {
		assert.Equal(t, want, readThrough(v), v.String())
	}
}

func TestHoleRetry(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for streak, want := range map[int]time.Duration{1: 30 * time.Second, 2: time.Minute, 3: 2 * time.Minute, 8: time.Hour, 50: time.Hour} {
		assert.Equal(t, now.Add(want), holeRetry(streak, now, 30*time.Second, time.Hour), "streak %d", streak)
	}
}

func TestOutOfPlace(t *testing.T) {
	es := func(ts ...int64) []entryFact {
		out := make([]entryFact, len(ts))
		for i, v := range ts {
			out[i] = entryFact{TS: v}
		}
		return out
	}
	cases := []struct {
		name    string
		page    []entryFact
		prev    int64
		want    []bool
		prevOut bool
	}{
		{"in order", es(900, 800, 700), 0, []bool{false, false, false}, false},
		{"ties are in order", es(900, 900, 800), 1000, []bool{false, false, false}, false},
		{"an old call listed first", es(100, 900, 800, 700), 0, []bool{true, false, false, false}, false},
		{"a new call among old ones", es(500, 400, 2000, 300), 0, []bool{false, false, true, false}, false},
		{"an old call last: not yet known", es(900, 800, 100), 0, []bool{false, false, false}, false},
		{"the page before ended with an old call", es(900, 800), 100, []bool{false, false}, true},
		{"one newer than the page before, then in order", es(1100, 900), 1000, []bool{true, false}, false},
		{"undated entries are never flagged", es(900, 0, 1000, 800), 0, []bool{false, false, true, false}, false},
		{"an old call alone on its page", es(100), 0, []bool{false}, false},
	}
	for _, tc := range cases {
		flags, prevOut := outOfPlace(tc.page, tc.prev)
		assert.Equal(t, tc.want, flags, tc.name)
		assert.Equal(t, tc.prevOut, prevOut, tc.name)
	}
}

func TestPastLine(t *testing.T) {
	k := func(ts int64) entryFact { return entryFact{TS: ts, Known: true} }
	u := func(ts int64) entryFact { return entryFact{TS: ts} }
	none := func(n int) []bool { return make([]bool, n) }
	cases := []struct {
		name  string
		page  []entryFact
		flags []bool
		known bool
		want  bool
	}{
		{"the last two are known and old", []entryFact{u(900), k(400), k(300)}, none(3), true, true},
		{"only the last is old", []entryFact{u(900), u(800), k(300)}, none(3), true, false},
		{"old but not known", []entryFact{u(400), u(300)}, none(2), true, false},
		{"old, known not asked (the floor)", []entryFact{u(400), u(300)}, none(2), false, true},
		{"new calls after old ones at the end", []entryFact{k(400), k(300), u(900)}, none(3), true, false},
		{"an out-of-place entry is left out", []entryFact{k(400), k(300), u(900)}, []bool{false, false, true}, true, true},
		{"one old entry among ignored ones", []entryFact{k(300), u(900), u(800)}, []bool{false, true, true}, true, false},
		{"a page of one old entry", []entryFact{k(300)}, none(1), true, true},
		{"undated entries do not break the run", []entryFact{k(400), {}, k(300)}, none(3), true, true},
		{"a page of undated entries", []entryFact{{}, {}}, none(2), true, false},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, pastLine(tc.page, tc.flags, 500, tc.known), tc.name)
	}
}

func TestPaginationProblem(t *testing.T) {
	type pg = cometchat.Pagination
	cases := []struct {
		name    string
		page    int
		entries int
		p       pg
		want    string
	}{
		{"consistent", 2, 25, pg{Total: 60, Count: 25, PerPage: 25, CurrentPage: 2, TotalPages: 3}, ""},
		{"an empty list", 1, 0, pg{}, ""},
		{"missing", 1, 5, pg{}, "missing"},
		{"another page than asked", 3, 25, pg{Total: 60, PerPage: 25, CurrentPage: 1, TotalPages: 3}, "current_page"},
		{"a count that is not the page's size", 1, 25, pg{Total: 60, Count: 20, PerPage: 25, CurrentPage: 1, TotalPages: 3}, "count"},
		{"total_pages at odds with total", 1, 25, pg{Total: 60, PerPage: 25, CurrentPage: 1, TotalPages: 5}, "total_pages"},
		{"more entries than per_page", 1, 40, pg{PerPage: 25, CurrentPage: 1}, "per_page"},
		{"one more: a call repeated from the page before", 2, 26, pg{PerPage: 25, CurrentPage: 2}, ""},
		{"a capped page size is not a problem", 1, 100, pg{Total: 500, Count: 100, PerPage: 100, CurrentPage: 1, TotalPages: 5}, ""},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, paginationProblem(tc.page, tc.entries, tc.p), tc.name)
	}
}

func TestAnomaliesAreCountedOncePerEntryInABoundedSet(t *testing.T) {
	p := &Poller{stats: newAPIStats(), cfg: Config{Logger: log.NewNopLogger()}}
	assert.True(t, p.anomaly("unsorted", "a"))
	assert.False(t, p.anomaly("unsorted", "a"), "once per entry")
	assert.True(t, p.anomaly("timestamp_unit", "a"), "and per kind")
	for i := range maxAnomalyIDs {
		p.anomaly("unsorted", fmt.Sprint(i))
	}
	assert.LessOrEqual(t, len(p.anomalies), maxAnomalyIDs, "the set is bounded")
	assert.Equal(t, uint64(maxAnomalyIDs+1), p.stats.Anomalies["unsorted"])
}

// phase spreads apps over the interval: 1,000 apps polling every 30 s
// land in every one of 30 one-second slots, none with more than twice its
// share, and the same app always gets the same phase.
func TestPhaseSpreadsApps(t *testing.T) {
	slots := make([]int, 30)
	for i := range 1000 {
		p := phase(fmt.Sprintf("customer-%d", i), 30*time.Second)
		require.True(t, p >= 0 && p < 30*time.Second)
		slots[p/time.Second]++
	}
	for s, n := range slots {
		assert.True(t, n > 0 && n <= 2*1000/30, "slot %d holds %d apps", s, n)
	}
	assert.Equal(t, phase("prod", time.Minute), phase("prod", time.Minute))
	assert.Zero(t, phase("prod", 0))
}

func TestPageBelowPays(t *testing.T) {
	const bottom, span = 10_000, 300 // the next page reaches back to 9,700
	for _, tc := range []struct {
		name      string
		unchecked []int64
		bottom    int64
		span      int64
		want      bool
	}{
		{"none to check", nil, bottom, span, false},
		{"one: a Get Call costs what a page does", []int64{9_900}, bottom, span, false},
		{"two on the next page", []int64{9_900, 9_800}, bottom, span, true},
		{"at both edges of the page", []int64{10_000, 9_700}, bottom, span, true},
		{"two, one beyond the page", []int64{9_900, 9_699}, bottom, span, false},
		{"far below", []int64{5_000, 4_000, 3_000}, bottom, span, false},
		{"above the bottom: the head scan should have shown them", []int64{10_001, 10_500}, bottom, span, false},
		{"undated calls have no place", []int64{0, 0, 0}, bottom, span, false},
		{"the scan read no dated call", []int64{9_900, 9_800}, math.MaxInt64, span, false},
		{"no bottom", []int64{9_900, 9_800}, 0, span, false},
		{"a page of one instant reaches no further", []int64{9_900, 9_800}, bottom, 0, false},
		{"many, mixed", []int64{0, 12_000, 9_950, 3, 9_701, 9_702}, bottom, span, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, pageBelowPays(tc.unchecked, tc.bottom, tc.span))
		})
	}
}

func TestResetsMissing(t *testing.T) {
	cases := []struct {
		name                     string
		first, rebase, exhausted bool
		missing, learned         int
		want                     bool
	}{
		{"a poll that found what the total grew by keeps the estimate", false, false, false, 48, 48, false},
		{"calls still missing are kept to be searched for", false, false, false, 50, 48, false},
		{"a first poll", true, false, false, 0, 300, true},
		{"a new baseline: the last poll had no total", false, true, false, 0, 12, true},
		{"a new baseline, nothing learned", false, true, false, 0, 0, true},
		{"read all it could: the rest is out of reach", false, false, true, 50, 48, true},
		{"learned more than the total grew by", false, false, false, 40, 48, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, resetsMissing(tc.first, tc.rebase, tc.exhausted, tc.missing, tc.learned))
		})
	}
}

func TestTotalAgrees(t *testing.T) {
	agreeing := totalCheck{Total: 500, Stop: stopKnown, Learned: 48}
	with := func(mod func(*totalCheck)) totalCheck { c := agreeing; mod(&c); return c }
	cases := []struct {
		name   string
		streak int
		c      totalCheck
		want   int
	}{
		{"a busy scan the total accounted for", 2, agreeing, 3},
		{"the list's end is as good as the known calls", 0, with(func(c *totalCheck) { c.Stop = stopEnd }), 1},
		{"an idle scan neither builds nor breaks", 2, with(func(c *totalCheck) { c.Learned = 0 }), 2},
		{"no total", 5, with(func(c *totalCheck) { c.Total = 0 }), 0},
		{"calls the total counts were not found", 5, with(func(c *totalCheck) { c.Residual = 1 }), 0},
		{"the total grew by less than was found", 5, with(func(c *totalCheck) { c.Residual = -1 }), 0},
		{"a page read around", 5, with(func(c *totalCheck) { c.Skipped = true }), 0},
		{"stopped by the page limit", 5, with(func(c *totalCheck) { c.Stop = stopPageLimit }), 0},
		{"stopped on stale pages", 5, with(func(c *totalCheck) { c.Stop = stopStale }), 0},
		{"a server that ignores page", 5, with(func(c *totalCheck) { c.Stop = stopIgnoresPage }), 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, totalAgrees(tc.streak, tc.c))
		})
	}
}

func TestReRead(t *testing.T) {
	cases := []struct {
		name    string
		streak  int
		sweep   bool
		overlap time.Duration
		want    time.Duration
	}{
		{"until the total has agreed: the overlap", agreeingScans - 1, false, 2 * time.Minute, 2 * time.Minute},
		{"once it has: the margin", agreeingScans, false, 2 * time.Minute, trustedReRead},
		{"a sweep re-reads the overlap whatever the total", 100, true, 2 * time.Minute, 2 * time.Minute},
		{"never more than the overlap", 100, false, 5 * time.Second, 5 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, reRead(tc.streak, tc.sweep, tc.overlap))
		})
	}
}
