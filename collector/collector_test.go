package collector

import (
	"bytes"

	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cometchat-exporter/cometchat-exporter/accountant"
	"github.com/cometchat-exporter/cometchat-exporter/billing"
)

func testSnapshot() *accountant.Snapshot {
	lb := accountant.Labels{CallType: "video", Mode: "meet", ReceiverType: "group"}
	t := &accountant.Totals{
		Calls:        map[string]uint64{"ended": 3, "unanswered": 1},
		Participants: map[string]uint64{"ended": 7, "unanswered": 2},
		AudioSeconds: 0,
		VideoSeconds: 1234.5,
		// Two participants were in the call the whole time.
		ParticipantVideoSeconds: 2469,
		CallsRecorded:           1,
		CallsTranscribed:        1,
		Recordings:              2,
		RecordingSeconds:        90,
		Duration: accountant.Histogram{
			Buckets: []uint64{0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, Count: 3, Sum: 21650,
		},
		ParticipantsPerCall: accountant.Histogram{
			Buckets: []uint64{1, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0}, Count: 4, Sum: 8,
		},
	}
	return &accountant.Snapshot{
		App:          "prod",
		Totals:       map[accountant.Labels]*accountant.Totals{lb: t},
		Active:       map[accountant.Labels]accountant.Active{{CallType: "audio", Mode: "call", ReceiverType: "user"}: {Initiated: 1, Ongoing: 2, Participants: 4}},
		Up:           true,
		LastSuccess:  time.Unix(1700000000, 500_000_000),
		Tracked:      3,
		Seen:         411,
		Listed:       415,
		Started:      time.Unix(1690000000, 0),
		StatsStarted: time.Unix(1699999000, 0),
		Exemplars: map[accountant.Labels]*accountant.Exemplars{lb: {
			Calls:    map[string]accountant.Exemplar{"ended": {SessionID: "v1.us.abc.1699999990ended", Value: 1, At: time.Unix(1699999990, 0)}},
			Duration: []accountant.Exemplar{3: {SessionID: "v1.us.abc.1699999990ended", Value: 42, At: time.Unix(1699999990, 0)}},
		}},
		Interval: 30 * time.Second,
		State:    &accountant.StateStats{LastWrite: time.Unix(1699999995, 0), Failures: 2, WrittenBytes: 81920},
		API: accountant.APIStats{
			Requests:     map[accountant.RequestKey]uint64{{Endpoint: "list_calls", Code: "200"}: 40, {Endpoint: "get_call", Code: "none"}: 1},
			Errors:       map[string]uint64{"AUTH_ERR_APIKEY_NOT_FOUND": 0, "timeout": 1},
			Anomalies:    map[string]uint64{"unsorted": 2, "no_session_id": 1},
			PagesSkipped: 3,
			Latency: map[string]*accountant.Histogram{
				"list_calls": {Buckets: []uint64{10, 20, 10, 0, 0, 0, 0, 0, 0, 0}, Count: 40, Sum: 2.5},
			},
		},
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
	assert.Equal(t, 9+len(accountant.AnomalyKinds)+12*24, testutil.CollectAndCount(c), // a histogram is one metric here
		"up, last poll, interval, tracked, abandoned, recovered, persisted, seen, pages skipped, every anomaly kind, and the 12 known label sets at zero; no request series yet, no listed total")
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	calls := 0
	for _, mf := range mfs {
		if mf.GetName() != "cometchat_calls_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			calls++
			assert.Zero(t, m.GetCounter().GetValue())
		}
	}
	assert.Equal(t, 12*6, calls, "every known label set and status exists at zero before the first call")
}

func TestExpositionMatchesRegistry(t *testing.T) {
	prod, alpha := testSnapshot(), testSnapshot()
	alpha.App, alpha.Up = "alpha", false
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "cometchat_exporter_config_last_reload_successful", Help: "x"})
	build.Set(1)
	global := prometheus.NewRegistry()
	global.MustRegister(build)

	e := NewExposition()
	e.Update(prod)
	e.Update(alpha)
	var got bytes.Buffer
	require.NoError(t, e.WriteTo(&got, global))

	want := prometheus.NewRegistry()
	want.MustRegister(New(func() []*accountant.Snapshot { return []*accountant.Snapshot{alpha, prod} }), build)
	mfs, err := want.Gather()
	require.NoError(t, err)
	var wantText bytes.Buffer
	for _, mf := range mfs {
		_, err := expfmt.MetricFamilyToText(&wantText, mf)
		require.NoError(t, err)
	}
	assert.Equal(t, wantText.String(), got.String(), "the same text a registry would produce")

	e.Forget("alpha")
	got.Reset()
	require.NoError(t, e.WriteTo(&got, global))
	assert.NotContains(t, got.String(), `app="alpha"`)
	assert.Contains(t, got.String(), `cometchat_up{app="prod"} 1`)
}

func TestBillingGauges(t *testing.T) {
	start := time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC)
	snap := func(minutes string) *accountant.Snapshot {
		return &accountant.Snapshot{App: "prod",
			Plan:    &billing.Plan{Day: 15, Zone: "UTC", Minutes: minutes, IncludedTotal: 5000},
			Billing: accountant.BillingPeriod{Start: start.Unix(), AudioSeconds: 600, VideoSeconds: 120, ParticipantAudioSeconds: 1200}}
	}
	c := New(func() []*accountant.Snapshot { return []*accountant.Snapshot{snap(billing.MinutesCall)} })
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(`
# HELP cometchat_billing_period_minutes Minutes of the calls that ended in the current billing period, by kind (audio, video, total), as billing_minutes chooses (call-level or participant-summed); with a billing plan only.
# TYPE cometchat_billing_period_minutes gauge
cometchat_billing_period_minutes{app="prod",kind="audio"} 10
cometchat_billing_period_minutes{app="prod",kind="total"} 12
cometchat_billing_period_minutes{app="prod",kind="video"} 2
# HELP cometchat_billing_period_end_timestamp_seconds End of the current billing period: the start of the next.
# TYPE cometchat_billing_period_end_timestamp_seconds gauge
cometchat_billing_period_end_timestamp_seconds{app="prod"} 1.7972928e+09
# HELP cometchat_billing_period_start_timestamp_seconds Start of the current billing period (billing_day at midnight in billing_time_zone).
# TYPE cometchat_billing_period_start_timestamp_seconds gauge
cometchat_billing_period_start_timestamp_seconds{app="prod"} 1.7947008e+09
# HELP cometchat_plan_included_minutes Minutes the plan includes per billing period, by kind (audio, video, or total for a shared pool); only the kinds configured.
# TYPE cometchat_plan_included_minutes gauge
cometchat_plan_included_minutes{app="prod",kind="total"} 5000
`), "cometchat_billing_period_minutes", "cometchat_billing_period_start_timestamp_seconds", "cometchat_billing_period_end_timestamp_seconds", "cometchat_plan_included_minutes"))
	c = New(func() []*accountant.Snapshot { return []*accountant.Snapshot{snap(billing.MinutesParticipant)} })
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(`
# HELP cometchat_billing_period_minutes Minutes of the calls that ended in the current billing period, by kind (audio, video, total), as billing_minutes chooses (call-level or participant-summed); with a billing plan only.
# TYPE cometchat_billing_period_minutes gauge
cometchat_billing_period_minutes{app="prod",kind="audio"} 20
cometchat_billing_period_minutes{app="prod",kind="total"} 20
cometchat_billing_period_minutes{app="prod",kind="video"} 0
`), "cometchat_billing_period_minutes"), "participant-summed minutes")
	c = New(func() []*accountant.Snapshot { return []*accountant.Snapshot{{App: "none"}} })
	assert.Zero(t, testutil.CollectAndCount(c, "cometchat_billing_period_minutes", "cometchat_plan_included_minutes"), "no plan, no billing series")
}
