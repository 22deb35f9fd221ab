package deploy

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// TestChartOnAPIServer applies every object the chart renders, for each
// values file it ships, to a real kube-apiserver (with etcd behind it) by
// server-side apply with fieldValidation=Strict, after the Prometheus
// Operator's CRDs: an unknown or misplaced field is refused by the server
// itself, as on a cluster. It needs kube-apiserver, etcd and the CRDs
// (COMETCHAT_CRDS_DIR), which `make kube-test` builds and caches (about
// 10 minutes once), so it runs when COMETCHAT_KUBE_TEST=1.
func TestChartOnAPIServer(t *testing.T) {
	if os.Getenv("COMETCHAT_KUBE_TEST") != "1" {
		t.Skip("set COMETCHAT_KUBE_TEST=1 (make kube-test) to apply the chart to a kube-apiserver")
	}
	apiserver, etcd := tool(t, "kube-apiserver"), tool(t, "etcd")
	crds, err := filepath.Glob(filepath.Join(os.Getenv("COMETCHAT_CRDS_DIR"), "monitoring.coreos.com_*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, crds, "COMETCHAT_CRDS_DIR holds the Prometheus Operator's CRDs")
	dir := t.TempDir()

	etcdClient, etcdPeer := freeLoopback(t), freeLoopback(t)
	start(t, etcd, "--data-dir="+filepath.Join(dir, "etcd"), "--listen-client-urls=http://"+etcdClient,
		"--advertise-client-urls=http://"+etcdClient, "--listen-peer-urls=http://"+etcdPeer,
		"--initial-advertise-peer-urls=http://"+etcdPeer, "--initial-cluster=default=http://"+etcdPeer)

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	saKey := filepath.Join(dir, "sa.key")
	require.NoError(t, os.WriteFile(saKey, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600))
	const token = "chart-test-token"
	tokens := filepath.Join(dir, "tokens.csv")
	require.NoError(t, os.WriteFile(tokens, []byte(token+`,admin,1,"system:masters"`+"\n"), 0o600))
	addr := freeLoopback(t)
	_, port, _ := net.SplitHostPort(addr)
	start(t, apiserver, "--etcd-servers=http://"+etcdClient, "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+port, "--cert-dir="+filepath.Join(dir, "certs"), "--token-auth-file="+tokens,
		"--authorization-mode=AlwaysAllow", "--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+saKey, "--service-account-signing-key-file="+saKey,
		"--service-cluster-ip-range=10.96.0.0/16", "--endpoint-reconciler-type=none")

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // its own self-signed serving certificate, on loopback
	base := "https://" + addr
	do := func(method, path, contentType string, body []byte) (int, string) {
		req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.Join(resp.Header.Values("Warning"), "; ") + string(b)
	}
	waitFor := func(what string, timeout time.Duration, cond func() bool) {
		deadline := time.Now().Add(timeout)
		for !cond() {
			require.True(t, time.Now().Before(deadline), "timed out waiting for %s", what)
			time.Sleep(500 * time.Millisecond)
		}
	}
	waitFor("kube-apiserver ready", 2*time.Minute, func() bool { code, _ := do("GET", "/readyz", "", nil); return code == 200 })

	// apply applies one object, strictly; it returns the status and body.
	apply := func(doc []byte) (int, string) {
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		require.NoError(t, yaml.Unmarshal(doc, &meta))
		path := resourcePath(t, meta.APIVersion, meta.Kind, meta.Metadata.Name)
		return do("PATCH", path+"?fieldManager=chart-test&force=true&fieldValidation=Strict", "application/apply-patch+yaml", doc)
	}
	for _, f := range crds {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		code, body := apply(b)
		require.Contains(t, []int{200, 201}, code, "%s: %s", f, body)
	}
	waitFor("the monitoring.coreos.com API served", time.Minute, func() bool {
		code, body := do("GET", "/apis/monitoring.coreos.com/v1", "", nil)
		return code == 200 && strings.Contains(body, "servicemonitors") && strings.Contains(body, "prometheusrules")
	})
	code, body := apply([]byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: monitoring\n"))
	require.Contains(t, []int{200, 201}, code, body)

	values, err := filepath.Glob(filepath.Join(chart, "ci", "*-values.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, values)
	kinds := map[string]bool{}
	for _, v := range values {
		out, err := helm(t, "template", "rel", chart, "--namespace", "monitoring", "-f", v)
		require.NoError(t, err, "%s", out)
		for _, doc := range strings.Split(out, "\n---") {
			var meta struct{ Kind string }
			require.NoError(t, yaml.Unmarshal([]byte(doc), &meta))
			if meta.Kind == "" {
				continue
			}
			code, body := apply([]byte(doc))
			assert.Contains(t, []int{200, 201}, code, "%s %s: %s", filepath.Base(v), meta.Kind, body)
			assert.NotContains(t, body, "unknown field", "%s %s", filepath.Base(v), meta.Kind)
			kinds[meta.Kind] = true
		}
	}
	for _, k := range []string{"StatefulSet", "Service", "ConfigMap", "Ingress", "ServiceMonitor", "PrometheusRule"} {
		assert.True(t, kinds[k], "a %s was applied", k)
	}

	// The check can fail: a field the API does not have is refused, at the
	// top or deep in a spec.
	for name, doc := range map[string]string{
		"top":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: strict-top\n  namespace: monitoring\ndata: {a: b}\nsurprise: 1\n",
		"deep": "apiVersion: v1\nkind: Service\nmetadata:\n  name: strict-deep\n  namespace: monitoring\nspec:\n  ports: [{port: 80, surprise: 1}]\n",
	} {
		code, body := apply([]byte(doc))
		assert.GreaterOrEqual(t, code, 400, "%s: %s", name, body)
		assert.Regexp(t, `unknown field|field not declared in schema`, body, name)
	}
}

// resourcePath is the API path of a namespaced object of the chart's
// kinds, or of a cluster-scoped CRD or Namespace.
func resourcePath(t *testing.T, apiVersion, kind, name string) string {
	plural := map[string]string{"ConfigMap": "configmaps", "Service": "services", "StatefulSet": "statefulsets",
		"Deployment": "deployments", "Ingress": "ingresses", "ServiceMonitor": "servicemonitors",
		"PrometheusRule": "prometheusrules", "PodMonitor": "podmonitors", "Secret": "secrets",
		"CustomResourceDefinition": "customresourcedefinitions", "Namespace": "namespaces"}[kind]
	require.NotEmpty(t, plural, "kind %s", kind)
	prefix := "/apis/" + apiVersion
	if apiVersion == "v1" {
		prefix = "/api/v1"
	}
	if kind == "CustomResourceDefinition" || kind == "Namespace" {
		return fmt.Sprintf("%s/%s/%s", prefix, plural, name)
	}
	return fmt.Sprintf("%s/namespaces/monitoring/%s/%s", prefix, plural, name)
}

func freeLoopback(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// start runs a server for the test's lifetime, its output kept for a
// failure.
func start(t *testing.T, name string, args ...string) {
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s:\n%s", filepath.Base(name), tail(out.String(), 4000))
		}
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
