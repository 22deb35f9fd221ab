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

	"github.com/cometchat-exporter/cometchat-exporter/alerts"
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

// sel is the selector every call query uses. $instance picks one replica;
// "All" shows the apps deduplicated over replicas.
const sel = `job=~"$job", instance=~"$instance", app=~"$app", call_type=~"$call_type", mode=~"$mode", receiver_type=~"$receiver_type"`

// appSel is the selector of the exporter's per-app metrics.
const appSel = `job=~"$job", instance=~"$instance", app=~"$app"`

// q expands {SEL} and {APP} (and "{SEL," to add matchers), and DEDUP(x)
// to the max over the replica labels, as the recording rules do: two
// replicas of an app count it once, shards still add up.
func q(expr string, args ...any) string {
	expr = fmt.Sprintf(expr, args...)
	expr = strings.NewReplacer("{SEL}", "{"+sel+"}", "{SEL,", "{"+sel+", ", "{APP}", "{"+appSel+"}",
		"DEDUP(", "max without ("+alerts.ReplicaLabels+") (").Replace(expr)
	return expr
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
	instant     bool  // stat over the selected range: one instant query
	mappings    []any // value mappings
	thresholds  []any // threshold steps
	exemplars   bool  // show the exemplars (session ids of counted calls)
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
				"expr": t.expr, "legendFormat": t.legend, "range": p.kind != "table" && !p.instant, "instant": p.kind == "table" || p.instant,
				"exemplar": p.exemplars,
			})
		}
		defaults := map[string]any{"unit": p.unit}
		if p.min != nil {
			defaults["min"] = *p.min
		}
		if p.max != nil {
			defaults["max"] = *p.max
		}
		if p.mappings != nil {
			defaults["mappings"] = p.mappings
		}
		if p.thresholds != nil {
			defaults["thresholds"] = map[string]any{"mode": "absolute", "steps": p.thresholds}
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
			// No __inputs and no current value: the same file imports in
			// one step (Import dashboard, or the API) and provisions from
			// disk, and the variable starts on the default Prometheus
			// data source, whatever its name or uid. A literal
			// ${DS_PROMETHEUS} is replaced on a UI import only, and
			// breaks every panel of a provisioned copy.
			"current": map[string]any{},
			"hide":    0, "refresh": 1, "options": []any{},
		}}, vars...)},
		"panels": layout(panels),
	}
}

// appVars are on every dashboard, so that links between them keep the
// selection: the job, one replica or all (deduplicated), the app.
func appVars() []any {
	return []any{
		variable("job", "Job", "label_values(cometchat_up, job)"),
		variable("instance", "Replica", `label_values(cometchat_up{job=~"$job"}, instance)`),
		variable("app", "App", `label_values(cometchat_up{job=~"$job", instance=~"$instance"}, app)`),
	}
}

// callVars add the call labels, on the dashboards that show calls.
func callVars() []any {
	return append(appVars(),
		variable("call_type", "Call type", `label_values(cometchat_calls_total{job=~"$job", app=~"$app"}, call_type)`),
		variable("mode", "Mode", `label_values(cometchat_calls_total{job=~"$job", app=~"$app"}, mode)`),
		variable("receiver_type", "Receiver type", `label_values(cometchat_calls_total{job=~"$job", app=~"$app"}, receiver_type)`),
	)
}

// Units: minutes are shown as minutes (the counters are in seconds).
const (
	minutes        = "suffix: min"
	minutesPerHour = "suffix: min/h"
)

func overview() map[string]any {
	rate := func(metric, by, matchers string) string {
		return q(`sum%s (DEDUP(rate(%s{SEL%s}[$__rate_interval])))`, by, metric, matchers)
	}
	ratio := func(status string) string {
		return rate("cometchat_calls_total", "", `,status="`+status+`"`) + " / " + rate("cometchat_calls_total", "", "")
	}
	// A quantile of the classic buckets, or of the native histogram
	// (--collector.histograms=native): whichever Prometheus stores. Replicas
	// of a native histogram are averaged, max taking no histograms.
	quantile := func(phi, metric string) string {
		return q(`histogram_quantile(%s, sum by (le) (DEDUP(rate(%s_bucket{SEL}[$__rate_interval]))) or sum(avg without (`+alerts.ReplicaLabels+`) (rate(%s{SEL}[$__rate_interval]))))`,
			phi, metric, metric)
	}
	// inRange is a counter's increase over the dashboard's range, in
	// minutes: one instant query, right however a series restarted.
	inRange := func(metric string) string {
		return q(`sum(DEDUP(increase(%s{SEL}[$__range]))) / 60`, metric)
	}
	perHour := func(metric string) string { return rate(metric, "", "") + " * 3600 / 60" }
	red := []any{map[string]any{"matcher": map[string]any{"id": "byName", "options": "rejected"},
		"properties": []any{map[string]any{"id": "color", "value": map[string]any{"mode": "fixed", "fixedColor": "red"}}}}}
	return dashboard("cometchat-calls-overview", "CometChat Calls — Overview",
		"Call volume, outcomes, audio and video minutes (call-level and per participant) and calls in progress, from cometchat-exporter. Replicas of an app are counted once.",
		[]string{"cometchat", "calls"}, callVars(), []panel{
			{kind: "timeseries", title: "Calls per minute by final status", w: 12, h: 8, unit: "short", stacked: true, exemplars: true,
				desc:    "Calls that reached a final status, per minute, stacked by status (busy: the callee was on another call). Each call is counted once, when it finishes.",
				targets: []target{{rate("cometchat_calls_total", " by (status)", "") + " * 60", "{{status}}"}}, overrides: red},
			{kind: "timeseries", title: "Answer, unanswered, rejected, canceled and busy ratios", w: 12, h: 8, unit: "percentunit", min: zero(), max: one(), exemplars: true,
				desc: "Share of finished calls by outcome. Answered means the call connected and ended normally; busy, that the callee was on another call. Exemplars (with Prometheus' exemplar storage) name a recent call of each outcome: its session_id is ready for the Get Call request.",
				targets: []target{{ratio("ended"), "answered"}, {ratio("unanswered"), "unanswered"},
					{ratio("rejected"), "rejected"}, {ratio("canceled"), "canceled"}, {ratio("busy"), "busy"}}},
			{kind: "stat", title: "Call minutes in the selected range", w: 6, h: 5, unit: minutes, instant: true,
				desc: "Call-level audio and video minutes (totalAudioMinutes, totalVideoMinutes as the API reports them) of calls that finished within the selected range. See README, Minutes: two figures.",
				targets: []target{{inRange("cometchat_call_audio_seconds_total"), "audio"},
					{inRange("cometchat_call_video_seconds_total"), "video"}}},
			{kind: "stat", title: "Participant minutes in the selected range", w: 6, h: 5, unit: minutes, instant: true,
				desc: "The participants' audio and video minutes summed over each call (what per-user-minute billing counts) for calls that finished within the selected range.",
				targets: []target{{inRange("cometchat_participant_audio_seconds_total"), "audio"},
					{inRange("cometchat_participant_video_seconds_total"), "video"}}},
			{kind: "stat", title: "Calls in progress", w: 6, h: 5, unit: "short",
				desc:    "Calls ringing or ongoing now.",
				targets: []target{{q(`sum(DEDUP(cometchat_calls_active{SEL}))`), "calls"}}},
			{kind: "stat", title: "Participants in calls now", w: 6, h: 5, unit: "short",
				desc:    "Participant entries in state ongoing in calls in progress.",
				targets: []target{{q(`sum(DEDUP(cometchat_participants_active{SEL}))`), "participants"}}},
			{kind: "timeseries", title: "Minutes per hour: call level and participants", w: 12, h: 8, unit: minutesPerHour,
				desc: "Audio and video minutes of finished calls, as an hourly rate: the call-level figure as reported, and the sum over participants.",
				targets: []target{{perHour("cometchat_call_audio_seconds_total"), "call audio"},
					{perHour("cometchat_call_video_seconds_total"), "call video"},
					{perHour("cometchat_participant_audio_seconds_total"), "participant audio"},
					{perHour("cometchat_participant_video_seconds_total"), "participant video"}}},
			{kind: "timeseries", title: "Minutes per day", w: 12, h: 8, unit: minutes,
				desc: "Minutes of calls finished in the 24 hours before each point: call level and participants.",
				targets: []target{{q(`sum(DEDUP(increase(cometchat_call_audio_seconds_total{SEL}[1d]))) / 60`), "call audio"},
					{q(`sum(DEDUP(increase(cometchat_call_video_seconds_total{SEL}[1d]))) / 60`), "call video"},
					{q(`sum(DEDUP(increase(cometchat_participant_audio_seconds_total{SEL}[1d]))) / 60`), "participant audio"},
					{q(`sum(DEDUP(increase(cometchat_participant_video_seconds_total{SEL}[1d]))) / 60`), "participant video"}}},
			{kind: "timeseries", title: "Calls in progress by mode and type", w: 12, h: 8, unit: "short", stacked: true,
				desc:    "Calls ringing (initiated) or ongoing now, by mode and call type.",
				targets: []target{{q(`sum by (mode, call_type) (DEDUP(cometchat_calls_active{SEL}))`), "{{mode}} {{call_type}}"}}},
			{kind: "timeseries", title: "Participants in progress by mode and type", w: 12, h: 8, unit: "short", stacked: true,
				desc:    "Participants in state ongoing in calls in progress, by mode and call type.",
				targets: []target{{q(`sum by (mode, call_type) (DEDUP(cometchat_participants_active{SEL}))`), "{{mode}} {{call_type}}"}}},
			{kind: "timeseries", title: "Call duration quantiles", w: 12, h: 8, unit: "s", exemplars: true,
				desc: "Wall-clock length of ended calls (endedAt - startedAt), estimated from the histogram. Exemplars name the last call of each duration bucket.",
				targets: []target{{quantile("0.5", "cometchat_call_duration_seconds"), "p50"},
					{quantile("0.9", "cometchat_call_duration_seconds"), "p90"},
					{quantile("0.99", "cometchat_call_duration_seconds"), "p99"}}},
			{kind: "timeseries", title: "Participants per call", w: 12, h: 8, unit: "short",
				desc: "totalParticipants (joined device entries) of finished calls: the average and quantiles.",
				targets: []target{{rate("cometchat_call_participants_sum", "", "") + " / " + rate("cometchat_call_participants_count", "", ""), "average"},
					{quantile("0.5", "cometchat_call_participants"), "p50"},
					{quantile("0.9", "cometchat_call_participants"), "p90"}}},
			{kind: "timeseries", title: "Recorded and transcribed calls per minute", w: 12, h: 8, unit: "short",
				desc: "Finished calls with a recording or a transcription, and recording entries, per minute.",
				targets: []target{{rate("cometchat_calls_recorded_total", "", "") + " * 60", "recorded calls"},
					{rate("cometchat_recordings_total", "", "") + " * 60", "recordings"},
					{rate("cometchat_calls_transcribed_total", "", "") + " * 60", "transcribed calls"}}},
			{kind: "timeseries", title: "Recording minutes per hour", w: 12, h: 8, unit: minutesPerHour,
				desc:    "Recording duration of finished calls, as an hourly rate.",
				targets: []target{{perHour("cometchat_recording_seconds_total"), "recording minutes"}}},
			{kind: "timeseries", title: "Group vs 1:1 calls per minute", w: 12, h: 8, unit: "short", stacked: true,
				desc:    "Finished calls per minute by receiver type: user (1:1) or group.",
				targets: []target{{rate("cometchat_calls_total", " by (receiver_type)", "") + " * 60", "{{receiver_type}}"}}},
			// The billing period (apps with a plan): the exporter keeps the
			// period's minutes itself, in the plan's time zone.
			{kind: "stat", title: "Plan used this billing period", w: 6, h: 5, unit: "percentunit",
				desc:    "Minutes of the calls that ended in the current billing period over the minutes the plan includes, per kind (audio, video, or total for a shared pool). Apps with a billing plan only (billing_day, included_*_minutes).",
				targets: []target{{q(`sum by (app, kind) (DEDUP(cometchat_billing_period_minutes{APP})) / sum by (app, kind) (DEDUP(cometchat_plan_included_minutes{APP} > 0))`), "{{app}} {{kind}}"}}},
			{kind: "stat", title: "Minutes this billing period", w: 6, h: 5, unit: minutes,
				desc: "Minutes of the calls that ended in the current billing period (as billing_minutes chooses: call-level or participant-summed), and what the plan includes.",
				targets: []target{{q(`sum by (app, kind) (DEDUP(cometchat_billing_period_minutes{APP}))`), "{{app}} {{kind}} used"},
					{q(`sum by (app, kind) (DEDUP(cometchat_plan_included_minutes{APP}))`), "{{app}} {{kind}} included"}}},
			{kind: "stat", title: "Forecast at the period's end", w: 6, h: 5, unit: "percentunit",
				desc:    "The share of the plan the period ends with at its pace so far: used x period length / time elapsed (at least an hour), over the included minutes.",
				targets: []target{{q(`sum by (app, kind) (DEDUP(cometchat_billing_period_minutes{APP})) * on (app) group_left () max by (app) ((DEDUP(cometchat_billing_period_end_timestamp_seconds{APP}) - DEDUP(cometchat_billing_period_start_timestamp_seconds{APP})) / clamp_min(time() - DEDUP(cometchat_billing_period_start_timestamp_seconds{APP}), 3600)) / sum by (app, kind) (DEDUP(cometchat_plan_included_minutes{APP} > 0))`), "{{app}} {{kind}}"}}},
			{kind: "stat", title: "Time left in the billing period", w: 6, h: 5, unit: "s",
				desc:    "Until the period rolls over (billing_day at midnight in billing_time_zone).",
				targets: []target{{q(`max by (app) (DEDUP(cometchat_billing_period_end_timestamp_seconds{APP})) - time()`), "{{app}}"}}},
			{kind: "timeseries", title: "Billing period usage against the plan", w: 12, h: 8, unit: minutes,
				desc: "Minutes used so far in each billing period (back to zero at each rollover), and the plan's included minutes.",
				targets: []target{{q(`sum by (app, kind) (DEDUP(cometchat_billing_period_minutes{APP}))`), "{{app}} {{kind}} used"},
					{q(`sum by (app, kind) (DEDUP(cometchat_plan_included_minutes{APP}))`), "{{app}} {{kind}} included"}}},
			{kind: "timeseries", title: "Billing period daily usage", w: 12, h: 8, unit: minutes,
				desc:    "Minutes of the calls that ended in the 24 hours before each point, counted within billing periods (the rollover is a reset, not a drop).",
				targets: []target{{q(`sum by (app, kind) (DEDUP(increase(cometchat_billing_period_minutes{APP}[1d])))`), "{{app}} {{kind}}"}}},
			{kind: "timeseries", title: "Invited participants who never joined", w: 12, h: 8, unit: "short",
				desc: "Participant entries of finished calls left unanswered (invited, never joined), per minute, and their share of all entries.",
				targets: []target{{rate("cometchat_participants_total", "", `,state="unanswered"`) + " * 60", "never joined / min"},
					{rate("cometchat_participants_total", "", `,state="unanswered"`) + " / " + rate("cometchat_participants_total", "", ""), "share of participant entries"}}},
		})
}

func health() map[string]any {
	authRed := []any{map[string]any{"matcher": map[string]any{"id": "byRegexp", "options": ".*(AUTH_ERR|unauthorized|forbidden).*"},
		"properties": []any{map[string]any{"id": "color", "value": map[string]any{"mode": "fixed", "fixedColor": "red"}},
			map[string]any{"id": "custom.lineWidth", "value": 3}}}}
	latency := func(phi, name string) target {
		return target{q(`histogram_quantile(%s, sum by (le, endpoint) (rate(cometchat_exporter_api_request_duration_seconds_bucket{APP}[$__rate_interval])))`, phi), name + " {{endpoint}}"}
	}
	upMappings := []any{map[string]any{"type": "value", "options": map[string]any{
		"0": map[string]any{"text": "down", "color": "red", "index": 0},
		"1": map[string]any{"text": "up", "color": "green", "index": 1}}}}
	upThresholds := []any{map[string]any{"color": "red", "value": nil}, map[string]any{"color": "green", "value": 1}}
	return dashboard("cometchat-exporter-health", "CometChat Exporter — Health",
		"Is the exporter polling the Calls API, how fast, and what fails. One series per replica: pick one with the Replica variable.",
		[]string{"cometchat", "exporter"}, appVars(), []panel{
			{kind: "stat", title: "Up", w: 8, h: 5, unit: "short", mappings: upMappings, thresholds: upThresholds,
				desc:    "cometchat_up per app and replica: up if the last poll of the Calls API succeeded, down (red) if not.",
				targets: []target{{q(`cometchat_up{APP}`), "{{app}} {{instance}}"}}},
			{kind: "stat", title: "Age of the last successful poll", w: 8, h: 5, unit: "s",
				desc:    "Seconds since the last successful poll, per app and replica. It grows when polls fail; empty before the first.",
				targets: []target{{q(`time() - (cometchat_last_successful_poll_timestamp_seconds{APP} > 0)`), "{{app}} {{instance}}"}}},
			{kind: "stat", title: "Calls tracked", w: 8, h: 5, unit: "short",
				desc:    "Calls seen in progress and watched until they are final.",
				targets: []target{{q(`cometchat_exporter_calls_tracked{APP}`), "{{app}} {{instance}}"}}},
			{kind: "timeseries", title: "API requests by endpoint and code", w: 12, h: 8, unit: "reqps",
				desc:    "HTTP requests to the Calls API per second, all replicas together (each replica polls on its own). code=none means no answer came back (timeout, reset).",
				targets: []target{{q(`sum by (app, endpoint, code) (rate(cometchat_exporter_api_requests_total{APP}[$__rate_interval]))`), "{{app}} {{endpoint}} {{code}}"}}},
			{kind: "timeseries", title: "Errors by reason", w: 12, h: 8, unit: "reqps", overrides: authRed,
				desc:    "Failed requests and unusable data per second, by reason. AUTH_ERR_*, unauthorized and forbidden (red) mean the key is wrong or lacks scope: nothing is being counted.",
				targets: []target{{q(`sum by (app, reason) (rate(cometchat_exporter_api_errors_total{APP}[$__rate_interval]))`), "{{app}} {{reason}}"}}},
			{kind: "timeseries", title: "API latency quantiles", w: 12, h: 8, unit: "s",
				desc:    "Duration of requests to the Calls API, by endpoint.",
				targets: []target{latency("0.5", "p50"), latency("0.9", "p90"), latency("0.99", "p99")}},
			{kind: "timeseries", title: "Abandoned calls and state recovery", w: 12, h: 8, unit: "short",
				desc: "Tracked calls dropped after Get Call kept answering not found, and whether the state file had to be moved aside at start.",
				targets: []target{{q(`cometchat_exporter_calls_abandoned_total{APP}`), "{{app}} {{instance}} abandoned"},
					{q(`cometchat_exporter_state_recovered{APP}`), "{{app}} {{instance}} state recovered"}}},
			{kind: "timeseries", title: "Count check: calls listed by the API vs seen by the exporter", w: 12, h: 8, unit: "short",
				desc: "Growth over 30 minutes of the API's own call total (meta.pagination.total) and of the calls the exporter learned, and their difference (the drift behind CometChatCountDrift). A drift above 0 that lasts means listed calls go unread; retention and restarts push it below 0. See docs/count-check.md.",
				targets: []target{{q(`DEDUP(delta(cometchat_api_calls_listed{APP}[30m]))`), "{{app}} {{instance}} listed"},
					{q(`DEDUP(increase(cometchat_exporter_calls_seen_total{APP}[30m]))`), "{{app}} {{instance}} seen"},
					{q(`DEDUP(delta(cometchat_api_calls_listed{APP}[30m])) - DEDUP(increase(cometchat_exporter_calls_seen_total{APP}[30m]))`), "{{app}} {{instance}} drift"}}},
			{kind: "timeseries", title: "API anomalies and pages read around", w: 12, h: 8, unit: "short",
				desc: "List entries against the API reference, by kind (an entry out of order, a timestamp in milliseconds, no sessionId, pagination at odds with the page, a call listed late), and list pages that kept failing and were read around, over the last hour. They cost requests, never calls, except no_session_id entries, which cannot be counted. See docs/anomalies.md.",
				targets: []target{{q(`sum by (app, kind) (increase(cometchat_api_anomalies_total{APP}[1h]))`), "{{app}} {{kind}}"},
					{q(`sum by (app) (increase(cometchat_api_pages_skipped_total{APP}[1h]))`), "{{app}} pages read around"}}},
			{kind: "table", title: "Build info", w: 24, h: 5, unit: "short",
				desc:    "Version of each exporter instance.",
				targets: []target{{`cometchat_exporter_build_info{job=~"$job", instance=~"$instance"}`, "{{version}}"}}},
		})
}
