package accountant

import (
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cometchat-exporter/cometchat-exporter/cometchat"
	"github.com/cometchat-exporter/cometchat-exporter/cometchat/cometchattest"
)

var simSeed = flag.Uint64("sim.seed", 0, "seed of TestSimulation (default: $COMETCHAT_SIM_SEED, else 1)")

func seedForSimulation(t *testing.T) uint64 {
	if *simSeed != 0 {
		return *simSeed
	}
	if s := os.Getenv("COMETCHAT_SIM_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "COMETCHAT_SIM_SEED")
		return n
	}
	return 1
}

// simClock is the simulated time, shared by the test and the fake server.
type simClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *simClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *simClock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// TestSimulation drives the real poller against the fake API with random
// call lifecycles, faults in more than a tenth of requests, pages shifting
// mid-scan and restarts (graceful, and kill -9 that loses everything since
// the last save). At the end every counter must equal the ground truth
// computed from the fake's own store.
//
// Run other seeds with: go test ./accountant -run TestSimulation -sim.seed=N
func TestSimulation(t *testing.T) {
	seed := seedForSimulation(t)
	t.Logf("simulation seed %d (rerun with -sim.seed=%d or COMETCHAT_SIM_SEED=%d)", seed, seed, seed)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("FAILED with simulation seed %d", seed)
		}
	})
	rng := rand.New(rand.NewPCG(seed, 77))
	clock := &simClock{now: t0}

	fake := cometchattest.New(key)
	fake.DefaultPer = []int{10, 25, 50}[rng.IntN(3)]
	fake.IgnoreStatusFilter = rng.IntN(4) == 0
	fake.RepeatAcrossPages = rng.IntN(3) == 0
	fake.IgnorePerPage = rng.IntN(4) == 0
	fake.TimeFilter = cometchattest.TimeFilter(rng.IntN(3))
	fake.SetHang(2 * time.Second)
	fake.SetRetryAfter("0.2")
	srv := fake.Start()
	defer srv.Close()
	t.Logf("server: perPage default %d, ignores perPage %v, ignores status %v, repeats across pages %v",
		fake.DefaultPer, fake.IgnorePerPage, fake.IgnoreStatusFilter, fake.RepeatAcrossPages)

	traffic := cometchattest.NewTraffic(fake, seed)
	traffic.CallsPerMinute = 120
	traffic.SeedHistory(400, t0.Add(-48*time.Hour), t0.Add(-time.Hour))
	for range 6 { // some calls in progress before the exporter starts
		traffic.Step(clock.Add(2 * time.Second))
	}

	var (
		reasonsMu sync.Mutex
		reasons   = map[string]int{}
		requests  atomic.Int64
	)
	state := filepath.Join(t.TempDir(), "state.json")
	newPoller := func() *Poller {
		api := cometchat.Config{BaseURL: srv.URL + "/v3", APIKey: key,
			Timeout: 300 * time.Millisecond, MaxRetries: 1, MaxRetryWait: 10 * time.Millisecond,
			Observe: func(i cometchat.RequestInfo) {
				requests.Add(1)
				if i.Err != nil {
					reasonsMu.Lock()
					reasons[cometchat.ErrorReason(i.Err)]++
					reasonsMu.Unlock()
				}
			}}
		p, err := NewPoller(Config{App: "sim", API: api, Now: clock.Now, StateFile: state,
			Overlap: time.Minute, PerPage: 100, Capacity: 3000, MaxNotFound: 1000})
		require.NoError(t, err)
		return p
	}

	// History is what is final when the first poll succeeds.
	history := map[string]bool{}
	for _, c := range fake.Calls() {
		if isFinal(c.Status) {
			history[c.SessionID] = true
		}
	}
	fake.InjectRandom(0.15, seed, cometchattest.AllFaults...)
	p := newPoller()
	for p.Poll(context.Background()) != nil {
	}

	// Calls arrive while the poller pages: a third of requests first move
	// the clock a second and step the traffic.
	var reqRng = rand.New(rand.NewPCG(seed, 99))
	var reqMu sync.Mutex
	var killAfter atomic.Int64 // a kill -9 after this many more requests
	var cancelPoll atomic.Pointer[context.CancelFunc]
	fake.BeforeRequest = func(r *http.Request) {
		reqMu.Lock()
		step := reqRng.IntN(3) == 0
		reqMu.Unlock()
		if step {
			traffic.Step(clock.Add(time.Second))
		}
		if killAfter.Add(-1) == 0 {
			if c := cancelPoll.Load(); c != nil {
				(*c)()
			}
		}
	}

	kills, restarts := 0, 0
	for traffic.Created() < 5500 {
		traffic.Step(clock.Add(5 * time.Second))
		switch x := rng.Float64(); {
		case x < 0.03: // kill -9 mid-poll: the poll's work since the last save is lost
			kills++
			saved, err := os.ReadFile(state)
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			cancelPoll.Store(&cancel)
			killAfter.Store(1 + rng.Int64N(4))
			p.Poll(ctx)
			cancel()
			cancelPoll.Store(nil)
			killAfter.Store(0)
			require.NoError(t, os.WriteFile(state, saved, 0o600))
			p = newPoller()
		case x < 0.05: // graceful restart
			restarts++
			p = newPoller()
			p.Poll(context.Background())
		default:
			p.Poll(context.Background())
		}
	}

	// Quiesce: no more faults or arrivals, every call ends, the poller
	// catches up.
	fake.BeforeRequest = nil
	fake.InjectRandom(0, seed)
	traffic.FinishAll(clock.Add(5 * time.Second))
	for i := 0; i < 5 || p.Snapshot().Tracked > 0; i++ {
		require.Less(t, i, 50, "state did not drain: %d calls still tracked", p.Snapshot().Tracked)
		clock.Add(5 * time.Second)
		p.Poll(context.Background())
	}

	injected := 0
	for _, n := range fake.Injected() {
		injected += n
	}
	total := fake.Requests(cometchat.EndpointListCalls) + fake.Requests(cometchat.EndpointGetCall)
	t.Logf("%d calls (%d history), %d requests, %d faults injected (%v), %d kills, %d restarts, error reasons %v",
		len(fake.Calls()), len(history), total, injected, fake.Injected(), kills, restarts, reasons)
	require.GreaterOrEqual(t, float64(injected)/float64(total), 0.10, "at least 10% of requests faulted")
	require.GreaterOrEqual(t, len(fake.Calls())-len(history), 5000)
	require.Positive(t, kills)

	want := groundTruth(fake.Calls(), history)
	got := p.Snapshot()
	assert.Equal(t, 0, got.Tracked, "no call stays tracked once final")
	assert.Equal(t, len(want), len(got.Totals), "label sets")
	for lb, w := range want {
		g := got.Totals[lb]
		if !assert.NotNil(t, g, "label set %+v", lb) {
			continue
		}
		for _, st := range FinalStatuses {
			assert.Equal(t, w.Calls[st], g.Calls[st], "%+v calls %s", lb, st)
		}
		for _, st := range ParticipantStates {
			assert.Equal(t, w.Participants[st], g.Participants[st], "%+v participants %s", lb, st)
		}
		assert.InDelta(t, w.AudioSeconds, g.AudioSeconds, 1e-6*math.Max(1, w.AudioSeconds), "%+v audio", lb)
		assert.InDelta(t, w.VideoSeconds, g.VideoSeconds, 1e-6*math.Max(1, w.VideoSeconds), "%+v video", lb)
		assert.Equal(t, w.CallsRecorded, g.CallsRecorded, "%+v recorded", lb)
		assert.Equal(t, w.Recordings, g.Recordings, "%+v recordings", lb)
		assert.InDelta(t, w.RecordingSeconds, g.RecordingSeconds, 1e-6*math.Max(1, w.RecordingSeconds), "%+v recording seconds", lb)
		assert.Equal(t, w.Duration.Count, g.Duration.Count, "%+v duration count", lb)
		assert.InDelta(t, w.Duration.Sum, g.Duration.Sum, 1e-6, "%+v duration sum", lb)
		assert.Equal(t, w.ParticipantsPerCall.Count, g.ParticipantsPerCall.Count, "%+v participants per call", lb)
		assert.InDelta(t, w.ParticipantsPerCall.Sum, g.ParticipantsPerCall.Sum, 1e-6, "%+v participants sum", lb)
	}
}

// isFinal is the test's own reading of the generator's statuses.
func isFinal(status string) bool { return status != "initiated" && status != "ongoing" }

// groundTruth computes the expected counters straight from the fake's
// store, with the spellings the generator uses.
func groundTruth(calls []cometchat.Call, history map[string]bool) map[Labels]*Totals {
	statusLabel := map[string]string{"ended": "ended", "rejected": "rejected", "unanswered": "unanswered",
		"canceled": "canceled", "cancelled": "canceled", "busy": "busy"}
	out := map[Labels]*Totals{}
	for _, c := range calls {
		if history[c.SessionID] || !isFinal(c.Status) {
			continue
		}
		lb := Labels{CallType: c.Type, Mode: c.Mode, ReceiverType: c.ReceiverType}
		t := out[lb]
		if t == nil {
			t = newTotals()
			out[lb] = t
		}
		st, ok := statusLabel[c.Status]
		if !ok {
			panic(fmt.Sprintf("generator produced status %q", c.Status))
		}
		t.Calls[st]++
		t.AudioSeconds += c.AudioMinutes * 60
		t.VideoSeconds += c.VideoMinutes * 60
		for _, p := range c.Participants {
			t.Participants[p.State]++
		}
		if c.HasRecording {
			t.CallsRecorded++
		}
		for _, r := range c.Recordings {
			t.Recordings++
			t.RecordingSeconds += r.DurationMinutes * 60
		}
		if st == "ended" {
			t.Duration.Count++
			t.Duration.Sum += float64(c.EndedAt - c.StartedAt)
		}
		t.ParticipantsPerCall.Count++
		t.ParticipantsPerCall.Sum += float64(c.TotalParticipants)
	}
	return out
}
