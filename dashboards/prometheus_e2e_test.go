package dashboards

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cometchat-exporter/cometchat-exporter/alerts"
	"github.com/cometchat-exporter/cometchat-exporter/cometchat"
	"github.com/cometchat-exporter/cometchat-exporter/cometchat/cometchattest"
	"github.com/cometchat-exporter/cometchat-exporter/internal/testenv"
)

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

func startProcess(t *testing.T, name string, args ...string) *testenv.Buffer {
	out := &testenv.Buffer{}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return out
}

var variableRef = regexp.MustCompile(`\$\{?[A-Za-z_][A-Za-z0-9_]*\}?`)

// expand substitutes Grafana's variables the way an import with "All"
// selected would: $__rate_interval becomes 5m, $__range 1h, $job the job
// given (.* when empty), every other variable .*.
func expand(expr, job string) string {
	expr = strings.ReplaceAll(expr, "$__rate_interval", "5m")
	expr = strings.ReplaceAll(expr, "$__range", "1h")
	if job != "" {
		expr = strings.ReplaceAll(expr, "$job", job)
	}
	return variableRef.ReplaceAllString(expr, ".*")
}

type apiResponse struct {
	Status    string          `json:"status"`
	Error     string          `json:"error"`
	ErrorType string          `json:"errorType"`
	Data      json.RawMessage `json:"data"`
}

func promGet(base, path string, params url.Values) (*apiResponse, error) {
	resp, err := http.Get(base + path + "?" + params.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r apiResponse
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	return &r, nil
}

// TestDashboardsAndRulesAgainstPrometheus runs the exporter in --demo mode
// beside a real Prometheus that scrapes it every 30 seconds and loads the
// rules, then runs every dashboard query through the HTTP API and checks
// every rule group's health; the same with two replicas of one app; and
// the exemplars Prometheus stored. It runs on Prometheus 2 (Debian's
// prometheus) and on Prometheus 3 (prometheus3 on PATH; .ci/run builds it).
func TestDashboardsAndRulesAgainstPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus servers and waits for data")
	}
	exporter := filepath.Join(t.TempDir(), "cometchat_exporter")
	build := exec.Command("go", "build", "-o", exporter, "..")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, run := range []struct{ name, tool, features string }{
		{"prometheus2", "prometheus", "exemplar-storage"},                                                      // OpenMetrics
		{"prometheus3", "prometheus3", "exemplar-storage"},                                                     // OpenMetrics, its default scrape protocols
		{"prometheus3-created-timestamps", "prometheus3", "exemplar-storage,created-timestamp-zero-ingestion"}, // protobuf
	} {
		t.Run(run.name, func(t *testing.T) { againstPrometheus(t, testenv.RequireTool(t, run.tool), exporter, run.features) })
	}
}

func againstPrometheus(t *testing.T, prometheus, exporter, features string) {
	dir := t.TempDir()
	expAddr, promAddr := freePort(t), freePort(t)
	expLog := startProcess(t, exporter, "--demo", "--web.listen-address="+expAddr)

	// Two replicas of one app, polling the same fake Calls API: scraped as
	// job "replicas" (both) and job "single" (the first alone), with the
	// rules generated for those jobs.
	const key = "e2e-replica-key"
	fake := cometchattest.New(key)
	traffic := cometchattest.NewTraffic(fake, 7)
	traffic.CallsPerMinute, traffic.Speed = 600, 10
	traffic.SeedHistory(50, time.Now().Add(-time.Hour), time.Now().Add(-time.Minute))
	api := httptest.NewServer(fake)
	defer api.Close()
	ctx, stopTraffic := context.WithCancel(context.Background())
	defer stopTraffic()
	go traffic.Run(ctx, 100*time.Millisecond)
	replicaA, replicaB := freePort(t), freePort(t)
	for _, addr := range []string{replicaA, replicaB} {
		out := &testenv.Buffer{}
		cmd := exec.Command(exporter, "--web.listen-address="+addr, "--cometchat.app-id=shared",
			"--cometchat.base-url="+api.URL+"/v3", "--cometchat.poll-interval=1s", "--billing.included-minutes=100000")
		cmd.Env = []string{"COMETCHAT_API_KEY=" + key}
		cmd.Stdout, cmd.Stderr = out, out
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}

	rules, err := filepath.Glob("../alerts/*.yml")
	require.NoError(t, err)
	require.NotEmpty(t, rules)
	for name, groups := range alerts.Files {
		b, err := alerts.Render("", groups(`job=~"replicas|single"`))
		require.NoError(t, err)
		f := filepath.Join(dir, "replicas-"+name)
		require.NoError(t, os.WriteFile(f, b, 0o600))
		rules = append(rules, f)
	}
	var ruleLines []string
	for _, r := range rules {
		abs, _ := filepath.Abs(r)
		ruleLines = append(ruleLines, "  - "+abs)
	}
	// The demo is scraped as the README sets it up (every 30s, the demo
	// polling every 2s), the replicas every second so that they compare.
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 15s
rule_files:
%s
scrape_configs:
  - job_name: cometchat
    scrape_interval: 30s
    static_configs:
      - targets: ['%s']
  - job_name: replicas
    static_configs:
      - targets: ['%s', '%s']
  - job_name: single
    static_configs:
      - targets: ['%s']
`, strings.Join(ruleLines, "\n"), expAddr, replicaA, replicaB, replicaA)
	cfgFile := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(cfg), 0o600))
	promLog := startProcess(t, prometheus, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr, "--enable-feature="+features)
	base := "http://" + promAddr
	defer func() {
		if t.Failed() {
			t.Logf("exporter log:\n%s\nprometheus log:\n%s", expLog.String(), promLog.String())
		}
	}()

	ready := func(url string) bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	for deadline := time.Now().Add(30 * time.Second); !ready(base+"/-/ready") || !ready("http://"+expAddr+"/-/ready"); {
		require.True(t, time.Now().Before(deadline), "Prometheus and the exporter ready within 30s")
		time.Sleep(200 * time.Millisecond)
	}

	// Every query of every dashboard, expanded.
	type query struct{ file, expr string }
	var queries []query
	for file, d := range committed(t) {
		for _, e := range exprs(d) {
			queries = append(queries, query{file, expand(e, "cometchat")})
		}
	}
	sort.Slice(queries, func(i, j int) bool { return queries[i].expr < queries[j].expr })

	run := func() (errs, empty []string) {
		for _, q := range queries {
			r, err := promGet(base, "/api/v1/query", url.Values{"query": {q.expr}})
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", q.expr, err))
				continue
			}
			if r.Status != "success" {
				errs = append(errs, fmt.Sprintf("%s: %s %s", q.expr, r.ErrorType, r.Error))
				continue
			}
			var data struct {
				Result []json.RawMessage `json:"result"`
			}
			if json.Unmarshal(r.Data, &data) != nil || len(data.Result) == 0 {
				empty = append(empty, q.file+": "+q.expr)
			}
		}
		return errs, empty
	}

	// Wait for data: at least 45 seconds, as a user would, and until every
	// query has data or two minutes have passed.
	start := time.Now()
	var errs, empty []string
	var allData time.Duration
	// No alert about the exporter's health is even pending meanwhile.
	var healthAlerts []string
	for {
		errs, empty = run()
		r, err := promGet(base, "/api/v1/query", url.Values{"query": {`ALERTS{job="cometchat", alertname=~"CometChatPollStale|CometChatAPIAuthFailing|CometChatExporterDown|CometChatExporterInstanceDown|CometChatStateWritesFailing|CometChatConfigReloadFailed"}`}})
		require.NoError(t, err)
		if !strings.Contains(string(r.Data), `"result":[]`) {
			healthAlerts = append(healthAlerts, string(r.Data))
		}
		elapsed := time.Since(start)
		if len(empty) == 0 && allData == 0 {
			allData = elapsed
			t.Logf("every query has data %s after Prometheus became ready", allData.Round(time.Second))
		}
		if len(errs) > 0 || (elapsed > 45*time.Second && len(empty) == 0) || elapsed > 2*time.Minute {
			break
		}
		time.Sleep(2 * time.Second)
	}
	t.Logf("%d queries after %s: %d errors, %d without data", len(queries), time.Since(start).Round(time.Second), len(errs), len(empty))
	assert.Empty(t, healthAlerts, "health alerts pending or firing with the demo scraped every 30s")
	assert.Empty(t, errs, "queries that Prometheus refused")
	assert.Empty(t, empty, "queries without data")

	// Every rule group loads and evaluates without error.
	r, err := promGet(base, "/api/v1/rules", nil)
	require.NoError(t, err)
	require.Equal(t, "success", r.Status)
	var rulesData struct {
		Groups []struct {
			Name  string `json:"name"`
			File  string `json:"file"`
			Rules []struct {
				Name           string `json:"name"`
				Health         string `json:"health"`
				LastError      string `json:"lastError"`
				LastEvaluation string `json:"lastEvaluation"`
			} `json:"rules"`
		} `json:"groups"`
	}
	require.NoError(t, json.Unmarshal(r.Data, &rulesData))
	require.Len(t, rulesData.Groups, 4, "both rule groups loaded, for the demo and for the replicas")
	n := 0
	for _, g := range rulesData.Groups {
		for _, rule := range g.Rules {
			n++
			assert.Equal(t, "ok", rule.Health, "%s/%s: %s", g.Name, rule.Name, rule.LastError)
			assert.Empty(t, rule.LastError, "%s/%s", g.Name, rule.Name)
			assert.False(t, strings.HasPrefix(rule.LastEvaluation, "0001"), "%s/%s was evaluated", g.Name, rule.Name)
		}
	}
	assert.Equal(t, 2*35, n, "18 recording rules and 17 alerts, twice")

	// The recording rules produce data from the demo too.
	for _, rec := range []string{"job_app:cometchat_calls:rate5m", "job_app_status:cometchat_calls:rate5m",
		"job_app:cometchat_calls_unanswered:ratio15m", "job_app:cometchat_call_audio_seconds:rate1h",
		"job_app:cometchat_participant_audio_seconds:rate1h", "job_app_kind:cometchat_plan_used:ratio",
		"job_app_kind:cometchat_billing_period_minutes:forecast"} {
		r, err := promGet(base, "/api/v1/query", url.Values{"query": {rec}})
		require.NoError(t, err)
		assert.NotContains(t, string(r.Data), `"result":[]`, "%s has data", rec)
	}

	// One replica or two: every panel and every recording rule gives the
	// same series with about the same values (two replicas poll on their
	// own, so their counters differ by the calls of a poll or so; counting
	// an app twice doubles them).
	values := func(expr string) map[string]float64 {
		r, err := promGet(base, "/api/v1/query", url.Values{"query": {expr}})
		require.NoError(t, err)
		require.Equal(t, "success", r.Status, "%s: %s", expr, r.Error)
		var data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		}
		require.NoError(t, json.Unmarshal(r.Data, &data))
		out := map[string]float64{}
		for _, res := range data.Result {
			delete(res.Metric, "job")
			delete(res.Metric, "instance")
			k := fmt.Sprint(res.Metric)
			var v float64
			fmt.Sscan(res.Value[1].(string), &v)
			out[k] = v
		}
		return out
	}
	var compared []string
	for _, g := range alerts.RecordingRules(alerts.DefaultSelector) {
		for _, rule := range g.Rules {
			compared = append(compared, rule.Record+`{job="JOB"}`)
		}
	}
	for file, d := range committed(t) {
		if file != "cometchat-calls-overview.json" {
			continue // the health dashboard shows each replica on purpose
		}
		for _, e := range exprs(d) {
			compared = append(compared, expand(e, "JOB"))
		}
	}
	mismatch := func() []string {
		var bad []string
		for _, c := range compared {
			one := values(strings.ReplaceAll(c, "JOB", "single"))
			two := values(strings.ReplaceAll(c, "JOB", "replicas"))
			if len(one) == 0 || len(one) != len(two) {
				bad = append(bad, fmt.Sprintf("%s: %d series with one replica, %d with two", c, len(one), len(two)))
				continue
			}
			for k, v1 := range one {
				v2, ok := two[k]
				if !ok || math.Abs(v2-v1) > 0.25*math.Max(math.Abs(v1), 1e-9) && math.Abs(v2-v1) > 1e-3 {
					bad = append(bad, fmt.Sprintf("%s %s: %v with one replica, %v with two", c, k, v1, v2))
				}
			}
		}
		return bad
	}
	var bad []string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(2 * time.Second) {
		if bad = mismatch(); len(bad) == 0 || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("%d queries compared with one replica and with two", len(compared))
	assert.Empty(t, bad, "one replica and two give the same series and values")

	// _created lines: a Prometheus reading created timestamps (protobuf)
	// stores none as series; any other stores each as a series of its own
	// (README, OpenMetrics).
	created := values(`count({__name__=~"cometchat_.*_created", job="cometchat"})`)
	if strings.Contains(features, "created-timestamp-zero-ingestion") {
		assert.Empty(t, created, "no _created series")
	} else {
		assert.NotEmpty(t, created, "_created lines stored as series")
	}

	// Exemplars: Prometheus stored session ids from the OpenMetrics scrape,
	// and each one is a call the fake API holds, with the status of its
	// series; the duration exemplars are ended calls of that length.
	type exemplarSeries struct {
		SeriesLabels map[string]string `json:"seriesLabels"`
		Exemplars    []struct {
			Labels map[string]string `json:"labels"`
			Value  string            `json:"value"`
		} `json:"exemplars"`
	}
	exemplars := func(query string) []exemplarSeries {
		var got []exemplarSeries
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
			r, err := promGet(base, "/api/v1/query_exemplars", url.Values{"query": {query},
				"start": {fmt.Sprint(time.Now().Add(-time.Hour).Unix())}, "end": {fmt.Sprint(time.Now().Unix())}})
			require.NoError(t, err)
			require.Equal(t, "success", r.Status, "%s: %s", query, r.Error)
			require.NoError(t, json.Unmarshal(r.Data, &got))
			if len(got) > 0 {
				break
			}
		}
		return got
	}
	statuses := exemplars(`cometchat_calls_total{job="replicas"}`)
	require.NotEmpty(t, statuses, "exemplars on cometchat_calls_total")
	durations := exemplars(`cometchat_call_duration_seconds_bucket{job="replicas"}`)
	require.NotEmpty(t, durations, "exemplars on the duration buckets")
	// Read after the exemplars: a counted call is final in the fake by then.
	calls := map[string]cometchat.Call{}
	for _, c := range fake.Calls() {
		calls[c.SessionID] = c
	}
	checked := 0
	for _, series := range statuses {
		for _, ex := range series.Exemplars {
			checked++
			id := ex.Labels["session_id"]
			c, ok := calls[id]
			require.True(t, ok, "exemplar session_id %q is a call of the fake", id)
			status := strings.Replace(c.Status, "cancelled", "canceled", 1)
			assert.Equal(t, series.SeriesLabels["status"], status, "call %s", id)
			assert.Equal(t, "1", ex.Value)
			assert.NotContains(t, series.SeriesLabels, "session_id", "an exemplar is never a label")
		}
	}
	for _, series := range durations {
		for _, ex := range series.Exemplars {
			c, ok := calls[ex.Labels["session_id"]]
			require.True(t, ok, "exemplar %v is a call of the fake", ex.Labels)
			assert.Equal(t, "ended", c.Status)
			assert.Equal(t, fmt.Sprint(c.EndedAt-c.StartedAt), ex.Value, "the exemplar's value is the call's length")
		}
	}
	t.Logf("%d exemplars on cometchat_calls_total checked against the fake", checked)
}

// TestNativeHistogramsOnPrometheus3: with --collector.histograms=native, a
// Prometheus 3 scraping native histograms stores each call histogram as
// one native series, with no _bucket series, and histogram_quantile
// answers over it, the dashboards' quantile panels included.
func TestNativeHistogramsOnPrometheus3(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus and waits for data")
	}
	prometheus := testenv.RequireTool(t, "prometheus3")
	exporter := filepath.Join(t.TempDir(), "cometchat_exporter")
	out, err := exec.Command("go", "build", "-o", exporter, "..").CombinedOutput()
	require.NoError(t, err, "%s", out)
	dir := t.TempDir()
	expAddr, promAddr := freePort(t), freePort(t)
	expLog := startProcess(t, exporter, "--demo", "--collector.histograms=native", "--web.listen-address="+expAddr)
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
scrape_configs:
  - job_name: cometchat
    scrape_native_histograms: true
    static_configs:
      - targets: ['%s']
`, expAddr)
	cfgFile := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(cfg), 0o600))
	promLog := startProcess(t, prometheus, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr)
	base := "http://" + promAddr
	defer func() {
		if t.Failed() {
			t.Logf("exporter log:\n%s\nprometheus log:\n%s", expLog.String(), promLog.String())
		}
	}()
	query := func(q string) []json.RawMessage {
		r, err := promGet(base, "/api/v1/query", url.Values{"query": {q}})
		if err != nil || r.Status != "success" {
			return nil
		}
		var data struct{ Result []json.RawMessage }
		if json.Unmarshal(r.Data, &data) != nil {
			return nil
		}
		return data.Result
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(query(`histogram_quantile(0.5, sum by (app) (rate(cometchat_call_duration_seconds{app="demo"}[10s])))`)) == 0 {
		require.True(t, time.Now().Before(deadline), "a quantile over the native histogram within 60s")
		time.Sleep(500 * time.Millisecond)
	}
	native := query(`cometchat_call_duration_seconds{app="demo"}`)
	require.NotEmpty(t, native)
	assert.Contains(t, string(native[0]), `"histogram":`, "stored as a native histogram")
	assert.Empty(t, query(`{__name__="cometchat_call_duration_seconds_bucket"}`), "no classic bucket series")
	assert.NotEmpty(t, query(`cometchat_call_participants{app="demo"}`))
	// The dashboards' quantile panels read the native histograms too.
	n := 0
	for file, d := range committed(t) {
		for _, e := range exprs(d) {
			if strings.Contains(e, "histogram_quantile") && strings.Contains(e, "cometchat_call_") {
				n++
				assert.NotEmpty(t, query(expand(e, "cometchat")), "%s: %s", file, e)
			}
		}
	}
	assert.Positive(t, n, "the dashboards have call quantile panels")
}
