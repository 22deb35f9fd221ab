package accountant

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cometchat-exporter/cometchat-exporter/cometchat"
	"github.com/cometchat-exporter/cometchat-exporter/cometchat/cometchattest"
	"github.com/stretchr/testify/assert"
)

// seedHistory fills a fake with n final calls, one every 30 s before t0.
func seedHistory(fake *cometchattest.Server, n int) {
	for i := range n {
		fake.Put(call(fmt.Sprintf("h%07d", i), -int64(i+1)*30, "ended"))
	}
}

func requests(fake *cometchattest.Server) int64 {
	return fake.Requests(cometchat.EndpointListCalls) + fake.Requests(cometchat.EndpointGetCall)
}

func newBenchPoller(b *testing.B, url string, now func() time.Time) *Poller {
	p, err := NewPoller(Config{App: "bench", Now: now,
		API: cometchat.Config{BaseURL: url, APIKey: key, Timeout: 10 * time.Second}})
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkIdlePoll measures the API cost of a poll when nothing happened,
// against histories of 1k, 20k and 1M calls: it must not grow with history.
func BenchmarkIdlePoll(b *testing.B) {
	for _, n := range []int{1_000, 20_000, 1_000_000} {
		b.Run(fmt.Sprintf("history=%d", n), func(b *testing.B) {
			fake := cometchattest.New(key)
			seedHistory(fake, n)
			srv := fake.Start()
			defer srv.Close()
			p := newBenchPoller(b, srv.URL+"/v3", func() time.Time { return t0 })
			if err := p.Poll(context.Background()); err != nil { // start-up: history
				b.Fatal(err)
			}
			before := requests(fake)
			b.ResetTimer()
			for range b.N {
				if err := p.Poll(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(requests(fake)-before)/float64(b.N), "requests/poll")
		})
	}
}

// naive is the strategy this exporter does not use: read the whole list at
// every poll and remember every id ever seen. It is exact, but its cost
// grows with the history. Kept here only to compare.
type naive struct {
	client  *cometchat.Client
	seen    map[string]bool
	started bool
	counted int
}

func (n *naive) poll(ctx context.Context) error {
	for page := 1; ; page++ {
		pg, err := n.client.List(ctx, cometchat.ListOptions{Page: page, PerPage: 100})
		if err != nil {
			return err
		}
		for _, c := range pg.Calls {
			if _, final := NormalizeStatus(&c); final && !n.seen[c.SessionID] {
				n.seen[c.SessionID] = true
				if n.started {
					n.counted++
				}
			}
		}
		if len(pg.Calls)+pg.Skipped < 100 {
			break
		}
	}
	n.started = true
	return nil
}

// perScrape is the request pattern of a generic JSON-to-metrics exporter:
// one request for the first page at every scrape, no paging and no state,
// so it can show the calls on that page but cannot count them.
type perScrape struct {
	url     string
	visible int
}

func (s *perScrape) poll(ctx context.Context, newIDs map[string]bool) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/calls", nil)
	req.Header.Set("apikey", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	pg, err := cometchat.DecodePage(body)
	if err != nil {
		return err
	}
	for _, c := range pg.Calls {
		if newIDs[c.SessionID] {
			s.visible++
			delete(newIDs, c.SessionID)
		}
	}
	return nil
}

// BenchmarkStrategies compares, in one run, the incremental strategy, a
// naive full rescan and the per-scrape pattern of a generic JSON exporter,
// with 50 new calls finishing between polls. requests/poll is the API cost;
// counted-% is how many of the new calls the strategy counted (exactly
// once: more than 100 would be double counting).
func BenchmarkStrategies(b *testing.B) {
	const perPoll = 50
	for _, n := range []int{1_000, 20_000} {
		for _, strategy := range []string{"incremental", "naive-rescan", "per-scrape-json"} {
			b.Run(fmt.Sprintf("%s/history=%d", strategy, n), func(b *testing.B) {
				fake := cometchattest.New(key)
				seedHistory(fake, n)
				srv := fake.Start()
				defer srv.Close()
				url := srv.URL + "/v3"
				ctx := context.Background()
				// Polls are 30 s apart; the new calls of each poll were
				// initiated during the 30 s before it.
				now := t0

				var poll func(newIDs map[string]bool) error
				var counted func() int
				switch strategy {
				case "incremental":
					p := newBenchPoller(b, url, func() time.Time { return now })
					poll = func(map[string]bool) error { return p.Poll(ctx) }
					counted = func() int {
						total := 0
						for _, t := range p.Snapshot().Totals {
							for _, v := range t.Calls {
								total += int(v)
							}
						}
						return total
					}
				case "naive-rescan":
					c, _ := cometchat.New(cometchat.Config{BaseURL: url, APIKey: key})
					nv := &naive{client: c, seen: map[string]bool{}}
					poll = func(map[string]bool) error { return nv.poll(ctx) }
					counted = func() int { return nv.counted }
				default:
					ps := &perScrape{url: url}
					poll = func(ids map[string]bool) error { return ps.poll(ctx, ids) }
					counted = func() int { return ps.visible }
				}
				if err := poll(nil); err != nil { // start-up
					b.Fatal(err)
				}
				before := requests(fake)
				b.ResetTimer()
				for i := range b.N {
					b.StopTimer()
					now = now.Add(30 * time.Second)
					ids := map[string]bool{}
					for j := range perPoll {
						id := fmt.Sprintf("new-%d-%d", i, j)
						fake.Put(call(id, int64(i+1)*30-int64(j%30), "ended"))
						ids[id] = true
					}
					b.StartTimer()
					if err := poll(ids); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(requests(fake)-before)/float64(b.N), "requests/poll")
				b.ReportMetric(100*float64(counted())/float64(perPoll*b.N), "counted-%")
			})
		}
	}
}

// BenchmarkDecodeAndCount measures the CPU cost of decoding List Calls
// pages (100 calls each, in the fake's quirky shapes) and accounting every
// call, in calls per second on one core.
func BenchmarkDecodeAndCount(b *testing.B) {
	fake := cometchattest.New(key)
	traffic := cometchattest.NewTraffic(fake, 7)
	traffic.SeedHistory(5000, t0.Add(-24*time.Hour), t0)
	srv := fake.Start()
	defer srv.Close()
	var pages [][]byte
	for page := 1; page <= 50; page++ {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/v3/calls?page=%d&perPage=100", srv.URL, page), nil)
		req.Header.Set("apikey", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		pages = append(pages, body)
	}
	var bytes int
	for _, p := range pages {
		bytes += len(p)
	}
	b.SetBytes(int64(bytes / len(pages)))
	l := NewLedger()
	l.Initialized = true
	calls := 0
	b.ResetTimer()
	for i := range b.N {
		if i%len(pages) == 0 {
			l = NewLedger() // the same ids again: start over so they count
			l.Initialized = true
		}
		pg, err := cometchat.DecodePage(pages[i%len(pages)])
		if err != nil {
			b.Fatal(err)
		}
		for j := range pg.Calls {
			if o, _ := l.Observe(&pg.Calls[j], observeMode{}); o == Counted {
				calls++
			}
		}
	}
	b.ReportMetric(float64(calls)/b.Elapsed().Seconds(), "calls/s")
}

// BenchmarkEndToCounted measures the time from a call's end to the call
// being counted (published), with webhook hints and with polling alone,
// at a 2 s poll interval: 40 calls one after another, each ending at a
// random moment of the poll cycle. Run it once:
//
//	go test -run XXX -bench EndToCounted -benchtime 1x ./accountant
func BenchmarkEndToCounted(b *testing.B) {
	const interval, calls = 2 * time.Second, 40
	for _, mode := range []string{"webhooks", "polling"} {
		b.Run(mode, func(b *testing.B) {
			fake := cometchattest.New(key)
			srv := fake.Start()
			defer srv.Close()
			var published atomic.Int64
			p, err := NewPoller(Config{App: "bench", Interval: interval,
				API: cometchat.Config{BaseURL: srv.URL + "/v3", APIKey: key, Timeout: 10 * time.Second},
				OnPublish: func(s *Snapshot) {
					if t := s.Totals[Labels{"audio", "call", "user"}]; t != nil {
						published.Store(int64(t.Calls["ended"]))
					}
				}})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { p.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			<-p.Ready()
			rng := rand.New(rand.NewPCG(1, 2))
			var lat []time.Duration
			b.ResetTimer()
			for i := range calls {
				time.Sleep(time.Duration(rng.Int64N(int64(interval))))
				id := fmt.Sprintf("c%03d", i)
				c := call(id, 0, "ended")
				c.InitiatedAt = time.Now().Unix()
				fake.Put(c)
				ended := time.Now()
				if mode == "webhooks" {
					p.Hint(Hint{SessionID: id, Final: true, Received: ended})
				}
				for published.Load() < int64(i+1) {
					time.Sleep(5 * time.Millisecond)
				}
				lat = append(lat, time.Since(ended))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99-ms")
		})
	}
}

// BenchmarkRememberedIDs measures what the dedupe set costs per remembered
// call id: the live heap of a ledger that counted n final calls (ids of
// CometChat's length, 34 bytes, and of 64 bytes), after a garbage
// collection, divided by n. The calls are counted as a poll counts them,
// the ledger's changes cleared after every page as a save does. The
// resident set is measured on the binary, by BenchmarkTenApps50k.
//
//	go test -run XXX -bench RememberedIDs -benchtime 1x ./accountant
func BenchmarkRememberedIDs(b *testing.B) {
	for _, tc := range []struct{ idLen, n int }{{34, 100_000}, {64, 60_000}} {
		b.Run(fmt.Sprintf("id-bytes=%d/ids=%d", tc.idLen, tc.n), func(b *testing.B) {
			for range b.N {
				b.ReportMetric(rememberIDs(b, tc.idLen, tc.n), "heap-B/id")
			}
		})
	}
}

func rememberIDs(b *testing.B, idLen, n int) (heapPerID float64) {
	// Ids built from random hex after a CometChat-like prefix, so that no
	// two share a layout the hash could favour.
	rng := rand.New(rand.NewPCG(uint64(idLen), uint64(n)))
	id := func() string {
		s := []byte("v1.us.")
		for len(s) < idLen {
			s = append(s, "0123456789abcdef"[rng.IntN(16)])
		}
		return string(s)
	}
	live := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	heap0 := live()
	l := NewLedger()
	l.Initialized = true
	page := make([]cometchat.Call, 100)
	for i := 0; i < n; i += len(page) {
		for j := range page {
			at := t0.Unix() + int64(i+j)
			page[j] = cometchat.Call{SessionID: id(), Type: "audio", Mode: "call", ReceiverType: "user",
				Status: "ended", InitiatedAt: at, StartedAt: at + 1, EndedAt: at + 60, AudioMinutes: 1}
		}
		for j := range page {
			if o, _ := l.Observe(&page[j], observeMode{at: t0}); o != Counted {
				b.Fatalf("call %d: %v, want counted", i+j, o)
			}
		}
		l.clearChanges()
	}
	clear(page)
	heap1 := live()
	if l.Remembered() != n {
		b.Fatalf("remembered %d ids, want %d", l.Remembered(), n)
	}
	runtime.KeepAlive(l)
	return float64(heap1-heap0) / float64(n)
}

var heapFor = flag.Duration("bench.heap-for", 5*time.Minute,
	"how long each BenchmarkHeapFlat run lasts (the documented figure: 30m)")

// BenchmarkHeapFlat runs a poller in real time against the fake at busy
// traffic (1,200 calls a minute, each ringing and talking a tenth of the
// usual time, 2 s polls) with a dedupe capacity of 2,000, which fills in
// two minutes, for -bench.heap-for; without a state file, with one, and
// with every state write failing. The fake forgets the calls that ended
// more than three minutes ago, so that what grows is the poller's. Every
// tenth of the run the live heap (of the whole test process, the fake
// included) is read after a garbage collection; once the dedupe set is
// full and the fake's window has filled, those samples go into the
// figures: the live heap at the end, and its growth from the first third
// of them to the last (their means), in KiB: flat is near zero.
//
//	go test -c -o /tmp/accountant.test ./accountant
//	/tmp/accountant.test -test.run XXX -test.bench 'HeapFlat/state=none' -test.benchtime 1x -bench.heap-for=30m
//
// (make bench-heap runs the three at once, 30 minutes each.)
func BenchmarkHeapFlat(b *testing.B) {
	for _, state := range []string{"none", "file", "failing"} {
		b.Run("state="+state, func(b *testing.B) {
			for range b.N {
				heapFlat(b, state)
			}
		})
	}
}

func heapFlat(b *testing.B, state string) {
	const capacity = 2000
	fake := cometchattest.New(key)
	traffic := cometchattest.NewTraffic(fake, 11)
	traffic.CallsPerMinute, traffic.Speed = 1200, 10
	srv := fake.Start()
	defer srv.Close()
	cfg := Config{App: "heap", Interval: 2 * time.Second, Capacity: capacity,
		API: cometchat.Config{BaseURL: srv.URL, APIKey: key, Timeout: 10 * time.Second}}
	var failed atomic.Int64
	switch state {
	case "file":
		cfg.StateFile = filepath.Join(b.TempDir(), "state.json")
	case "failing":
		cfg.StateFile = filepath.Join(b.TempDir(), "state.json")
		cfg.diskFault = func() error { failed.Add(1); return fmt.Errorf("write state: %w", syscall.ENOSPC) }
	}
	p, err := NewPoller(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go traffic.Run(ctx, 100*time.Millisecond)
	stopped := make(chan struct{})
	go func() { p.Run(ctx); close(stopped) }()
	defer func() { cancel(); <-stopped }()

	liveHeap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	var full []uint64 // live heap samples with the dedupe set full
	const retention = 3 * time.Minute
	tick := time.NewTicker(*heapFor / 10)
	defer tick.Stop()
	start := time.Now()
	for end := start.Add(*heapFor); time.Now().Before(end); {
		<-tick.C
		fake.Forget(time.Now().Add(-retention).Unix())
		if p.Snapshot().Remembered >= capacity*9/10 && time.Since(start) > 2*retention {
			full = append(full, liveHeap())
		}
	}
	s := p.Snapshot()
	if len(full) < 3 {
		b.Fatalf("the dedupe set was full and the fake's window filled in %d samples of 10 (%d ids): run longer", len(full), s.Remembered)
	}
	if state == "failing" && failed.Load() == 0 {
		b.Fatal("no state write failed")
	}
	mean := func(xs []uint64) float64 {
		var sum float64
		for _, x := range xs {
			sum += float64(x)
		}
		return sum / float64(len(xs))
	}
	third := len(full) / 3
	b.ReportMetric(float64(full[len(full)-1])/(1<<20), "live-heap-MiB")
	b.ReportMetric((mean(full[len(full)-third:])-mean(full[:third]))/1024, "growth-KiB")
	b.ReportMetric(float64(traffic.Created()), "calls")
	b.ReportMetric(float64(s.Remembered), "remembered")
}

// BenchmarkBusyTraffic measures what a busy app costs in requests: the
// fake's traffic at 97 and 300 calls a minute with --demo's timings
// (ringing and talking at half the usual time, 3 % of calls 5 to 30
// minutes long), 30 s polls, 15 minutes of simulated time after 10 minutes
// of warm-up. It reports requests per minute in all and by kind (the head
// of the list and the pages below it, the ongoing listing, Get Call), and
// the share of the calls that ended that were counted, after every call
// is finished and two more polls: exactly 100 %. The baseline in the same
// run checks every tracked call that no listing showed with Get Call
// (getCallsOnly). It also reports the floor (pagesToLearn).
//
//	go test -run XXX -bench BusyTraffic -benchtime 1x ./accountant
func BenchmarkBusyTraffic(b *testing.B) {
	for _, rate := range []float64{97, 300} {
		for _, strategy := range []string{"cheapest", "get-calls-only"} {
			b.Run(fmt.Sprintf("calls-per-min=%g/%s", rate, strategy), func(b *testing.B) {
				for range b.N {
					busyTraffic(b, rate, strategy == "get-calls-only")
				}
			})
		}
	}
}

func busyTraffic(b *testing.B, rate float64, getCallsOnly bool) {
	fake := cometchattest.New(key)
	traffic := cometchattest.NewTraffic(fake, 5)
	traffic.CallsPerMinute, traffic.Speed = rate, 2
	var head, ongoing, get atomic.Int64
	fake.SetBeforeRequest(func(r *http.Request) {
		switch {
		case !strings.HasSuffix(r.URL.Path, "/calls"):
			get.Add(1)
		case r.URL.Query().Get("status") == "ongoing":
			ongoing.Add(1)
		default:
			head.Add(1)
		}
	})
	srv := fake.Start()
	defer srv.Close()
	now := t0
	p := newBenchPoller(b, srv.URL+"/v3", func() time.Time { return now })
	p.cfg.getCallsOnly = getCallsOnly
	ctx := context.Background()
	floor, open := 0, map[string]bool{}
	advance := func(d time.Duration) {
		for end := now.Add(d); now.Before(end); {
			now = now.Add(time.Second)
			traffic.Step(now)
			if now.Unix()%30 == 0 {
				floor += pagesToLearn(fake.Calls(), open)
				if err := p.Poll(ctx); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	if err := p.Poll(ctx); err != nil { // the first poll: nothing is history yet
		b.Fatal(err)
	}
	advance(10 * time.Minute)
	h0, o0, g0, f0 := head.Load(), ongoing.Load(), get.Load(), floor
	const minutes = 15
	advance(minutes * time.Minute)
	f := float64(floor-f0) / minutes
	h, o, g := float64(head.Load()-h0)/minutes, float64(ongoing.Load()-o0)/minutes, float64(get.Load()-g0)/minutes
	traffic.FinishAll(now)
	advance(time.Minute)
	ended := 0
	for _, c := range fake.Calls() {
		if _, final := NormalizeStatus(&c); final {
			ended++
		}
	}
	counted := 0
	for _, t := range p.Snapshot().Totals {
		for _, v := range t.Calls {
			counted += int(v)
		}
	}
	b.ReportMetric(h+o+g, "requests/min")
	b.ReportMetric(f, "floor/min")
	b.ReportMetric(h, "head/min")
	b.ReportMetric(o, "ongoing/min")
	b.ReportMetric(g, "get/min")
	b.ReportMetric(100*float64(counted)/float64(ended), "counted-%")
}

// pagesToLearn is a lower bound on what one poll costs any poller that
// learns, by List Calls without filters and Get Call, the final record of
// every call that is new or ended since the last poll: the number of
// distinct list pages of 100 (the head at least) that hold such a call,
// for a call's page costs one request whether it is read as a page or its
// calls are fetched one by one. It ignores the cost of learning which
// calls ended (the ongoing listing). open holds the ids not final at the
// last poll; calls is the fake's list, newest first.
func pagesToLearn(calls []cometchat.Call, open map[string]bool) int {
	pages := map[int]bool{0: true}
	seen := make(map[string]bool, len(open))
	for i, c := range calls {
		_, final := NormalizeStatus(&c)
		wasOpen, known := open[c.SessionID]
		if final && (!known || wasOpen) {
			pages[i/100] = true
		}
		seen[c.SessionID] = true
		open[c.SessionID] = !final
	}
	for id := range open {
		if !seen[id] {
			delete(open, id)
		}
	}
	return len(pages)
}

func TestPagesToLearn(t *testing.T) {
	list := func(status map[int]string) []cometchat.Call {
		calls := make([]cometchat.Call, 250)
		for i := range calls {
			calls[i] = cometchat.Call{SessionID: fmt.Sprint("s", 250-i), Status: "ongoing"}
			if st, ok := status[i]; ok {
				calls[i].Status = st
			}
		}
		return calls
	}
	open := map[string]bool{}
	// The first sight: every final call is new; they sit on pages 0 and 2.
	assert.Equal(t, 2, pagesToLearn(list(map[int]string{5: "ended", 240: "rejected"}), open))
	// Nothing changed: the head is always read.
	assert.Equal(t, 1, pagesToLearn(list(map[int]string{5: "ended", 240: "rejected"}), open))
	// Two calls end on page 1 and one on page 2: two pages besides the head.
	assert.Equal(t, 3, pagesToLearn(list(map[int]string{5: "ended", 240: "rejected", 110: "ended", 150: "busy", 201: "ended"}), open))
	// Calls already final stay learnt; a call gone from the list is forgotten.
	assert.Equal(t, 1, pagesToLearn(list(map[int]string{5: "ended", 240: "rejected", 110: "ended", 150: "busy", 201: "ended"})[:200], open))
	assert.NotContains(t, open, "s49")
}
