package accountant

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cometchat-exporter/cometchat-exporter/cometchat"
)

// running starts the harness's poller in the background with a 60 s poll
// interval, after its first poll, and records the hint latencies.
func running(t *testing.T, h *harness) *[]time.Duration {
	var mu sync.Mutex
	var latencies []time.Duration
	h.start(func(c *Config) {
		c.Interval = time.Minute
		c.OnHintCounted = func(d time.Duration) { mu.Lock(); latencies = append(latencies, d); mu.Unlock() }
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-h.p.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("first poll")
	}
	return &latencies
}

// within waits up to d for cond.
func within(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

func counted(h *harness, status string) func() bool {
	return func() bool {
		var n uint64
		for _, t := range h.p.Snapshot().Totals {
			n += t.Calls[status]
		}
		return n > 0
	}
}

func TestHintCountsAFinishedCallWithinASecond(t *testing.T) {
	h := newHarness(t)
	h.put(call("history", -600, "ended"))
	latencies := running(t, h)
	lists := listRequests(h)

	h.put(call("new", 5, "ended"))
	require.True(t, h.p.Hint(Hint{SessionID: "new", Final: true, Received: h.now}))
	require.True(t, within(time.Second, counted(h, "ended")), "counted within 1 s, the poll interval being 60 s")
	assert.Equal(t, lists, listRequests(h), "by Get Call, without a poll")
	assert.Equal(t, map[string]uint64{"ended": 1}, h.sums().Calls)
	assert.Len(t, *latencies, 1)

	// A repeated delivery changes nothing and costs no request.
	gets := getRequests(h)
	h.p.Hint(Hint{SessionID: "new", Final: true, Received: h.now})
	h.p.Hint(Hint{SessionID: "history", Final: true, Received: h.now})
	time.Sleep(3 * hintWindow) // nothing to wait for: the absence of a change
	assert.Equal(t, map[string]uint64{"ended": 1}, h.sums().Calls)
	assert.Equal(t, gets, getRequests(h))
}

func TestHintRingingFlow(t *testing.T) {
	h := newHarness(t)
	running(t, h)
	h.put(call("ring", 5, "initiated"))
	h.p.Hint(Hint{SessionID: "ring", Received: h.now}) // call_initiated
	require.True(t, within(time.Second, func() bool { return h.sums().Initiated == 1 }), "in the gauges at once")

	h.fake.Update("ring", func(c *cometchat.Call) { c.Status, c.EndedAt = "unanswered", c.InitiatedAt+30 })
	h.p.Hint(Hint{SessionID: "ring", Final: true, Received: h.now}) // call_unanswered
	require.True(t, within(time.Second, counted(h, "unanswered")))
	assert.Zero(t, h.sums().Initiated)
	assert.Zero(t, h.sums().Tracked)
}

// The API may show a call a moment after its webhook: the hint is tried
// again, a few times, then left to the polls.
func TestHintForACallTheAPIDoesNotShowYet(t *testing.T) {
	h := newHarness(t)
	running(t, h)
	gets := getRequests(h)
	h.p.Hint(Hint{SessionID: "late", Final: true, Received: h.now})
	require.True(t, within(500*time.Millisecond, func() bool { return getRequests(h) == gets+1 }))
	h.put(call("late", 5, "ended"))
	require.True(t, within(3*hintRetryAfter, counted(h, "ended")), "found by a retry")

	gets = getRequests(h)
	h.p.Hint(Hint{SessionID: "never", Final: true, Received: h.now})
	require.True(t, within(time.Duration(maxHintTries+1)*hintRetryAfter, func() bool { return getRequests(h) == gets+maxHintTries }))
	time.Sleep(2 * hintRetryAfter) // nothing to wait for: no further request
	assert.Equal(t, gets+maxHintTries, getRequests(h), "given up after %d tries", maxHintTries)
}

// A burst of hints runs one poll rather than a Get Call each.
func TestHintBurstRunsAPoll(t *testing.T) {
	h := newHarness(t)
	running(t, h)
	lists, gets := listRequests(h), getRequests(h)
	for i := range hintPollThreshold + 5 {
		id := "burst-" + string(rune('a'+i))
		h.put(call(id, int64(10+i), "ended"))
		h.p.Hint(Hint{SessionID: id, Final: true, Received: h.now})
	}
	require.True(t, within(2*time.Second, func() bool { return h.sums().Calls["ended"] == hintPollThreshold+5 }))
	assert.Greater(t, listRequests(h), lists, "a poll")
	assert.Equal(t, gets, getRequests(h), "no Get Call")
	assert.True(t, pollInstead(hintPollThreshold+1))
	assert.False(t, pollInstead(hintPollThreshold))
}

// Before the first successful poll, what is history is not known: a hint
// counts nothing, and the first poll takes the call as history.
func TestHintBeforeTheFirstPollIsIgnored(t *testing.T) {
	h := newHarness(t)
	h.put(call("old", -60, "ended"))
	h.start()
	h.p.Hint(Hint{SessionID: "old", Final: true, Received: h.now})
	h.p.applyHints(context.Background(), h.p.gatherHints(<-h.p.hints))
	assert.Zero(t, getRequests(h))
	h.poll()
	assert.Empty(t, h.sums().Calls)
}

// TestHintsCostAtMostWhatTheySave: a storm of repeated deliveries for
// calls already counted runs no poll and no Get Call; hints for one call
// in progress coalesce into one Get Call per window; the hint that it is
// over is looked up at once.
func TestHintsCostAtMostWhatTheySave(t *testing.T) {
	h := newHarness(t)
	running(t, h)
	for i := range hintPollThreshold + 5 {
		id := fmt.Sprintf("done-%02d", i)
		h.put(call(id, int64(10+i), "ended"))
		h.p.Hint(Hint{SessionID: id, Final: true, Received: time.Now()})
	}
	require.True(t, within(3*time.Second, func() bool { return h.sums().Calls["ended"] == hintPollThreshold+5 }))
	lists, gets := listRequests(h), getRequests(h)
	for range 3 { // the same deliveries again, three times
		for i := range hintPollThreshold + 5 {
			h.p.Hint(Hint{SessionID: fmt.Sprintf("done-%02d", i), Final: true, Received: time.Now()})
		}
		time.Sleep(3 * hintWindow)
	}
	assert.Equal(t, lists, listRequests(h), "repeated deliveries run no poll")
	assert.Equal(t, gets, getRequests(h), "and no Get Call")

	// 40 participants join one meeting over two seconds.
	h.put(call("meeting", 50, "ongoing"))
	for range 40 {
		h.p.Hint(Hint{SessionID: "meeting", Received: time.Now()})
		time.Sleep(50 * time.Millisecond)
	}
	require.True(t, within(time.Second, func() bool { return h.sums().Tracked == 1 }))
	assert.Equal(t, gets+1, getRequests(h), "one Get Call for 40 hints")
	h.end("meeting", t0.Unix()+200)
	h.p.Hint(Hint{SessionID: "meeting", Final: true, Received: time.Now()})
	require.True(t, within(time.Second, func() bool { return h.sums().Calls["ended"] == hintPollThreshold+6 }), "the end is looked up at once")
	assert.Equal(t, gets+2, getRequests(h))
}

func TestHintDue(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	cases := []struct {
		name string
		h    Hint
		last time.Time
		want bool
	}{
		{"never looked up", Hint{Received: now}, time.Time{}, true},
		{"looked up a moment ago", Hint{Received: now}, now.Add(-time.Second), false},
		{"a window ago", Hint{Received: now}, now.Add(-hintCoalesce), true},
		{"over: always", Hint{Received: now, Final: true}, now.Add(-time.Second), true},
		{"a clock that went back", Hint{Received: now}, now.Add(time.Minute), true},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, hintDue(tc.h, tc.last), tc.name)
	}
}
