package dashboards

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cometchat-exporter/cometchat-exporter/accountant"
	"github.com/cometchat-exporter/cometchat-exporter/billing"
	"github.com/cometchat-exporter/cometchat-exporter/collector"
)

var update = flag.Bool("update", false, "rewrite the committed dashboard JSON")

func TestCommittedJSONIsCurrent(t *testing.T) {
	for name, d := range Files() {
		want, err := Marshal(d)
		require.NoError(t, err)
		if *update {
			require.NoError(t, os.WriteFile(name, want, 0o644))
			continue
		}
		got, err := os.ReadFile(name)
		require.NoError(t, err)
		assert.True(t, bytes.Equal(want, got), "%s is stale: run go test ./dashboards -update", name)
	}
}

// committed loads the dashboards as users import them: from the files.
func committed(t *testing.T) map[string]map[string]any {
	out := map[string]map[string]any{}
	for name := range Files() {
		b, err := os.ReadFile(name)
		require.NoError(t, err)
		var d map[string]any
		require.NoError(t, json.Unmarshal(b, &d), name)
		out[name] = d
	}
	return out
}

// Exprs returns every panel query of a dashboard.
func exprs(d map[string]any) []string {
	var out []string
	for _, p := range d["panels"].([]any) {
		for _, tg := range p.(map[string]any)["targets"].([]any) {
			out = append(out, tg.(map[string]any)["expr"].(string))
		}
	}
	return out
}

// emitted is the set of metric names the exporter exposes, gathered from
// its real renderer and global collectors.
func emitted(t *testing.T) map[string]bool {
	lb := accountant.Labels{CallType: "audio", Mode: "call", ReceiverType: "user"}
	snap := &accountant.Snapshot{App: "a", Listed: 1, // a server that sends the list total
		Totals: map[accountant.Labels]*accountant.Totals{lb: {Calls: map[string]uint64{}, Participants: map[string]uint64{}}},
		Active: map[accountant.Labels]accountant.Active{lb: {}},
		API: accountant.APIStats{Requests: map[accountant.RequestKey]uint64{{Endpoint: "list_calls", Code: "200"}: 1},
			Errors:  map[string]uint64{"timeout": 0},
			Latency: map[string]*accountant.Histogram{"list_calls": {Count: 1, Sum: 0.1}}},
		// An app with a billing plan.
		Plan: &billing.Plan{Day: 1, Zone: "UTC", Minutes: billing.MinutesCall, IncludedTotal: 1000}, Billing: accountant.BillingPeriod{Start: 1}}
	e := collector.NewExposition()
	e.Update(snap)
	global := prometheus.NewRegistry()
	global.MustRegister(versioncollector.NewCollector("cometchat_exporter"))
	var buf bytes.Buffer
	require.NoError(t, e.WriteTo(&buf, global))
	names := map[string]bool{}
	for _, line := range strings.Split(buf.String(), "\n") {
		// A histogram served as native (--collector.histograms) is stored
		// under its own name.
		if f := strings.Fields(line); len(f) == 4 && f[1] == "TYPE" && f[3] == "histogram" {
			names[f[2]] = true
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		names[strings.FieldsFunc(line, func(r rune) bool { return r == '{' || r == ' ' })[0]] = true
	}
	require.True(t, names["cometchat_calls_total"] && names["cometchat_exporter_api_request_duration_seconds_bucket"])
	return names
}

// withExemplars are the panels where a call's session id helps: outcomes
// (unanswered, rejected) and durations.
var withExemplars = map[string]bool{"Calls per minute by final status": true,
	"Answer, unanswered, rejected, canceled and busy ratios": true, "Call duration quantiles": true}

var metricName = regexp.MustCompile(`\bcometchat_[a-z_]+\b`)

func TestDashboardModel(t *testing.T) {
	names := emitted(t)
	uids := map[string]bool{}
	for file, d := range committed(t) {
		t.Run(file, func(t *testing.T) {
			uid, _ := d["uid"].(string)
			assert.NotEmpty(t, uid)
			assert.False(t, uids[uid], "uid %s used twice", uid)
			uids[uid] = true
			assert.NotEmpty(t, d["title"])
			assert.NotEmpty(t, d["tags"])
			// One file both imports and provisions: no import-time
			// placeholder anywhere, the data source from the variable.
			assert.NotContains(t, d, "__inputs")
			b, err := json.Marshal(d)
			require.NoError(t, err)
			assert.NotRegexp(t, `\$\{DS_`, string(b), "no ${DS_...} placeholder: provisioning would keep it literally")
			for _, p := range d["panels"].([]any) {
				assert.Equal(t, map[string]any{"type": "prometheus", "uid": "${datasource}"}, p.(map[string]any)["datasource"],
					"panel %v takes the data source variable", p.(map[string]any)["title"])
			}
			assert.NotEmpty(t, d["__requires"])

			vars := map[string]map[string]any{}
			for _, v := range d["templating"].(map[string]any)["list"].([]any) {
				vm := v.(map[string]any)
				vars[vm["name"].(string)] = vm
			}
			require.Contains(t, vars, "datasource")
			assert.Equal(t, "datasource", vars["datasource"]["type"])
			assert.Equal(t, "prometheus", vars["datasource"]["query"])
			assert.Empty(t, vars["datasource"]["current"], "starts on the default Prometheus data source")
			for _, name := range []string{"job", "instance", "app"} {
				require.Contains(t, vars, name)
			}
			if file == "cometchat-calls-overview.json" {
				for _, name := range []string{"call_type", "mode", "receiver_type"} {
					require.Contains(t, vars, name)
				}
			}
			var allExprs []string
			for _, p := range d["panels"].([]any) {
				for _, tg := range p.(map[string]any)["targets"].([]any) {
					allExprs = append(allExprs, tg.(map[string]any)["expr"].(string))
				}
			}
			for name, v := range vars {
				if name == "datasource" {
					continue
				}
				assert.Equal(t, true, v["multi"], name)
				assert.Equal(t, true, v["includeAll"], name)
				assert.Contains(t, strings.Join(allExprs, "\n"), "$"+name, "variable %s is used by a panel", name)
			}

			ids := map[float64]bool{}
			for _, p := range d["panels"].([]any) {
				pm := p.(map[string]any)
				id := pm["id"].(float64)
				assert.False(t, ids[id], "panel id %v used twice", id)
				ids[id] = true
				title := pm["title"].(string)
				assert.NotEmpty(t, pm["description"], "panel %q has a description", title)
				gp, ok := pm["gridPos"].(map[string]any)
				require.True(t, ok, "panel %q has gridPos", title)
				for _, k := range []string{"x", "y", "w", "h"} {
					assert.Contains(t, gp, k, "panel %q gridPos.%s", title, k)
				}
				unit := pm["fieldConfig"].(map[string]any)["defaults"].(map[string]any)["unit"]
				assert.Contains(t, []any{"s", "percentunit", "reqps", "short", "suffix: min", "suffix: min/h"}, unit, "panel %q unit", title)
				for _, tg := range pm["targets"].([]any) {
					tm := tg.(map[string]any)
					dsm, ok := tm["datasource"].(map[string]any)
					require.True(t, ok, "every target of %q has a datasource", title)
					assert.Equal(t, "${datasource}", dsm["uid"])
					expr := tm["expr"].(string)
					for _, n := range metricName.FindAllString(expr, -1) {
						assert.True(t, names[n], "panel %q uses %s, which the exporter does not emit", title, n)
					}
					// No selector is hard-coded past the variables: every call
					// metric is filtered by $job and $app.
					if strings.Contains(expr, "cometchat_") && !strings.Contains(expr, "build_info") {
						assert.Contains(t, expr, `app=~"$app"`, "panel %q", title)
					}
					// Call metrics are deduplicated over replicas before any
					// sum, as the recording rules are.
					if strings.Contains(expr, "call_type=~") && strings.Contains(expr, "sum") {
						assert.Contains(t, expr, "max without (instance, pod)", "panel %q: %s", title, expr)
					}
					if withExemplars[title] {
						assert.Equal(t, true, tm["exemplar"], "panel %q shows exemplars", title)
					}
					legend, _ := tm["legendFormat"].(string)
					assert.NotRegexp(t, `^p[1-9]\b`, legend, "panel %q: quantile legends are p50, p90, p99", title)
				}
			}
		})
	}
	var sorted []string
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	t.Logf("metrics the exporter emits: %v", sorted)
}
