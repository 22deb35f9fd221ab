package collector

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
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
	s := &accountant.Snapshot{App: app, Up: true, LastSuccess: time.Unix(1700000000, 0), Interval: 30 * time.Second,
		Totals: map[accountant.Labels]*accountant.Totals{}, Active: map[accountant.Labels]accountant.Active{}}
	n := 0
	for _, ct := range callTypes {
		for _, m := range modes {
			for _, rt := range receiverTypes {
				if n == labelSets {
					return s
				}
				n++
				lb := accountant.Labels{CallType: ct, Mode: m, ReceiverType: rt}
				t := &accountant.Totals{Calls: map[string]uint64{}, Participants: map[string]uint64{},
					AudioSeconds: 123.4, VideoSeconds: 56.7, CallsRecorded: 3, Recordings: 4, RecordingSeconds: 89,
					Duration:            accountant.Histogram{Buckets: make([]uint64, len(accountant.DurationBuckets)), Count: 20, Sum: 1234},
					ParticipantsPerCall: accountant.Histogram{Buckets: make([]uint64, len(accountant.ParticipantBuckets)), Count: 20, Sum: 50}}
				for i := range t.Duration.Buckets {
					t.Duration.Buckets[i] = 1
				}
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
// calls_total (5 statuses) + participants_total (5 states) + 5 plain
// counters + calls_active (2 statuses) + participants_active + the two
// histograms (buckets + +Inf + _sum + _count).
var perLabelSet = 5 + 5 + 5 + 2 + 1 + (len(accountant.DurationBuckets) + 3) + (len(accountant.ParticipantBuckets) + 3)

// perApp is the number of series an app has besides its call label sets.
const perApp = 6

// TestSeriesPerApp pins the cardinality: a label change that multiplies it
// must fail here, and docs/scaling.md must be updated with it.
func TestSeriesPerApp(t *testing.T) {
	assert.Equal(t, 50, perLabelSet)
	all := len(callTypes) * len(modes) * len(receiverTypes)
	assert.Equal(t, 36, all, "3 call types x 4 modes x 3 receiver types, other included")
	c := New(func() []*accountant.Snapshot { return []*accountant.Snapshot{fullSnapshot("a", all)} })
	assert.Equal(t, perApp+all*perLabelSet, testutil.CollectAndCount(c), "worst case per app")
	assert.Equal(t, 1806, perApp+all*perLabelSet)
	realistic := New(func() []*accountant.Snapshot { return []*accountant.Snapshot{fullSnapshot("a", 12)} })
	assert.Equal(t, perApp+12*perLabelSet, testutil.CollectAndCount(realistic), "the 12 label sets without other")
}

// BenchmarkMetrics100Apps serves /metrics for 100 apps with 12 label sets
// each (audio/video x call/meet/presenter x user/group), as Prometheus
// scrapes it.
func BenchmarkMetrics100Apps(b *testing.B) {
	var snaps []*accountant.Snapshot
	for i := range 100 {
		snaps = append(snaps, fullSnapshot(fmt.Sprintf("app-%03d", i), 12))
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(New(func() []*accountant.Snapshot { return snaps }))
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	series := 0
	b.ResetTimer()
	for range b.N {
		resp, err := http.Get(srv.URL)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		series = int(n)
	}
	b.ReportMetric(float64(series)/1024, "KiB/scrape")
	b.ReportMetric(float64(100*(perApp+12*perLabelSet)), "series")
}
