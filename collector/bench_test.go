package collector

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/assert"

	"github.com/cometchat-exporter/cometchat-exporter/accountant"
)

var (
	callTypes     = []string{"audio", "video", "other"}
	modes         = []string{"call", "meet", "presenter", "other"}
	receiverTypes = []string{"user", "group", "other"}
)

// fullSnapshot has every possible label set, with data in every series.
func fullSnapshot(app string, labelSets int) *accountant.Snapshot {
	s := &accountant.Snapshot{App: app, Up: true, LastSuccess: time.Unix(1700000000, 0), Interval: 30 * time.Second, Listed: 1000,
		Totals: map[accountant.Labels]*accountant.Totals{}, Active: map[accountant.Labels]accountant.Active{},
		API: accountant.APIStats{Requests: map[accountant.RequestKey]uint64{{Endpoint: "list_calls", Code: "200"}: 1000, {Endpoint: "get_call", Code: "200"}: 30},
			Errors: map[string]uint64{}, Latency: map[string]*accountant.Histogram{
				"list_calls": {Buckets: make([]uint64, len(accountant.LatencyBuckets)), Count: 1000, Sum: 50},
				"get_call":   {Buckets: make([]uint64, len(accountant.LatencyBuckets)), Count: 30, Sum: 1}}}}
	for _, r := range accountant.KnownReasons {
		s.API.Errors[r] = 1
	}
	// The 12 known label sets first, then those with "other".
	sets := accountant.KnownLabelSets()
	for _, ct := range callTypes {
		for _, m := range modes {
			for _, rt := range receiverTypes {
				if lb := (accountant.Labels{CallType: ct, Mode: m, ReceiverType: rt}); !slices.Contains(sets, lb) {
					sets = append(sets, lb)
				}
			}
		}
	}
	s.Started, s.StatsStarted = time.Unix(1690000000, 0), time.Unix(1699990000, 0)
	s.Exemplars = map[accountant.Labels]*accountant.Exemplars{}
	for _, lb := range sets[:labelSets] {
		{
			{
				ex := &accountant.Exemplars{Calls: map[string]accountant.Exemplar{}, Duration: make([]accountant.Exemplar, len(accountant.DurationBuckets)+1)}
				for _, st := range accountant.FinalStatuses {
					ex.Calls[st] = accountant.Exemplar{SessionID: "v1.us.208136f5ba34a5a2.1692869395c1c1b1c8a2f6d5e4e5ac1d0a2f64d7f11a2c3d", Value: 1, At: time.Unix(1699999990, 0)}
				}
				for i := range ex.Duration {
					ex.Duration[i] = accountant.Exemplar{SessionID: "v1.us.208136f5ba34a5a2.1692869395c1c1b1c8a2f6d5e4e5ac1d0a2f64d7f11a2c3d", Value: 3, At: time.Unix(1699999990, 0)}
				}
				s.Exemplars[lb] = ex
				t := &accountant.Totals{Calls: map[string]uint64{}, Participants: map[string]uint64{},
					AudioSeconds: 123.4, VideoSeconds: 56.7, CallsRecorded: 3, Recordings: 4, RecordingSeconds: 89,
					Duration:            accountant.Histogram{Buckets: make([]uint64, len(accountant.DurationBuckets)), Count: 20, Sum: 1234},
					ParticipantsPerCall: accountant.Histogram{Buckets: make([]uint64, len(accountant.ParticipantBuckets)), Count: 20, Sum: 50}}
				for i := range t.Duration.Buckets {
					t.Duration.Buckets[i] = 1
				}
				t.Duration.FillNative(accountant.DurationBuckets)
				t.ParticipantsPerCall.FillNative(accountant.ParticipantBuckets)
				for _, st := range accountant.FinalStatuses {
					t.Calls[st] = 7
				}
				s.Totals[lb] = t
				s.Active[lb] = accountant.Active{Initiated: 1, Ongoing: 2, Participants: 5}
			}
		}
	}
	return s
}

// perLabelSet is the number of series one call label set produces:
// calls_total (6 statuses) + participants_total (5 states) + 8 plain
// counters + calls_active (2 statuses) + participants_active + the two
// histograms (buckets + +Inf + _sum + _count).
var perLabelSet = 6 + 5 + 8 + 2 + 1 + (len(accountant.DurationBuckets) + 3) + (len(accountant.ParticipantBuckets) + 3)

// perApp is the number of series an app has besides its call label sets:
// up, last poll, interval, tracked, abandoned, recovered; the known error
// reasons; requests by two endpoint/code pairs; two latency histograms.
// perApp: up, last poll, interval, tracked, abandoned, recovered, calls
// seen, calls listed, pages skipped; the error reasons and anomaly kinds
// created at zero; requests by endpoint and code (2); two latency
// histograms.
var perApp = 10 + len(accountant.KnownReasons) + len(accountant.AnomalyKinds) + 2 + 2*(len(accountant.LatencyBuckets)+3)

// seriesOf counts the sample lines of the exposition of snapshots.
func seriesOf(t testing.TB, snaps ...*accountant.Snapshot) int {
	return seriesWith(t, Options{}, snaps...)
}

// seriesWith counts the sample lines of the text exposition of snapshots
// rendered with opts.
func seriesWith(t testing.TB, opts Options, snaps ...*accountant.Snapshot) int {
	e := NewExposition()
	e.Options = opts
	for _, s := range snaps {
		e.Update(s)
	}
	var buf bytes.Buffer
	if err := e.WriteTo(&buf, prometheus.NewRegistry()); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(buf.String(), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			n++
		}
	}
	return n
}

// TestSeriesPerApp pins the cardinality: a label change that multiplies it
// must fail here, and docs/scaling.md must be updated with it.
func TestSeriesPerApp(t *testing.T) {
	assert.Equal(t, 54, perLabelSet)
	assert.Equal(t, 57, perApp)
	all := len(callTypes) * len(modes) * len(receiverTypes)
	assert.Equal(t, 36, all, "3 call types x 4 modes x 3 receiver types, other included")
	assert.Equal(t, 2001, seriesOf(t, fullSnapshot("a", all)), "worst case per app")
	assert.Equal(t, 705, seriesOf(t, fullSnapshot("a", 12)), "the 12 label sets without other")
	assert.Equal(t, 705, seriesOf(t, fullSnapshot("a", 1)), "the 12 known label sets exist from the start")
	assert.Equal(t, perApp+12*perLabelSet, 705)
	withState := fullSnapshot("a", 12)
	withState.State = &accountant.StateStats{}
	assert.Equal(t, 705+3, seriesOf(t, withState), "a state file adds its last write, failures and bytes")
}

// BenchmarkMetrics100Apps serves /metrics for 100 apps with 12 label sets
// each (audio/video x call/meet/presenter x user/group), every series with
// its _created time and exemplars, as Prometheus scrapes it: gzip asked
// for, the body read whole. The exposition serves each format; promhttp,
// over the same collectors and global metrics, is the reference. It also
// reports the bytes allocated per scrape. bytes is the floor: the body the
// exposition served, written again from one slice (bytesServer).
func BenchmarkMetrics100Apps(b *testing.B) { benchmarkMetrics(b, 100, []string{"gzip"}) }

// BenchmarkMetrics1000Apps is the same with 1,000 apps, with and without
// gzip:
//
//	go test -run XXX -bench Metrics1000Apps -benchtime 20x ./collector
func BenchmarkMetrics1000Apps(b *testing.B) { benchmarkMetrics(b, 1000, []string{"gzip", "identity"}) }

func benchmarkMetrics(b *testing.B, apps int, encodings []string) {
	var snaps []*accountant.Snapshot
	for i := range apps {
		snaps = append(snaps, fullSnapshot(fmt.Sprintf("app-%03d", i), 12))
	}
	e := NewExposition()
	for _, s := range snaps {
		e.Update(s)
	}
	// The exporter's own global metrics, as main registers them.
	global := prometheus.NewRegistry()
	global.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	plain := prometheus.NewRegistry()
	plain.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		New(func() []*accountant.Snapshot { return snaps }))
	servers := map[string]http.Handler{
		"exposition": e.Handler(global, nil),
		"promhttp":   promhttp.HandlerFor(plain, promhttp.HandlerOpts{EnableOpenMetrics: true, EnableOpenMetricsTextCreatedSamples: true}),
	}
	formats := map[string]string{"text": "text/plain;version=0.0.4", "openmetrics": acceptProm2, "protobuf": acceptProm3Proto}
	series := seriesOf(b, snaps...)
	for _, server := range []string{"exposition", "promhttp", "bytes"} {
		for _, format := range []string{"text", "openmetrics", "protobuf"} {
			for _, encoding := range encodings {
				name := server + "/" + format
				if len(encodings) > 1 {
					name += "/" + encoding
				}
				h := servers[server]
				if server == "bytes" {
					h = bytesServer(b, servers["exposition"], formats[format], encoding)
				}
				b.Run(name, func(b *testing.B) { scrapeBench(b, h, formats[format], encoding, series) })
			}
		}
	}
}

func scrapeBench(b *testing.B, h http.Handler, accept, encoding string, series int) {
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	var size int64
	durations := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		req, _ := http.NewRequest("GET", srv.URL, nil)
		req.Header.Set("Accept", accept)
		req.Header.Set("Accept-Encoding", encoding)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		size, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		durations = append(durations, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(durations)
	b.ReportMetric(float64(durations[len(durations)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(size)/1024, "KiB/scrape")
	b.ReportMetric(float64(series), "series")
}

// bytesServer is the floor a scrape is measured against: a handler that
// writes the body the exposition served, taken once, from one slice.
func bytesServer(b *testing.B, h http.Handler, accept, encoding string) http.Handler {
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept", accept)
	req.Header.Set("Accept-Encoding", encoding)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("exposition: %d", rec.Code)
	}
	body, header := rec.Body.Bytes(), rec.Header().Clone()
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		maps.Copy(w.Header(), header)
		w.Write(body)
	})
}

// BenchmarkRenderApp is what the pre-rendering costs a poll: one app
// (12 label sets, every series populated) rendered in the three formats,
// each body compressed for gzipped scrapes.
//
//	go test -run XXX -bench RenderApp -benchmem ./collector
func BenchmarkRenderApp(b *testing.B) {
	e := NewExposition()
	s := fullSnapshot("app", 12)
	b.ReportAllocs()
	for b.Loop() {
		e.Update(s)
	}
}
