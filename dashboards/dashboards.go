// Package dashboards builds the Grafana dashboards. The JSON files beside
// this one are generated from it (go test ./dashboards -update) and a test
// fails when they are stale. They import as is, grafana.com style, with a
// datasource input and variables for job, app, call_type, mode and
// receiver_type.
package dashboards

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Files maps each dashboard file name to its JSON model.
func Files() map[string]map[string]any {
	return map[string]map[string]any{
		"cometchat-calls-overview.json":  overview(),
		"cometchat-exporter-health.json": health(),
	}
}

// Marshal renders a dashboard as committed.
func Marshal(d map[string]any) ([]byte, error) {
	b, err := json.MarshalIndent(d, "", "  ")
	return append(b, '\n'), err
}

const ds = "${datasource}"

var datasource = map[string]any{"type": "prometheus", "uid": ds}

// sel is the selector every call query uses.
const sel = `job=~"$job", app=~"$app", call_type=~"$call_type", mode=~"$mode", receiver_type=~"$receiver_type"`

// appSel is the selector of the exporter's per-app metrics.
const appSel = `job=~"$job", app=~"$app"`

func q(expr string, args ...any) string {
	return strings.NewReplacer("{SEL}", "{"+sel+"}", "{SEL,", "{"+sel+", ", "{APP}", "{"+appSel+"}").Replace(fmt.Sprintf(expr, args...))
}

type target struct{ expr, legend string }

type panel struct {
	kind        string // timeseries, stat, table
	title, desc string
	unit        string
	w, h        int
	targets     []target
	stacked     bool
	calcs       string // stat reducer
	overrides   []any
	min         *float64
	max         *float64
}

func zero() *float64 { v := 0.0; return &v }
func one() *float64  { v := 1.0; return &v }

// layout assigns ids and grid positions row by row, 24 columns wide.
func layout(panels []panel) []any {
	var out []any
	x, y, rowH := 0, 0, 0
	for i, p := range panels {
		if x+p.w > 24 {
			x, y, rowH = 0, y+rowH, 0
		}
		var targets []any
		for j, t := range p.targets {
			targets = append(targets, map[string]any{
				"refId": string(rune('A' + j)), "datasource": datasource,
				"expr": t.expr, "legendFormat": t.legend, "range": p.kind != "table", "instant": p.kind == "table",
			})
		}
		defaults := map[string]any{"unit": p.unit}
		if p.min != nil {
			defaults["min"] = *p.min
		}
		if p.max != nil {
			defaults["max"] = *p.max
		}
		if p.kind == "timeseries" {
			custom := map[string]any{"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never"}
			if p.stacked {
				custom["stacking"] = map[string]any{"mode": "normal", "group": "A"}
				custom["fillOpacity"] = 60
			}
			defaults["custom"] = custom
		}
		overrides := p.overrides
		if overrides == nil {
			overrides = []any{}
		}
		options := map[string]any{}
		switch p.kind {
		case "timeseries":
			options = map[string]any{"legend": map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": true},
				"tooltip": map[string]any{"mode": "multi", "sort": "desc"}}
		case "stat":
			calcs := p.calcs
			if calcs == "" {
				calcs = "lastNotNull"
			}
			options = map[string]any{"reduceOptions": map[string]any{"calcs": []string{calcs}, "fields": "", "values": false},
				"colorMode": "value", "graphMode": "area", "textMode": "auto"}
		case "table":
			options = map[string]any{"showHeader": true}
		}
		out = append(out, map[string]any{
			"id": i + 1, "type": p.kind, "title": p.title, "description": p.desc,
			"datasource": datasource, "gridPos": map[string]any{"x": x, "y": y, "w": p.w, "h": p.h},
			"fieldConfig": map[string]any{"defaults": defaults, "overrides": overrides},
			"options":     options, "targets": targets,
		})
		x += p.w
		rowH = max(rowH, p.h)
	}
	return out
}

func variable(name, label, query string) map[string]any {
	return map[string]any{
		"name": name, "label": label, "type": "query", "datasource": datasource,
		"query": map[string]any{"query": query, "refId": name}, "definition": query,
		"includeAll": true, "multi": true, "allValue": ".*", "refresh": 2, "sort": 1, "hide": 0,
		"current": map[string]any{"selected": true, "text": []string{"All"}, "value": []string{"$__all"}},
		"options": []any{},
	}
}

func dashboard(uid, title, desc string, tags []string, vars []any, panels []panel) map[string]any {
	return map[string]any{
		"__inputs": []any{map[string]any{"name": "DS_PROMETHEUS", "label": "Prometheus", "description": "",
			"type": "datasource", "pluginId": "prometheus", "pluginName": "Prometheus"}},
		"__requires": []any{
			map[string]any{"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
			map[string]any{"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
			map[string]any{"type": "panel", "id": "timeseries", "name": "Time series", "version": ""},
			map[string]any{"type": "panel", "id": "stat", "name": "Stat", "version": ""},
			map[string]any{"type": "panel", "id": "table", "name": "Table", "version": ""},
		},
		"uid": uid, "title": title, "description": desc, "tags": tags,
		"editable": true, "graphTooltip": 1, "refresh": "30s", "schemaVersion": 39, "version": 1,
		"time": map[string]any{"from": "now-6h", "to": "now"}, "timezone": "browser",
		"annotations": map[string]any{"list": []any{}},
		"links": []any{map[string]any{"title": "CometChat dashboards", "type": "dashboards", "tags": []string{"cometchat"},
			"asDropdown": true, "includeVars": true, "keepTime": true}},
		"templating": map[string]any{"list": append([]any{map[string]any{
			"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
			// On a grafana.com-style import, Grafana replaces ${DS_PROMETHEUS}
			// with the data source picked for the __inputs entry.
			"current": map[string]any{"text": "${DS_PROMETHEUS}", "value": "${DS_PROMETHEUS}"},
			"hide":    0, "refresh": 1, "options": []any{},
		}}, vars...)},
		"panels": layout(panels),
	}
}

// vars are the same on every dashboard, so that links between them keep
// the selection.
func vars() []any {
	return []any{
		variable("job", "Job", "label_values(cometchat_up, job)"),
		variable("app", "App", `label_values(cometchat_up{job=~"$job"}, app)`),
		variable("call_type", "Call type", `label_values(cometchat_calls_total{job=~"$job", app=~"$app"}, call_type)`),
		variable("mode", "Mode", `label_values(cometchat_calls_total{job=~"$job", app=~"$app"}, mode)`),
		variable("receiver_type", "Receiver type", `label_values(cometchat_calls_total{job=~"$job", app=~"$app"}, receiver_type)`),
	}
}

func overview() map[string]any {
	ratio := func(status string) string {
		return q(`sum(rate(cometchat_calls_total{SEL,status="%s"}[$__rate_interval])) / sum(rate(cometchat_calls_total{SEL}[$__rate_interval]))`, status)
	}
	quantile := func(phi, metric, by string) string {
		return q(`histogram_quantile(%s, sum by (le%s) (rate(%s_bucket{SEL}[$__rate_interval])))`, phi, by, metric)
	}
	red := []any{map[string]any{"matcher": map[string]any{"id": "byName", "options": "rejected"},
		"properties": []any{map[string]any{"id": "color", "value": map[string]any{"mode": "fixed", "fixedColor": "red"}}}}}
	return dashboard("cometchat-calls-overview", "CometChat Calls — Overview",
		"Call volume, outcomes, billed audio and video minutes and calls in progress, from cometchat-exporter.",
		[]string{"cometchat", "calls"}, vars(), []panel{
			{kind: "timeseries", title: "Calls per minute by final status", w: 12, h: 8, unit: "short", stacked: true,
				desc:    "Calls that reached a final status, per minute, stacked by status. Each call is counted once, when it finishes.",
				targets: []target{{q(`sum by (status) (rate(cometchat_calls_total{SEL}[$__rate_interval])) * 60`), "{{status}}"}}, overrides: red},
			{kind: "timeseries", title: "Answer, unanswered, rejected, canceled and busy ratios", w: 12, h: 8, unit: "percentunit", min: zero(), max: one(),
				desc: "Share of finished calls by outcome. Answered means the call connected and ended normally; busy, that the callee was on another call.",
				targets: []target{{ratio("ended"), "answered"}, {ratio("unanswered"), "unanswered"},
					{ratio("rejected"), "rejected"}, {ratio("canceled"), "canceled"}, {ratio("busy"), "busy"}}},
			{kind: "stat", title: "Audio minutes in the selected range", w: 6, h: 5, unit: "m", calcs: "delta",
				desc:    "Billed audio participant-minutes of calls that finished within the selected time range (the increase of the counter over the range). Use this for billing checks.",
				targets: []target{{q(`sum(cometchat_call_audio_seconds_total{SEL}) / 60`), "audio"}}},
			{kind: "stat", title: "Video minutes in the selected range", w: 6, h: 5, unit: "m", calcs: "delta",
				desc:    "Billed video participant-minutes of calls that finished within the selected time range.",
				targets: []target{{q(`sum(cometchat_call_video_seconds_total{SEL}) / 60`), "video"}}},
			{kind: "stat", title: "Calls in progress", w: 6, h: 5, unit: "short",
				desc:    "Calls ringing or ongoing now.",
				targets: []target{{q(`sum(cometchat_calls_active{SEL})`), "calls"}}},
			{kind: "stat", title: "Participants in calls now", w: 6, h: 5, unit: "short",
				desc:    "Participant entries in state ongoing in calls in progress.",
				targets: []target{{q(`sum(cometchat_participants_active{SEL})`), "participants"}}},
			{kind: "timeseries", title: "Audio and video minutes per hour", w: 12, h: 8, unit: "m",
				desc: "Participant-minutes of finished calls, as an hourly rate. The counters are in seconds; shown in minutes.",
				targets: []target{{q(`sum(rate(cometchat_call_audio_seconds_total{SEL}[$__rate_interval])) * 3600 / 60`), "audio"},
					{q(`sum(rate(cometchat_call_video_seconds_total{SEL}[$__rate_interval])) * 3600 / 60`), "video"}}},
			{kind: "timeseries", title: "Audio and video minutes per day", w: 12, h: 8, unit: "m",
				desc: "Participant-minutes of calls finished in the 24 hours before each point.",
				targets: []target{{q(`sum(increase(cometchat_call_audio_seconds_total{SEL}[1d])) / 60`), "audio"},
					{q(`sum(increase(cometchat_call_video_seconds_total{SEL}[1d])) / 60`), "video"}}},
			{kind: "timeseries", title: "Calls in progress by mode and type", w: 12, h: 8, unit: "short", stacked: true,
				desc:    "Calls ringing (initiated) or ongoing now, by mode and call type.",
				targets: []target{{q(`sum by (mode, call_type) (cometchat_calls_active{SEL})`), "{{mode}} {{call_type}}"}}},
			{kind: "timeseries", title: "Participants in progress by mode and type", w: 12, h: 8, unit: "short", stacked: true,
				desc:    "Participants in state ongoing in calls in progress, by mode and call type.",
				targets: []target{{q(`sum by (mode, call_type) (cometchat_participants_active{SEL})`), "{{mode}} {{call_type}}"}}},
			{kind: "timeseries", title: "Call duration quantiles", w: 12, h: 8, unit: "s",
				desc: "Wall-clock length of ended calls (endedAt - startedAt), estimated from the histogram.",
				targets: []target{{quantile("0.5", "cometchat_call_duration_seconds", ""), "p50"},
					{quantile("0.9", "cometchat_call_duration_seconds", ""), "p90"},
					{quantile("0.99", "cometchat_call_duration_seconds", ""), "p99"}}},
			{kind: "timeseries", title: "Participants per call", w: 12, h: 8, unit: "short",
				desc: "totalParticipants (joined device entries) of finished calls: the average and quantiles.",
				targets: []target{{q(`sum(rate(cometchat_call_participants_sum{SEL}[$__rate_interval])) / sum(rate(cometchat_call_participants_count{SEL}[$__rate_interval]))`), "average"},
					{quantile("0.5", "cometchat_call_participants", ""), "p50"},
					{quantile("0.9", "cometchat_call_participants", ""), "p90"}}},
			{kind: "timeseries", title: "Recorded calls and recording minutes", w: 12, h: 8, unit: "short",
				desc: "Finished calls with a recording, per minute, and recording minutes per hour.",
				targets: []target{{q(`sum(rate(cometchat_calls_recorded_total{SEL}[$__rate_interval])) * 60`), "recorded calls / min"},
					{q(`sum(rate(cometchat_recording_seconds_total{SEL}[$__rate_interval])) * 3600 / 60`), "recording minutes / hour"},
					{q(`sum(rate(cometchat_recordings_total{SEL}[$__rate_interval])) * 60`), "recordings / min"}}},
			{kind: "timeseries", title: "Group vs 1:1 calls per minute", w: 12, h: 8, unit: "short", stacked: true,
				desc:    "Finished calls per minute by receiver type: user (1:1) or group.",
				targets: []target{{q(`sum by (receiver_type) (rate(cometchat_calls_total{SEL}[$__rate_interval])) * 60`), "{{receiver_type}}"}}},
			{kind: "timeseries", title: "Invited participants who never joined", w: 24, h: 8, unit: "short",
				desc: "Participant entries of finished calls left unanswered (invited, never joined), per minute, and their share of all entries.",
				targets: []target{{q(`sum(rate(cometchat_participants_total{SEL,state="unanswered"}[$__rate_interval])) * 60`), "never joined / min"},
					{q(`sum(rate(cometchat_participants_total{SEL,state="unanswered"}[$__rate_interval])) / sum(rate(cometchat_participants_total{SEL}[$__rate_interval]))`), "share of participant entries"}}},
		})
}

func health() map[string]any {
	authRed := []any{map[string]any{"matcher": map[string]any{"id": "byRegexp", "options": ".*AUTH_ERR.*"},
		"properties": []any{map[string]any{"id": "color", "value": map[string]any{"mode": "fixed", "fixedColor": "red"}},
			map[string]any{"id": "custom.lineWidth", "value": 3}}}}
	latency := func(phi string) target {
		return target{q(`histogram_quantile(%s, sum by (le, endpoint) (rate(cometchat_exporter_api_request_duration_seconds_bucket{APP}[$__rate_interval])))`, phi), "p" + strings.TrimPrefix(phi, "0.") + " {{endpoint}}"}
	}
	return dashboard("cometchat-exporter-health", "CometChat Exporter — Health",
		"Is the exporter polling the Calls API, how fast, and what fails.",
		[]string{"cometchat", "exporter"}, vars(), []panel{
			{kind: "stat", title: "Up", w: 8, h: 5, unit: "short",
				desc:    "cometchat_up per app: 1 if the last poll of the Calls API succeeded.",
				targets: []target{{q(`cometchat_up{APP}`), "{{app}}"}}},
			{kind: "stat", title: "Age of the last successful poll", w: 8, h: 5, unit: "s",
				desc:    "Seconds since the last successful poll, per app. It grows when polls fail.",
				targets: []target{{q(`time() - cometchat_last_successful_poll_timestamp_seconds{APP}`), "{{app}}"}}},
			{kind: "stat", title: "Calls tracked", w: 8, h: 5, unit: "short",
				desc:    "Calls seen in progress and watched until they are final.",
				targets: []target{{q(`cometchat_exporter_calls_tracked{APP}`), "{{app}}"}}},
			{kind: "timeseries", title: "API requests by endpoint and code", w: 12, h: 8, unit: "reqps",
				desc:    "HTTP requests to the Calls API per second. code=none means no answer came back (timeout, reset).",
				targets: []target{{q(`sum by (app, endpoint, code) (rate(cometchat_exporter_api_requests_total{APP}[$__rate_interval]))`), "{{app}} {{endpoint}} {{code}}"}}},
			{kind: "timeseries", title: "Errors by reason", w: 12, h: 8, unit: "reqps", overrides: authRed,
				desc:    "Failed requests and unusable data per second, by reason. AUTH_ERR_* (red) means the key is wrong or lacks scope: nothing is being counted.",
				targets: []target{{q(`sum by (app, reason) (rate(cometchat_exporter_api_errors_total{APP}[$__rate_interval]))`), "{{app}} {{reason}}"}}},
			{kind: "timeseries", title: "API latency quantiles", w: 12, h: 8, unit: "s",
				desc:    "Duration of requests to the Calls API, by endpoint.",
				targets: []target{latency("0.5"), latency("0.9"), latency("0.99")}},
			{kind: "timeseries", title: "Abandoned calls and state recovery", w: 12, h: 8, unit: "short",
				desc: "Tracked calls dropped after Get Call kept answering not found, and whether the state file had to be moved aside at start.",
				targets: []target{{q(`cometchat_exporter_calls_abandoned_total{APP}`), "{{app}} abandoned"},
					{q(`cometchat_exporter_state_recovered{APP}`), "{{app}} state recovered"}}},
			{kind: "table", title: "Build info", w: 24, h: 5, unit: "short",
				desc:    "Version of each exporter instance.",
				targets: []target{{`cometchat_exporter_build_info{job=~"$job"}`, "{{version}}"}}},
		})
}
