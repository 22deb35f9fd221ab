package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/cometchat-exporter/cometchat-exporter/cometchat/cometchattest"
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

// With apps sharded over two replicas, a webhook is counted within a
// second by the replica that polls its app, whichever replica CometChat's
// load balancer hands it to: the other forwards it, with its credentials.
// Replicas stand on 127.0.0.10 and 127.0.0.11, one port, as pods of a
// StatefulSet stand behind its headless Service.
func TestShardedWebhooksReachTheOwner(t *testing.T) {
	// alpha hashes to shard 1 of 2 and gamma to shard 0 (TestShard pins it).
	owner := map[string]int{"gamma": 0, "alpha": 1}
	fakes, bases := map[string]*cometchattest.Server{}, map[string]string{}
	for app := range owner {
		fakes[app], bases[app] = fakeAPI(t)
		fakes[app].Put(e2eCall(app+"-history", time.Hour, "ended"))
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(keyFile, []byte(e2eKey), 0o600))
	cfg := filepath.Join(dir, "apps.yml")
	var apps strings.Builder
	apps.WriteString("apps:\n")
	for _, app := range []string{"alpha", "gamma"} {
		fmt.Fprintf(&apps, "  - name: %s\n    app_id: id-%s\n    api_key_file: %s\n    base_url: %s\n    poll_interval: 60s\n", app, app, keyFile, bases[app])
	}
	require.NoError(t, os.WriteFile(cfg, []byte(apps.String()), 0o600))
	hash, err := bcrypt.GenerateFromPassword([]byte("hook-pass"), bcrypt.MinCost)
	require.NoError(t, err)
	webCfg := filepath.Join(dir, "webhook-web.yml")
	require.NoError(t, os.WriteFile(webCfg, []byte(fmt.Sprintf("basic_auth_users:\n  cometchat: %s\n", hash)), 0o600))

	port := sharedFreePort(t, "127.0.0.10", "127.0.0.11")
	hook := func(shard int) string { return fmt.Sprintf("127.0.0.1%d:%s", shard, port) }
	replicas := make([]*exporter, 2)
	for shard := range replicas {
		replicas[shard] = startExporter(t, nil, "--config.file="+cfg, fmt.Sprintf("--config.shard=%d/2", shard),
			"--webhook.listen-address="+hook(shard), "--webhook.config.file="+webCfg,
			"--webhook.peer-url=http://127.0.0.1{shard}:"+port+"/webhook")
	}
	for _, r := range replicas {
		r.waitReady()
	}
	for app, shard := range owner {
		_, m := replicas[shard].metrics()
		require.Equal(t, 1.0, m.sum("cometchat_up", map[string]string{"app": app}), "%s is polled by shard %d", app, shard)
		_, m = replicas[1-shard].metrics()
		require.Zero(t, m.count("cometchat_up", map[string]string{"app": app}), "%s is not polled by shard %d", app, 1-shard)
	}

	send := func(shard int, app, id string) {
		body := `{"trigger":"call_ended","appId":"id-` + app + `","webhook":"wh","data":{"sessionId":"` + id + `"}}`
		req, _ := http.NewRequest(http.MethodPost, "http://"+hook(shard)+"/webhook", strings.NewReader(body))
		req.SetBasicAuth("cometchat", "hook-pass")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
	}
	counted := func(app string) float64 {
		_, m := replicas[owner[app]].metrics()
		return m.sum("cometchat_calls_total", map[string]string{"app": app})
	}
	for _, app := range []string{"alpha", "gamma"} {
		for receiver := range replicas {
			id := fmt.Sprintf("%s-via-%d", app, receiver)
			fakes[app].Put(e2eCall(id, 30*time.Second, "ended"))
			before := counted(app)
			start := time.Now()
			send(receiver, app, id)
			eventually(t, time.Second, func() bool { return counted(app) == before+1 },
				fmt.Sprintf("%s's call, posted to shard %d, counted within 1 s by shard %d (the poll interval is 60 s)", app, receiver, owner[app]))
			t.Logf("%s: counted %s after the webhook reached shard %d", id, time.Since(start).Round(time.Millisecond), receiver)
			send(receiver, app, id) // a repeated delivery
		}
	}
	for app, shard := range owner {
		other := 1 - shard
		eventually(t, 5*time.Second, func() bool {
			_, m := replicas[other].metrics()
			return m.sum("cometchat_exporter_webhooks_forwarded_total", map[string]string{"shard": fmt.Sprint(shard), "result": "ok"}) == 2
		}, "both deliveries to the other replica forwarded")
		_, m := replicas[other].metrics()
		assert.Equal(t, 2.0, m.sum("cometchat_exporter_webhooks_total", map[string]string{"app": app, "result": "forwarded"}))
		assert.Zero(t, m.sum("cometchat_exporter_webhooks_total", map[string]string{"result": "unknown_app"}))
		_, m = replicas[shard].metrics()
		assert.Equal(t, 4.0, m.sum("cometchat_exporter_webhooks_total", map[string]string{"app": app, "result": "hinted"}),
			"the owner hints all four deliveries: two of its own, two forwarded")
		assert.Equal(t, 2.0, m.sum("cometchat_calls_total", map[string]string{"app": app}), "each call counted once, history not at all")
	}
}

// sharedFreePort returns a port free just now on each of hosts.
func sharedFreePort(t *testing.T, hosts ...string) string {
	for range 20 {
		l, err := net.Listen("tcp", hosts[0]+":0")
		require.NoError(t, err)
		_, port, _ := net.SplitHostPort(l.Addr().String())
		free := true
		for _, h := range hosts[1:] {
			other, err := net.Listen("tcp", net.JoinHostPort(h, port))
			if err != nil {
				free = false
				break
			}
			other.Close()
		}
		l.Close()
		if free {
			return port
		}
	}
	t.Fatalf("no port free on all of %v", hosts)
	return ""
}
