package collector

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/cometchat-exporter/cometchat-exporter/accountant"
	"github.com/cometchat-exporter/cometchat-exporter/internal/testenv"
)

// Accept headers as scrapers send them.
const (
	// Prometheus 2.x (2.42, scrape_classic_histograms off).
	acceptProm2 = `application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1`
	// Prometheus 3.x with its default scrape_protocols.
	acceptProm3 = `application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1`
	// Prometheus 3.x with native histograms: protobuf first.
	acceptProm3Proto = `application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5,application/openmetrics-text;version=1.0.0;q=0.4,text/plain;version=0.0.4;q=0.2,*/*;q=0.1`
	// Prometheus 3.x told to scrape the classic text only.
	acceptProm3Text = `text/plain;version=0.0.4;q=0.2,*/*;q=0.1`
)

func serve(t *testing.T) *httptest.Server {
	e := NewExposition()
	e.Update(testSnapshot())
	global := prometheus.NewRegistry()
	global.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "cometchat_exporter_test_global_total", Help: "A process-wide counter."}))
	srv := httptest.NewServer(e.Handler(global, nil))
	t.Cleanup(srv.Close)
	return srv
}

func scrape(t *testing.T, url, accept, encoding string) (*http.Response, []byte) {
	req, _ := http.NewRequest("GET", url, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if encoding != "" {
		req.Header.Set("Accept-Encoding", encoding)
	}
	resp, err := http.DefaultTransport.RoundTrip(req) // no transparent gzip
	require.NoError(t, err)
	defer resp.Body.Close()
	var body io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(resp.Body)
		require.NoError(t, err)
		body = gz
	}
	b, err := io.ReadAll(body)
	require.NoError(t, err)
	return resp, b
}

// samples counts the sample lines of a text exposition, _created lines
// apart: exemplars ride on samples and never add one.
func samples(text string) (n, created int) {
	for _, line := range strings.Split(text, "\n") {
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.Contains(strings.Fields(line)[0], "_created"):
			created++
		default:
			n++
		}
	}
	return n, created
}

var (
	exemplarOnCalls    = regexp.MustCompile(`(?m)^cometchat_calls_total\{app="prod",call_type="video",mode="meet",receiver_type="group",status="ended"\} 3\.0 # \{session_id="v1\.us\.abc\.1699999990ended"\} 1\.0 1\.69999999e\+09$`)
	exemplarOnDuration = regexp.MustCompile(`(?m)^cometchat_call_duration_seconds_bucket\{app="prod",call_type="video",mode="meet",receiver_type="group",le="60\.0"\} 2 # \{session_id="v1\.us\.abc\.1699999990ended"\} 42\.0 1\.69999999e\+09$`)
	createdCalls       = regexp.MustCompile(`(?m)^cometchat_calls_created\{app="prod",call_type="audio",mode="call",receiver_type="user",status="busy"\} 1\.69e\+09$`)
	createdRequests    = regexp.MustCompile(`(?m)^cometchat_exporter_api_requests_created\{app="prod",code="200",endpoint="list_calls"\} 1\.699999e\+09$`)
)

func TestNegotiation(t *testing.T) {
	srv := serve(t)
	_, classic := scrape(t, srv.URL, "", "")
	classicSamples, _ := samples(string(classic))

	cases := []struct {
		name, accept, encoding string
		wantType               string
		wantGzip               bool
	}{
		{"Prometheus 2", acceptProm2, "gzip", "application/openmetrics-text; version=1.0.0", true},
		{"Prometheus 3", acceptProm3, "gzip", "application/openmetrics-text; version=1.0.0", true},
		{"Prometheus 3, text only", acceptProm3Text, "gzip", "text/plain; version=0.0.4", true},
		{"Prometheus 3, protobuf", acceptProm3Proto, "gzip", "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited", true},
		{"OpenMetrics 0.0.1", "application/openmetrics-text;version=0.0.1", "", "application/openmetrics-text; version=0.0.1", false},
		{"curl", "*/*", "", "text/plain; version=0.0.4", false},
		{"no Accept", "", "", "text/plain; version=0.0.4", false},
		{"gzip refused by q=0", acceptProm2, "gzip;q=0", "application/openmetrics-text; version=1.0.0", false},
		{"gzip refused, anything else welcome", acceptProm3, "gzip;q=0, *", "application/openmetrics-text; version=1.0.0", false},
		{"gzip through *", acceptProm2, "br;q=1.0, *;q=0.5", "application/openmetrics-text; version=1.0.0", true},
		{"identity only", acceptProm2, "identity", "application/openmetrics-text; version=1.0.0", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := scrape(t, srv.URL, tc.accept, tc.encoding)
			assert.Equal(t, 200, resp.StatusCode)
			assert.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), tc.wantType), "Content-Type %q", resp.Header.Get("Content-Type"))
			assert.Equal(t, tc.wantGzip, resp.Header.Get("Content-Encoding") == "gzip")
			assert.Contains(t, resp.Header.Values("Vary"), "Accept-Encoding")
			switch {
			case strings.HasPrefix(tc.wantType, "application/openmetrics-text"):
				checkOpenMetrics(t, string(body), classicSamples)
			case strings.HasPrefix(tc.wantType, "application/vnd.google.protobuf"):
				checkProto(t, body)
			default:
				assert.Equal(t, string(classic), string(body))
				assert.NotContains(t, string(body), "# EOF")
				assert.NotContains(t, string(body), "_created")
				assert.NotContains(t, string(body), " # {")
			}
		})
	}
}

// checkOpenMetrics checks the OpenMetrics text: one # EOF, at the end;
// _created samples for counters and histograms, the call series' from the
// ledger's start and the poller's own from the poller's; exemplars on
// calls_total and the duration buckets; no series more than the classic
// format has.
func checkOpenMetrics(t *testing.T, text string, classicSamples int) {
	assert.Equal(t, 1, strings.Count(text, "# EOF"))
	assert.True(t, strings.HasSuffix(text, "\n# EOF\n"))
	assert.Regexp(t, exemplarOnCalls, text)
	assert.Regexp(t, exemplarOnDuration, text)
	assert.Regexp(t, createdCalls, text)
	assert.Regexp(t, createdRequests, text)
	assert.Contains(t, text, "# TYPE cometchat_calls counter\n")
	n, created := samples(text)
	assert.Equal(t, classicSamples, n, "exemplars and _created lines add no series")
	assert.Positive(t, created)
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, " # {") {
			assert.Regexp(t, `^(cometchat_calls_total|cometchat_call_duration_seconds_bucket)\{`, line, "exemplars only where they name a call")
		}
	}
}

func checkProto(t *testing.T, body []byte) {
	dec := expfmt.NewDecoder(bytes.NewReader(body), expfmt.NewFormat(expfmt.TypeProtoDelim))
	byName := map[string]*dto.MetricFamily{}
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err == io.EOF {
			break
		} else {
			require.NoError(t, err)
		}
		require.NotContains(t, byName, mf.GetName(), "one family per name")
		byName[mf.GetName()] = &mf
	}
	calls := byName["cometchat_calls_total"]
	require.NotNil(t, calls)
	var ex *dto.Exemplar
	for _, m := range calls.Metric {
		assert.Equal(t, int64(1690000000), m.GetCounter().GetCreatedTimestamp().GetSeconds())
		if e := m.GetCounter().GetExemplar(); e != nil {
			ex = e
		}
	}
	require.NotNil(t, ex)
	assert.Equal(t, "v1.us.abc.1699999990ended", ex.GetLabel()[0].GetValue())
	assert.Contains(t, byName, "cometchat_exporter_test_global_total")
}

// The classic text passes promtool's lint, as Prometheus' own tooling
// reads it.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool := testenv.RequireTool(t, "promtool")
	_, body := scrape(t, serve(t).URL, "", "")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"":                    false,
		"gzip":                true,
		"gzip, deflate, br":   true,
		"GZIP;Q=0.5":          true,
		"gzip;q=0":            false,
		"gzip;q=0.0, *":       false,
		"*":                   true,
		"*;q=0":               false,
		"identity":            false,
		"br, *;q=0.1":         true,
		"x-gzip":              true,
		"gzip;q=bogus":        false,
		"deflate, gzip;q=0.8": true,
	} {
		assert.Equal(t, want, acceptsGzip(header), "Accept-Encoding: %q", header)
	}
}

// An exemplar OpenMetrics cannot carry is left out; the series stays.
func TestExemplarTooLongIsLeftOut(t *testing.T) {
	s := testSnapshot()
	lb := accountant.Labels{CallType: "video", Mode: "meet", ReceiverType: "group"}
	s.Exemplars[lb].Calls["ended"] = accountant.Exemplar{SessionID: strings.Repeat("x", 200), Value: 1}
	s.Exemplars[lb].Calls["unanswered"] = accountant.Exemplar{SessionID: "bad\xff", Value: 1}
	e := NewExposition()
	e.Update(s)
	srv := httptest.NewServer(e.Handler(prometheus.NewRegistry(), nil))
	defer srv.Close()
	_, body := scrape(t, srv.URL, acceptProm2, "")
	text := string(body)
	assert.Regexp(t, `(?m)^cometchat_calls_total\{app="prod",call_type="video",mode="meet",receiver_type="group",status="ended"\} 3\.0$`, text)
	assert.Regexp(t, `(?m)^cometchat_calls_total\{app="prod",call_type="video",mode="meet",receiver_type="group",status="unanswered"\} 1\.0$`, text)
	assert.Regexp(t, exemplarOnDuration, text, "the other exemplars stay")
}

// The pre-rendered protobuf decodes to exactly what promhttp encodes over
// the same collectors: every family, metric, label, value, created time
// and exemplar, the apps' metrics of a family in one message.
func TestProtobufIsPromhttps(t *testing.T) {
	var snaps []*accountant.Snapshot
	for _, app := range []string{"alpha", "beta", "gamma"} {
		snaps = append(snaps, fullSnapshot(app, 12))
	}
	e := NewExposition()
	for _, s := range snaps {
		e.Update(s)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(New(func() []*accountant.Snapshot { return snaps }))
	got := protoFamilies(t, e.Handler(prometheus.NewRegistry(), nil))
	want := protoFamilies(t, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	require.Equal(t, len(want), len(got), "families")
	for name, w := range want {
		g := got[name]
		require.NotNil(t, g, name)
		assert.Len(t, g.Metric, len(w.Metric), name)
		assert.True(t, proto.Equal(w, g), "%s differs:\nwant %v\n got %v", name, w, g)
	}
	assert.Len(t, got["cometchat_calls_total"].Metric, 3*12*6, "three apps' series in one message")
}
