package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/cometchat-exporter/cometchat-exporter/cometchat"
	"github.com/cometchat-exporter/cometchat-exporter/cometchat/cometchattest"
	"github.com/cometchat-exporter/cometchat-exporter/internal/testenv"
)

const e2eKey = "e2e-secret-key-7d3a91c4"

// fakeAPI starts a fake Calls API with calls relative to now.
func fakeAPI(t *testing.T) (*cometchattest.Server, string) {
	fake := cometchattest.New(e2eKey)
	srv := fake.Start()
	t.Cleanup(srv.Close)
	return fake, srv.URL + "/v3"
}

func e2eCall(id string, ago time.Duration, status string) cometchat.Call {
	at := time.Now().Add(-ago).Unix()
	c := cometchat.Call{SessionID: id, Type: "video", Mode: "call", ReceiverType: "user", Status: status, InitiatedAt: at}
	switch status {
	case "ongoing":
		c.StartedAt = at + 3
		c.Participants = []cometchat.Participant{{UID: "a", State: "ongoing", IsJoined: true}, {UID: "b", State: "ongoing", IsJoined: true}}
	case "ended":
		c.StartedAt, c.EndedAt = at+3, at+123
		c.VideoMinutes, c.TotalParticipants = 4, 2
		c.Participants = []cometchat.Participant{{UID: "a", State: "ended", IsJoined: true}, {UID: "b", State: "ended", IsJoined: true}}
	default:
		c.EndedAt = at + 20
		c.Participants = []cometchat.Participant{{UID: "a", State: "ended"}, {UID: "b", State: status}}
	}
	return c
}

func appArgs(base string, extra ...string) []string {
	return append([]string{"--cometchat.app-id=e2e", "--cometchat.base-url=" + base,
		"--cometchat.poll-interval=200ms", "--log.level=debug"}, extra...)
}

var keyEnv = []string{"COMETCHAT_API_KEY=" + e2eKey}

func TestEndToEnd(t *testing.T) {
	fake, base := fakeAPI(t)
	fake.Put(e2eCall("history-1", 2*time.Hour, "ended"))
	fake.Put(e2eCall("history-2", time.Hour, "rejected"))
	fake.Put(e2eCall("meeting", 3*time.Hour, "ongoing"))
	e := startExporter(t, keyEnv, appArgs(base)...)
	e.waitReady()

	_, m := e.metrics()
	assert.Equal(t, 1.0, m.sum("cometchat_up", map[string]string{"app": "e2e"}))
	assert.Equal(t, 1.0, m.sum("cometchat_calls_active", map[string]string{"status": "ongoing"}))
	assert.Equal(t, 2.0, m.sum("cometchat_participants_active", nil))
	assert.Zero(t, m.sum("cometchat_calls_total", nil), "history is not counted")
	assert.Equal(t, 12*6, m.count("cometchat_calls_total", nil), "the known label sets and statuses exist at zero")

	// The reference's own example, with its 2023 timestamps, shows up now;
	// so do spelling variants; the long meeting ends.
	ref, err := os.ReadFile("cometchat/testdata/list_reference.json")
	require.NoError(t, err)
	group := ref[strings.Index(string(ref), `{
      "sessionId": "v1.us.208136f5ba34a5a2.1692869395`):]
	group = group[:strings.Index(string(group), "\n    },")+6]
	require.NoError(t, fake.PutRaw(group))
	c := e2eCall("sdk-spelling", time.Minute, "canceled")
	c.Status = "cancelled"
	fake.Put(c)
	c = e2eCall("busy", time.Minute, "rejected")
	c.Status = "busy"
	fake.Put(c)
	fake.Update("meeting", func(c *cometchat.Call) {
		c.Status, c.EndedAt, c.VideoMinutes, c.TotalParticipants = "ended", c.StartedAt+3*3600, 360, 2
		c.Participants = []cometchat.Participant{{UID: "a", State: "ended", IsJoined: true}, {UID: "b", State: "ended", IsJoined: true}}
	})

	eventually(t, 10*time.Second, func() bool {
		_, m := e.metrics()
		return m.sum("cometchat_calls_total", nil) == 4 && m.sum("cometchat_exporter_calls_tracked", nil) == 0
	}, "four calls counted")
	body, m := e.metrics()
	assert.Equal(t, 2.0, m.sum("cometchat_calls_total", map[string]string{"status": "ended"}))
	assert.Equal(t, 1.0, m.sum("cometchat_calls_total", map[string]string{"status": "canceled"}))
	assert.Equal(t, 1.0, m.sum("cometchat_calls_total", map[string]string{"status": "busy"}))
	assert.Equal(t, 1.0, m.sum("cometchat_calls_total", map[string]string{"call_type": "audio", "mode": "call", "receiver_type": "group", "status": "ended"}))
	assert.InDelta(t, 0.31666666666666665*60, m.sum("cometchat_call_audio_seconds_total", nil), 1e-9)
	assert.InDelta(t, 360*60, m.sum("cometchat_call_video_seconds_total", nil), 1e-9)
	assert.Equal(t, 3.0, m.sum("cometchat_participants_total", map[string]string{"state": "unanswered"}), "the group example's three invitees")
	assert.Equal(t, 2.0, m.sum("cometchat_call_duration_seconds", nil), "two ended calls")
	assert.Equal(t, 0.0, m.sum("cometchat_calls_active", nil))
	assert.Equal(t, 1.0, m.sum("cometchat_exporter_build_info", map[string]string{"version": "dev"}), "go build gives version dev")
	assert.Positive(t, m.sum("cometchat_exporter_api_requests_total", map[string]string{"endpoint": "list_calls", "code": "200"}))

	// Idle: counters stay put.
	time.Sleep(600 * time.Millisecond) // three poll intervals, to show nothing moves
	_, again := e.metrics()
	assert.Equal(t, 4.0, again.sum("cometchat_calls_total", nil))

	checkPromtool(t, body)
	_, landing := e.get("/")
	assert.Contains(t, landing, "/metrics")
	e.stop()
	assertNoKey(t, e.output.String(), body, landing)
}

func checkPromtool(t *testing.T, exposition string) {
	promtool := testenv.RequireTool(t, "promtool")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(exposition)
	out, err := cmd.CombinedOutput()
	assert.NoError(t, err, "promtool check metrics:\n%s", out)
}

func assertNoKey(t *testing.T, outputs ...string) {
	t.Helper()
	for _, o := range outputs {
		require.NotContains(t, o, e2eKey, "the API key leaked")
		require.NotContains(t, o, e2eKey[:12], "part of the API key leaked")
	}
}

func TestKeyRevokedAndRestored(t *testing.T) {
	fake, base := fakeAPI(t)
	e := startExporter(t, keyEnv, appArgs(base)...)
	e.waitReady()
	fake.Put(e2eCall("before", time.Minute, "ended"))
	eventually(t, 5*time.Second, func() bool { _, m := e.metrics(); return m.sum("cometchat_calls_total", nil) == 1 }, "first call")

	fake.Revoke(cometchat.CodeAPIKeyNotFound)
	fake.Put(e2eCall("during", 30*time.Second, "rejected"))
	eventually(t, 5*time.Second, func() bool {
		_, m := e.metrics()
		return m.sum("cometchat_up", nil) == 0 &&
			m.sum("cometchat_exporter_api_errors_total", map[string]string{"reason": "AUTH_ERR_APIKEY_NOT_FOUND"}) > 0
	}, "up=0 with reason AUTH_ERR_APIKEY_NOT_FOUND")
	fake.Revoke(cometchat.CodeNoAccess)
	eventually(t, 5*time.Second, func() bool {
		_, m := e.metrics()
		return m.sum("cometchat_exporter_api_errors_total", map[string]string{"reason": "AUTH_ERR_NO_ACCESS"}) > 0
	}, "reason AUTH_ERR_NO_ACCESS")

	fake.Restore()
	eventually(t, 5*time.Second, func() bool {
		_, m := e.metrics()
		return m.sum("cometchat_up", nil) == 1 && m.sum("cometchat_calls_total", nil) == 2
	}, "recovered, with the call from the outage counted once")
	body, _ := e.metrics()
	e.stop()
	assertNoKey(t, e.output.String(), body)
}

// TestKeyNeverLogged runs through every error path at debug level.
func TestKeyNeverLogged(t *testing.T) {
	fake, base := fakeAPI(t)
	fake.SetHang(time.Second)
	fake.Put(e2eCall("m", time.Hour, "ongoing"))
	i := 0
	fake.InjectSchedule(func(r *http.Request, endpoint string) cometchattest.Fault {
		i++
		return cometchattest.AllFaults[i%len(cometchattest.AllFaults)]
	})
	e := startExporter(t, keyEnv, appArgs(base, "--cometchat.timeout=300ms")...)
	eventually(t, 20*time.Second, func() bool {
		// All but the two Get Call faults: the ongoing listing shows the
		// meeting, so it is not fetched.
		return len(fake.Injected()) >= len(cometchattest.AllFaults)-2
	}, "every list fault served")
	fake.InjectSchedule(nil)
	fake.SetKey("another-key") // now every request is refused as a wrong key
	time.Sleep(500 * time.Millisecond)
	body, _ := e.metrics()
	_, landing := e.get("/")
	e.stop()
	out := e.output.String()
	assert.Contains(t, out, "level=debug", "debug logging was on")
	assert.Contains(t, out, "Poll failed")
	assertNoKey(t, out, body, landing)

	// The same through a key file.
	keyFile := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(keyFile, []byte(e2eKey+"\n"), 0o600))
	fake.SetKey(e2eKey)
	e = startExporter(t, nil, appArgs(base, "--cometchat.api-key-file="+keyFile)...)
	e.waitReady()
	body, _ = e.metrics()
	e.stop()
	assertNoKey(t, e.output.String(), body)
}

func TestStartupValidation(t *testing.T) {
	dir := t.TempDir()
	emptyKey := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(emptyKey, []byte("\n"), 0o600))
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"no app id", keyEnv, []string{"--cometchat.region=us"},
			"--cometchat.app-id (or COMETCHAT_APP_ID) is required"},
		{"no key", nil, []string{"--cometchat.app-id=a", "--cometchat.region=us"},
			"no API key: set COMETCHAT_API_KEY or --cometchat.api-key-file (COMETCHAT_API_KEY_FILE)"},
		{"empty key", []string{"COMETCHAT_API_KEY=  "}, []string{"--cometchat.app-id=a", "--cometchat.region=us"},
			"no API key: set COMETCHAT_API_KEY or --cometchat.api-key-file (COMETCHAT_API_KEY_FILE)"},
		{"empty key file", nil, []string{"--cometchat.app-id=a", "--cometchat.region=us", "--cometchat.api-key-file=" + emptyKey},
			"--cometchat.api-key-file: key file " + emptyKey + " is empty"},
		{"unreadable key file", nil, []string{"--cometchat.app-id=a", "--cometchat.region=us", "--cometchat.api-key-file=" + dir + "/missing"},
			"--cometchat.api-key-file: reading key file: open " + dir + "/missing: no such file or directory"},
		{"unknown misbehaviour", nil, []string{"--demo", "--demo.misbehave=unsorted,sideways"},
			`--demo.misbehave: unknown misbehaviour "sideways" (one of failing_page, ignore_per_page, ignore_status_filter, late_listing, millis, no_current_page, no_session_id, no_total, null_initiated_at, repeat_across_pages, unsorted)`},
		{"bad region", keyEnv, []string{"--cometchat.app-id=a", "--cometchat.region=mars"},
			`--cometchat.region: region "mars" is not one of us, eu, in`},
		{"no region", keyEnv, []string{"--cometchat.app-id=a"},
			"--cometchat.region: a region (us, eu or in) is required when no base URL is given"},
		{"malformed base URL", keyEnv, []string{"--cometchat.app-id=a", "--cometchat.base-url=not a url"},
			`--cometchat.base-url: base URL "not a url" must be an absolute http(s) URL`},
		{"plain http off loopback", keyEnv, []string{"--cometchat.app-id=a", "--cometchat.base-url=http://calls.example.com/v3"},
			`--cometchat.base-url: base URL "http://calls.example.com/v3" uses plain http to a non-loopback host; the API key would travel in clear`},
		{"zero interval", keyEnv, []string{"--cometchat.app-id=a", "--cometchat.region=us", "--cometchat.poll-interval=0s"},
			"--cometchat.poll-interval must be positive, got 0s"},
		{"negative interval", keyEnv, []string{"--cometchat.app-id=a", "--cometchat.region=us", "--cometchat.poll-interval=-5s"},
			"--cometchat.poll-interval must be positive, got -5s"},
		{"zero timeout", keyEnv, []string{"--cometchat.app-id=a", "--cometchat.region=us", "--cometchat.timeout=0s"},
			"--cometchat.timeout must be positive, got 0s"},
		{"negative budget", keyEnv, []string{"--cometchat.app-id=a", "--cometchat.region=us", "--cometchat.max-requests-per-minute=-1"},
			"--cometchat.max-requests-per-minute must not be negative, got -1"},
		{"bad shard", nil, []string{"--config.file=apps.yml", "--config.shard=3/3"},
			`--config.shard: want INDEX/COUNT with 0 <= INDEX < COUNT, got "3/3"`},
		{"demo interval", nil, []string{"--demo", "--cometchat.poll-interval=0s"},
			"--cometchat.poll-interval must be positive, got 0s"},
		{"missing config file", nil, []string{"--config.file=/nonexistent/apps.yml"},
			"--config.file: open /nonexistent/apps.yml: no such file or directory"},
		{"bad app id", keyEnv, []string{"--cometchat.app-id=a/b", "--cometchat.region=us"},
			`--cometchat.app-id: "a/b" is not a valid app id (letters, digits, '-' and '_' only)`},
		{"empty telemetry path", keyEnv, []string{"--cometchat.app-id=a", "--cometchat.region=us", "--web.telemetry-path="},
			`--web.telemetry-path must be a path starting with / other than /-/healthy, /-/ready, /-/reload, got ""`},
		{"relative telemetry path", keyEnv, []string{"--cometchat.app-id=a", "--cometchat.region=us", "--web.telemetry-path=metrics"},
			`--web.telemetry-path must be a path starting with / other than /-/healthy, /-/ready, /-/reload, got "metrics"`},
		{"telemetry path on readiness", keyEnv, []string{"--cometchat.app-id=a", "--cometchat.region=us", "--web.telemetry-path=/-/ready"},
			`--web.telemetry-path must be a path starting with / other than /-/healthy, /-/ready, /-/reload, got "/-/ready"`},
		{"webhook listener open to the network", keyEnv, []string{"--cometchat.app-id=a", "--cometchat.region=us", "--webhook.listen-address=:9878"},
			`--webhook.listen-address ":9878" is not a loopback address: set basic_auth_users in --webhook.config.file, with the credentials set in CometChat's webhook settings, so that only CometChat can post calls`},
		{"webhook config without a listener", keyEnv, []string{"--cometchat.app-id=a", "--cometchat.region=us", "--webhook.config.file=/etc/hooks.yml"},
			"--webhook.config.file is set but --webhook.listen-address is not"},
		{"sharded webhooks without peers", nil, []string{"--config.file=/nonexistent/apps.yml", "--config.shard=0/2", "--webhook.listen-address=127.0.0.1:9878"},
			"--config.shard with --webhook.listen-address needs --webhook.peer-url: a webhook reaching this replica for an app of another shard must be forwarded to it"},
		{"peer url without a listener", nil, []string{"--config.file=/nonexistent/apps.yml", "--config.shard=0/2", "--webhook.peer-url=http://e-{shard}.e:9097/webhook"},
			"--webhook.peer-url is set but --webhook.listen-address is not"},
		{"peer url without shards", keyEnv, []string{"--cometchat.app-id=a", "--cometchat.region=us", "--webhook.listen-address=127.0.0.1:9878", "--webhook.peer-url=http://e-{shard}.e:9097/webhook"},
			"--webhook.peer-url is set but --config.shard does not split the apps over several replicas"},
		{"peer url without a placeholder", nil, []string{"--config.file=/nonexistent/apps.yml", "--config.shard=1/2", "--webhook.listen-address=127.0.0.1:9878", "--webhook.peer-url=http://e-0.e:9097/webhook"},
			`--webhook.peer-url: "http://e-0.e:9097/webhook" has no {shard} to put a shard's index in`},
		{"peer url not http", nil, []string{"--config.file=/nonexistent/apps.yml", "--config.shard=1/2", "--webhook.listen-address=127.0.0.1:9878", "--webhook.peer-url=e-{shard}:9097"},
			`--webhook.peer-url: "e-{shard}:9097" is not an http(s) URL with a host`},
		{"key in a flag", keyEnv, []string{"--cometchat.api-key=" + e2eKey},
			"--cometchat.api-key is not accepted: a key in a flag shows in ps and shell history; set the env var COMETCHAT_API_KEY, " +
				"or put the key in a file readable only by the exporter and give --cometchat.api-key-file"},
		{"unknown flag", keyEnv, []string{"--cometchat.apikey=x"},
			"unknown long flag '--cometchat.apikey'"},
		{"interval without a unit", keyEnv, []string{"--cometchat.poll-interval=5"},
			`--cometchat.poll-interval: want a duration with a unit (ms, s, m, h), e.g. --cometchat.poll-interval=1m, got "5"`},
		{"unknown log level", keyEnv, []string{"--log.level=warning"},
			`--log.level: want one of debug, info, warn, error, e.g. --log.level=info, got "warning"`},
		{"budget not a whole number", keyEnv, []string{"--cometchat.max-requests-per-minute=1.5"},
			`--cometchat.max-requests-per-minute: want a whole number, e.g. --cometchat.max-requests-per-minute=1000, got "1.5"`},
		{"a label that cannot be dropped", nil, []string{"--demo", "--collector.drop-labels=mode,status"},
			`--collector.drop-labels: want a comma-separated list of call_type, mode, receiver_type, e.g. --collector.drop-labels=mode,receiver_type, got "mode,status"`},
		{"speed not finite", nil, []string{"--demo", "--demo.speed=+Inf"},
			`--demo.speed: want a number, e.g. --demo.speed=10, got "+Inf"`},
		{"config file and app id", nil, []string{"--config.file=apps.yml", "--cometchat.app-id=a"},
			"--config.file and --cometchat.app-id (or COMETCHAT_APP_ID) both given: the file lists the apps and would ignore --cometchat.app-id (or COMETCHAT_APP_ID); " +
				"set them in the file (app_id, region, base_url, api_key_file, on_behalf_of, ca_file) or drop --config.file"},
		{"config file and key env", keyEnv, []string{"--config.file=apps.yml"},
			"--config.file and COMETCHAT_API_KEY both given: the file lists the apps and would ignore COMETCHAT_API_KEY; " +
				"set them in the file (app_id, region, base_url, api_key_file, on_behalf_of, ca_file) or drop --config.file"},
		{"config file and backfill", nil, []string{"--config.file=apps.yml", "--cometchat.backfill=1h"},
			"--config.file and --cometchat.backfill both given: set backfill per app in the file"},
		{"shard without config file", keyEnv, []string{"--cometchat.app-id=a", "--cometchat.region=us", "--config.shard=0/2"},
			"--config.shard needs --config.file: it picks this replica's share of the file's apps"},
		{"demo and config file", nil, []string{"--demo", "--config.file=apps.yml"},
			"--demo and --config.file both given: the demo polls its own simulated app; drop one"},
		{"demo and app id", nil, []string{"--demo", "--cometchat.app-id=a"},
			"--demo and --cometchat.app-id (or COMETCHAT_APP_ID) both given: the demo polls its own simulated app and would ignore --cometchat.app-id (or COMETCHAT_APP_ID); drop one"},
		{"bad web config", keyEnv, []string{"--cometchat.app-id=a", "--cometchat.region=us", "--web.config.file=" + emptyKey + ".missing"},
			"--web.config.file " + emptyKey + ".missing: open " + emptyKey + ".missing: no such file or directory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(binary, append([]string{"--web.listen-address=127.0.0.1:0", "--log.format=json"}, tc.args...)...)
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, tc.env...)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "must exit non-zero; output:\n%s", out)
			assert.NotZero(t, exit.ExitCode())
			assert.Equal(t, tc.want, exitMessage(string(out)), "output:\n%s", out)
			assertNoKey(t, string(out))
		})
	}
}

// exitMessage is the error the exporter gave up with: the err of its
// "Exiting" JSON log line, or kingpin's own message for a bad flag.
func exitMessage(out string) string {
	for _, line := range strings.Split(out, "\n") {
		var entry struct{ Msg, Err string }
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "Exiting" {
			return entry.Err
		}
		if rest, ok := strings.CutPrefix(line, "cometchat_exporter: error: "); ok {
			return rest
		}
	}
	return ""
}

func TestStateFileSurvivesKill9(t *testing.T) {
	fake, base := fakeAPI(t)
	fake.Put(e2eCall("history", time.Hour, "ended"))
	fake.Put(e2eCall("meeting", 10*time.Minute, "ongoing"))
	state := filepath.Join(t.TempDir(), "state.json")
	args := appArgs(base, "--state.file="+state)

	e := startExporter(t, keyEnv, args...)
	e.waitReady()
	for i := range 3 {
		fake.Put(e2eCall(fmt.Sprintf("first-%d", i), time.Minute, "ended"))
	}
	eventually(t, 5*time.Second, func() bool { _, m := e.metrics(); return m.sum("cometchat_calls_total", nil) == 3 }, "3 calls")
	e.kill() // kill -9

	// While it is down: the meeting ends, more calls come and go.
	fake.Update("meeting", func(c *cometchat.Call) { c.Status, c.EndedAt = "ended", time.Now().Unix() })
	for i := range 130 {
		fake.Put(e2eCall(fmt.Sprintf("down-%03d", i), 30*time.Second, "unanswered"))
	}
	// Without the state file the restart would see all of this as history
	// and count nothing.
	e = startExporter(t, keyEnv, args...)
	eventually(t, 10*time.Second, func() bool {
		_, m := e.metrics()
		return m.sum("cometchat_calls_total", nil) == 3+1+130
	}, "every call counted once")
	time.Sleep(500 * time.Millisecond) // a few more polls: nothing is counted twice
	_, m := e.metrics()
	assert.Equal(t, 4.0, m.sum("cometchat_calls_total", map[string]string{"status": "ended"}))
	assert.Equal(t, 130.0, m.sum("cometchat_calls_total", map[string]string{"status": "unanswered"}))
	assert.Equal(t, 0.0, m.sum("cometchat_exporter_state_recovered", nil))

	// A corrupt file is moved aside, reported, and counting starts fresh.
	e.kill()
	require.NoError(t, os.WriteFile(state, []byte("{garbage"), 0o600))
	e = startExporter(t, keyEnv, args...)
	_, m = e.metrics()
	assert.Equal(t, 1.0, m.sum("cometchat_exporter_state_recovered", nil))
	assert.Contains(t, e.output.String(), "file="+state)
	moved, _ := filepath.Glob(state + ".corrupt-*")
	assert.Len(t, moved, 1)
}

func TestReloadConfigFile(t *testing.T) {
	fakeA, baseA := fakeAPI(t)
	fakeB, baseB := fakeAPI(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(keyFile, []byte(e2eKey), 0o600))
	cfg := filepath.Join(dir, "apps.yml")
	appYAML := func(name, base string) string {
		return fmt.Sprintf("  - name: %s\n    app_id: %s\n    api_key_file: %s\n    base_url: %s\n    poll_interval: 200ms\n", name, name, keyFile, base)
	}
	require.NoError(t, os.WriteFile(cfg, []byte("apps:\n"+appYAML("alpha", baseA)), 0o600))
	e := startExporter(t, nil, "--config.file="+cfg)
	e.waitReady()
	fakeA.Put(e2eCall("a1", time.Minute, "ended"))
	eventually(t, 5*time.Second, func() bool {
		_, m := e.metrics()
		return m.sum("cometchat_calls_total", map[string]string{"app": "alpha"}) == 1
	}, "alpha counts")

	// Add beta with SIGHUP: alpha keeps its counters.
	// b1 is beta's history: there before beta's first poll, never counted.
	fakeB.Put(e2eCall("b1", time.Minute, "rejected"))
	require.NoError(t, os.WriteFile(cfg, []byte("apps:\n"+appYAML("alpha", baseA)+appYAML("beta", baseB)), 0o600))
	e.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, 5*time.Second, func() bool {
		_, m := e.metrics()
		return m.sum("cometchat_up", map[string]string{"app": "beta"}) == 1
	}, "beta polled")
	fakeB.Put(e2eCall("b2", 0, "rejected"))
	eventually(t, 5*time.Second, func() bool {
		_, m := e.metrics()
		return m.sum("cometchat_calls_total", map[string]string{"app": "beta"}) == 1
	}, "beta counts a new call")
	_, m := e.metrics()
	assert.Equal(t, 1.0, m.sum("cometchat_calls_total", map[string]string{"app": "alpha"}))

	// A bad config is refused; the running apps stay.
	require.NoError(t, os.WriteFile(cfg, []byte("apps:\n  - name: x\n    surprise: 1\n"), 0o600))
	resp, err := http.Post("http://"+e.addr+"/-/reload", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 500, resp.StatusCode)
	_, m = e.metrics()
	assert.Equal(t, 0.0, m.sum("cometchat_exporter_config_last_reload_successful", nil))
	assert.Equal(t, 1.0, m.sum("cometchat_up", map[string]string{"app": "beta"}))

	// Remove alpha with POST /-/reload: its series go away.
	require.NoError(t, os.WriteFile(cfg, []byte("apps:\n"+appYAML("beta", baseB)), 0o600))
	resp, err = http.Post("http://"+e.addr+"/-/reload", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	_, m = e.metrics()
	alpha := map[string]string{"app": "alpha"}
	assert.Zero(t, m.count("cometchat_up", alpha)+m.count("cometchat_calls_total", alpha)+
		m.count("cometchat_exporter_api_requests_total", alpha), "alpha's series are gone")
	assert.Equal(t, 1.0, m.sum("cometchat_exporter_config_last_reload_successful", nil))
	assert.Equal(t, 1.0, m.sum("cometchat_calls_total", map[string]string{"app": "beta"}))
}

func TestWebConfigTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := selfSignedCert(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tls.crt"), certPEM, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tls.key"), keyPEM, 0o600))
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret-pass"), bcrypt.MinCost)
	require.NoError(t, err)
	webCfg := filepath.Join(dir, "web.yml")
	require.NoError(t, os.WriteFile(webCfg, []byte(fmt.Sprintf(
		"tls_server_config:\n  cert_file: %s/tls.crt\n  key_file: %s/tls.key\nbasic_auth_users:\n  prom: %s\n", dir, dir, hash)), 0o600))

	addr := freeAddr(t)
	cmd := exec.Command(binary, "--demo", "--web.listen-address="+addr, "--web.config.file="+webCfg)
	out := &testenv.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(certPEM))
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(user, pass string) int {
		req, _ := http.NewRequest("GET", "https://"+addr+"/metrics", nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	eventually(t, 10*time.Second, func() bool { return get("", "") != 0 }, "TLS listener up:\n"+out.String())
	assert.Equal(t, 401, get("", ""))
	assert.Equal(t, 401, get("prom", "wrong"))
	assert.Equal(t, 200, get("prom", "s3cret-pass"))
	resp, err := http.Get("http://" + addr + "/metrics")
	if err == nil {
		assert.Equal(t, 400, resp.StatusCode, "plain http is refused")
		resp.Body.Close()
	}
}

func selfSignedCert(t *testing.T) (certPEM, keyPEM []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

func TestDemoShowsCallsWithin30Seconds(t *testing.T) {
	e := startExporter(t, nil, "--demo")
	e.waitReady()
	eventually(t, 30*time.Second, func() bool {
		_, m := e.metrics()
		return m.sum("cometchat_calls_total", nil) > 0 && m.sum("cometchat_calls_active", nil) > 0
	}, "demo calls counted")
	_, m := e.metrics()
	assert.Equal(t, 1.0, m.sum("cometchat_up", map[string]string{"app": "demo"}))

	// A billing period begun ten days ago, with a plan: the usage moves.
	assert.Equal(t, 25000.0, m.sum("cometchat_plan_included_minutes", map[string]string{"app": "demo"}))
	start := m.sum("cometchat_billing_period_start_timestamp_seconds", nil)
	assert.True(t, start >= float64(time.Now().Add(-11*24*time.Hour).Unix()) && start <= float64(time.Now().Unix()),
		"begun within the last eleven days (ten, or the 1st of this month)")
	// Its simulated last day is backfilled: the period is partly used at
	// the first scrape.
	assert.Positive(t, m.sum("cometchat_billing_period_minutes", map[string]string{"kind": "total"}), "the period partly used from the start")
	assert.Greater(t, m.sum("cometchat_calls_total", nil), 100.0, "the simulated last day counted")
}

// --collector.drop-labels leaves the labels out of every call series of
// /metrics, in every format, and the calls are all still there.
func TestDropLabels(t *testing.T) {
	e := startExporter(t, nil, "--demo", "--collector.drop-labels=mode,receiver_type")
	e.waitReady()
	eventually(t, 30*time.Second, func() bool {
		_, m := e.metrics()
		return m.sum("cometchat_calls_total", nil) > 100
	}, "demo calls counted")
	_, m := e.metrics()
	for _, name := range []string{"cometchat_calls_total", "cometchat_call_duration_seconds", "cometchat_calls_active"} {
		require.Contains(t, m, name)
		for _, s := range m[name].Metric {
			for _, l := range s.Label {
				if l.GetName() == "mode" || l.GetName() == "receiver_type" {
					assert.Empty(t, l.GetValue(), "%s: %s", name, l.GetName())
				}
			}
		}
	}
	assert.Equal(t, 2*6, m.count("cometchat_calls_total", map[string]string{"app": "demo"}), "audio and video, six statuses")
	assert.Equal(t, 2, m.count("cometchat_call_duration_seconds", map[string]string{"app": "demo"}))
}

// TestDemoMisbehavingCountsAnomalies: --demo.misbehave makes the simulated
// API list entries out of order, in milliseconds and without ids; the
// exporter keeps counting and says what it saw.
func TestDemoMisbehavingCountsAnomalies(t *testing.T) {
	e := startExporter(t, nil, "--demo", "--demo.calls-per-minute=600", "--demo.speed=20",
		"--demo.misbehave=unsorted,millis,no_session_id,no_current_page")
	e.waitReady()
	eventually(t, 60*time.Second, func() bool {
		_, m := e.metrics()
		for _, kind := range []string{"timestamp_unit", "no_session_id"} {
			if m.sum("cometchat_api_anomalies_total", map[string]string{"app": "demo", "kind": kind}) == 0 {
				return false
			}
		}
		return m.sum("cometchat_calls_total", nil) > 0
	}, "anomalies counted while calls are")
	_, m := e.metrics()
	assert.Equal(t, 1.0, m.sum("cometchat_up", map[string]string{"app": "demo"}))
	assert.Positive(t, m.sum("cometchat_api_calls_listed", map[string]string{"app": "demo"}))
	assert.Positive(t, m.sum("cometchat_exporter_calls_seen_total", map[string]string{"app": "demo"}))
}

// A state path that cannot hold the state stops start-up, naming the
// flag, the path and the fix: otherwise every restart would be a silent
// first start. The exporter runs as an unprivileged user (nobody, when the
// test runs as root), as it does in its image.
func TestStatePathFailsFast(t *testing.T) {
	dir, err := os.MkdirTemp("", "cometchat-state-")
	require.NoError(t, err)
	t.Cleanup(func() { os.Chmod(filepath.Join(dir, "ro"), 0o755); os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "cometchat_exporter")
	b, err := os.ReadFile(binary)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, b, 0o755))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "ro"), 0o555))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "rw"), 0o777))
	require.NoError(t, os.Chmod(filepath.Join(dir, "rw"), 0o777))
	locked := filepath.Join(dir, "rw", "locked.json")
	require.NoError(t, os.WriteFile(locked, []byte("{}"), 0o600))
	uid := os.Getuid()
	if uid == 0 {
		uid = 65534
		require.NoError(t, os.Chown(locked, 0, 0))
	}
	for _, tc := range []struct{ path, want string }{
		{dir, "--state.file: state file " + dir + " is a directory: name a file in it, e.g. " + dir + "/state.json"},
		{dir + "/missing/state.json", fmt.Sprintf("--state.file: state file %s/missing/state.json: directory %s/missing does not exist: "+
			"create it, writable by this process (uid %d), or name a file in another directory", dir, dir, uid)},
		{dir + "/ro/state.json", fmt.Sprintf("--state.file: state file %s/ro/state.json: directory %s/ro is not writable by this process (uid %d): "+
			"make it writable (in a container, mount a writable volume there) or name a file in another directory", dir, dir, uid)},
		{locked, fmt.Sprintf("--state.file: state file %s cannot be read and written by this process (uid %d): fix its owner or mode", locked, uid)},
	} {
		cmd := exec.Command(bin, "--web.listen-address=127.0.0.1:0", "--log.format=json", "--demo", "--state.file="+tc.path)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		if os.Getuid() == 0 {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		}
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "must exit non-zero; output:\n%s", out)
		assert.Equal(t, tc.want, exitMessage(string(out)), "output:\n%s", out)
		assert.NotContains(t, string(out), "Polling app", "refused before any polling")
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 3, "nothing moved aside or created: %v", entries)

	// A writable path starts, and says that state persists; none says not.
	e := startExporter(t, nil, "--demo", "--state.file="+filepath.Join(dir, "rw", "state.json"))
	e.waitReady()
	eventually(t, 10*time.Second, func() bool {
		_, m := e.metrics()
		return m.sum("cometchat_exporter_state_persisted", map[string]string{"app": "demo"}) == 1
	}, "state persisted")
	e = startExporter(t, nil, "--demo")
	e.waitReady()
	_, m := e.metrics()
	assert.Equal(t, 1, m.count("cometchat_exporter_state_persisted", map[string]string{"app": "demo"}))
	assert.Zero(t, m.sum("cometchat_exporter_state_persisted", nil), "no state file: not persisted")
}

// A port in use stops start-up, naming the flag, before any request to
// the API: the listeners are bound first.
func TestPortInUseStopsStartUpBeforePolling(t *testing.T) {
	fake, base := fakeAPI(t)
	for _, flag := range []string{"--web.listen-address", "--webhook.listen-address"} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		args := append(appArgs(base), "--log.format=json", flag+"="+addr)
		if flag == "--web.listen-address" {
			args = append([]string{flag + "=" + addr}, args...)
		} else {
			args = append([]string{"--web.listen-address=127.0.0.1:0"}, args...)
		}
		cmd := exec.Command(binary, args...)
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, keyEnv...)
		out, err := cmd.CombinedOutput()
		l.Close()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "must exit non-zero; output:\n%s", out)
		assert.Equal(t, flag+" "+addr+": listen tcp "+addr+": bind: address already in use", exitMessage(string(out)))
	}
	assert.Zero(t, fake.Requests(cometchat.EndpointListCalls)+fake.Requests(cometchat.EndpointGetCall), "no request reached the API")
}

// A private CA (a company proxy, a private endpoint) is trusted with
// --cometchat.ca-file or ca_file, and only then.
func TestPrivateCA(t *testing.T) {
	fake := cometchattest.New(e2eKey)
	fake.Put(e2eCall("history", time.Hour, "ended"))
	srv := httptest.NewTLSServer(fake)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))
	base := srv.URL + "/v3"

	untrusted := startExporter(t, keyEnv, appArgs(base)...)
	eventually(t, 5*time.Second, func() bool {
		return strings.Contains(untrusted.output.String(), "certificate signed by unknown authority")
	}, "the proxy's certificate refused without the CA")
	_, m := untrusted.metrics()
	assert.Equal(t, 0.0, m.sum("cometchat_up", nil))

	e := startExporter(t, keyEnv, appArgs(base, "--cometchat.ca-file="+ca)...)
	e.waitReady()
	fake.Put(e2eCall("fresh", 0, "ended"))
	eventually(t, 5*time.Second, func() bool {
		_, m := e.metrics()
		return m.sum("cometchat_up", nil) == 1 && m.sum("cometchat_calls_total", nil) == 1
	}, "polled through TLS with the CA, the new call counted")

	keyFile := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(keyFile, []byte(e2eKey), 0o600))
	cfg := filepath.Join(dir, "apps.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("apps:\n  - name: a\n    app_id: a\n    base_url: %s\n    api_key_file: %s\n    ca_file: %s\n    poll_interval: 200ms\n", base, keyFile, ca)), 0o600))
	f := startExporter(t, nil, "--config.file="+cfg)
	f.waitReady()
	_, m = f.metrics()
	assert.Equal(t, 1.0, m.sum("cometchat_up", map[string]string{"app": "a"}), "ca_file in the config file")

	notPEM := filepath.Join(dir, "not.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("hello"), 0o600))
	cmd := exec.Command(binary, "--web.listen-address=127.0.0.1:0", "--log.format=json", "--cometchat.app-id=a",
		"--cometchat.base-url="+base, "--cometchat.ca-file="+notPEM)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, keyEnv...)
	out, _ := cmd.CombinedOutput()
	assert.Equal(t, "--cometchat.ca-file: "+notPEM+" holds no PEM certificate", exitMessage(string(out)))
}

// A base URL that answers a web page says what to check, with the URL.
func TestWrongBaseURLSaysWhatToCheck(t *testing.T) {
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte("<!DOCTYPE html><html><body>Page not found</body></html>"))
	}))
	t.Cleanup(site.Close)
	e := startExporter(t, keyEnv, appArgs(site.URL+"/api")...)
	eventually(t, 5*time.Second, func() bool {
		return strings.Contains(e.output.String(), "HTTP 404 from "+site.URL+"/api/calls?")
	}, "the URL in the log")
	assert.Contains(t, e.output.String(), "check --cometchat.region and --cometchat.base-url")
	assertNoKey(t, e.output.String())
}

// The landing page lists each app with what a newcomer asks first, in
// plain HTML, and links to the metrics, the dashboards (served as they
// are committed) and the runbook.
func TestLandingPage(t *testing.T) {
	fake, base := fakeAPI(t)
	state := filepath.Join(t.TempDir(), "state.json")
	e := startExporter(t, keyEnv, appArgs(base, "--state.file="+state)...)
	e.waitReady()
	fake.Put(e2eCall("one", 0, "ended"))
	fake.Put(e2eCall("two", 0, "rejected"))
	eventually(t, 5*time.Second, func() bool {
		_, m := e.metrics()
		return m.sum("cometchat_calls_total", nil) == 2
	}, "two calls counted")
	code, page := e.get("/")
	require.Equal(t, 200, code)
	assert.NotContains(t, page, "<script", "no JavaScript")
	row := regexp.MustCompile(`<tr><td>e2e</td><td class="up">up</td><td>\d+s ago</td><td>200ms</td><td class="num">2</td><td class="num">0</td><td class="num">0</td><td>yes</td></tr>`)
	assert.Regexp(t, row, page)
	for _, link := range []string{`href="/metrics"`, `href="/dashboards/cometchat-calls-overview.json"`, `href="/dashboards/cometchat-exporter-health.json"`,
		`href="https://github.com/cometchat-exporter/cometchat-exporter/blob/main/docs/runbook.md"`} {
		assert.Contains(t, page, link)
	}
	code, body := e.get("/dashboards/cometchat-calls-overview.json")
	require.Equal(t, 200, code)
	want, err := os.ReadFile("dashboards/cometchat-calls-overview.json")
	require.NoError(t, err)
	assert.Equal(t, string(want), body)
	assert.Equal(t, 404, e.status("/nothing-here"))

	// Without a state file the page says a restart starts over; a down app
	// shows down.
	fake.Revoke(cometchat.CodeAPIKeyNotFound)
	f := startExporter(t, keyEnv, appArgs(base)...)
	f.waitReady()
	_, page = f.get("/")
	assert.Contains(t, page, `<td class="down">down</td><td>never</td>`)
	assert.Contains(t, page, "no: a restart starts over (--state.file)")
	assertNoKey(t, page)
}

// cometchat_exporter check: a report on stdout, exit 0 only when every
// app will be counted, the key never shown.
func TestCheckCommand(t *testing.T) {
	fake, base := fakeAPI(t)
	fake.Put(e2eCall("one", time.Minute, "ended"))
	run := func() (string, int) {
		cmd := exec.Command(binary, "check", "--cometchat.app-id=e2e", "--cometchat.base-url="+base)
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, keyEnv...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		assertNoKey(t, stdout.String(), stderr.String())
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return stdout.String(), exit.ExitCode()
		}
		require.NoError(t, err)
		return stdout.String(), 0
	}
	out, code := run()
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "ok    get call: one is ended")
	assert.Contains(t, out, "result: the exporter will count these apps correctly")

	fake.Revoke(cometchat.CodeAPIKeyNotFound)
	out, code = run()
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "FAIL  list calls:")
}
