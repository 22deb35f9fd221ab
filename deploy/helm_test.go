package deploy

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	yamlv3 "gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "copy alerts/ and dashboards/ into the chart's files/")

const chart = "helm/cometchat-exporter"

// tool finds a tool on PATH: under CI=true a missing one fails the test.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required under CI=true but is not on PATH", name)
	}
	t.Skipf("%s not on PATH", name)
	return ""
}

// TestChartFilesMatchTheRepository: the chart carries alerts/ and
// dashboards/ exactly (go test ./... -update copies them).
func TestChartFilesMatchTheRepository(t *testing.T) {
	pairs := map[string]string{}
	for _, glob := range []string{"../alerts/*.yml", "../dashboards/*.json"} {
		files, err := filepath.Glob(glob)
		require.NoError(t, err)
		require.NotEmpty(t, files)
		for _, f := range files {
			dst := filepath.Join(chart, "files", filepath.Base(f))
			if strings.HasSuffix(f, ".json") {
				dst = filepath.Join(chart, "files", "dashboards", filepath.Base(f))
			}
			pairs[f] = dst
		}
	}
	for src, dst := range pairs {
		want, err := os.ReadFile(src)
		require.NoError(t, err)
		if *update {
			require.NoError(t, os.WriteFile(dst, want, 0o644))
		}
		got, err := os.ReadFile(dst)
		require.NoError(t, err, "%s: run go test ./... -update in deploy/", dst)
		assert.True(t, bytes.Equal(want, got), "%s differs from %s: run go test ./... -update in deploy/", dst, src)
	}
	for _, dir := range []string{filepath.Join(chart, "files"), filepath.Join(chart, "files", "dashboards")} {
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			found := false
			for _, dst := range pairs {
				found = found || dst == filepath.Join(dir, e.Name())
			}
			assert.True(t, found, "%s has no source in the repository", filepath.Join(dir, e.Name()))
		}
	}
}

func helm(t *testing.T, args ...string) (string, error) {
	cmd := exec.Command(tool(t, "helm"), args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		return errOut.String(), err
	}
	return out.String(), nil
}

func TestHelmLint(t *testing.T) {
	out, err := helm(t, "lint", "--strict", chart, "--set", "app.id=abc123", "--set", "app.apiKeySecret.name=cometchat-key")
	require.NoError(t, err, "%s", out)
}

// objects renders the chart and decodes every object strictly into its
// Kubernetes or prometheus-operator type: an unknown field fails.
type objects struct {
	deployments  []appsv1.Deployment
	statefulSets []appsv1.StatefulSet
	services     []corev1.Service
	configMaps   []corev1.ConfigMap
	ingresses    []networkingv1.Ingress
	monitors     []monitoringv1.ServiceMonitor
	rules        []monitoringv1.PrometheusRule
}

func render(t *testing.T, values ...string) objects {
	t.Helper()
	args := []string{"template", "rel", chart, "--namespace", "monitoring"}
	for _, v := range values {
		args = append(args, "--set", v)
	}
	return renderArgs(t, args)
}

// renderFile renders the chart with a values file.
func renderFile(t *testing.T, file string) objects {
	t.Helper()
	return renderArgs(t, []string{"template", "rel", chart, "--namespace", "monitoring", "-f", file})
}

func renderArgs(t *testing.T, args []string) objects {
	t.Helper()
	out, err := helm(t, args...)
	require.NoError(t, err, "%s", out)
	var o objects
	for _, doc := range strings.Split(out, "\n---") {
		var meta struct{ Kind string }
		require.NoError(t, yaml.Unmarshal([]byte(doc), &meta))
		if meta.Kind == "" {
			continue
		}
		switch meta.Kind {
		case "Deployment":
			o.deployments = append(o.deployments, strictAs[appsv1.Deployment](t, doc))
		case "StatefulSet":
			o.statefulSets = append(o.statefulSets, strictAs[appsv1.StatefulSet](t, doc))
		case "Service":
			o.services = append(o.services, strictAs[corev1.Service](t, doc))
		case "ConfigMap":
			o.configMaps = append(o.configMaps, strictAs[corev1.ConfigMap](t, doc))
		case "Ingress":
			o.ingresses = append(o.ingresses, strictAs[networkingv1.Ingress](t, doc))
		case "ServiceMonitor":
			o.monitors = append(o.monitors, strictAs[monitoringv1.ServiceMonitor](t, doc))
		case "PrometheusRule":
			o.rules = append(o.rules, strictAs[monitoringv1.PrometheusRule](t, doc))
		default:
			t.Fatalf("unexpected kind %s", meta.Kind)
		}
	}
	return o
}

// strictAs decodes a rendered object into T; a field T does not have fails.
func strictAs[T any](t *testing.T, doc string) T {
	t.Helper()
	var x T
	require.NoError(t, yaml.UnmarshalStrict([]byte(doc), &x), "%T:\n%s", x, doc)
	return x
}

func checkPod(t *testing.T, spec corev1.PodSpec) corev1.Container {
	t.Helper()
	require.Len(t, spec.Containers, 1)
	c := spec.Containers[0]
	psc := spec.SecurityContext
	require.NotNil(t, psc)
	assert.True(t, *psc.RunAsNonRoot)
	assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, psc.SeccompProfile.Type)
	sc := c.SecurityContext
	require.NotNil(t, sc)
	assert.True(t, *sc.ReadOnlyRootFilesystem)
	assert.False(t, *sc.AllowPrivilegeEscalation)
	assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop)
	assert.False(t, c.Resources.Requests.Memory().IsZero())
	assert.False(t, c.Resources.Limits.Memory().IsZero())
	for _, a := range c.Args {
		assert.NotContains(t, a, "api-key=", "no key in a flag")
	}
	for _, e := range c.Env {
		assert.NotContains(t, e.Name, "API_KEY", "no key in the environment")
	}
	return c
}

func TestChartOneApp(t *testing.T) {
	o := render(t, "app.id=abc123", "app.apiKeySecret.name=cometchat-key")
	require.Len(t, o.deployments, 1)
	assert.Empty(t, o.statefulSets)
	c := checkPod(t, o.deployments[0].Spec.Template.Spec)
	assert.Contains(t, c.Args, "--cometchat.app-id=abc123")
	assert.Contains(t, c.Args, "--cometchat.api-key-file=/etc/cometchat-exporter/key/api-key")
	assert.Equal(t, "/-/healthy", c.LivenessProbe.HTTPGet.Path)
	assert.Equal(t, "/-/ready", c.ReadinessProbe.HTTPGet.Path)
	require.Len(t, o.services, 1)
	assert.Equal(t, int32(9877), o.services[0].Spec.Ports[0].Port)
	assert.Equal(t, "http-metrics", o.services[0].Spec.Ports[0].Name)
	assert.Empty(t, o.monitors)
	assert.Empty(t, o.rules)
	assert.Empty(t, o.ingresses)
}

func TestChartPersistenceIsAStatefulSet(t *testing.T) {
	o := render(t, "app.id=abc123", "app.apiKeySecret.name=cometchat-key", "persistence.enabled=true")
	require.Len(t, o.statefulSets, 1)
	assert.Empty(t, o.deployments)
	ss := o.statefulSets[0]
	c := checkPod(t, ss.Spec.Template.Spec)
	assert.Contains(t, c.Args, "--state.file=/var/lib/cometchat-exporter/state.json")
	require.Len(t, ss.Spec.VolumeClaimTemplates, 1)
	assert.Equal(t, "state", ss.Spec.VolumeClaimTemplates[0].Name)
}

func TestChartShardsSplitTheApps(t *testing.T) {
	o := render(t, "shards=3",
		"apps[0].name=prod", "apps[0].appId=p1", "apps[0].apiKeySecret.name=prod-key",
		"apps[1].name=staging", "apps[1].appId=s1", "apps[1].region=eu", "apps[1].apiKeySecret.name=staging-key")
	require.Len(t, o.statefulSets, 1)
	ss := o.statefulSets[0]
	assert.Equal(t, int32(3), *ss.Spec.Replicas)
	c := checkPod(t, ss.Spec.Template.Spec)
	assert.Contains(t, c.Args, "--config.shard=$(POD_INDEX)/3")
	assert.Contains(t, c.Args, "--config.file=/etc/cometchat-exporter/config/apps.yml")
	require.Len(t, c.Env, 1)
	assert.Equal(t, "metadata.labels['apps.kubernetes.io/pod-index']", c.Env[0].ValueFrom.FieldRef.FieldPath)
	require.Len(t, o.configMaps, 1)
	var cfg struct {
		Apps []map[string]string `yaml:"apps"`
	}
	require.NoError(t, yamlv3.Unmarshal([]byte(o.configMaps[0].Data["apps.yml"]), &cfg))
	assert.Equal(t, []map[string]string{
		{"name": "prod", "app_id": "p1", "region": "us", "api_key_file": "/etc/cometchat-exporter/keys/prod/api-key"},
		{"name": "staging", "app_id": "s1", "region": "eu", "api_key_file": "/etc/cometchat-exporter/keys/staging/api-key"},
	}, cfg.Apps)
	secrets := map[string]bool{}
	for _, v := range ss.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			secrets[v.Secret.SecretName] = true
		}
	}
	assert.Equal(t, map[string]bool{"prod-key": true, "staging-key": true}, secrets, "each app its own Secret")
	assert.NotContains(t, strings.Join(c.Args, " "), "--webhook.", "no webhooks unless enabled")

	// With webhooks, each pod forwards those of other shards' apps to the
	// pod by its name under the headless Service.
	o = render(t, "shards=2", "apps[0].name=prod", "apps[0].appId=p1", "apps[0].apiKeySecret.name=prod-key",
		"webhooks.enabled=true", "webhooks.configSecretName=hooks")
	ss = o.statefulSets[0]
	c = checkPod(t, ss.Spec.Template.Spec)
	assert.Contains(t, c.Args, "--webhook.peer-url=http://rel-cometchat-exporter-{shard}.rel-cometchat-exporter.monitoring.svc:9878/webhook")
	require.Len(t, o.services, 1)
	assert.Equal(t, ss.Spec.ServiceName, o.services[0].Name, "the pods' names resolve under this Service")
	assert.Equal(t, "None", o.services[0].Spec.ClusterIP, "headless: a name per pod")
}

func TestChartEverythingOn(t *testing.T) {
	o := render(t, "app.id=abc123", "app.apiKeySecret.name=cometchat-key",
		"serviceMonitor.enabled=true", "prometheusRule.enabled=true", "dashboards.enabled=true",
		"webConfig.secretName=web-config", "webhooks.enabled=true", "webhooks.configSecretName=hooks",
		"webhooks.ingress.enabled=true", "webhooks.ingress.host=hooks.example.com")
	c := checkPod(t, o.deployments[0].Spec.Template.Spec)
	assert.Contains(t, c.Args, "--web.config.file=/etc/cometchat-exporter/web/web-config.yml")
	assert.Contains(t, c.Args, "--webhook.listen-address=:9878")
	assert.NotNil(t, c.LivenessProbe.TCPSocket, "basic auth on /metrics: probe the port")

	require.Len(t, o.monitors, 1)
	assert.Equal(t, "cometchat-exporter/job", o.monitors[0].Spec.JobLabel)
	assert.Equal(t, "cometchat", o.services[0].Labels["cometchat-exporter/job"], "the job the rules select")

	require.Len(t, o.ingresses, 1)
	paths := o.ingresses[0].Spec.Rules[0].HTTP.Paths
	require.Len(t, paths, 1)
	assert.Equal(t, "/webhook", paths[0].Path, "only /webhook is exposed")
	assert.Equal(t, "webhooks", paths[0].Backend.Service.Port.Name)

	// The dashboards ConfigMap holds exactly dashboards/.
	var dash *corev1.ConfigMap
	for i := range o.configMaps {
		if o.configMaps[i].Labels["grafana_dashboard"] == "1" {
			dash = &o.configMaps[i]
		}
	}
	require.NotNil(t, dash)
	files, _ := filepath.Glob("../dashboards/*.json")
	require.Len(t, dash.Data, len(files))
	for _, f := range files {
		want, _ := os.ReadFile(f)
		assert.Equal(t, strings.TrimRight(string(want), "\n"), dash.Data[filepath.Base(f)], f)
	}

	// The PrometheusRule's groups are exactly alerts/, and promtool accepts
	// them.
	require.Len(t, o.rules, 1)
	got, err := yaml.Marshal(map[string]any{"groups": o.rules[0].Spec.Groups})
	require.NoError(t, err)
	var want []any
	for _, f := range []string{"../alerts/cometchat.rules.yml", "../alerts/cometchat.alerts.yml"} {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var rf struct {
			Groups []any `yaml:"groups"`
		}
		require.NoError(t, yamlv3.Unmarshal(b, &rf))
		want = append(want, rf.Groups...)
	}
	var gotGroups struct {
		Groups []any `yaml:"groups"`
	}
	require.NoError(t, yamlv3.Unmarshal(got, &gotGroups))
	assert.Equal(t, normalize(t, want), normalize(t, gotGroups.Groups), "the PrometheusRule holds alerts/ exactly")
	rulesFile := filepath.Join(t.TempDir(), "rules.yml")
	require.NoError(t, os.WriteFile(rulesFile, got, 0o600))
	out, err := exec.Command(tool(t, "promtool"), "check", "rules", rulesFile).CombinedOutput()
	require.NoError(t, err, "%s", out)
}

// normalize round-trips through JSON-compatible YAML so that both sides
// compare as plain values.
func normalize(t *testing.T, v any) any {
	b, err := yaml.Marshal(v)
	require.NoError(t, err)
	var out any
	require.NoError(t, yaml.Unmarshal(b, &out))
	return out
}

func TestChartRefusesWhatCannotWork(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   string
	}{
		{nil, "set app.id (one app) or apps (several)"},
		{[]string{"app.id=abc123"}, "set app.apiKeySecret.name"},
		{[]string{"app.id=abc123", "app.apiKeySecret.name=k", "shards=2"}, "shards > 1 splits the apps of apps"},
		{[]string{"app.id=abc123", "app.apiKeySecret.name=k", "webhooks.enabled=true"}, "webhooks.enabled needs webhooks.configSecretName"},
		{[]string{"app.id=abc123", "app.apiKeySecret.name=k", "webhooks.peerScheme=tcp"}, "webhooks.peerScheme must be http or https"},
	} {
		args := []string{"template", "rel", chart}
		for _, v := range tc.values {
			args = append(args, "--set", v)
		}
		out, err := helm(t, args...)
		require.Error(t, err, "%v", tc.values)
		assert.Contains(t, out, tc.want)
	}
}

// The chart's notes say where the metrics are and how the dashboards
// reach Grafana. Helm renders NOTES.txt only on install, which needs a
// cluster: the test renders a copy of the chart with the notes as a
// plain template.
func TestChartNotes(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, os.DirFS(chart)))
	b, err := os.ReadFile(filepath.Join(dir, "templates", "NOTES.txt"))
	require.NoError(t, err)
	require.NoError(t, os.Remove(filepath.Join(dir, "templates", "NOTES.txt")))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "templates", "_notes.tpl"), []byte(`{{- define "notes" -}}`+string(b)+`{{- end -}}`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "templates", "notes.yaml"),
		[]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\ndata:\n  notes: |-\n{{ include \"notes\" . | indent 4 }}\n"), 0o644))
	notes := func(values ...string) string {
		args := []string{"template", "rel", dir, "--namespace", "monitoring", "--show-only", "templates/notes.yaml",
			"--set", "app.id=abc123", "--set", "app.apiKeySecret.name=k"}
		for _, v := range values {
			args = append(args, "--set", v)
		}
		out, err := helm(t, args...)
		require.NoError(t, err, "%s", out)
		cm := strictAs[corev1.ConfigMap](t, out)
		return cm.Data["notes"]
	}
	out := notes()
	assert.Contains(t, out, "kubectl -n monitoring port-forward svc/rel-cometchat-exporter 9877")
	assert.Contains(t, out, "import dashboards/*.json in Grafana (Dashboards > New > Import); they use your default Prometheus data source")
	out = notes("dashboards.enabled=true", "serviceMonitor.enabled=true")
	assert.Contains(t, out, "Dashboards: the ConfigMap rel-cometchat-exporter-dashboards, labelled for Grafana's sidecar (grafana_dashboard: \"1\")")
	assert.Contains(t, out, "Scraping:  the ServiceMonitor rel-cometchat-exporter")
}

// Every values file the chart ships (ci/, as helm's chart-testing reads
// it) renders objects that decode strictly into the upstream API types,
// and passes helm lint.
func TestChartShippedValues(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(chart, "ci", "*-values.yaml"))
	require.NoError(t, err)
	require.Len(t, files, 2)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			out, err := helm(t, "lint", "--strict", chart, "-f", f)
			require.NoError(t, err, "%s", out)
			o := renderFile(t, f)
			n := len(o.deployments) + len(o.statefulSets)
			require.Equal(t, 1, n, "one workload")
			// The exporter's own config loader takes the rendered file.
			for _, cm := range o.configMaps {
				if apps, ok := cm.Data["apps.yml"]; ok {
					checkAppsFile(t, apps)
				}
			}
			assert.NotEmpty(t, o.services)
			assert.NotEmpty(t, o.monitors)
		})
	}
}

// checkAppsFile loads the rendered apps.yml with the exporter's own check
// command: keys known, values valid. The key files are pointed at one
// written here.
func checkAppsFile(t *testing.T, apps string) {
	t.Helper()
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(key, []byte("k"), 0o600))
	apps = regexp.MustCompile(`/etc/cometchat-exporter/keys/[^/]+/api-key`).ReplaceAllString(apps, key)
	// Loopback only: each app's API at a closed port of 127.0.0.1.
	apps = regexp.MustCompile(`(?m)^(\s+)region: .*$`).ReplaceAllString(apps, `${1}base_url: "http://127.0.0.1:1/v3"`)
	f := filepath.Join(dir, "apps.yml")
	require.NoError(t, os.WriteFile(f, []byte(apps), 0o600))
	bin := filepath.Join(dir, "cometchat_exporter")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = ".."
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	// The check loads the file, then fails on the closed port, not on the
	// file.
	cmd := exec.Command(bin, "check", "--config.file="+f, "--cometchat.timeout=2s")
	out, _ = cmd.CombinedOutput()
	assert.NotContains(t, string(out), "--config.file", "the rendered apps.yml loads:\n%s", out)
	assert.Contains(t, string(out), "result:", "the check ran:\n%s", out)
}
