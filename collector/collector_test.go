package collector

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cometchat-exporter/cometchat-exporter/accountant"
	"github.com/cometchat-exporter/cometchat-exporter/cometchat"
)

func testSnapshot() *accountant.Snapshot {
	lb := accountant.Labels{CallType: "video", Mode: "meet", ReceiverType: "group"}
	t := &accountant.Totals{
		Calls:            map[string]uint64{"ended": 3, "unanswered": 1},
		Participants:     map[string]uint64{"ended": 7, "unanswered": 2},
		AudioSeconds:     0,
		VideoSeconds:     1234.5,
		CallsRecorded:    1,
		Recordings:       2,
		RecordingSeconds: 90,
		Duration: accountant.Histogram{
			Buckets: []uint64{0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, Count: 3, Sum: 21650,
		},
		ParticipantsPerCall: accountant.Histogram{
			Buckets: []uint64{1, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0}, Count: 4, Sum: 8,
		},
	}
	return &accountant.Snapshot{
		App:         "prod",
		Totals:      map[accountant.Labels]*accountant.Totals{lb: t},
		Active:      map[accountant.Labels]accountant.Active{{CallType: "audio", Mode: "call", ReceiverType: "user"}: {Initiated: 1, Ongoing: 2, Participants: 4}},
		Up:          true,
		LastSuccess: time.Unix(1700000000, 500_000_000),
		Tracked:     3,
		Interval:    30 * time.Second,
	}
}

func TestCollectorGolden(t *testing.T) {
	c := New(func() []*accountant.Snapshot { return []*accountant.Snapshot{testSnapshot()} })
	golden, err := os.ReadFile("testdata/collector.golden.prom")
	require.NoError(t, err)
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(string(golden))))

	problems, err := testutil.CollectAndLint(c)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

func TestCollectorAlwaysEmitsUp(t *testing.T) {
	c := New(func() []*accountant.Snapshot { return []*accountant.Snapshot{{App: "fresh"}} })
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(`
# HELP cometchat_up 1 if the last poll of the Calls API succeeded, 0 otherwise.
# TYPE cometchat_up gauge
cometchat_up{app="fresh"} 0
`), "cometchat_up"))
	assert.Equal(t, 6, testutil.CollectAndCount(c), "up, last poll, interval, tracked, abandoned, recovered; no call series yet")
}

func TestAPIMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewAPIMetrics(reg)
	m.Init("a")
	m.Observe("a", cometchat.RequestInfo{Endpoint: cometchat.EndpointListCalls, Code: 200, Duration: 30 * time.Millisecond})
	m.Observe("a", cometchat.RequestInfo{Endpoint: cometchat.EndpointGetCall, Code: 401, Duration: time.Millisecond,
		Err: &cometchat.APIError{StatusCode: 401, Code: cometchat.CodeAPIKeyNotFound}})
	m.Observe("a", cometchat.RequestInfo{Endpoint: cometchat.EndpointListCalls, Duration: time.Second,
		Err: &cometchat.TransportError{Reason: "timeout"}})
	m.Error("a", "invalid_call")

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP cometchat_exporter_api_requests_total HTTP requests to the Calls API, by endpoint and status code (none when no answer came back).
# TYPE cometchat_exporter_api_requests_total counter
cometchat_exporter_api_requests_total{app="a",code="200",endpoint="list_calls"} 1
cometchat_exporter_api_requests_total{app="a",code="401",endpoint="get_call"} 1
cometchat_exporter_api_requests_total{app="a",code="none",endpoint="list_calls"} 1
`), "cometchat_exporter_api_requests_total"))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.errors.WithLabelValues("a", "AUTH_ERR_APIKEY_NOT_FOUND")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.errors.WithLabelValues("a", "timeout")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.errors.WithLabelValues("a", "invalid_call")))
	assert.Equal(t, 0.0, testutil.ToFloat64(m.errors.WithLabelValues("a", "rate_limited")), "created at zero by Init")

	m.Forget("a")
	n, err := testutil.GatherAndCount(reg)
	require.NoError(t, err)
	assert.Equal(t, 0, n)
}
