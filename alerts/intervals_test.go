package alerts

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// series renders values as promtool's expanding notation: each run with
// one step becomes "a+bxN".
func series(values []float64) string {
	var parts []string
	for i := 0; i < len(values); {
		j := i + 1
		if j < len(values) {
			step := values[j] - values[i]
			for j+1 < len(values) && math.Abs(values[j+1]-values[j]-step) < 1e-9 {
				j++
			}
			j++
		}
		a := values[i]
		switch n := j - i - 1; {
		case n == 0:
			parts = append(parts, fmt.Sprintf("%g", a))
		default:
			parts = append(parts, fmt.Sprintf("%g%+gx%d", a, values[i+1]-a, n))
		}
		i = j
	}
	return strings.Join(parts, " ")
}

// TestAlertsAtEveryScrapeAndPollInterval runs promtool over a generated
// test per scrape interval (15s, 30s, 60s, 2m) and poll interval (2s,
// 30s, 10m): while the exporter polls well, no alert about it is even
// pending; once its polls stop, CometChatPollStale fires within
// max(5 polls, 1m) + 5m + two scrapes of the last good poll, and is not
// even pending a scrape before max(5 polls, 1m); once its key is refused,
// CometChatAPIAuthFailing fires within a poll, a scrape and 6 minutes.
// Polls complete 0.7 s after each multiple of the poll interval, so that
// a scrape sees them up to one poll interval old, as in life.
func TestAlertsAtEveryScrapeAndPollInterval(t *testing.T) {
	const stop = 30 * time.Minute // polls stop (stale) or the key is refused (auth)
	var b strings.Builder
	b.WriteString("rule_files: [" + strings.Join(absRuleFiles(t), ", ") + "]\nevaluation_interval: 15s\ntests:\n")
	for _, scrape := range []time.Duration{15 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute} {
		for _, poll := range []time.Duration{2 * time.Second, 30 * time.Second, 10 * time.Minute} {
			lastPoll := func(at time.Duration) float64 { // completion time of the newest poll by at
				k := math.Floor((at.Seconds() - 0.7) / poll.Seconds())
				return k*poll.Seconds() + 0.7
			}
			lastOK := time.Duration(lastPoll(stop) * float64(time.Second))
			threshold := max(5*poll, time.Minute)
			staleBy := (lastOK + threshold + 5*time.Minute + 2*scrape + 15*time.Second).Truncate(15 * time.Second)
			authBy := stop + poll + scrape + 6*time.Minute
			end := max(staleBy, authBy) + 5*time.Minute
			n := int(end / scrape)
			var stuck, healthy, authErrs, upAuth []float64
			for i := 0; i <= n; i++ {
				at := time.Duration(i) * scrape
				healthy = append(healthy, lastPoll(at))
				stuck = append(stuck, lastPoll(min(at, stop)))
				errs, up := 0.0, 1.0
				if at >= stop+time.Second {
					errs, up = math.Floor((at-stop).Seconds()-0.7)/poll.Seconds()+1, 0
					errs = math.Floor(errs)
				}
				authErrs, upAuth = append(authErrs, errs), append(upAuth, up)
			}
			lbl := `job="cometchat", instance="exporter:9877", app="prod"`
			quiet := func(at time.Duration, names string) string {
				return fmt.Sprintf("      - expr: 'ALERTS{alertname=~\"%s\"}'\n        eval_time: %s\n        exp_samples: []\n", names, at)
			}
			firing := func(at time.Duration, name, severity string) string {
				return fmt.Sprintf("      - expr: 'ALERTS{alertname=\"%s\", alertstate=\"firing\"}'\n        eval_time: %s\n        exp_samples:\n"+
					"          - labels: 'ALERTS{alertname=\"%s\", alertstate=\"firing\", app=\"prod\", job=\"cometchat\", severity=\"%s\"}'\n            value: 1\n",
					name, at, name, severity)
			}
			health := "CometChatPollStale|CometChatNeverPolled|CometChatAPIAuthFailing|CometChatExporterDown|CometChatExporterInstanceDown|CometChatConfigReloadFailed"
			common := fmt.Sprintf("      - series: 'cometchat_exporter_poll_interval_seconds{%s}'\n        values: '%gx%d'\n"+
				"      - series: 'up{job=\"cometchat\", instance=\"exporter:9877\"}'\n        values: '1x%d'\n"+
				"      - series: 'cometchat_exporter_config_last_reload_successful{job=\"cometchat\", instance=\"exporter:9877\"}'\n        values: '1x%d'\n",
				lbl, poll.Seconds(), n, n, n)
			fmt.Fprintf(&b, "  # Scrape every %s, poll every %s: healthy for an hour.\n  - interval: %s\n    input_series:\n", scrape, poll, scrape)
			fmt.Fprintf(&b, "      - series: 'cometchat_last_successful_poll_timestamp_seconds{%s}'\n        values: '%s'\n", lbl, series(healthy))
			fmt.Fprintf(&b, "      - series: 'cometchat_up{%s}'\n        values: '1x%d'\n", lbl, n)
			b.WriteString(common + "    promql_expr_test:\n")
			for at := scrape; at < end; at += 5 * time.Minute {
				b.WriteString(quiet(at, health))
			}
			fmt.Fprintf(&b, "  # Scrape every %s, poll every %s: polls stop at %s.\n  - interval: %s\n    input_series:\n", scrape, poll, stop, scrape)
			fmt.Fprintf(&b, "      - series: 'cometchat_last_successful_poll_timestamp_seconds{%s}'\n        values: '%s'\n", lbl, series(stuck))
			fmt.Fprintf(&b, "      - series: 'cometchat_up{%s}'\n        values: '1x%d'\n", lbl, n)
			b.WriteString(common + "    promql_expr_test:\n")
			b.WriteString(quiet((lastOK + threshold - scrape).Truncate(15*time.Second), "CometChatPollStale"))
			b.WriteString(firing(staleBy, "CometChatPollStale", "warning"))
			fmt.Fprintf(&b, "  # Scrape every %s, poll every %s: the key is refused from %s.\n  - interval: %s\n    input_series:\n", scrape, poll, stop, scrape)
			fmt.Fprintf(&b, "      - series: 'cometchat_last_successful_poll_timestamp_seconds{%s}'\n        values: '%s'\n", lbl, series(stuck))
			fmt.Fprintf(&b, "      - series: 'cometchat_up{%s}'\n        values: '%s'\n", lbl, series(upAuth))
			fmt.Fprintf(&b, "      - series: 'cometchat_exporter_api_errors_total{%s, reason=\"AUTH_ERR_APIKEY_NOT_FOUND\"}'\n        values: '%s'\n", lbl, series(authErrs))
			b.WriteString(common + "    promql_expr_test:\n")
			b.WriteString(quiet(stop, "CometChatAPIAuthFailing"))
			b.WriteString(firing(authBy, "CometChatAPIAuthFailing", "critical"))
		}
	}
	f := filepath.Join(t.TempDir(), "intervals_test.yml")
	require.NoError(t, os.WriteFile(f, []byte(b.String()), 0o644))
	out, err := exec.Command(promtool(t), "test", "rules", f).CombinedOutput()
	require.NoError(t, err, "%s", out)
}

func absRuleFiles(t *testing.T) []string {
	var files []string
	for _, f := range []string{"cometchat.rules.yml", "cometchat.alerts.yml"} {
		abs, err := filepath.Abs(f)
		require.NoError(t, err)
		files = append(files, abs)
	}
	return files
}
