package alerts

import (
	"bytes"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// DefaultSelector picks the exporter's series in the committed rule files.
// Regenerate them for another scrape job with
//
//	go run ./alerts/gen -selector 'job="my-job"' -out DIR
const DefaultSelector = `job="cometchat"`

// ReplicaLabels are the labels by which two replicas of one exporter
// differ. Every rule about calls takes the max over them before it
// aggregates, so that two replicas counting the same app count it once,
// while shards (different apps on different replicas) still add up.
const ReplicaLabels = "instance, pod"

// Files are the rule files this package renders, by name.
var Files = map[string]func(selector string) []Group{
	"cometchat.rules.yml":  RecordingRules,
	"cometchat.alerts.yml": AlertingRules,
}

// Group is a Prometheus rule group.
type Group struct {
	Name  string
	Rules []Rule
}

// Rule is a recording or an alerting rule. Why is rendered as the rule's
// comment.
type Rule struct {
	Record, Alert string
	Expr          string
	For           string
	Labels        map[string]string
	Annotations   map[string]string
	Why           string
}

// rulesBuilder expands the placeholders of rule expressions:
// {SEL} is the selector, {SEL, adds matchers to it, and dedup(x) takes the
// max over the replica labels.
type rulesBuilder struct{ sel string }

func (b rulesBuilder) x(expr string, args ...any) string {
	expr = fmt.Sprintf(expr, args...)
	return strings.NewReplacer("{SEL}", "{"+b.sel+"}", "{SEL, ", "{"+b.sel+", ").Replace(expr)
}

// dedup is the max over the replicas of the same series.
func dedup(expr string) string { return "max without (" + ReplicaLabels + ") (" + expr + ")" }

// perApp sums a counter's deduplicated increase or rate by job and app
// (plus extra labels).
func (b rulesBuilder) perApp(by, fn, metric, matchers, window string) string {
	if matchers != "" {
		matchers = ", " + matchers
	}
	return b.x("sum by (%s) (%s)", by, dedup(b.x("%s(%s{SEL%s}[%s])", fn, metric, matchers, window)))
}

// RecordingRules are the recording rules, in base units, named
// level:metric:operations.
func RecordingRules(selector string) []Group {
	b := rulesBuilder{selector}
	rec := func(name, expr, why string) Rule { return Rule{Record: name, Expr: expr, Why: why} }
	ratio := func(status, window string) string {
		return b.perApp("job, app", "increase", "cometchat_calls_total", fmt.Sprintf(`status="%s"`, status), window) +
			"\n/ " + b.perApp("job, app", "increase", "cometchat_calls_total", "", window)
	}
	rules := []Rule{
		rec("job_app:cometchat_calls:rate5m", b.perApp("job, app", "rate", "cometchat_calls_total", "", "5m"),
			"Finished calls per second, overall and by status."),
		rec("job_app_status:cometchat_calls:rate5m", b.perApp("job, app, status", "rate", "cometchat_calls_total", "", "5m"), ""),
		rec("job_app:cometchat_calls:rate1h", b.perApp("job, app", "rate", "cometchat_calls_total", "", "1h"), ""),
		rec("job_app:cometchat_calls:increase15m", b.perApp("job, app", "increase", "cometchat_calls_total", "", "15m"),
			"Call volume over the spike alerts' window, to require a minimum."),
		rec("job_app:cometchat_calls_answered:ratio15m", ratio("ended", "15m"),
			"Outcome ratios over 15 minutes (the alert window) and one day (the\nbaseline each app is compared with)."),
		rec("job_app:cometchat_calls_unanswered:ratio15m", ratio("unanswered", "15m"), ""),
		rec("job_app:cometchat_calls_unanswered:ratio1d", ratio("unanswered", "1d"), ""),
		rec("job_app:cometchat_calls_rejected:ratio15m", ratio("rejected", "15m"), ""),
		rec("job_app:cometchat_calls_rejected:ratio1d", ratio("rejected", "1d"), ""),
		rec("job_app:cometchat_calls_canceled:ratio15m", ratio("canceled", "15m"), ""),
		rec("job_app:cometchat_calls_busy:ratio15m", ratio("busy", "15m"), ""),
	}
	for i, m := range []string{"cometchat_call_audio_seconds", "cometchat_call_video_seconds",
		"cometchat_participant_audio_seconds", "cometchat_participant_video_seconds"} {
		why := ""
		if i == 0 {
			why = "Minutes, per second and in seconds (base units; a dashboard shows them\nas minutes per hour). call_*: the call-level figure as reported;\nparticipant_*: the sum over participants (see README, Minutes)."
		}
		rules = append(rules, rec("job_app:"+m+":rate1h", b.perApp("job, app", "rate", m+"_total", "", "1h"), why))
	}
	rules = append(rules, rec("job_app:cometchat_count_drift:delta30m",
		b.x("sum by (job, app) (%s)\n- sum by (job, app) (%s)",
			dedup(b.x("delta(cometchat_api_calls_listed{SEL}[30m])")),
			dedup(b.x("increase(cometchat_exporter_calls_seen_total{SEL}[30m])"))),
		"The count checks itself: how many more calls the API's own total\n(meta.pagination.total) grew by over 30 minutes than the exporter\nlearned. Near 0 or below when every listed call is read; calls the\nAPI drops (retention) and restarts only push it down (see\ndocs/count-check.md)."))
	// Billing: per app and kind, the replicas' max (one app's figure is
	// the same on each), then the sum over the kinds' series of one app.
	used := b.x("sum by (job, app, kind) (%s)", dedup(b.x("cometchat_billing_period_minutes{SEL}")))
	rules = append(rules,
		rec("job_app_kind:cometchat_plan_used:ratio",
			used+"\n/ "+b.x("sum by (job, app, kind) (%s)", dedup(b.x("cometchat_plan_included_minutes{SEL} > 0"))),
			"The fraction of the plan's minutes used this billing period, per kind\n(audio, video, or total for a pool), where the plan says how many."),
		rec("job_app_kind:cometchat_billing_period_minutes:forecast",
			used+"\n* on (job, app) group_left ()\n"+b.x("max by (job, app) (\n  (cometchat_billing_period_end_timestamp_seconds{SEL} - cometchat_billing_period_start_timestamp_seconds{SEL})\n  / clamp_min(time() - cometchat_billing_period_start_timestamp_seconds{SEL}, 3600)\n)"),
			"The minutes the period will end with at the pace so far: used x\nperiod length / time elapsed (an hour at least, so that the first\nminutes of a period do not project to infinity)."),
	)
	return []Group{{Name: "cometchat.recording", Rules: rules}}
}

// RunbookURL is the runbook the alerts and the landing page link to.
const RunbookURL = "https://github.com/cometchat-exporter/cometchat-exporter/blob/main/docs/runbook.md"

const runbook = RunbookURL + "#"

func alert(name, expr, forDur, severity, summary, desc, why string) Rule {
	return Rule{Alert: name, Expr: expr, For: forDur, Labels: map[string]string{"severity": severity},
		Annotations: map[string]string{"summary": summary, "description": desc, "runbook_url": runbook + strings.ToLower(name)},
		Why:         why}
}

// AlertingRules are the alerts. Alerts about calls and the API carry job
// and app, the same with one replica or two; alerts about one exporter
// process carry its instance.
func AlertingRules(selector string) []Group {
	b := rulesBuilder{selector}
	// worst: a condition per exporter process and app, then the
	// worst replica per app.
	worst := func(expr string) string {
		return "max by (job, app) (\n  " + strings.ReplaceAll(expr, "\n", "\n  ") + "\n)"
	}
	rules := []Rule{
		alert("CometChatExporterDown", b.x(`absent(up{SEL} == 1)`), "5m", "critical",
			"No CometChat exporter is being scraped.",
			"No target of the CometChat exporter ("+strings.ReplaceAll(selector, `"`, "")+") has been scraped successfully for 5 minutes; no app's calls are counted and the call alerts cannot fire.",
			"No replica is up, or none is scraped at all: nothing is counted and\nevery other alert is blind, so this pages (critical). One replica of\nseveral down is CometChatExporterInstanceDown, a warning, as\nkubernetes-mixin's TargetDown is: the others still count.\n5 minutes: longer than a restart or a rolling deploy."),
		alert("CometChatExporterInstanceDown", b.x(`up{SEL} == 0`), "5m", "warning",
			"A CometChat exporter instance cannot be scraped.",
			"Prometheus could not scrape {{ $labels.instance }} (job {{ $labels.job }}) for 5 minutes. Other replicas, if any, still count.",
			"One target down. With a single replica CometChatExporterDown fires\ntoo."),
		alert("CometChatAPIAuthFailing", worst(b.x(`(sum by (job, instance, pod, app) (increase(cometchat_exporter_api_errors_total{SEL, reason=~"AUTH_ERR_.*|unauthorized|forbidden"}[20m])) > 0)
and on (job, instance, pod, app) (cometchat_up{SEL} == 0)`)), "5m", "critical",
			"The CometChat API refuses the exporter's API key.",
			"App {{ $labels.app }}: {{ $value | humanize }} requests failed with an auth error (AUTH_ERR_*, 401 or 403) in the last 20 minutes and polls are failing; calls are not being counted.",
			"Auth errors while polls fail: the key is wrong, revoked or lacks\nscope. A single refused request during a key rotation does not page,\nbecause cometchat_up recovers at the next poll. The 20-minute window\nholds two polls at the longest interval (10m), so the condition\nholds between them."),
		alert("CometChatPollStale", b.x(`min by (job, app) (
  (timestamp(cometchat_last_successful_poll_timestamp_seconds{SEL}) - cometchat_last_successful_poll_timestamp_seconds{SEL})
  and cometchat_last_successful_poll_timestamp_seconds{SEL} > 0
)
> clamp_min(5 * max by (job, app) (cometchat_exporter_poll_interval_seconds{SEL}), 60)`), "5m", "warning",
			"The CometChat exporter has not polled the Calls API successfully for several intervals.",
			"App {{ $labels.app }}: the last successful poll of any replica was {{ $value | humanizeDuration }} ago; counters are frozen until polls succeed again.",
			"Five poll intervals (at least a minute) without a successful poll on\nany replica, held for 5 more minutes: a few failed polls are retried\nand cost nothing, a sustained failure does. The age is taken at\nscrape time (timestamp() of the selector itself: of any other\nexpression it is the evaluation time), not at evaluation, so the\nscrape interval (10s to 2m) adds nothing to it: with time() a 2s\npoll scraped every 30s looked 30s stale."),
		alert("CometChatNeverPolled", b.x(`max by (job, app) (cometchat_last_successful_poll_timestamp_seconds{SEL}) == 0`), "15m", "warning",
			"The CometChat exporter has not completed a successful poll since it started.",
			"App {{ $labels.app }}: no replica has completed a successful poll since it started, 15 minutes or more ago.",
			"Before the first successful poll the timestamp is 0, which\nCometChatPollStale leaves out rather than say \"20,000 days ago\"."),
		alert("CometChatAPIRateLimited", worst(b.x(`sum by (job, instance, pod, app) (increase(cometchat_exporter_api_errors_total{SEL, reason="rate_limited"}[15m]))`))+" > 3", "15m", "warning",
			"The CometChat API is rate-limiting the exporter.",
			"App {{ $labels.app }}: {{ $value | humanize }} requests were answered 429 in the last 15 minutes.",
			"The client backs off on 429 by itself; a few are harmless. More\nthan 3 in 15 minutes, for 15 minutes, means the app's budget is\nbeing exhausted (by this exporter or other API users)."),
		alert("CometChatUnansweredCallsSpike", `job_app:cometchat_calls_unanswered:ratio15m > job_app:cometchat_calls_unanswered:ratio1d + 0.2
and job_app:cometchat_calls:increase15m >= 30`, "10m", "warning",
			"Far more CometChat calls than usual go unanswered.",
			"App {{ $labels.app }}: {{ $value | humanizePercentage }} of the calls of the last 15 minutes went unanswered, more than 20 points above its one-day ratio.",
			"The 15-minute unanswered ratio is 20 points above the app's own\none-day ratio, with at least 30 finished calls in the window so\nthat 1 unanswered call out of 2 at night does not page anyone."),
		alert("CometChatRejectedCallsSpike", `job_app:cometchat_calls_rejected:ratio15m > job_app:cometchat_calls_rejected:ratio1d + 0.2
and job_app:cometchat_calls:increase15m >= 30`, "10m", "warning",
			"Far more CometChat calls than usual are rejected.",
			"App {{ $labels.app }}: {{ $value | humanizePercentage }} of the calls of the last 15 minutes were rejected, more than 20 points above its one-day ratio.",
			"Same shape as the unanswered alert, for rejected calls."),
		alert("CometChatCallsDropped", `job_app:cometchat_calls:rate1h / (job_app:cometchat_calls:rate1h offset 1w) < 0.3
and (job_app:cometchat_calls:rate1h offset 1w) * 3600 >= 60`, "30m", "warning",
			"CometChat call volume collapsed compared with the same time last week.",
			"App {{ $labels.app }}: calls over the last hour are {{ $value | humanizePercentage }} of the same hour a week ago.",
			"Hourly call volume below 30% of the same hour a week ago, for 30\nminutes, when that hour last week had at least 60 calls: weekly\npatterns (nights, weekends) compare like with like, and quiet\napps do not page."),
		alert("CometChatStateWritesFailing", b.x(`time() - cometchat_exporter_state_last_write_success_timestamp_seconds{SEL} > 600
and on (job, instance, pod, app) increase(cometchat_exporter_state_write_failures_total{SEL}[30m]) > 0`), "5m", "warning",
			"The CometChat exporter cannot write its state file.",
			"{{ $labels.instance }}, app {{ $labels.app }}: state writes keep failing; the last one that succeeded was {{ $value | humanizeDuration }} ago. The call counters stay at their last saved values until a write succeeds; nothing is lost while the process runs.",
			"Writes failing (in a 30-minute window: polls 10 minutes apart still\nshow), none succeeding for 10 minutes (a full or read-only\ndisk). The counters freeze rather than publish what a restart would\nlose, so a graph flattens; this says why."),
		alert("CometChatConfigReloadFailed", b.x(`max_over_time(cometchat_exporter_config_last_reload_successful{SEL}[5m]) == 0`), "10m", "warning",
			"The CometChat exporter's configuration reload failed.",
			"{{ $labels.instance }}: the last reload of --config.file failed; the previous configuration is still running.",
			"As Prometheus' own mixin does: a failed reload keeps the old apps\nrunning, so it is a warning, held 10 minutes to let a fix land."),
		alert("CometChatStateRecovered", b.x(`cometchat_exporter_state_recovered{SEL} == 1`), "0m", "info",
			"The CometChat exporter started over from an unusable state file.",
			"{{ $labels.instance }}, app {{ $labels.app }}: the state file could not be read at start and was moved aside; counting started fresh, and calls that finished while the exporter was down were not counted.",
			"Information: nothing to fix now, but the counters restarted and a\ngap may show in billing figures."),
		alert("CometChatCountDrift", `job_app:cometchat_count_drift:delta30m > 2`, "15m", "warning",
			"The CometChat API lists calls the exporter has not read.",
			"App {{ $labels.app }}: over the last 30 minutes the API's own call total grew by {{ $value | humanize }} more than the calls the exporter learned. Calls may be going uncounted; see cometchat_api_anomalies_total and cometchat_api_pages_skipped_total.",
			"The API's total grew by more than 2 calls beyond what was learned,\nfor 15 minutes (a page read around is read again within minutes; an\nentry without sessionId shows here once). Growth only: retention and\nrestarts lower the difference, never raise it."),
		alert("CometChatPlanUsageHigh", `job_app_kind:cometchat_plan_used:ratio >= 0.8 < 1`, "15m", "info",
			"A CometChat app has used most of its plan's minutes this billing period.",
			"App {{ $labels.app }}: {{ $value | humanizePercentage }} of the plan's {{ $labels.kind }} minutes are used this billing period.",
			"80% of the included minutes: time to look before the invoice does.\nInformation, as a forecast alert warns earlier when the pace says so."),
		alert("CometChatPlanExhausted", `job_app_kind:cometchat_plan_used:ratio >= 1`, "5m", "warning",
			"A CometChat app has used all of its plan's minutes this billing period.",
			"App {{ $labels.app }}: {{ $value | humanizePercentage }} of the plan's {{ $labels.kind }} minutes are used this billing period; further minutes are billed beyond the plan.",
			"Every included minute used: from here minutes cost extra until the\nperiod rolls over (the ratio then starts again from 0)."),
		alert("CometChatPlanForecastExceeded", b.x(`job_app_kind:cometchat_billing_period_minutes:forecast
/ on (job, app, kind) sum by (job, app, kind) (%s)
> 1
and on (job, app, kind) job_app_kind:cometchat_plan_used:ratio < 1
and on (job, app) max by (job, app) (time() - cometchat_billing_period_start_timestamp_seconds{SEL}) > 3 * 86400`, dedup(b.x("cometchat_plan_included_minutes{SEL} > 0"))), "1h", "warning",
			"A CometChat app is on course to use more minutes than its plan includes.",
			"App {{ $labels.app }}: at this period's pace so far, it ends with {{ $value | humanizePercentage }} of the plan's {{ $labels.kind }} minutes.",
			"A linear forecast to the period's end above the plan, once three days\nof the period have passed (a busy first day says little) and for an\nhour, while the plan is not yet used up (CometChatPlanExhausted\nsays that)."),
		alert("CometChatCallsAbandoned", worst(b.x(`increase(cometchat_exporter_calls_abandoned_total{SEL}[1h])`))+" > 0", "0m", "warning",
			"The CometChat exporter gave up on calls it was tracking.",
			"App {{ $labels.app }}: {{ $value | humanize }} calls in progress were dropped uncounted in the last hour because Get Call kept answering not found.",
			"Each abandoned call is missing from the counters: a call deleted\nupstream, or an API answering not found for calls it lists."),
	}
	return []Group{{Name: "cometchat.alerts", Rules: rules}}
}

// Render renders rule groups as a rule file, with a header comment and
// each rule's Why above it.
func Render(header string, groups []Group) ([]byte, error) {
	doc := mapping()
	var gs []*yaml.Node
	for _, g := range groups {
		gn := mapping()
		add(gn, "name", scalar(g.Name))
		var rs []*yaml.Node
		for _, r := range g.Rules {
			rn := mapping()
			if r.Record != "" {
				add(rn, "record", scalar(r.Record))
			} else {
				add(rn, "alert", scalar(r.Alert))
			}
			add(rn, "expr", scalar(r.Expr))
			if r.Alert != "" {
				add(rn, "for", scalar(r.For))
				add(rn, "labels", stringMap(r.Labels, "severity"))
				add(rn, "annotations", stringMap(r.Annotations, "summary", "description", "runbook_url"))
			}
			rn.HeadComment = r.Why
			rs = append(rs, rn)
		}
		add(gn, "rules", &yaml.Node{Kind: yaml.SequenceNode, Content: rs})
		gs = append(gs, gn)
	}
	add(doc, "groups", &yaml.Node{Kind: yaml.SequenceNode, Content: gs})
	doc.HeadComment = header
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), enc.Close()
}

// Header is the comment at the top of each generated file.
func Header(selector string) string {
	return fmt.Sprintf("Generated by alerts/rules.go for the selector %s; do not edit.\n"+
		"Regenerate for your scrape job: go run ./alerts/gen -selector '%s' -out DIR\n"+
		"Thresholds and \"for\" durations are explained in docs/runbook.md.", selector, selector)
}

func mapping() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode} }

func scalar(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Value: s}
	if strings.Contains(s, "\n") {
		n.Style = yaml.LiteralStyle
	}
	return n
}

func add(m *yaml.Node, k string, v *yaml.Node) { m.Content = append(m.Content, scalar(k), v) }

func stringMap(m map[string]string, order ...string) *yaml.Node {
	n := mapping()
	for _, k := range order {
		if v, ok := m[k]; ok {
			add(n, k, scalar(v))
		}
	}
	return n
}
