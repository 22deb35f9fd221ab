package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	yamlv3 "gopkg.in/yaml.v3"
)

type composeFile struct {
	Services map[string]struct {
		Image   string   `yaml:"image"`
		Command any      `yaml:"command"`
		Volumes []string `yaml:"volumes"`
	} `yaml:"services"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, yamlv3.Unmarshal(b, v), path)
}

// mounts maps each container path of a service to its host path, relative
// to the compose file as compose resolves it.
func mounts(t *testing.T, volumes []string) map[string]string {
	out := map[string]string{}
	for _, v := range volumes {
		parts := strings.Split(v, ":")
		require.GreaterOrEqual(t, len(parts), 2, v)
		out[parts[1]] = filepath.Join("compose", parts[0])
	}
	return out
}

// The compose quickstart cannot run here (no Docker); what can be checked
// is: pinned images, the demo by default, Prometheus' config with the rules
// of alerts/ (promtool), and Grafana's provisioning pointing at the
// Prometheus service and at dashboards/.
func TestComposeQuickstart(t *testing.T) {
	var c composeFile
	readYAML(t, "compose/compose.yaml", &c)
	require.Contains(t, c.Services, "exporter")
	require.Contains(t, c.Services, "prometheus")
	require.Contains(t, c.Services, "grafana")
	// A string, which compose splits into words: a list would pass all the
	// arguments of the env file as one.
	assert.Equal(t, "${COMETCHAT_EXPORTER_ARGS:---demo}", c.Services["exporter"].Command, "--demo by default")
	assert.Contains(t, c.Services["exporter"].Volumes, "state:/var/lib/cometchat-exporter", "the state on a named volume")
	var top struct {
		Volumes map[string]any `yaml:"volumes"`
	}
	readYAML(t, "compose/compose.yaml", &top)
	assert.Contains(t, top.Volumes, "state")

	pinned := regexp.MustCompile(`^[a-z0-9./-]+:v?[0-9]+\.[0-9]+\.[0-9]+$`)
	for _, s := range []string{"prometheus", "grafana"} {
		assert.Regexp(t, pinned, c.Services[s].Image, "%s image pinned to a version", s)
	}

	// Prometheus: its config and the rules it mounts pass promtool.
	prom := mounts(t, c.Services["prometheus"].Volumes)
	require.Equal(t, filepath.Join("compose", "prometheus.yml"), prom["/etc/prometheus/prometheus.yml"])
	rulesDir, ok := prom["/etc/prometheus/rules"]
	require.True(t, ok, "the rules are mounted")
	assert.Equal(t, "../alerts", filepath.ToSlash(rulesDir), "the rules are alerts/")
	var pc struct {
		RuleFiles []string `yaml:"rule_files"`
	}
	readYAML(t, "compose/prometheus.yml", &pc)
	require.Equal(t, []string{"/etc/prometheus/rules/*.yml"}, pc.RuleFiles)
	b, err := os.ReadFile("compose/prometheus.yml")
	require.NoError(t, err)
	abs, err := filepath.Abs(rulesDir)
	require.NoError(t, err)
	cfg := filepath.Join(t.TempDir(), "prometheus.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(strings.ReplaceAll(string(b), "/etc/prometheus/rules", abs)), 0o600))
	out, err := exec.Command(tool(t, "promtool"), "check", "config", cfg).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "cometchat.alerts.yml")

	// Grafana: the datasource is the Prometheus service; the dashboards
	// provider reads the directory where dashboards/ is mounted.
	graf := mounts(t, c.Services["grafana"].Volumes)
	require.Equal(t, filepath.Join("compose", "grafana", "provisioning"), graf["/etc/grafana/provisioning"])
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, Type, URL string
			IsDefault       bool `yaml:"isDefault"`
		} `yaml:"datasources"`
	}
	readYAML(t, "compose/grafana/provisioning/datasources/prometheus.yml", &ds)
	require.Len(t, ds.Datasources, 1)
	assert.Equal(t, 1, ds.APIVersion)
	assert.Equal(t, "prometheus", ds.Datasources[0].Type)
	assert.Equal(t, "http://prometheus:9090", ds.Datasources[0].URL)
	assert.True(t, ds.Datasources[0].IsDefault)
	var dp struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Type    string
			Options struct{ Path string }
		} `yaml:"providers"`
	}
	readYAML(t, "compose/grafana/provisioning/dashboards/cometchat.yml", &dp)
	require.Len(t, dp.Providers, 1)
	assert.Equal(t, "file", dp.Providers[0].Type)
	path := dp.Providers[0].Options.Path
	assert.Equal(t, "../dashboards", filepath.ToSlash(graf[path]), "the provider reads dashboards/")
	dashboards, _ := filepath.Glob(filepath.Join(graf[path], "*.json"))
	assert.Len(t, dashboards, 2, "both dashboards")

	// The env file for a real app names every variable compose uses.
	env, err := os.ReadFile("compose/real-app.env.example")
	require.NoError(t, err)
	compose, _ := os.ReadFile("compose/compose.yaml")
	for _, m := range regexp.MustCompile(`\$\{([A-Z_]+)`).FindAllStringSubmatch(string(compose), -1) {
		assert.Contains(t, string(env), m[1]+"=", "real-app.env.example sets %s", m[1])
	}
}

// The systemd unit: sandboxed, state in its StateDirectory, the key as a
// credential file.
func TestSystemdUnit(t *testing.T) {
	f, err := os.Open("systemd/cometchat-exporter.service")
	require.NoError(t, err)
	defer f.Close()
	set := map[string][]string{}
	sc := bufio.NewScanner(f)
	var cont string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cont != "" {
			line = cont + " " + line
		}
		if strings.HasSuffix(line, `\`) {
			cont = strings.TrimSuffix(line, `\`)
			continue
		}
		cont = ""
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			set[k] = append(set[k], v)
		}
	}
	for k, v := range map[string]string{"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
		"ProtectHome": "yes", "PrivateTmp": "yes", "CapabilityBoundingSet": "", "StateDirectory": "cometchat-exporter",
		"LoadCredential": "api-key:/etc/cometchat-exporter/api-key"} {
		assert.Equal(t, []string{v}, set[k], k)
	}
	start := strings.Join(strings.Fields(strings.Join(set["ExecStart"], " ")), " ")
	assert.Contains(t, start, "--state.file=${STATE_DIRECTORY}/state.json")
	assert.Contains(t, start, "--cometchat.api-key-file=${CREDENTIALS_DIRECTORY}/api-key")
}

// systemd-analyze verify accepts the unit without a word: an unknown or
// misspelt directive is only a warning there, so any output fails.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze := tool(t, "systemd-analyze")
	b, err := os.ReadFile("systemd/cometchat-exporter.service")
	require.NoError(t, err)
	// verify checks that ExecStart's binary exists: point it at one.
	bin := filepath.Join(t.TempDir(), "cometchat_exporter")
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755))
	unit := filepath.Join(t.TempDir(), "cometchat-exporter.service")
	require.NoError(t, os.WriteFile(unit, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/cometchat_exporter", bin)), 0o644))
	out, err := exec.Command(analyze, "verify", "--man=no", unit).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Empty(t, strings.TrimSpace(string(out)))

	// The check can fail: a misspelt directive is reported.
	bad := filepath.Join(t.TempDir(), "bad.service")
	require.NoError(t, os.WriteFile(bad, []byte(strings.Replace(strings.ReplaceAll(string(b), "/usr/local/bin/cometchat_exporter", bin), "ProtectSystem=", "ProtectSystm=", 1)), 0o644))
	out, _ = exec.Command(analyze, "verify", "--man=no", bad).CombinedOutput()
	assert.Contains(t, string(out), "Unknown key 'ProtectSystm'")
}

// The example env file's arguments, split into words as compose splits a
// string command, all parse (--version exits 0 only if every flag before
// it does), and keep the state on the compose volume.
func TestComposeArgs(t *testing.T) {
	env := map[string]string{}
	b, err := os.ReadFile("compose/real-app.env.example")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			env[k] = v
		}
	}
	args := strings.Fields(env["COMETCHAT_EXPORTER_ARGS"])
	require.Greater(t, len(args), 1)
	assert.Contains(t, args, "--state.file=/var/lib/cometchat-exporter/state.json")
	bin := filepath.Join(t.TempDir(), "cometchat_exporter")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = ".." // the exporter's own module
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	out, err = exec.Command(bin, append(args, "--version")...).CombinedOutput()
	require.NoError(t, err, "the env file's arguments: %s", out)
}
