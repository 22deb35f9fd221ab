package accountant

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cometchat-exporter/cometchat-exporter/cometchat"
	"github.com/cometchat-exporter/cometchat-exporter/cometchat/cometchattest"
)

// The tests of this file each take one assumption about the API (its
// order, its timestamps, its pages, its ids) or about the exporter's own
// bookkeeping, break it, and check that the break costs requests, never
// calls.

// TestIdlePollsWriteNothing: a poll that learns nothing writes nothing:
// no snapshot, no journal line, no fsync.
func TestIdlePollsWriteNothing(t *testing.T) {
	h := newHarness(t)
	for i := range 30 {
		h.put(call(fmt.Sprintf("h%02d", i), int64(-3600+i), "ended"))
	}
	state := filepath.Join(t.TempDir(), "state")
	h.start(func(c *Config) { c.StateFile = state; c.PerPage = 10 })
	h.poll()
	h.put(call("new", 10, "ended"))
	for range 2 { // the poll after one that learned settles the list total's bookkeeping
		h.now = h.now.Add(30 * time.Second)
		h.poll()
	}
	written := h.p.Snapshot().State.WrittenBytes
	require.Positive(t, written)
	journal, err := os.Stat(state + ".journal")
	require.NoError(t, err)
	for range 5 {
		h.now = h.now.Add(30 * time.Second)
		h.poll()
	}
	assert.Equal(t, written, h.p.Snapshot().State.WrittenBytes, "idle polls wrote to the state")
	after, err := os.Stat(state + ".journal")
	require.NoError(t, err)
	assert.Equal(t, journal.Size(), after.Size())
	assert.Equal(t, journal.ModTime(), after.ModTime())

	// A new call is written again.
	h.put(call("newer", 200, "ended"))
	h.now = h.now.Add(30 * time.Second)
	h.poll()
	assert.Greater(t, h.p.Snapshot().State.WrittenBytes, written)
}

// TestReloadOfAChangedAppKeepsItsSweepSchedule: a reload that changes an
// app's settings but not its identity does not make the next poll a sweep.
func TestReloadOfAChangedAppKeepsItsSweepSchedule(t *testing.T) {
	h := newHarness(t)
	h.put(call("a", -60, "ended"))
	h.start(func(c *Config) { c.SweepEvery = time.Hour })
	h.poll()
	h.now = h.now.Add(30 * time.Second)
	h.poll() // the first poll after the start is a sweep
	swept := h.p.lastSweep
	require.False(t, swept.IsZero())

	h.p.lookedUpForHint(Hint{SessionID: "meeting", Received: time.Now()})
	cfg := h.cfg
	cfg.Interval, cfg.Resume = 2*time.Minute, h.p
	p, err := NewPoller(cfg)
	require.NoError(t, err)
	p.Adopt()
	assert.Equal(t, swept, p.lastSweep, "the sweep schedule survives the reload")
	assert.Contains(t, p.lookedUp, "meeting", "and so do the hints' lookups")
	assert.False(t, sweepDue(p.ledger.Initialized, p.lastSweep, p.sweepRetry, h.now.Add(time.Minute), time.Hour))
}

// calls returns n ended calls named prefix00.., initiated from offset on,
// one second apart.
func endedCalls(prefix string, n int, offset int64) []cometchat.Call {
	out := make([]cometchat.Call, n)
	for i := range out {
		out[i] = call(fmt.Sprintf("%s%02d", prefix, i), offset+int64(i), "ended")
	}
	return out
}

// TestOneEntryOutOfOrderNeverStopsAScan: an entry at the head that is out
// of order (an old call listed first, a timestamp in milliseconds, a null
// initiatedAt sorted first) must not decide where a scan stops, with or
// without a list total to fall back on.
func TestOneEntryOutOfOrderNeverStopsAScan(t *testing.T) {
	type quirk struct {
		name  string
		apply func(h *harness, id string)
		kind  string
	}
	quirks := []quirk{
		{"an old call listed first", func(h *harness, id string) { h.fake.Pin(id, 1) }, "unsorted"},
		{"milliseconds", func(h *harness, id string) { h.fake.SetQuirk(id, cometchattest.QuirkMillis) }, "timestamp_unit"},
		{"null initiatedAt sorted first", func(h *harness, id string) { h.fake.SetQuirk(id, cometchattest.QuirkNullInitiatedAt) }, "no_initiated_at"},
		// Every old call in milliseconds: a block of pages at the head, in
		// order among themselves.
		{"a block of millisecond entries", func(h *harness, id string) {
			for i := range 25 {
				h.fake.SetQuirk(fmt.Sprintf("h%02d", i), cometchattest.QuirkMillis)
			}
		}, "timestamp_unit"},
	}
	for _, q := range quirks {
		for _, omitTotal := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, total omitted %v", q.name, omitTotal), func(t *testing.T) {
				h := newHarness(t)
				h.fake.OmitTotal = omitTotal
				h.put(endedCalls("h", 30, -7200)...)
				// Capacity 20: the first poll stops at a full dedupe set
				// and sets a floor above the oldest calls.
				h.start(func(c *Config) { c.PerPage = 10; c.Capacity = 20; c.Overlap = time.Minute })
				h.poll()
				require.Positive(t, h.p.ledger.Floor)
				q.apply(h, "h00") // older than the floor
				counted := uint64(0)
				for round := range 4 {
					h.now = h.now.Add(10 * time.Minute)
					h.put(endedCalls(fmt.Sprintf("n%d-", round), 25, h.now.Unix()-t0.Unix()-100)...)
					h.poll()
					counted += 25
					require.Equal(t, counted, h.sums().Calls["ended"], "round %d: every new call is counted", round)
				}
				want := uint64(1)
				if strings.HasPrefix(q.name, "a block") {
					want = 25
				}
				assert.Equal(t, want, h.p.Snapshot().API.Anomalies[q.kind], "each entry is counted as an anomaly once")
			})
		}
	}
}

// TestBadEntriesNeverRaiseWhatAnIdlePollCosts: an entry without sessionId,
// or a call listed late below the floor, grows the list total without
// ever being learned. It is counted as an anomaly once, and idle polls
// cost what they cost before it.
func TestBadEntriesNeverRaiseWhatAnIdlePollCosts(t *testing.T) {
	for _, bad := range []string{"no_session_id", "late_listed"} {
		t.Run(bad, func(t *testing.T) {
			h := newHarness(t)
			h.put(endedCalls("h", 200, -7200)...)
			h.start(func(c *Config) { c.PerPage = 10; c.Capacity = 100; c.Overlap = time.Minute })
			h.poll()
			require.Positive(t, h.p.ledger.Floor)
			idle := func() int64 {
				before := listRequests(h) + getRequests(h)
				h.now = h.now.Add(30 * time.Second)
				h.poll()
				return listRequests(h) + getRequests(h) - before
			}
			for range 3 {
				idle()
			}
			base := idle()
			switch bad {
			case "no_session_id":
				h.put(call("nosid", h.now.Unix()-t0.Unix()-5, "ended"))
				h.fake.SetQuirk("nosid", cometchattest.QuirkNoSessionID)
			case "late_listed":
				h.put(call("late", -7150, "ended")) // below the floor
			}
			costs := []int64{}
			for range 6 {
				costs = append(costs, idle())
			}
			t.Logf("idle poll cost %d before, %v after", base, costs)
			for _, c := range costs[1:] {
				assert.Equal(t, base, c, "an idle poll costs what it did before the bad entry")
			}
			assert.Equal(t, uint64(1), h.p.Snapshot().API.Anomalies[bad])
			assert.Zero(t, h.sums().Calls["ended"], "nothing is counted")
		})
	}
}

// TestFirstPollResumedAfterAFailureCountsTheCallsThatArrivedMeanwhile: the
// line between history and new calls is the time the app first started,
// not the page a failed first poll stopped at.
func TestFirstPollResumedAfterAFailureCountsTheCallsThatArrivedMeanwhile(t *testing.T) {
	h := newHarness(t)
	h.put(endedCalls("h", 50, -7200)...)
	h.start(func(c *Config) { c.PerPage = 10 })
	// The first attempt is cut short on page 3 (a shutdown, a kill).
	ctx, cancel := context.WithCancel(context.Background())
	h.fake.SetBeforeRequest(func(r *http.Request) {
		if r.URL.Query().Get("page") == "3" {
			cancel()
		}
	})
	require.Error(t, h.p.Poll(ctx))
	h.fake.SetBeforeRequest(nil)
	require.Equal(t, 3, h.p.ledger.ResumePage)
	// 30 calls begin and end before the next attempt.
	h.put(endedCalls("n", 30, h.now.Unix()-t0.Unix()-40)...) // ringing at the start, over after it
	h.now = h.now.Add(time.Minute)
	h.poll()
	assert.Equal(t, uint64(30), h.sums().Calls["ended"], "the calls that ended after the start are counted, history is not")
	h.now = h.now.Add(time.Minute)
	h.poll()
	assert.Equal(t, uint64(30), h.sums().Calls["ended"])
	assert.Equal(t, 80, h.p.ledger.Remembered())
}

// TestAPageThatKeepsFailingIsReadAround: one deep page answers 500 for
// ever. Polls keep succeeding and counting what the head shows (an ended
// meeting included); sweeps read around the page and say so; once it
// heals, the call only it held is counted, once.
func TestAPageThatKeepsFailingIsReadAround(t *testing.T) {
	h := newHarness(t)
	h.put(endedCalls("h", 100, -7200)...)
	h.put(call("meeting", -30, "ongoing"))
	h.start(func(c *Config) { c.PerPage = 10; c.SweepEvery = 10 * time.Minute; c.Interval = 30 * time.Second })
	h.poll()
	require.Equal(t, 1, h.sums().Tracked)
	var broken atomic.Bool
	broken.Store(true)
	h.fake.InjectSchedule(func(r *http.Request, endpoint string) cometchattest.Fault {
		if broken.Load() && endpoint == cometchat.EndpointListCalls && r.URL.Query().Get("page") == "5" && r.URL.Query().Get("status") == "" {
			return cometchattest.ServerErrorJSON
		}
		return cometchattest.None
	})
	// A call listed late, deep in the list where page 5 is: only that page
	// shows it.
	hidden := call("hidden", 30, "ended")
	h.put(hidden)
	h.fake.Pin("hidden", 45)
	h.end("meeting", t0.Unix()+100)
	counted := uint64(0)
	for i := range 10 {
		h.now = h.now.Add(5 * time.Minute)
		h.put(call(fmt.Sprintf("n%02d", i), h.now.Unix()-t0.Unix()-10, "ended"))
		require.NoError(t, h.p.Poll(context.Background()), "poll %d", i)
		counted++
		assert.True(t, h.p.Snapshot().Up)
		assert.Equal(t, counted+1, h.sums().Calls["ended"], "poll %d: the new call and the meeting", i)
	}
	s := h.p.Snapshot()
	assert.Positive(t, s.API.PagesSkipped)
	assert.Less(t, s.API.PagesSkipped, uint64(10), "read again with backoff, not at every poll")

	broken.Store(false)
	for range 3 {
		h.now = h.now.Add(10 * time.Minute)
		h.poll()
	}
	assert.Equal(t, counted+2, h.sums().Calls["ended"], "the hidden call, once the page heals")
	for range 3 {
		h.now = h.now.Add(10 * time.Minute)
		h.poll()
	}
	assert.Equal(t, counted+2, h.sums().Calls["ended"], "once")
}

// TestTheCountChecksItself: the calls seen and the API's own total agree
// when every call is read, differ by exactly the calls of a page read
// around until a sweep reads it again, and by one for an entry that has
// no id.
func TestTheCountChecksItself(t *testing.T) {
	h := newHarness(t)
	h.put(endedCalls("h", 30, -7200)...)
	h.start(func(c *Config) { c.PerPage = 10; c.Interval = 30 * time.Second })
	h.poll()
	check := func(listed, seen int, what string) {
		t.Helper()
		s := h.p.Snapshot()
		assert.Equal(t, listed, s.Listed, "listed: %s", what)
		assert.Equal(t, uint64(seen), s.Seen, "seen: %s", what)
	}
	check(30, 30, "history")
	h.put(endedCalls("a", 20, 10)...)
	h.now = h.now.Add(time.Minute)
	h.poll()
	check(50, 50, "every call read")

	h.put(call("nosid", 200, "ended"))
	h.fake.SetQuirk("nosid", cometchattest.QuirkNoSessionID)
	h.put(endedCalls("b", 14, 100)...)
	h.fake.InjectSchedule(func(r *http.Request, endpoint string) cometchattest.Fault {
		if r.URL.Query().Get("page") == "2" && r.URL.Query().Get("status") == "" {
			return cometchattest.ServerErrorJSON
		}
		return cometchattest.None
	})
	h.now = h.now.Add(time.Minute)
	h.poll()
	// Page 1: the id-less entry and 9 calls; page 2 (5 new calls) read around.
	check(65, 59, "a page read around and an entry without id")
	h.fake.InjectSchedule(nil)
	h.now = h.now.Add(time.Minute)
	h.poll()
	check(65, 64, "the sweep read the page; the entry without id stays apart")
	assert.Equal(t, uint64(34), h.sums().Calls["ended"])
}

// TestThreeFailingPagesInARowFailThePoll: past that, the API is failing,
// not a page; the poll fails and says so.
func TestThreeFailingPagesInARowFailThePoll(t *testing.T) {
	h := newHarness(t)
	h.put(endedCalls("h", 60, -7200)...)
	h.start(func(c *Config) { c.PerPage = 10 })
	h.poll()
	h.put(endedCalls("n", 45, 100)...)
	failing := map[string]bool{"2": true, "3": true, "4": true}
	h.fake.InjectSchedule(func(r *http.Request, endpoint string) cometchattest.Fault {
		if failing[r.URL.Query().Get("page")] && r.URL.Query().Get("status") == "" {
			return cometchattest.ServerErrorJSON
		}
		return cometchattest.None
	})
	h.now = h.now.Add(time.Minute)
	require.ErrorContains(t, h.p.Poll(context.Background()), "page 4")
	assert.False(t, h.p.Snapshot().Up)
	assert.Equal(t, uint64(2), h.p.Snapshot().API.PagesSkipped)
	assert.Equal(t, uint64(10), h.sums().Calls["ended"], "page 1 is counted")
	h.fake.InjectSchedule(nil)
	h.now = h.now.Add(time.Minute)
	h.poll()
	assert.Equal(t, uint64(45), h.sums().Calls["ended"])
}

// TestACallListedLateIsFoundThroughTheTotalWhateverTheFirstPollSaw: a call
// listed late, below known calls older than the overlap, is found at the
// next poll because the list total counts it. That holds however the
// total's baseline was taken: a first poll of an empty list (a new app),
// one of a list with history, and a total missing for one poll.
func TestACallListedLateIsFoundThroughTheTotalWhateverTheFirstPollSaw(t *testing.T) {
	for _, start := range []string{"empty list", "history", "total missing once"} {
		t.Run(start, func(t *testing.T) {
			h := newHarness(t)
			if start != "empty list" {
				h.put(endedCalls("h", 40, -7200)...)
			}
			h.start(func(c *Config) { c.PerPage = 10; c.Overlap = time.Minute })
			h.poll()
			want := uint64(0)
			// n calls initiated from ago seconds before now, one a second.
			arrive := func(prefix string, n int, ago int64) {
				h.put(endedCalls(prefix, n, h.now.Unix()-t0.Unix()-ago)...)
				want += uint64(n)
			}
			omitTotal := func(omit bool) {
				h.fake.Lock()
				h.fake.OmitTotal = omit
				h.fake.Unlock()
			}
			h.now = h.now.Add(10 * time.Minute)
			arrive("w", 20, 300)
			omitTotal(start == "total missing once")
			h.poll()
			omitTotal(false)
			h.now = h.now.Add(30 * time.Second)
			arrive("a", 30, 30)
			h.poll()
			require.Equal(t, want, h.sums().Calls["ended"])
			h.now = h.now.Add(30 * time.Second)
			arrive("b", 5, 30)
			// Listed only now, below the w calls, which are known and
			// older than the overlap: only the total shows it is there.
			arrive("late", 1, 400)
			h.poll()
			assert.Equal(t, want, h.sums().Calls["ended"], "the call listed late is counted at the next poll")
			h.now = h.now.Add(30 * time.Second)
			h.poll()
			assert.Equal(t, want, h.sums().Calls["ended"])
		})
	}
}

// TestTheReReadShrinksWhileTheTotalAgrees: at busy traffic a poll re-reads
// the whole overlap until the list total has accounted for what the last
// head scans found; then one head page is read a poll. Without a total the
// overlap is read at every poll. Either way a call listed late within the
// overlap, beyond the margin, is counted at the next poll.
func TestTheReReadShrinksWhileTheTotalAgrees(t *testing.T) {
	for _, withTotal := range []bool{true, false} {
		t.Run(fmt.Sprintf("total=%v", withTotal), func(t *testing.T) {
			h := newHarness(t)
			h.fake.OmitTotal = !withTotal
			var headPages atomic.Int64
			h.fake.SetBeforeRequest(func(r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/calls") && r.URL.Query().Get("status") == "" {
					headPages.Add(1)
				}
			})
			h.start(func(c *Config) { c.PerPage = 10; c.Overlap = 2 * time.Minute })
			h.poll()
			want, pages := uint64(0), []int64{}
			for i := range 8 {
				h.now = h.now.Add(30 * time.Second)
				h.put(endedCalls(fmt.Sprintf("p%d-", i), 4, h.now.Unix()-t0.Unix()-30)...)
				want += 4
				before := headPages.Load()
				h.poll()
				pages = append(pages, headPages.Load()-before)
			}
			t.Logf("head pages per poll: %v", pages)
			if withTotal {
				assert.Equal(t, []int64{1, 1, 1}, pages[5:], "one page a poll once the total has agreed")
			} else {
				assert.Equal(t, []int64{3, 3, 3}, pages[5:], "the 2-minute overlap at every poll (4 new calls and 24 to re-read, 10 a page)")
			}
			require.Equal(t, want, h.sums().Calls["ended"])
			h.now = h.now.Add(30 * time.Second)
			h.put(endedCalls("last", 4, h.now.Unix()-t0.Unix()-30)...)
			h.put(call("late", h.now.Unix()-t0.Unix()-75, "ended"))
			want += 5
			h.poll()
			assert.Equal(t, want, h.sums().Calls["ended"], "the call listed late is counted at once")
		})
	}
}
