package alerts

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/cometchat-exporter/cometchat-exporter/internal/testenv"
)

func promtool(t *testing.T) string { return testenv.RequireTool(t, "promtool") }

func ruleFiles(t *testing.T) []string {
	files, err := filepath.Glob("*.yml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	return files
}

func TestPromtoolCheckRules(t *testing.T) {
	out, err := exec.Command(promtool(t), append([]string{"check", "rules"}, ruleFiles(t)...)...).CombinedOutput()
	require.NoError(t, err, "%s", out)
}

func TestPromtoolTestRules(t *testing.T) {
	tests, err := filepath.Glob("tests/*.yml")
	require.NoError(t, err)
	require.NotEmpty(t, tests)
	out, err := exec.Command(promtool(t), append([]string{"test", "rules"}, tests...)...).CombinedOutput()
	require.NoError(t, err, "%s", out)
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type testFile struct {
	Tests []struct {
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func loadYAML(t *testing.T, path string, v any) {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, v), path)
}

var required = []string{"CometChatExporterDown", "CometChatExporterInstanceDown", "CometChatAPIAuthFailing",
	"CometChatPollStale", "CometChatNeverPolled", "CometChatAPIRateLimited", "CometChatUnansweredCallsSpike",
	"CometChatRejectedCallsSpike", "CometChatCallsDropped", "CometChatStateWritesFailing",
	"CometChatConfigReloadFailed", "CometChatStateRecovered", "CometChatCallsAbandoned", "CometChatCountDrift"}

// Alerts whose value carries nothing (a condition that holds), and alerts
// about a whole process, which has no app label.
var (
	valueless = map[string]bool{"CometChatExporterDown": true, "CometChatExporterInstanceDown": true,
		"CometChatNeverPolled": true, "CometChatConfigReloadFailed": true, "CometChatStateRecovered": true}
	appless = map[string]bool{"CometChatExporterDown": true, "CometChatExporterInstanceDown": true,
		"CometChatConfigReloadFailed": true}
)

var update = flag.Bool("update", false, "rewrite the rule files from rules.go")

// TestRuleFilesAreGenerated: the committed rule files are what rules.go
// renders for the default selector (go test ./alerts -update rewrites
// them), and another selector reaches every expression.
func TestRuleFilesAreGenerated(t *testing.T) {
	for name, groups := range Files {
		want, err := Render(Header(DefaultSelector), groups(DefaultSelector))
		require.NoError(t, err)
		if *update {
			require.NoError(t, os.WriteFile(name, want, 0o644))
		}
		got, err := os.ReadFile(name)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), "%s is stale: run go test ./alerts -update", name)

		other, err := Render(Header(`job="calls", env="prod"`), groups(`job="calls", env="prod"`))
		require.NoError(t, err)
		assert.NotContains(t, string(other), `job="cometchat"`, "%s: every expression takes the selector", name)
		for _, g := range groups(`job="calls"`) {
			for _, r := range g.Rules {
				if strings.Contains(r.Expr, "cometchat_") && !strings.Contains(r.Expr, "job_app") || strings.Contains(r.Expr, "up{") {
					assert.Contains(t, r.Expr, `job="calls"`, "%s%s", r.Record, r.Alert)
				}
			}
		}
	}
}

// TestAlertConventions: CamelCase names, a severity, a static summary
// ending with a period, a templated description naming the app and the
// value, a runbook section that exists, and promtool cases that fire and
// that do not.
func TestAlertConventions(t *testing.T) {
	runbook, err := os.ReadFile("../docs/runbook.md")
	require.NoError(t, err)
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^## (\S+)`).FindAllStringSubmatch(string(runbook), -1) {
		anchors[strings.ToLower(m[1])] = true
	}

	fires, quiet := map[string]bool{}, map[string]bool{}
	tests, _ := filepath.Glob("tests/*.yml")
	for _, f := range tests {
		var tf testFile
		loadYAML(t, f, &tf)
		for _, tc := range tf.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					fires[a.Alertname] = true
				} else {
					quiet[a.Alertname] = true
				}
			}
		}
	}

	seen := map[string]bool{}
	for _, f := range ruleFiles(t) {
		var rf ruleFile
		loadYAML(t, f, &rf)
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				if r.Alert == "" {
					assert.Regexp(t, `^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$`, r.Record, "recording rule name level:metric:operations")
					continue
				}
				name := r.Alert
				seen[name] = true
				assert.Regexp(t, `^CometChat[A-Z][A-Za-z]+$`, name)
				assert.Contains(t, []string{"critical", "warning", "info"}, r.Labels["severity"], name)
				assert.NotEmpty(t, r.For, "%s has a for duration", name)
				summary := r.Annotations["summary"]
				assert.True(t, strings.HasSuffix(summary, "."), "%s summary ends with a period", name)
				assert.NotContains(t, summary, "{{", "%s summary is static", name)
				desc := r.Annotations["description"]
				if !valueless[name] {
					assert.Contains(t, desc, "$value", "%s description shows the value", name)
				}
				if !appless[name] {
					assert.Contains(t, desc, "$labels.app", "%s description names the app", name)
				}
				url := r.Annotations["runbook_url"]
				anchor := strings.ToLower(name)
				assert.True(t, strings.HasSuffix(url, "docs/runbook.md#"+anchor), "%s runbook_url %s", name, url)
				assert.True(t, anchors[anchor], "docs/runbook.md has a section for %s", name)
				assert.True(t, fires[name], "%s has a promtool case where it fires", name)
				assert.True(t, quiet[name], "%s has a promtool case where it must not fire", name)
			}
		}
	}
	for _, name := range required {
		assert.True(t, seen[name], "alert %s is defined", name)
	}
}
