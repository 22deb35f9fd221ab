package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
)

// The webhook listener end to end: basic auth in front, a call_ended
// counted within a second while the poll interval is a minute, a repeated
// delivery counted once, and only /webhook served there.
func TestWebhookListener(t *testing.T) {
	fake, base := fakeAPI(t)
	fake.Put(e2eCall("history", time.Hour, "ended"))
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("hook-pass"), bcrypt.MinCost)
	require.NoError(t, err)
	webCfg := filepath.Join(dir, "webhook-web.yml")
	require.NoError(t, os.WriteFile(webCfg, []byte(fmt.Sprintf("basic_auth_users:\n  cometchat: %s\n", hash)), 0o600))
	hookAddr := freeAddr(t)
	e := startExporter(t, keyEnv, "--cometchat.app-id=abc123", "--cometchat.base-url="+base, "--cometchat.poll-interval=60s",
		"--webhook.listen-address="+hookAddr, "--webhook.config.file="+webCfg)
	e.waitReady()

	send := func(user, pass, body string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+hookAddr+"/webhook", strings.NewReader(body))
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	ended := func(id string) string {
		return `{"trigger":"call_ended","appId":"abc123","webhook":"wh","data":{"sessionId":"` + id + `"}}`
	}
	fake.Put(e2eCall("fresh", 30*time.Second, "ended"))
	assert.Equal(t, 401, send("", "", ended("fresh")), "no credentials")
	assert.Equal(t, 401, send("cometchat", "wrong", ended("fresh")), "wrong credentials")
	_, m := e.metrics()
	assert.Zero(t, m.sum("cometchat_calls_total", nil), "nothing counted for them")

	start := time.Now()
	require.Equal(t, 200, send("cometchat", "hook-pass", ended("fresh")))
	eventually(t, time.Second, func() bool {
		_, m := e.metrics()
		return m.sum("cometchat_calls_total", map[string]string{"status": "ended"}) == 1
	}, "counted within 1 s of the webhook, the poll interval being 60 s")
	t.Logf("counted %s after the webhook", time.Since(start).Round(time.Millisecond))

	require.Equal(t, 200, send("cometchat", "hook-pass", ended("fresh")), "a repeated delivery")
	require.Equal(t, 200, send("cometchat", "hook-pass", strings.Replace(ended("x"), "abc123", "other-app", 1)))
	eventually(t, 5*time.Second, func() bool {
		_, m := e.metrics()
		return m.sum("cometchat_exporter_webhooks_total", map[string]string{"result": "unknown_app"}) == 1
	}, "the unknown app is counted")
	_, m = e.metrics()
	assert.Equal(t, 1.0, m.sum("cometchat_calls_total", nil), "counted once")
	assert.Equal(t, 2.0, m.sum("cometchat_exporter_webhooks_total", map[string]string{"app": "abc123", "trigger": "call_ended", "result": "hinted"}))
	assert.Equal(t, 1.0, m.sum("cometchat_exporter_webhook_count_latency_seconds", map[string]string{"app": "abc123"}))

	resp, err := http.Get("http://" + hookAddr + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 401, resp.StatusCode, "the webhook listener serves nothing else, to no one without credentials")
}

// In --demo the simulated API posts its call webhooks to the exporter, so
// a newcomer sees them hinted and counted.
func TestDemoSendsWebhooks(t *testing.T) {
	e := startExporter(t, nil, "--demo", "--demo.calls-per-minute=600", "--demo.speed=10")
	e.waitReady()
	eventually(t, 20*time.Second, func() bool {
		_, m := e.metrics()
		return m.sum("cometchat_exporter_webhooks_total", map[string]string{"app": "demo", "trigger": "call_initiated", "result": "hinted"}) > 0 &&
			m.sum("cometchat_exporter_webhooks_total", map[string]string{"app": "demo", "trigger": "call_ended", "result": "hinted"}) > 0
	}, "the demo's webhooks arrive")
}
