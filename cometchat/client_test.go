package cometchat

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testKey = "sk-test-0123456789abcdef"

func newTestClient(t *testing.T, h http.HandlerFunc, mod ...func(*Config)) (*Client, *[]RequestInfo) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	var infos []RequestInfo
	cfg := Config{BaseURL: srv.URL + "/v3", APIKey: testKey, Timeout: 2 * time.Second,
		MaxRetryWait: 50 * time.Millisecond, Observe: func(i RequestInfo) { infos = append(infos, i) }}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := New(cfg)
	require.NoError(t, err)
	return c, &infos
}

func serveFile(t *testing.T, name string) http.HandlerFunc {
	body, err := os.ReadFile("testdata/" + name)
	require.NoError(t, err)
	return func(w http.ResponseWriter, r *http.Request) { w.Write(body) }
}

func TestListDecodesReferenceQuirks(t *testing.T) {
	var got *http.Request
	c, infos := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		got = r
		serveFile(t, "list_reference.json")(w, r)
	}, func(c *Config) { c.OnBehalfOf = "cometchat-uid-1" })

	page, err := c.List(context.Background(), ListOptions{Page: 2, PerPage: 100, Status: "ongoing"})
	require.NoError(t, err)

	assert.Equal(t, "/v3/calls", got.URL.Path)
	assert.Equal(t, "2", got.URL.Query().Get("page"))
	assert.Equal(t, "100", got.URL.Query().Get("perPage"))
	assert.Equal(t, "ongoing", got.URL.Query().Get("status"))
	assert.Equal(t, testKey, got.Header.Get("apikey"))
	assert.Equal(t, "cometchat-uid-1", got.Header.Get("onBehalfOf"))
	assert.NotContains(t, got.URL.String(), testKey)

	require.Len(t, page.Calls, 2)
	assert.Equal(t, 2, page.Skipped, "a string and a call without sessionId are skipped")
	assert.Equal(t, Pagination{Total: 4, Count: 4, PerPage: 25, CurrentPage: 1, TotalPages: 1}, page.Pagination)

	group := page.Calls[0]
	assert.Equal(t, "group", group.ReceiverType)
	assert.Equal(t, int64(1692869395), group.Timestamp())
	assert.InDelta(t, 0.31666666666666665, group.AudioMinutes, 1e-12)
	assert.InDelta(t, 0.16666666666666666, group.Participants[0].AudioMinutes, 1e-12)
	assert.False(t, group.HasTranscription)
	assert.Equal(t, "00:00:19", group.TotalDuration)
	assert.Equal(t, int64(2), group.TotalParticipants)
	require.Len(t, group.Participants, 5)
	assert.Equal(t, "unanswered", group.Participants[4].State)
	assert.Empty(t, group.Participants[4].DeviceID)
	assert.Zero(t, group.Participants[4].JoinedAt)

	odd := page.Calls[1]
	assert.Equal(t, "cancelled", odd.Status)
	assert.Equal(t, int64(1692869000), odd.InitiatedAt, "a float timestamp is read as seconds")
	assert.Zero(t, odd.AudioMinutes, "null audio minutes")
	assert.Equal(t, 2.5, odd.VideoMinutes, "a numeric string is read as a number")
	assert.Equal(t, int64(1), odd.TotalParticipants)
	assert.True(t, odd.HasRecording)
	assert.Equal(t, "12345", odd.Participants[0].DeviceID)
	assert.True(t, odd.Participants[0].IsJoined)
	require.Len(t, odd.Recordings, 1, "a non-object recording entry is dropped")
	assert.Equal(t, 1.75, odd.Recordings[0].DurationMinutes)

	require.Len(t, *infos, 1)
	assert.Equal(t, RequestInfo{Endpoint: EndpointListCalls, Code: 200}, RequestInfo{Endpoint: (*infos)[0].Endpoint, Code: (*infos)[0].Code})
}

func TestGetDecodesCall(t *testing.T) {
	var path string
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.EscapedPath()
		serveFile(t, "get_reference.json")(w, r)
	})
	call, err := c.Get(context.Background(), "v1.us.abc/1")
	require.NoError(t, err)
	assert.Equal(t, "/v3/calls/v1.us.abc%2F1", path, "the id is path-escaped")
	assert.Equal(t, "presenter", call.Mode)
	assert.Len(t, call.Participants, 3)
}

// The call-level minutes and the participants' minutes are two figures;
// neither is derived from the other, even when one is missing.
func TestMinutesKeptAsReported(t *testing.T) {
	p, err := DecodePage([]byte(`{"data":[
		{"sessionId":"a","hasTranscription":true,"participants":[{"totalAudioMinutes":1.5,"totalVideoMinutes":0.5},{"totalAudioMinutes":2}]},
		{"sessionId":"b","totalAudioMinutes":0.25,"participants":[]}]}`))
	require.NoError(t, err)
	a, b := p.Calls[0], p.Calls[1]
	assert.Zero(t, a.AudioMinutes, "no call-level value: not the participants' sum")
	assert.Zero(t, a.VideoMinutes)
	assert.Equal(t, []float64{1.5, 2}, []float64{a.Participants[0].AudioMinutes, a.Participants[1].AudioMinutes})
	assert.True(t, a.HasTranscription)
	assert.Equal(t, 0.25, b.AudioMinutes)
	assert.False(t, b.HasTranscription)
}

func TestParticipantDurationSpellings(t *testing.T) {
	p, err := DecodePage([]byte(`{"data":[{"sessionId":"a","participants":[
		{"totalDurationInMinutes":1.25},{"totalDuration":0.5},{"totalDuration":"00:01:30"}]}]}`))
	require.NoError(t, err)
	ps := p.Calls[0].Participants
	assert.Equal(t, []float64{1.25, 0.5, 1.5}, []float64{ps[0].DurationMinutes, ps[1].DurationMinutes, ps[2].DurationMinutes})
}

func TestNumbersThatAreNotNumbers(t *testing.T) {
	c, err := DecodeCall([]byte(`{"data":{"sessionId":"x","status":"ended",
		"initiatedAt":"Infinity","startedAt":1e308,"endedAt":-5,
		"totalAudioMinutes":"Infinity","totalVideoMinutes":"NaN","totalParticipants":1e308,
		"participants":[{"uid":"a","joinedAt":"NaN","leftAt":99999999999999}]}}`))
	require.NoError(t, err)
	assert.Zero(t, c.InitiatedAt, "not a plausible Unix time: missing")
	assert.Zero(t, c.StartedAt)
	assert.Zero(t, c.EndedAt)
	assert.Zero(t, c.Timestamp())
	assert.True(t, math.IsInf(c.AudioMinutes, 1), "kept as sent: the accountant rejects it and counts the error")
	assert.True(t, math.IsNaN(c.VideoMinutes))
	assert.Equal(t, int64(math.MaxInt64), c.TotalParticipants, "beyond any cap, never Go's undefined conversion")
	assert.Zero(t, c.Participants[0].JoinedAt)
	assert.Zero(t, c.Participants[0].LeftAt)
	c, err = DecodeCall([]byte(`{"data":{"sessionId":"y","initiatedAt":1692869395.7,"totalParticipants":"3"}}`))
	require.NoError(t, err)
	assert.Equal(t, int64(1692869395), c.InitiatedAt)
	assert.Equal(t, int64(3), c.TotalParticipants)
}

func TestDecodeWrongShapes(t *testing.T) {
	for name, body := range map[string]string{
		"not json":       `<html>oops</html>`,
		"no data":        `{"meta":{}}`,
		"data object":    `{"data":{"calls":[]}}`,
		"data string":    `{"data":"x"}`,
		"truncated":      `{"data":[{"sessionId":"a",`,
		"top-level list": `[{"sessionId":"a"}]`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodePage([]byte(body))
			assert.Error(t, err)
		})
	}
	p, err := DecodePage([]byte(`{"data":null}`))
	require.NoError(t, err)
	assert.Empty(t, p.Calls)
}

func TestErrorShapes(t *testing.T) {
	notFound, err := os.ReadFile("testdata/error_not_found.json")
	require.NoError(t, err)
	cases := []struct {
		name       string
		status     int
		body       string
		header     map[string]string
		wantCode   string
		wantReason string
		wantRetry  time.Duration
	}{
		{"not found", 404, string(notFound), nil, CodeSessionNotFound, CodeSessionNotFound, 0},
		{"bad key", 401, `{"error":{"code":"AUTH_ERR_APIKEY_NOT_FOUND","message":"The provided API key ` + testKey + ` is invalid."}}`, nil, CodeAPIKeyNotFound, CodeAPIKeyNotFound, 0},
		{"no access", 403, `{"error":{"code":"AUTH_ERR_NO_ACCESS","message":"no"}}`, nil, CodeNoAccess, CodeNoAccess, 0},
		{"top-level code", 400, `{"code":"ERR_EMPTY_CALL_SESSION_ID","message":"empty"}`, nil, "ERR_EMPTY_CALL_SESSION_ID", "ERR_EMPTY_CALL_SESSION_ID", 0},
		{"500 with a code", 500, `{"error":{"code":"ERR_INTERNAL","message":"x"}}`, nil, "ERR_INTERNAL", "http_5xx", 0},
		{"html 502", 502, `<html><body>502 Bad Gateway</body></html>`, nil, "", "http_5xx", 0},
		{"empty 503", 503, ``, nil, "", "http_5xx", 0},
		{"free-text code", 500, `{"error":{"code":"something bad happened","message":"x"}}`, nil, "something bad happened", "http_5xx", 0},
		{"429 retry-after", 429, `{"error":{"code":"ERR_TOO_MANY_REQUESTS"}}`, map[string]string{"Retry-After": "120"}, "ERR_TOO_MANY_REQUESTS", "rate_limited", 120 * time.Second},
		{"429 bare", 429, ``, nil, "", "rate_limited", 0},
		{"418 html", 418, `<p>teapot</p>`, nil, "", "http_4xx", 0},
		{"401 from a gateway", 401, `<html>401 Authorization Required</html>`, nil, "", "unauthorized", 0},
		{"403 from a gateway", 403, ``, nil, "", "forbidden", 0},
		{"403 with a code", 403, `{"error":{"code":"AUTH_ERR_NO_ACCESS"}}`, nil, CodeNoAccess, CodeNoAccess, 0},
		{"refused redirect", 302, ``, map[string]string{"Location": "http://127.0.0.1:1/elsewhere"}, "", "redirect", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}, func(c *Config) { c.MaxRetries = -1 })
			_, err := c.Get(context.Background(), "x")
			var apiErr *APIError
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, tc.status, apiErr.StatusCode)
			assert.Equal(t, tc.wantCode, apiErr.Code)
			assert.Equal(t, tc.wantRetry, apiErr.RetryAfter)
			assert.Equal(t, tc.wantReason, ErrorReason(err))
			assert.NotContains(t, err.Error(), testKey, "the key is redacted from server messages")
		})
	}
}

func TestRetriesTransientErrorsThenSucceeds(t *testing.T) {
	var n atomic.Int32
	c, infos := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			w.WriteHeader(503)
		case 2:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(429)
		default:
			w.Write([]byte(`{"data":[]}`))
		}
	}, func(c *Config) { c.MaxRetries = 3; c.MaxRetryWait = 5 * time.Second })
	_, err := c.List(context.Background(), ListOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(3), n.Load())
	require.Len(t, *infos, 3)
	assert.Equal(t, []int{503, 429, 200}, []int{(*infos)[0].Code, (*infos)[1].Code, (*infos)[2].Code})
}

func TestDoesNotRetryAuthErrors(t *testing.T) {
	var n atomic.Int32
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(401)
		w.Write([]byte(`{"error":{"code":"AUTH_ERR_APIKEY_NOT_FOUND"}}`))
	}, func(c *Config) { c.MaxRetries = 3 })
	_, err := c.List(context.Background(), ListOptions{})
	require.Error(t, err)
	assert.Equal(t, int32(1), n.Load())
}

func TestLongRetryAfterHoldsLaterRequests(t *testing.T) {
	var n atomic.Int32
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(429)
	}, func(c *Config) { c.MaxRetries = 3 })
	_, err := c.List(context.Background(), ListOptions{})
	require.Error(t, err)
	assert.Equal(t, int32(1), n.Load(), "a Retry-After beyond MaxRetryWait is not waited out inside the call")
	assert.WithinDuration(t, time.Now().Add(30*time.Second), c.RetryAfter(), 2*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = c.List(ctx, ListOptions{})
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, int32(1), n.Load(), "no request before Retry-After has passed")
}

func TestTimeoutAndBodyCap(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	c, infos := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}, func(c *Config) { c.Timeout = 100 * time.Millisecond; c.MaxRetries = -1 })
	_, err := c.List(context.Background(), ListOptions{})
	assert.Equal(t, "timeout", ErrorReason(err))
	require.Len(t, *infos, 1)
	assert.Equal(t, 0, (*infos)[0].Code)

	big, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"data":[` + strings.Repeat(`{"sessionId":"x"},`, 100) + `{}]}`))
	}, func(c *Config) { c.MaxBodyBytes = 512; c.MaxRetries = -1 })
	_, err = big.List(context.Background(), ListOptions{})
	assert.Equal(t, "body_too_large", ErrorReason(err))
}

func TestTruncatedBodyIsTransportError(t *testing.T) {
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.Write([]byte(`{"data":[{"sessionId":"a",`))
	}, func(c *Config) { c.MaxRetries = -1 })
	_, err := c.List(context.Background(), ListOptions{})
	require.Error(t, err)
	assert.Equal(t, "truncated", ErrorReason(err))
}

func TestBudgetLimitsRequestRate(t *testing.T) {
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"data":[]}`)) },
		func(c *Config) { c.MaxRequestsPerMinute = 60 }) // burst 15, then one a second
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	n := 0
	for ; n < 30; n++ {
		if _, err := c.List(ctx, ListOptions{}); err != nil {
			require.True(t, errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "would exceed"), err)
			break
		}
	}
	assert.Equal(t, 15, n, "the burst passes, the next request must wait about a second")
}

func TestBaseURLAndChecks(t *testing.T) {
	u, err := BaseURL("abc123", "eu")
	require.NoError(t, err)
	assert.Equal(t, "https://abc123.call-eu.cometchat.io/v3", u)
	_, err = BaseURL("abc123", "mars")
	assert.EqualError(t, err, `region "mars" is not one of us, eu, in`)

	assert.NoError(t, CheckBaseURL("http://127.0.0.1:8080/v3", false))
	assert.NoError(t, CheckBaseURL("http://localhost/v3", false))
	assert.NoError(t, CheckBaseURL("https://proxy.example.com/v3", false))
	assert.EqualError(t, CheckBaseURL("http://proxy.example.com/v3", false),
		`base URL "http://proxy.example.com/v3" uses plain http to a non-loopback host; the API key would travel in clear`)
	assert.NoError(t, CheckBaseURL("http://proxy.example.com/v3", true))
	assert.Error(t, CheckBaseURL("ftp://x/v3", false))
	assert.Error(t, CheckBaseURL("::not a url", false))
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	assert.Equal(t, 5*time.Second, parseRetryAfter("5", now))
	assert.Equal(t, time.Duration(0), parseRetryAfter("-3", now))
	assert.Equal(t, time.Hour, parseRetryAfter("999999", now))
	assert.Equal(t, 90*time.Second, parseRetryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now))
	assert.Equal(t, time.Duration(0), parseRetryAfter("soon", now))
}

// TestTheKeyNeverLeavesHoweverTheServerEchoesIt: a server (or a gateway in
// front of it) that puts the key anywhere in its answer never gets any
// part of it into an error, its reason or its text.
func TestTheKeyNeverLeavesHoweverTheServerEchoesIt(t *testing.T) {
	pad := strings.Repeat("x", maxErrorMessage-len(testKey)/2) // the key straddles the cut
	escaped := strings.NewReplacer("s", `\u0073`, "0", `\u0030`).Replace(testKey)
	cases := []struct {
		name   string
		status int
		body   string
		header string
	}{
		{"in the code", 401, `{"error":{"code":"` + testKey + `","message":"bad"}}`, ""},
		{"an upper-case code", 401, `{"error":{"code":"` + strings.ToUpper(testKey) + `","message":"bad"}}`, ""},
		{"straddling the message cut", 400, `{"error":{"code":"ERR_X","message":"` + pad + testKey + `"}}`, ""},
		{"in devMessage", 400, `{"error":{"code":"ERR_X","devMessage":"key ` + testKey + ` rejected"}}`, ""},
		{"JSON-escaped in the message", 400, `{"error":{"code":"ERR_X","message":"key ` + escaped + `"}}`, ""},
		{"top-level message", 403, `{"code":"E_KEY","message":"` + pad + testKey + `"}`, ""},
		{"an HTML body", 502, `<html><body>apikey: ` + testKey + `</body></html>`, ""},
		{"a header", 429, `{}`, testKey},
		{"a 200 that is not JSON", 200, `apikey=` + testKey, ""},
		{"a 200 that cuts the JSON at the key", 200, `{"data":[{"sessionId":"` + testKey, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, infos := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.header != "" {
					w.Header().Set("Retry-After", tc.header)
					w.Header().Set("X-Echo", tc.header)
				}
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}, func(c *Config) { c.MaxRetries = -1 })
			_, err := c.List(context.Background(), ListOptions{})
			require.Error(t, err)
			text := err.Error() + " " + ErrorReason(err) + " " + fmt.Sprintf("%+v %#v", err, err)
			for _, i := range *infos {
				text += " " + i.Err.Error()
			}
			for n := 0; n+8 <= len(testKey); n++ { // no 8 bytes of the key, in any case
				assert.NotContains(t, strings.ToLower(text), strings.ToLower(testKey[n:n+8]))
			}
		})
	}
}

func TestTimestampUnits(t *testing.T) {
	cases := []struct {
		raw    string
		want   int64
		scaled bool
	}{
		{`1692869395`, 1692869395, false},
		{`1692869395.9`, 1692869395, false},
		{`1692869395123`, 1692869395, true},    // milliseconds
		{`"1692869395123"`, 1692869395, true},  // as a string
		{`1692869395123456`, 1692869395, true}, // microseconds
		{`169286939512`, 0, false},             // 12 digits: neither
		{`16928693951234`, 0, false},           // 14 digits: neither
		{`169286939512345678`, 0, false},       // nanoseconds are not guessed
		{`null`, 0, false},
	}
	for _, tc := range cases {
		c, err := DecodeCall([]byte(`{"data":{"sessionId":"x","status":"ended","initiatedAt":` + tc.raw + `}}`))
		require.NoError(t, err)
		assert.Equal(t, tc.want, c.InitiatedAt, tc.raw)
		assert.Equal(t, tc.scaled, c.ScaledTimestamps, tc.raw)
		assert.Equal(t, tc.want == 0, c.NoInitiatedAt, tc.raw)
	}
}

func TestHint(t *testing.T) {
	html := []byte("<!DOCTYPE html><html><body>Not Found</body></html>")
	for _, tc := range []struct {
		endpoint string
		status   int
		code     string
		body     []byte
		want     string
	}{
		{EndpointListCalls, 404, "", html, HintURL},
		{EndpointListCalls, 404, "", []byte(`404 page not found`), HintURL},
		{EndpointListCalls, 404, "ERR_ROUTE_NOT_FOUND", nil, ""}, // the API's own answer names the route
		{EndpointGetCall, 404, "", []byte(`not found`), ""},      // a call the API does not know
		{EndpointGetCall, 404, "", html, HintURL},
		{EndpointListCalls, 200, "", html, HintURL},
		{EndpointListCalls, 502, "", html, ""},
		{EndpointListCalls, 401, "", html, HintKey},
		{EndpointListCalls, 403, "", nil, HintKey},
		{EndpointGetCall, 400, CodeAPIKeyNotFound, nil, HintKey},
		{EndpointListCalls, 429, "", nil, ""},
	} {
		assert.Equal(t, tc.want, Hint(tc.endpoint, tc.status, tc.code, tc.body), "%s %d %s %.20s", tc.endpoint, tc.status, tc.code, tc.body)
	}
}

// A wrong region or base URL answers an HTML page or a bare 404: the
// error says what to check and shows the URL, never the key.
func TestErrorsSayWhatToCheck(t *testing.T) {
	for _, status := range []int{404, 200} {
		c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(status)
			w.Write([]byte("<!doctype html><html><body><h1>Welcome to our website</h1></body></html>"))
		}, func(c *Config) { c.MaxRetries = -1 })
		_, err := c.List(context.Background(), ListOptions{Page: 1, PerPage: 100})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "/v3/calls?page=1&perPage=100: ", "the URL, status %d", status)
		assert.Contains(t, err.Error(), "check --cometchat.region and --cometchat.base-url")
		assert.NotContains(t, err.Error(), testKey)
	}
}
