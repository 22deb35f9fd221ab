package accountant

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cometchat-exporter/cometchat-exporter/billing"
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
// mid-scan (by exactly one page, too), restarts (graceful, and kill -9
// that loses everything since the last save), stretches of failing state
// writes, identity changes by reload, calls whose Get Call keeps failing,
// calls stuck ringing, final calls without timestamps and minutes that are
// not numbers. At the end every published counter must equal the ground
// truth computed from the fake's own store.
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
	// The run starts 20 minutes before a billing period's boundary: t0 is
	// midnight of the 21st at UTC+12, the period's start day.
	clock := &simClock{now: t0.Add(-20 * time.Minute)}
	plan := billing.Plan{Day: 21, Zone: "Etc/GMT-12", Minutes: billing.MinutesCall}
	boundary := t0.Unix()

	fake := cometchattest.New(key)
	fake.DefaultPer = []int{10, 25, 50}[rng.IntN(3)]
	fake.OmitCurrentPage = rng.IntN(2) == 0
	perPage := []int{10, 25, 50, 100}[rng.IntN(4)]
	served := min(perPage, fake.MaxPer) // calls on a full page
	if fake.IgnorePerPage {
		served = fake.DefaultPer
	}
	fake.IgnoreStatusFilter = rng.IntN(4) == 0
	fake.RepeatAcrossPages = rng.IntN(3) == 0
	fake.IgnorePerPage = rng.IntN(4) == 0
	fake.TimeFilter = cometchattest.TimeFilter(rng.IntN(3))
	// Entries against the reference, in every run: one call in 50 listed
	// first whatever its time, or in milliseconds, or with a null
	// initiatedAt, or without its sessionId (those cannot be counted).
	// And one in 50 listed late: after 60 more new calls, or 400 (beyond
	// the overlap).
	require.NoError(t, fake.Misbehave("unsorted", "millis", "null_initiated_at", "no_session_id", "late_listing"))
	if fake.IgnorePerPage {
		served = fake.DefaultPer
	}
	fake.SetHang(2 * time.Second)
	fake.SetRetryAfter("0.2")
	srv := fake.Start()
	defer srv.Close()
	t.Logf("server: perPage default %d, ignores perPage %v, ignores status %v, repeats across pages %v, omits current_page %v; poller perPage %d",
		fake.DefaultPer, fake.IgnorePerPage, fake.IgnoreStatusFilter, fake.RepeatAcrossPages, fake.OmitCurrentPage, perPage)

	traffic := cometchattest.NewTraffic(fake, seed)
	traffic.CallsPerMinute = 120
	traffic.Stuck, traffic.Poisoned, traffic.Undated = 0.01, 0.02, 0.02
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
	disk := &diskFull{}
	identity := "sim-0"
	const sweepEvery = 10 * time.Minute
	// What every poller observed of each call, by poller generation: on a
	// failure it shows how a call that was lost was seen.
	var traceMu sync.Mutex
	trace := map[string][][2]int{} // id -> (generation, outcome)
	gen := 0
	newPoller := func(resume *Poller) *Poller {
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
		p, err := NewPoller(Config{App: "sim", Identity: identity, API: api, Now: clock.Now, StateFile: state,
			Overlap: time.Minute, PerPage: perPage, Capacity: 3000, MaxNotFound: 1000, Interval: 5 * time.Second, SweepEvery: sweepEvery,
			Resume: resume, diskFault: disk.fault, Billing: plan, observed: func(id string, o Outcome) {
				traceMu.Lock()
				trace[id] = append(trace[id], [2]int{gen, int(o)})
				traceMu.Unlock()
			}})
		gen++
		require.NoError(t, err)
		p.Adopt()
		return p
	}
	// A kill -9 loses what was not saved: the state files go back to what
	// they were when the poll began.
	type files map[string][]byte
	saveFiles := func() files {
		out := files{}
		for _, f := range []string{state, state + ".journal"} {
			if b, err := os.ReadFile(f); err == nil {
				out[f] = b
			}
		}
		return out
	}
	restoreFiles := func(fs files) {
		for _, f := range []string{state, state + ".journal"} {
			if b, ok := fs[f]; ok {
				require.NoError(t, os.WriteFile(f, b, 0o600))
			} else {
				os.Remove(f)
			}
		}
	}
	// Some calls' Get Call fails until the end: 5xx or a body without
	// sessionId.
	var getBroken, pageBroken atomic.Bool
	getBroken.Store(true)
	fake.InjectSchedule(func(r *http.Request, endpoint string) cometchattest.Fault {
		if q := r.URL.Query(); endpoint == cometchat.EndpointListCalls && pageBroken.Load() && q.Get("page") == "3" && q.Get("status") == "" {
			return cometchattest.ServerErrorJSON // a page that fails for a long stretch
		}
		if endpoint != cometchat.EndpointGetCall || !getBroken.Load() {
			return cometchattest.None
		}
		switch h := fnv32(r.URL.Path); {
		case h%40 == 0:
			return cometchattest.ServerErrorJSON
		case h%40 == 1:
			return cometchattest.NoSessionID
		}
		return cometchattest.None
	})

	// History is what is final when the first poll succeeds.
	history := map[string]bool{}
	for _, c := range fake.Calls() {
		if isFinal(c.Status) {
			history[c.SessionID] = true
		}
	}
	fake.InjectRandom(0.15, seed, cometchattest.AllFaults...)
	createdAtFirstStart := traffic.Created()
	p := newPoller(nil)
	for attempt := 0; p.Poll(context.Background()) != nil; attempt++ {
		require.Less(t, attempt, 200, "the first poll never completed")
	}

	// Calls arrive while the poller pages: a third of requests first move
	// the clock a second and step the traffic.
	var reqRng = rand.New(rand.NewPCG(seed, 99))
	var reqMu sync.Mutex
	var killAfter atomic.Int64 // a kill -9 after this many more requests
	var cancelPoll atomic.Pointer[context.CancelFunc]
	var quiet atomic.Bool // no arrivals: a first poll after an identity change
	var bursts atomic.Int64
	fake.SetBeforeRequest(func(r *http.Request) {
		reqMu.Lock()
		step := reqRng.IntN(3) == 0
		burst := reqRng.IntN(30) == 0 && bursts.Load() < 40
		reqMu.Unlock()
		q := r.URL.Query()
		if quiet.Load() {
			step, burst = false, false
		}
		if step {
			traffic.Step(clock.Add(time.Second))
		}
		// Exactly one page of new calls between two page requests: the
		// next page repeats the one before.
		if burst && q.Get("status") == "" && q.Get("page") != "" && q.Get("page") != "1" && !strings.HasPrefix(r.URL.Path, "/v3/calls/") {
			bursts.Add(1)
			traffic.Burst(served, clock.Now())
		}
		if killAfter.Add(-1) == 0 {
			if c := cancelPoll.Load(); c != nil {
				(*c)()
			}
		}
	})

	// writeOffUnseen: a first poll reads the list down to the dedupe
	// capacity. A call still in progress further down is found only by the
	// status=ongoing listing: one ringing, or any where the server ignores
	// that filter, is never counted (README, Limits). For the ground truth
	// it is history.
	writeOffUnseen := func() {
		quirky := fake.Quirky()
		for _, c := range fake.Calls() {
			if quirky[c.SessionID] == cometchattest.QuirkNoSessionID {
				continue // never countable (see the end)
			}
			if _, tracked := p.ledger.tracked[c.SessionID]; !isFinal(c.Status) && !tracked && c.Timestamp() < p.ledger.Floor {
				require.False(t, c.Status == "ongoing" && !fake.IgnoreStatusFilter, "ongoing call %s was missed with a working status filter", c.SessionID)
				history[c.SessionID] = true
			}
		}
	}
	// firstStart runs a first poll to success with no arrivals, after
	// which what was final is history. A restart whose state never got
	// written (the disk was full since the identity changed) is one too.
	firstStarts := 0
	firstStart := func() {
		firstStarts++
		createdAtFirstStart = traffic.Created()
		quiet.Store(true)
		// Counting starts over: what ended before the ledger started
		// counting is history (a restart that is a first start again
		// continues a ledger that began earlier).
		history = map[string]bool{}
		for _, c := range fake.Calls() {
			if isFinal(c.Status) && endedBy(c, p.ledger.Started) {
				history[c.SessionID] = true
			}
		}
		for attempt := 0; p.Poll(context.Background()) != nil; attempt++ {
			require.Less(t, attempt, 200, "a first poll never completed")
		}
		writeOffUnseen()
		quiet.Store(false)
	}
	// The pollers' own counters start over with each process: add them up.
	anomalies, pagesSkipped := map[string]uint64{}, uint64(0)
	tally := func(p *Poller) {
		for k, v := range p.Snapshot().API.Anomalies {
			anomalies[k] += v
		}
		pagesSkipped += p.Snapshot().API.PagesSkipped
	}
	restart := func() {
		tally(p)
		p = newPoller(nil)
		if !p.ledger.Initialized {
			firstStart()
		}
	}
	kills, restarts, switches, diskOutages, hintsSent, downgrades := 0, 0, 0, 0, 0, 0
	rolledOver := false
	for iter := 0; traffic.Created()-createdAtFirstStart < 5200; iter++ {
		traffic.Step(clock.Add(5 * time.Second))
		switch iter { // at least one stretch of failing writes, and of a failing page, in every run
		case 40:
			if !disk.on.Load() {
				diskOutages++
				disk.on.Store(true)
			}
		case 70:
			disk.on.Store(false)
		case 100:
			pageBroken.Store(true)
		case 160:
			pageBroken.Store(false)
		}
		if iter%7 == 3 { // webhooks: the newest final calls, each delivered three times
			var batch []Hint
			quirky := fake.Quirky()
			for _, c := range fake.Calls()[:min(60, len(fake.Calls()))] {
				if _, q := quirky[c.SessionID]; !q && isFinal(c.Status) {
					for range 3 {
						batch = append(batch, Hint{SessionID: c.SessionID, Final: true, Received: time.Now()})
						hintsSent++
					}
				}
			}
			p.applyHints(context.Background(), p.due(batch))
		}
		x := rng.Float64()
		if iter == 55 && kills == 0 {
			x = 0 // at least one kill -9 in every run
		}
		if iter >= 30 && iter%10 == 0 && downgrades == 0 {
			x, restarts = 0.04, 0 // and a restart from version 2
		}
		switch {
		case x < 0.03: // kill -9 mid-poll: the poll's work since the last save is lost
			kills++
			saved := saveFiles()
			ctx, cancel := context.WithCancel(context.Background())
			cancelPoll.Store(&cancel)
			killAfter.Store(1 + rng.Int64N(4))
			p.Poll(ctx)
			cancel()
			cancelPoll.Store(nil)
			killAfter.Store(0)
			restoreFiles(saved)
			restart()
		case x < 0.05: // graceful restart, every other one from a state file of version 2
			restarts++
			if restarts%2 == 1 && downgradeState(t, state, "sim", identity, fake.Calls()) {
				downgrades++
			}
			restart()
			p.Poll(context.Background())
		case x < 0.07: // the disk fills up for a while, or frees up
			if !disk.on.Load() {
				diskOutages++
			}
			disk.on.Store(!disk.on.Load())
			p.Poll(context.Background())
		case x < 0.10 && switches < 2: // a reload gives the app another identity
			switches++
			identity = fmt.Sprintf("sim-%d", switches)
			tally(p)
			p = newPoller(p)
			firstStart()
		default:
			p.Poll(context.Background())
		}
		// Before the boundary every call counted is in the period: its
		// minutes are the counters' (both as last persisted).
		if s := p.Snapshot(); s.Billing.Start < boundary {
			var sum BillingPeriod
			for _, t := range s.Totals {
				sum.AudioSeconds += t.AudioSeconds
				sum.ParticipantVideoSeconds += t.ParticipantVideoSeconds
			}
			require.InDelta(t, sum.AudioSeconds, s.Billing.AudioSeconds, 1e-6*math.Max(1, sum.AudioSeconds), "iteration %d: the old period's audio", iter)
			require.InDelta(t, sum.ParticipantVideoSeconds, s.Billing.ParticipantVideoSeconds, 1e-6*math.Max(1, sum.ParticipantVideoSeconds), "iteration %d: the old period's participant video", iter)
		} else {
			rolledOver = true
		}
	}
	require.True(t, rolledOver, "the run crossed the billing boundary")

	// Quiesce: no more faults or arrivals, every call ends, the disk has
	// room, the poller catches up (re-checks back off up to 10 minutes).
	fake.SetBeforeRequest(nil)
	fake.InjectRandom(0, seed)
	getBroken.Store(false)
	pageBroken.Store(false) // a run shorter than the stretch heals here
	disk.on.Store(false)
	held := fake.ListLate()
	traffic.FinishAll(clock.Add(5 * time.Second))
	// A sweep is due within sweepEvery: whatever the scans missed is
	// counted by then.
	clock.Add(sweepEvery)
	for i := 0; i < 5 || p.Snapshot().Tracked > 0; i++ {
		require.Less(t, i, 60, "state did not drain: %d calls still tracked", p.Snapshot().Tracked)
		clock.Add(30 * time.Second)
		p.Poll(context.Background())
	}

	injected := 0
	for _, n := range fake.Injected() {
		injected += n
	}
	total := fake.Requests(cometchat.EndpointListCalls) + fake.Requests(cometchat.EndpointGetCall)
	t.Logf("%d calls listed late, %d of them still held back at the end", fake.LateListed(), held)
	t.Logf("%d calls (%d history), %d requests, %d faults injected (%v), %d kills, %d restarts, %d disk outages, %d identity changes, %d restarts that were first starts again, %d one-page bursts, error reasons %v",
		len(fake.Calls()), len(history), total, injected, fake.Injected(), kills, restarts, diskOutages, switches, firstStarts-switches, bursts.Load(), reasons)
	require.GreaterOrEqual(t, float64(injected)/float64(total), 0.10, "at least 10% of requests faulted")
	require.GreaterOrEqual(t, len(fake.Calls())-len(history), 5000)
	require.Positive(t, kills)
	require.Positive(t, downgrades, "a restart read a state file of version 2")
	require.Positive(t, diskOutages)
	require.Positive(t, bursts.Load())
	require.Greater(t, fake.LateListed(), held, "calls were listed late while the exporter polled")
	require.Positive(t, disk.failed.Load(), "state writes failed at some point")

	// An entry listed without its sessionId can never be counted.
	for id, q := range fake.Quirky() {
		if q == cometchattest.QuirkNoSessionID {
			history[id] = true
		}
	}
	tally(p)
	t.Logf("anomalies %v, pages read around %d, hints %d", anomalies, pagesSkipped, hintsSent)
	for _, kind := range []string{"unsorted", "timestamp_unit", "no_initiated_at", "no_session_id"} {
		assert.Positive(t, anomalies[kind], "the run had %s entries", kind)
	}
	assert.Positive(t, pagesSkipped, "a page was read around")
	assert.Positive(t, hintsSent, "webhooks were delivered")
	want := groundTruth(fake.Calls(), history)
	var callAudio, participantAudio float64
	for _, w := range want {
		callAudio += w.AudioSeconds + w.VideoSeconds
		participantAudio += w.ParticipantAudioSeconds + w.ParticipantVideoSeconds
	}
	require.Greater(t, participantAudio, 1.2*callAudio, "the traffic makes the two minute figures differ")
	got := p.Snapshot()
	// After the boundary the new period holds exactly the counted calls
	// that ended in it: a call that ended before the boundary went to the
	// old period, or, counted after the rollover, to none. A call listed
	// without an end is billed when it is counted, which the fake cannot
	// know: those calls are the only slack.
	var inPeriod, undated BillingPeriod
	for _, c := range fake.Calls() {
		if history[c.SessionID] || !isFinal(c.Status) || (c.EndedAt > 0 && c.EndedAt < boundary) {
			continue
		}
		into := &inPeriod
		if c.EndedAt == 0 {
			into = &undated
		}
		if m, ok := minutes(c.AudioMinutes); ok {
			into.AudioSeconds += m * 60
		}
		for _, pt := range c.Participants {
			if m, ok := minutes(pt.VideoMinutes); ok {
				into.ParticipantVideoSeconds += m * 60
			}
		}
	}
	assert.Equal(t, boundary, got.Billing.Start, "the new period")
	for _, f := range []struct {
		name                  string
		got, exact, undatedIn float64
	}{
		{"audio", got.Billing.AudioSeconds, inPeriod.AudioSeconds, undated.AudioSeconds},
		{"participant video", got.Billing.ParticipantVideoSeconds, inPeriod.ParticipantVideoSeconds, undated.ParticipantVideoSeconds},
	} {
		eps := 1e-6 * math.Max(1, f.exact+f.undatedIn)
		assert.GreaterOrEqual(t, f.got+eps, f.exact, "the new period's %s holds every dated call that ended in it", f.name)
		assert.LessOrEqual(t, f.got, f.exact+f.undatedIn+eps, "the new period's %s holds no other call than those and undated ones", f.name)
	}
	assert.Positive(t, inPeriod.AudioSeconds, "calls ended after the boundary")
	t.Logf("billing: the new period holds %.0f s of audio; dated calls that ended in it %.0f s, undated calls %.0f s",
		got.Billing.AudioSeconds, inPeriod.AudioSeconds, undated.AudioSeconds)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, c := range fake.Calls() { // how the calls the ledger took for history were seen
			traceMu.Lock()
			tr := trace[c.SessionID]
			traceMu.Unlock()
			if !history[c.SessionID] && isFinal(c.Status) && !slices.ContainsFunc(tr, func(e [2]int) bool { return e[1] == int(Counted) }) {
				t.Logf("final call %s never counted: status %s, type %s, initiated %d, ended %d; observed %v",
					c.SessionID, c.Status, c.Type, c.InitiatedAt, c.EndedAt, tr)
			}
		}
		for _, c := range fake.Calls() { // which calls the ledger does not know
			if history[c.SessionID] || !isFinal(c.Status) || p.ledger.Known(c.SessionID) {
				continue
			}
			if ts := c.Timestamp(); ts == 0 || ts >= p.ledger.Floor {
				t.Logf("unknown final call %s: status %s, initiated %d, ended %d (floor %d, watermark %d)",
					c.SessionID, c.Status, c.InitiatedAt, c.EndedAt, p.ledger.Floor, p.ledger.Watermark)
			}
		}
	})
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
		assert.InDelta(t, w.ParticipantAudioSeconds, g.ParticipantAudioSeconds, 1e-6*math.Max(1, w.ParticipantAudioSeconds), "%+v participant audio", lb)
		assert.InDelta(t, w.ParticipantVideoSeconds, g.ParticipantVideoSeconds, 1e-6*math.Max(1, w.ParticipantVideoSeconds), "%+v participant video", lb)
		assert.Equal(t, w.CallsRecorded, g.CallsRecorded, "%+v recorded", lb)
		assert.Equal(t, w.CallsTranscribed, g.CallsTranscribed, "%+v transcribed", lb)
		assert.Equal(t, w.Recordings, g.Recordings, "%+v recordings", lb)
		assert.InDelta(t, w.RecordingSeconds, g.RecordingSeconds, 1e-6*math.Max(1, w.RecordingSeconds), "%+v recording seconds", lb)
		assert.Equal(t, w.Duration.Count, g.Duration.Count, "%+v duration count", lb)
		assert.Equal(t, g.Duration.Count, g.Duration.NativeCount(), "%+v native duration buckets hold every call, through restarts from older state files", lb)
		assert.Equal(t, g.ParticipantsPerCall.Count, g.ParticipantsPerCall.NativeCount(), "%+v native participant buckets", lb)
		assert.InDelta(t, w.Duration.Sum, g.Duration.Sum, 1e-6, "%+v duration sum", lb)
		assert.Equal(t, w.ParticipantsPerCall.Count, g.ParticipantsPerCall.Count, "%+v participants per call", lb)
		assert.InDelta(t, w.ParticipantsPerCall.Sum, g.ParticipantsPerCall.Sum, 1e-6, "%+v participants sum", lb)
	}
}

// endedBy is the test's own reading of "over before the start": ended (or,
// without an end, initiated) at or before it; a call without any time is
// taken as over.
func endedBy(c cometchat.Call, start int64) bool {
	end := c.EndedAt
	if end <= 0 {
		end = c.Timestamp()
	}
	return start == 0 || end <= start
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
		t.AudioSeconds += finiteMinutes(c.AudioMinutes) * 60
		t.VideoSeconds += finiteMinutes(c.VideoMinutes) * 60
		for _, p := range c.Participants {
			t.Participants[p.State]++
			t.ParticipantAudioSeconds += finiteMinutes(p.AudioMinutes) * 60
			t.ParticipantVideoSeconds += finiteMinutes(p.VideoMinutes) * 60
		}
		if c.HasRecording {
			t.CallsRecorded++
		}
		if c.HasTranscription {
			t.CallsTranscribed++
		}
		for _, r := range c.Recordings {
			t.Recordings++
			t.RecordingSeconds += r.DurationMinutes * 60
		}
		if st == "ended" && c.StartedAt > 0 { // undated calls have no length
			t.Duration.Count++
			t.Duration.Sum += float64(c.EndedAt - c.StartedAt)
		}
		t.ParticipantsPerCall.Count++
		t.ParticipantsPerCall.Sum += float64(c.TotalParticipants)
	}
	return out
}

// finiteMinutes is the test's own reading of a minute value a counter can
// take: a finite number from 0 to a week.
func finiteMinutes(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > 7*24*60 {
		return 0
	}
	return v
}

func fnv32(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// downgradeState rewrites the state at path (snapshot and journal) as the
// single snapshot version 2 wrote, with the dedupe set as session ids
// found among calls. It reports false when there is no state to rewrite.
func downgradeState(t *testing.T, path, app, identity string, calls []cometchat.Call) bool {
	if _, err := os.Stat(path); err != nil {
		return false
	}
	_, l, recovered, err := openStore(path, app, identity, log.NewNopLogger(), time.Now())
	require.NoError(t, err)
	require.False(t, recovered)
	ids := map[uint64]string{}
	for _, c := range calls {
		ids[idKey(c.SessionID)] = c.SessionID
	}
	h := l.header(app, identity, "downgraded", 1, time.Now())
	h.Version = 2
	for i := range h.Totals { // version 2 kept no native buckets
		t := *h.Totals[i].Totals
		t.Duration.Native, t.Duration.NativeZero = nil, 0
		t.ParticipantsPerCall.Native, t.ParticipantsPerCall.NativeZero = nil, 0
		h.Totals[i].Totals = &t
	}
	v2 := stateFileV2{stateHeader: h, Done: map[string]int64{}, Undated: map[string]uint64{}}
	for k, ts := range l.done.All {
		id, ok := ids[k]
		require.True(t, ok, "a remembered key is no call's")
		v2.Done[id] = ts
	}
	for k, seq := range l.undated {
		id, ok := ids[k]
		require.True(t, ok, "a remembered undated key is no call's")
		v2.Undated[id] = seq
	}
	data, err := json.Marshal(v2)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, data, 0o600))
	os.Remove(path + ".journal")
	return true
}
