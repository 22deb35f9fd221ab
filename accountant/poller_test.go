package accountant

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cometchat-exporter/cometchat-exporter/cometchat"
	"github.com/cometchat-exporter/cometchat-exporter/cometchat/cometchattest"
)

const key = "test-key-5f1c"

// t0 is "now" in these tests; calls carry timestamps relative to it.
var t0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

type harness struct {
	t    *testing.T
	fake *cometchattest.Server
	url  string
	now  time.Time
	cfg  Config
	p    *Poller
}

func newHarness(t *testing.T) *harness {
	fake := cometchattest.New(key)
	srv := fake.Start()
	t.Cleanup(srv.Close)
	// The clock starts after every call a test places before t0 has ended:
	// what is final at the first poll ended before the start, as it does
	// in the world.
	return &harness{t: t, fake: fake, url: srv.URL + "/v3", now: t0.Add(90 * time.Second)}
}

// start builds a poller (a new process, as far as the ledger goes).
func (h *harness) start(mod ...func(*Config)) {
	h.cfg = Config{App: "test", Now: func() time.Time { return h.now },
		API: cometchat.Config{BaseURL: h.url, APIKey: key, Timeout: 2 * time.Second, MaxRetries: -1}}
	for _, m := range mod {
		m(&h.cfg)
	}
	var err error
	h.p, err = NewPoller(h.cfg)
	require.NoError(h.t, err)
}

func (h *harness) poll() {
	h.t.Helper()
	require.NoError(h.t, h.p.Poll(context.Background()))
}

// sums folds a snapshot over label sets.
type sums struct {
	Calls        map[string]uint64
	AudioSeconds float64
	Participants map[string]uint64
	Recorded     uint64
	Recordings   uint64
	DurationN    uint64
	Initiated    int
	Ongoing      int
	Tracked      int
}

func (h *harness) sums() sums {
	s := h.p.Snapshot()
	out := sums{Calls: map[string]uint64{}, Participants: map[string]uint64{}, Tracked: s.Tracked}
	for _, t := range s.Totals {
		for k, v := range t.Calls {
			if v > 0 {
				out.Calls[k] += v
			}
		}
		for k, v := range t.Participants {
			if v > 0 {
				out.Participants[k] += v
			}
		}
		out.AudioSeconds += t.AudioSeconds
		out.Recorded += t.CallsRecorded
		out.Recordings += t.Recordings
		out.DurationN += t.Duration.Count
	}
	for _, a := range s.Active {
		out.Initiated += a.Initiated
		out.Ongoing += a.Ongoing
	}
	return out
}

// call is a 1:1 audio call initiated at t0+offset seconds.
func call(id string, offset int64, status string) cometchat.Call {
	c := cometchat.Call{SessionID: id, Type: "audio", Mode: "call", ReceiverType: "user",
		Status: status, InitiatedAt: t0.Unix() + offset}
	switch status {
	case "ongoing":
		c.StartedAt = c.InitiatedAt + 2
		c.Participants = []cometchat.Participant{{UID: "a", State: "ongoing"}, {UID: "b", State: "ongoing"}}
	case "ended":
		c.StartedAt, c.EndedAt = c.InitiatedAt+2, c.InitiatedAt+62
		c.AudioMinutes, c.TotalParticipants = 2, 2
		c.Participants = []cometchat.Participant{{UID: "a", State: "ended"}, {UID: "b", State: "ended"}}
	default:
		c.EndedAt = c.InitiatedAt + 10
		c.Participants = []cometchat.Participant{{UID: "a", State: "ended"}, {UID: "b", State: status}}
	}
	return c
}

func end(c *cometchat.Call, at int64) {
	ended := call(c.SessionID, 0, "ended")
	ended.InitiatedAt, ended.StartedAt, ended.EndedAt = c.InitiatedAt, c.StartedAt, at
	*c = ended
}

func (h *harness) put(cs ...cometchat.Call) {
	for _, c := range cs {
		h.fake.Put(c)
	}
}

func (h *harness) end(id string, at int64) {
	require.True(h.t, h.fake.Update(id, func(c *cometchat.Call) { end(c, at) }))
}

func TestHistoryIsNotCountedButCallsInProgressAre(t *testing.T) {
	h := newHarness(t)
	h.put(call("old-ended", -3600, "ended"), call("old-rejected", -3500, "rejected"),
		call("ringing", -5, "initiated"), call("talking", -60, "ongoing"))
	h.start()
	h.poll()
	assert.Equal(t, sums{Calls: map[string]uint64{}, Participants: map[string]uint64{}, Initiated: 1, Ongoing: 1, Tracked: 2}, h.sums())

	h.put(call("new-unanswered", 30, "unanswered"))
	h.end("talking", t0.Unix()+40)
	h.fake.Update("ringing", func(c *cometchat.Call) { c.Status = "cancelled"; c.EndedAt = t0.Unix() + 20 })
	h.poll()
	got := h.sums()
	assert.Equal(t, map[string]uint64{"ended": 1, "canceled": 1, "unanswered": 1}, got.Calls)
	assert.Equal(t, 120.0, got.AudioSeconds, "2 audio minutes of the ended call")
	assert.Equal(t, 0, got.Tracked)

	// Nothing changes: nothing is counted again, however often we look.
	for range 3 {
		h.poll()
	}
	assert.Equal(t, got, h.sums())
}

func TestPageShiftMidScanCountsEachCallOnce(t *testing.T) {
	h := newHarness(t)
	h.start(func(c *Config) { c.PerPage = 10 })
	h.poll() // empty history

	for i := range 35 {
		h.put(call(fmt.Sprintf("c%02d", i), int64(i), "ended"))
	}
	// Before every list request, three more calls arrive at the head, so
	// page 2 repeats the tail of page 1, and so on.
	var arrivals atomic.Int32
	h.fake.SetBeforeRequest(func(r *http.Request) {
		if r.URL.Query().Get("status") != "" || arrivals.Load() >= 30 {
			return
		}
		for range 3 {
			n := arrivals.Add(1)
			h.fake.Put(call(fmt.Sprintf("late%02d", n), 100+int64(n), "rejected"))
		}
	})
	h.poll()
	h.fake.SetBeforeRequest(nil)
	h.poll()
	got := h.sums()
	assert.Equal(t, uint64(35), got.Calls["ended"])
	assert.Equal(t, uint64(arrivals.Load()), got.Calls["rejected"])
}

func TestSameCallOnTwoPages(t *testing.T) {
	h := newHarness(t)
	h.fake.RepeatAcrossPages = true
	h.start(func(c *Config) { c.PerPage = 7 })
	h.poll()
	for i := range 30 {
		h.put(call(fmt.Sprintf("c%02d", i), int64(i), "ended"))
	}
	h.poll()
	assert.Equal(t, map[string]uint64{"ended": 30}, h.sums().Calls)
}

func TestLongMeetingLeavesTheHeadAndIsResolvedThroughGetCall(t *testing.T) {
	h := newHarness(t)
	meeting := call("meeting", -3*3600, "ongoing")
	meeting.Mode, meeting.ReceiverType = "meet", "group"
	h.put(meeting)
	for i := range 300 {
		h.put(call(fmt.Sprintf("old%03d", i), -3*3600+int64(i+1)*30, "ended"))
	}
	h.start(func(c *Config) { c.PerPage = 50; c.Overlap = time.Minute })
	h.poll()
	require.Equal(t, 1, h.sums().Ongoing)

	// The meeting ends three hours in; the status=ongoing listing no longer
	// shows it, and the head of the list is far above it.
	h.end("meeting", t0.Unix())
	h.now = h.now.Add(time.Minute)
	gets := h.fake.Requests(cometchat.EndpointGetCall)
	h.poll()
	assert.Equal(t, gets+1, h.fake.Requests(cometchat.EndpointGetCall))
	got := h.sums()
	assert.Equal(t, map[string]uint64{"ended": 1}, got.Calls)
	assert.Equal(t, uint64(1), got.DurationN)
	assert.Equal(t, 0, got.Tracked)
}

func TestBackfillCountsOnlyTheWindow(t *testing.T) {
	h := newHarness(t)
	h.put(call("in-1", -1800, "ended"), call("in-2", -60, "unanswered"), call("out", -7200, "ended"))
	h.start(func(c *Config) { c.Backfill = time.Hour })
	h.poll()
	h.poll()
	assert.Equal(t, map[string]uint64{"ended": 1, "unanswered": 1}, h.sums().Calls)
}

func TestCallListedLateIsCountedWhateverItsTimestamps(t *testing.T) {
	h := newHarness(t)
	for i := range 120 {
		h.put(call(fmt.Sprintf("h%03d", i), -int64(i+1)*60, "ended"))
	}
	h.start(func(c *Config) { c.PerPage = 25 })
	h.poll()
	// Two calls from years ago appear now: one sorts to the very end of the
	// list, far below the head that incremental polls read.
	late := call("from-2023", 0, "ended")
	late.InitiatedAt, late.StartedAt, late.EndedAt = 1692869395, 1692869401, 1692869420
	h.put(late, call("recent", 5, "rejected"))
	h.poll()
	assert.Equal(t, map[string]uint64{"ended": 1, "rejected": 1}, h.sums().Calls)
	h.poll()
	assert.Equal(t, map[string]uint64{"ended": 1, "rejected": 1}, h.sums().Calls)
}

func TestIdlePollCostsTwoRequests(t *testing.T) {
	for _, n := range []int{1000, 20000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			h := newHarness(t)
			for i := range n {
				h.put(call(fmt.Sprintf("h%06d", i), -int64(i+1)*30, "ended"))
			}
			h.start()
			h.poll()
			before := h.fake.Requests(cometchat.EndpointListCalls) + h.fake.Requests(cometchat.EndpointGetCall)
			h.poll()
			after := h.fake.Requests(cometchat.EndpointListCalls) + h.fake.Requests(cometchat.EndpointGetCall)
			assert.Equal(t, int64(2), after-before)
		})
	}
}

func TestServerIgnoringFiltersAndPerPage(t *testing.T) {
	h := newHarness(t)
	h.fake.IgnoreStatusFilter = true
	h.fake.IgnorePerPage = true
	h.fake.TimeFilter = cometchattest.TimeFilterExact
	var sentTimeFilter atomic.Bool
	h.fake.SetBeforeRequest(func(r *http.Request) {
		q := r.URL.Query()
		if q.Has("startedAt") || q.Has("endedAt") {
			sentTimeFilter.Store(true)
		}
	})
	meeting := call("meeting", -7200, "ongoing")
	h.put(meeting)
	for i := range 60 {
		h.put(call(fmt.Sprintf("h%02d", i), -int64(i+1)*60, "ended"))
	}
	h.start(func(c *Config) { c.Overlap = time.Minute })
	h.poll()
	for i := range 40 {
		h.put(call(fmt.Sprintf("n%02d", i), int64(i), "unanswered"))
	}
	h.end("meeting", t0.Unix())
	h.poll()
	h.poll()
	assert.Equal(t, map[string]uint64{"ended": 1, "unanswered": 40}, h.sums().Calls)
	assert.False(t, sentTimeFilter.Load(), "counting never depends on startedAt/endedAt")
}

func TestStatusChangesAndSpellings(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.poll()
	odd := []cometchat.Call{call("a", 1, "ended"), call("b", 2, "rejected"), call("c", 3, "initiated"),
		call("d", 4, "initiated"), call("e", 5, "initiated")}
	odd[0].Status, odd[1].Status = "Ended", " REJECTED "
	h.put(odd...)
	h.poll()
	h.fake.Update("c", func(c *cometchat.Call) { c.Status = "busy"; c.EndedAt = t0.Unix() + 9 })
	h.fake.Update("d", func(c *cometchat.Call) { c.Status = "cancelled"; c.EndedAt = t0.Unix() + 9 })
	h.fake.Update("e", func(c *cometchat.Call) { c.Status = "dropped"; c.EndedAt = t0.Unix() + 9 })
	h.poll()
	assert.Equal(t, map[string]uint64{"ended": 1, "rejected": 1, "busy": 1, "canceled": 1, "other": 1}, h.sums().Calls)
}

func TestGetCallNotFoundKeepsTrackingThenGivesUp(t *testing.T) {
	h := newHarness(t)
	h.put(call("meeting", -7200, "ongoing"))
	for i := range 150 {
		h.put(call(fmt.Sprintf("n%03d", i), -int64(i), "rejected"))
	}
	h.start(func(c *Config) { c.MaxNotFound = 3; c.Overlap = time.Minute })
	h.poll()
	require.Equal(t, 1, h.sums().Tracked)

	// The meeting ends. It is far below the head and out of the ongoing
	// listing, so only Get Call can see it, and Get Call answers 404.
	h.fake.InjectSchedule(func(r *http.Request, endpoint string) cometchattest.Fault {
		if endpoint == cometchat.EndpointGetCall {
			return cometchattest.NotFound
		}
		return cometchattest.None
	})
	h.end("meeting", t0.Unix())
	h.poll()
	h.poll()
	assert.Equal(t, 1, h.sums().Tracked, "two not-found answers are not enough to give up")
	h.poll()
	assert.Equal(t, 0, h.sums().Tracked)
	assert.Equal(t, uint64(1), h.p.Snapshot().Abandoned)
	assert.Equal(t, uint64(1), h.p.Snapshot().API.Errors["call_not_found"])
	assert.Equal(t, uint64(3), h.p.Snapshot().API.Requests[RequestKey{"get_call", "404"}])
	assert.Empty(t, h.sums().Calls, "history stays uncounted, the lost meeting too")
}

func TestFailedPollKeepsCountersExactAndRetries(t *testing.T) {
	h := newHarness(t)
	h.start(func(c *Config) { c.PerPage = 10 })
	h.poll()
	for i := range 45 {
		h.put(call(fmt.Sprintf("c%02d", i), int64(i), "ended"))
	}
	// Page 3 fails.
	h.fake.InjectSchedule(func(r *http.Request, endpoint string) cometchattest.Fault {
		if r.URL.Query().Get("page") == "3" {
			return cometchattest.BadGatewayHTML
		}
		return cometchattest.None
	})
	// Page 3 is read around: the poll succeeds, the error is counted.
	h.poll()
	assert.True(t, h.p.Snapshot().Up)
	assert.Equal(t, uint64(1), h.p.Snapshot().API.Errors["http_5xx"])
	assert.Equal(t, uint64(1), h.p.Snapshot().API.Requests[RequestKey{"list_calls", "502"}])
	assert.Equal(t, uint64(1), h.p.Snapshot().API.PagesSkipped)
	assert.Equal(t, uint64(35), h.sums().Calls["ended"])
	h.fake.InjectSchedule(nil)
	h.now = h.now.Add(30 * time.Second)
	h.poll()
	assert.Equal(t, uint64(45), h.sums().Calls["ended"], "a sweep reads the page again")

	// Page 1 failing fails the poll, and keeps what was counted.
	h.put(call("d", 100, "ended"))
	h.fake.InjectSchedule(func(r *http.Request, endpoint string) cometchattest.Fault {
		if endpoint == cometchat.EndpointListCalls {
			return cometchattest.BadGatewayHTML
		}
		return cometchattest.None
	})
	err := h.p.Poll(context.Background())
	require.Error(t, err)
	assert.Equal(t, "http_5xx", cometchat.ErrorReason(err))
	assert.False(t, h.p.Snapshot().Up)
	assert.Equal(t, uint64(45), h.sums().Calls["ended"])
	h.fake.InjectSchedule(nil)
	h.poll()
	assert.True(t, h.p.Snapshot().Up)
	assert.Equal(t, uint64(46), h.sums().Calls["ended"])
}

func TestRestartWithStateFileContinuesExactly(t *testing.T) {
	h := newHarness(t)
	state := filepath.Join(t.TempDir(), "state.json")
	withState := func(c *Config) { c.StateFile = state; c.PerPage = 20 }
	h.put(call("history", -600, "ended"), call("talking", -60, "ongoing"))
	h.start(withState)
	h.poll()
	h.put(call("a", 1, "ended"), call("b", 2, "rejected"))
	h.poll()
	before := h.sums()
	require.Equal(t, map[string]uint64{"ended": 1, "rejected": 1}, before.Calls)

	// The exporter dies for four hours, far longer than the overlap; the
	// long call ends and new calls come and go, more than a page of them.
	h.end("talking", t0.Unix()+100)
	for i := range 50 {
		h.put(call(fmt.Sprintf("down%02d", i), 200+int64(i)*300, "unanswered"))
	}
	h.now = t0.Add(4*time.Hour + 30*time.Minute)
	h.start(withState)
	assert.Equal(t, before.Calls, h.sums().Calls, "counters continue from the file before any poll")
	h.poll()
	h.poll()
	assert.Equal(t, map[string]uint64{"ended": 2, "rejected": 1, "unanswered": 50}, h.sums().Calls)
	assert.Equal(t, 0, h.sums().Tracked)
	assert.False(t, h.p.Snapshot().StateRecovered)

	data, err := os.ReadFile(state)
	require.NoError(t, err)
	assert.Regexp(t, `^\{"version":3,`, string(data))
}

func TestCorruptStateFileIsMovedAsideAndReported(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":       "{not json",
		"other version": `{"version":99}`,
		"unknown field": `{"version":1,"app":"test","surprise":true}`,
		"other app":     `{"version":1,"app":"other"}`,
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			dir := t.TempDir()
			state := filepath.Join(dir, "state.json")
			require.NoError(t, os.WriteFile(state, []byte(content), 0o600))
			h.start(func(c *Config) { c.StateFile = state })
			assert.True(t, h.p.Snapshot().StateRecovered)
			moved, _ := filepath.Glob(state + ".corrupt-*")
			require.Len(t, moved, 1)
			kept, err := os.ReadFile(moved[0])
			require.NoError(t, err)
			assert.Equal(t, content, string(kept), "the bad file is kept for inspection")
			h.poll()
			_, err = os.Stat(state)
			assert.NoError(t, err, "a fresh state file is written")
		})
	}
}

func TestUnreadableStateFileStopsStartup(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	require.NoError(t, os.Mkdir(state, 0o700)) // a directory: reads fail
	require.NoError(t, os.WriteFile(filepath.Join(state, "x"), nil, 0o600))
	require.NoError(t, os.Chmod(dir, 0o500)) // and it cannot be renamed
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	if os.Geteuid() == 0 {
		// root may rename anyway; then the directory is moved aside.
		h := newHarness(t)
		h.start(func(c *Config) { c.StateFile = state })
		assert.True(t, h.p.Snapshot().StateRecovered)
		return
	}
	_, err := NewPoller(Config{App: "test", API: cometchat.Config{BaseURL: "http://127.0.0.1:1/v3", APIKey: key}, StateFile: state})
	require.Error(t, err)
	assert.Contains(t, err.Error(), state)
}

func TestPruneRaisesFloorSoForgottenCallsStayCounted(t *testing.T) {
	h := newHarness(t)
	h.start(func(c *Config) { c.Capacity = 20; c.PerPage = 10; c.Overlap = time.Minute })
	h.poll()
	for i := range 60 {
		h.put(call(fmt.Sprintf("c%02d", i), -int64(60-i)*60, "ended"))
	}
	h.poll()
	assert.Equal(t, uint64(60), h.sums().Calls["ended"])
	assert.LessOrEqual(t, h.p.ledger.done.Len(), 20)
	// Read the whole list again, as after a long outage: nothing double.
	h.p.ledger.Watermark = 0
	h.poll()
	assert.Equal(t, uint64(60), h.sums().Calls["ended"])
}

func TestErrorReasonsAreBounded(t *testing.T) {
	s := newAPIStats()
	for i := range 200 {
		s.observe(cometchat.RequestInfo{Endpoint: "list_calls", Code: 400,
			Err: &cometchat.APIError{StatusCode: 400, Code: fmt.Sprintf("ERR_RANDOM_%d", i)}})
	}
	assert.Len(t, s.Errors, maxReasons+1, "64 reasons, then other")
	assert.Equal(t, uint64(200-(maxReasons-len(KnownReasons))), s.Errors["other"])
	assert.Equal(t, uint64(1), s.Errors["ERR_RANDOM_0"])
}

// Tracked calls that ended and that no listing shows any more: where two
// or more sit just below the head scan, one more list page learns them
// all instead of a Get Call each; far below, Get Call does. Either way
// each is counted once.
func TestEndedCallsBelowTheHeadCostAPageOrGetCalls(t *testing.T) {
	for _, tc := range []struct {
		name        string
		at          int64 // where the five calls sit, seconds before t0
		lists, gets int64 // requests of the poll after they end
	}{
		{"just below the head", -320, 3, 0},
		{"far below", -3000, 2, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			for i := range 200 {
				h.put(call(fmt.Sprintf("h%03d", i), -int64(i+1)*30, "ended"))
			}
			for i := range 5 {
				h.put(call(fmt.Sprintf("long%d", i), tc.at-int64(i), "ongoing"))
			}
			h.start(func(c *Config) { c.PerPage = 10; c.Overlap = time.Minute })
			h.poll()
			require.Equal(t, 5, h.p.Snapshot().Tracked)
			h.now = h.now.Add(30 * time.Second)
			h.poll()
			for i := range 5 {
				h.end(fmt.Sprintf("long%d", i), h.now.Unix())
			}
			h.now = h.now.Add(30 * time.Second)
			lists, gets := listRequests(h), getRequests(h)
			h.poll()
			assert.Equal(t, tc.lists, listRequests(h)-lists, "list requests: the head, the ongoing listing and the pages below")
			assert.Equal(t, tc.gets, getRequests(h)-gets, "Get Calls")
			assert.Equal(t, uint64(5), h.sums().Calls["ended"], "each ended call counted once")
			assert.Zero(t, h.p.Snapshot().Tracked)
			h.now = h.now.Add(30 * time.Second)
			h.poll()
			assert.Equal(t, uint64(5), h.sums().Calls["ended"])
		})
	}
}
