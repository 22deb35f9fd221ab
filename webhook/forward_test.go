package webhook

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParsePeerURL(t *testing.T) {
	for template, ok := range map[string]bool{
		"http://exporter-{shard}.exporter:9097/webhook": true,
		"https://10.0.0.{shard}:9097/webhook":           true,
		"http://exporter-0.exporter:9097/webhook":       false, // no placeholder
		"exporter-{shard}:9097":                         false, // no scheme
		"ftp://exporter-{shard}/webhook":                false,
		"http:///{shard}":                               false, // no host
		"http://exporter-{shard}.ex ample/webhook":      false,
	} {
		assert.Equal(t, ok, ParsePeerURL(template) == nil, template)
	}
}

// peer is another shard's listener: it records what reaches it, and
// blocks while hold is set.
type peer struct {
	mu       sync.Mutex
	requests []*http.Request
	bodies   []string
	hold     chan struct{}
	status   int // answered; 0 is 200
}

func (p *peer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.hold != nil {
		<-p.hold
	}
	b, _ := io.ReadAll(r.Body)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = append(p.requests, r)
	p.bodies = append(p.bodies, string(b))
	if p.status != 0 {
		w.WriteHeader(p.status)
	}
}

func (p *peer) count() int { p.mu.Lock(); defer p.mu.Unlock(); return len(p.requests) }

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		require.False(t, time.Now().After(deadline), "timed out waiting for %s", what)
		time.Sleep(10 * time.Millisecond)
	}
}

// A webhook for an app of another shard goes there, once per shard, with
// its credentials and a mark; a marked webhook is never forwarded again.
func TestForwarder(t *testing.T) {
	p := &peer{}
	srv := httptest.NewServer(p)
	defer srv.Close()
	reg := prometheus.NewRegistry()
	// The template's host is the peer's for every shard: shard 2 is down.
	f := NewForwarder(0, srv.URL+"/webhook?shard={shard}", reg, log.NewNopLogger())
	f.SetOwners(Owners{"abc123": {1: {"prod-eu", "prod-eu-support"}}, "down": {2: {"lost"}}})
	r := &router{apps: map[string]string{"local": "here"}}
	h := NewHandler(r, reg, log.NewNopLogger())
	h.ForwardWith(f)
	count := func(app, result string) float64 {
		return testutil.ToFloat64(h.total.WithLabelValues(app, "call_ended", result))
	}

	req := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(ended))
	req.SetBasicAuth("cometchat", "hook-pass")
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, 200, rec.Code)
	waitFor(t, func() bool { return p.count() == 1 }, "the forward")
	got := p.requests[0]
	assert.Equal(t, "1", got.URL.Query().Get("shard"), "one request, to shard 1, for both its apps")
	user, pass, ok := got.BasicAuth()
	assert.True(t, ok && user == "cometchat" && pass == "hook-pass", "with the webhook's credentials")
	assert.Equal(t, "application/json", got.Header.Get("Content-Type"))
	assert.Equal(t, "0", got.Header.Get(ForwardedHeader), "marked with the sender's shard")
	assert.Equal(t, ended, p.bodies[0], "the body as it came")
	assert.Equal(t, 1.0, count("prod-eu", "forwarded"))
	assert.Equal(t, 1.0, count("prod-eu-support", "forwarded"))
	assert.Zero(t, count("", "unknown_app"))
	assert.Empty(t, r.hints, "no local app has that id")
	waitFor(t, func() bool { return testutil.ToFloat64(f.total.WithLabelValues("1", "ok")) == 1 }, "the forward counted ok")

	// Forwarded once already: hinted here or unknown, never sent on.
	marked := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(ended))
	marked.Header.Set(ForwardedHeader, "1")
	h.ServeHTTP(httptest.NewRecorder(), marked)
	assert.Equal(t, 1.0, count("", "unknown_app"), "a replica that disagrees on the shards does not bounce it back")

	// A shard that does not answer 2xx is counted as failed.
	p.mu.Lock()
	p.status = http.StatusUnauthorized
	p.mu.Unlock()
	assert.Equal(t, 200, post(h, strings.Replace(ended, "abc123", "down", 1)), "CometChat gets 200: the owner's poll counts the call anyway")
	waitFor(t, func() bool { return testutil.ToFloat64(f.total.WithLabelValues("2", "failed")) == 1 }, "the failed forward counted")
	assert.Zero(t, testutil.ToFloat64(f.total.WithLabelValues("2", "ok")))
	assert.Equal(t, 1.0, count("lost", "forwarded"))
}

// Forwards in flight are bounded: over MaxForwardsInFlight, a webhook is
// dropped (and counted), never queued without end.
func TestForwardsInFlightAreBounded(t *testing.T) {
	p := &peer{hold: make(chan struct{})}
	srv := httptest.NewServer(p)
	defer srv.Close()
	reg := prometheus.NewRegistry()
	f := NewForwarder(1, srv.URL+"/{shard}", reg, log.NewNopLogger())
	f.SetOwners(Owners{"abc123": {0: {"prod"}}})
	h := NewHandler(&router{}, reg, log.NewNopLogger())
	h.ForwardWith(f)
	for range MaxForwardsInFlight + 3 {
		require.Equal(t, 200, post(h, ended))
	}
	assert.Equal(t, 3.0, testutil.ToFloat64(f.total.WithLabelValues("0", "dropped")))
	close(p.hold)
	waitFor(t, func() bool { return testutil.ToFloat64(f.total.WithLabelValues("0", "ok")) == MaxForwardsInFlight }, "the held forwards done")
	require.Equal(t, 200, post(h, ended))
	waitFor(t, func() bool { return p.count() == MaxForwardsInFlight+1 }, "a slot is free again")
}
