package cometchat

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Endpoint names, as used in RequestInfo and in metric labels.
const (
	EndpointListCalls = "list_calls"
	EndpointGetCall   = "get_call"
)

// Regions are the documented CometChat regions.
var Regions = []string{"us", "eu", "in"}

// BaseURL returns the Calls API base URL of an app in a region.
func BaseURL(appID, region string) (string, error) {
	if appID == "" {
		return "", errors.New("app id is empty")
	}
	if strings.ContainsAny(appID, "/:?#@ ") {
		return "", fmt.Errorf("app id %q is not a valid host name label", appID)
	}
	for _, r := range Regions {
		if region == r {
			return fmt.Sprintf("https://%s.call-%s.cometchat.io/v3", appID, region), nil
		}
	}
	return "", fmt.Errorf("region %q is not one of us, eu, in", region)
}

// CheckBaseURL validates an explicit base URL. Plain http is accepted for
// loopback hosts only, unless allowHTTP is set, because the API key would
// travel in clear.
func CheckBaseURL(raw string, allowHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("base URL %q does not parse: %w", raw, err)
	}
	if u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("base URL %q must be an absolute http(s) URL", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("base URL %q must not carry credentials, a query or a fragment", u.Redacted())
	}
	if u.Scheme == "http" && !allowHTTP && !isLoopback(u.Hostname()) {
		return fmt.Errorf("base URL %q uses plain http to a non-loopback host; the API key would travel in clear", raw)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// RequestInfo describes one HTTP attempt, for metrics.
type RequestInfo struct {
	Endpoint string
	// Code is the HTTP status, or 0 when no answer came back.
	Code     int
	Duration time.Duration
	// Err is nil for a successful, decoded answer.
	Err error
}

// Config configures a Client.
type Config struct {
	// BaseURL is the Calls API base, e.g. https://APPID.call-us.cometchat.io/v3.
	BaseURL string
	// APIKey is the REST API key, sent in the apikey header. It is a secret:
	// the client never puts it in an error.
	APIKey string
	// OnBehalfOf, when set, scopes requests to one user.
	OnBehalfOf string
	// Timeout bounds each HTTP attempt. Default 10s.
	Timeout time.Duration
	// MaxRequestsPerMinute is the client-side request budget; 0 disables it.
	MaxRequestsPerMinute int
	// MaxRetries is how often a retryable failure is retried within one call
	// of List or Get. Default 2; negative disables retries.
	MaxRetries int
	// MaxRetryWait is the longest the client sleeps before a retry. A
	// Retry-After longer than this is not waited out inside the call: the
	// error is returned, and later calls wait until the time has passed.
	// Default 15s.
	MaxRetryWait time.Duration
	// MaxBodyBytes caps a response body. Default 32 MiB.
	MaxBodyBytes int64
	// UserAgent is sent with every request.
	UserAgent string
	// Transport overrides the HTTP transport (tests).
	Transport http.RoundTripper
	// Observe, when set, is called after every HTTP attempt.
	Observe func(RequestInfo)
}

// LoadCAFile reads PEM certificates that the client trusts besides the
// system's (a company proxy's private CA, say).
func LoadCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// TransportWithCAs is the default transport trusting pool.
func TransportWithCAs(pool *x509.CertPool) http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return t
}

// Client talks to the Calls API of one app. It is safe for concurrent use.
type Client struct {
	cfg     Config
	base    string
	http    *http.Client
	limiter *rate.Limiter

	mu        sync.Mutex
	notBefore time.Time // honours Retry-After across calls
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		return nil, errors.New("cometchat: base URL is empty")
	}
	if _, err := url.Parse(cfg.BaseURL); err != nil {
		return nil, fmt.Errorf("cometchat: base URL: %w", err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = 2
	}
	if cfg.MaxRetryWait <= 0 {
		cfg.MaxRetryWait = 15 * time.Second
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 32 << 20
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "cometchat-exporter"
	}
	c := &Client{cfg: cfg, base: strings.TrimRight(cfg.BaseURL, "/")}
	c.http = &http.Client{Transport: cfg.Transport, Timeout: cfg.Timeout,
		// A redirect would resend the apikey header to another host.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if cfg.MaxRequestsPerMinute > 0 {
		// The API's limits are per minute; a burst of a quarter of the
		// budget lets a start-up or backfill go fast without exceeding it.
		burst := max(1, cfg.MaxRequestsPerMinute/4)
		c.limiter = rate.NewLimiter(rate.Limit(float64(cfg.MaxRequestsPerMinute)/60), burst)
	}
	return c, nil
}

// ListOptions are the List Calls query parameters. Zero values are omitted.
type ListOptions struct {
	Page         int
	PerPage      int
	Type         string
	Mode         string
	Status       string
	ReceiverType string
	UID          string
	HasRecording *bool
}

func (o ListOptions) values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	if o.Page > 0 {
		v.Set("page", strconv.Itoa(o.Page))
	}
	if o.PerPage > 0 {
		v.Set("perPage", strconv.Itoa(o.PerPage))
	}
	set("type", o.Type)
	set("mode", o.Mode)
	set("status", o.Status)
	set("receiverType", o.ReceiverType)
	set("uid", o.UID)
	if o.HasRecording != nil {
		v.Set("hasRecording", strconv.FormatBool(*o.HasRecording))
	}
	return v
}

// Pagination is meta.pagination of a list answer.
type Pagination struct {
	Total       int `json:"total"`
	Count       int `json:"count"`
	PerPage     int `json:"per_page"`
	CurrentPage int `json:"current_page"`
	TotalPages  int `json:"total_pages"`
}

// Page is one page of List Calls.
type Page struct {
	Calls      []Call
	Pagination Pagination
	// Skipped counts entries of data that were not call objects with a
	// sessionId; they cannot be counted exactly once, so they are dropped.
	Skipped int
	// SkippedKeys name the skipped entries, one key each, made of the
	// fields that do not change over a call's life (initiatedAt,
	// initiator, receiver, type, mode), so that the same entry listed
	// again has the same key.
	SkippedKeys []string
}

// List fetches one page of List Calls.
func (c *Client) List(ctx context.Context, opts ListOptions) (*Page, error) {
	var page *Page
	err := c.do(ctx, EndpointListCalls, "/calls?"+opts.values().Encode(), func(body []byte) error {
		p, err := DecodePage(body)
		page = p
		return err
	})
	return page, err
}

// Get fetches one call by session id.
func (c *Client) Get(ctx context.Context, sessionID string) (*Call, error) {
	if sessionID == "" {
		return nil, errors.New("cometchat get_call: empty session id")
	}
	var call *Call
	err := c.do(ctx, EndpointGetCall, "/calls/"+url.PathEscape(sessionID), func(body []byte) error {
		cl, err := DecodeCall(body)
		call = cl
		return err
	})
	return call, err
}

// DecodePage decodes a List Calls body.
func DecodePage(body []byte) (*Page, error) {
	var env struct {
		Data json.RawMessage `json:"data"`
		Meta struct {
			Pagination struct {
				Total       flexFloat `json:"total"`
				Count       flexFloat `json:"count"`
				PerPage     flexFloat `json:"per_page"`
				CurrentPage flexFloat `json:"current_page"`
				TotalPages  flexFloat `json:"total_pages"`
			} `json:"pagination"`
		} `json:"meta"`
	}
	if err := lenientUnmarshal(body, &env); err != nil {
		return nil, err
	}
	raw := bytes.TrimSpace(env.Data)
	if len(raw) == 0 {
		return nil, errors.New(`no "data" field`)
	}
	if raw[0] != '[' && !bytes.Equal(raw, []byte("null")) {
		return nil, errors.New(`"data" is not an array`)
	}
	var items []wireCall
	if err := lenientUnmarshal(raw, &items); err != nil {
		return nil, err
	}
	pg := env.Meta.Pagination
	p := &Page{Calls: make([]Call, 0, len(items)), Pagination: Pagination{
		Total: int(pg.Total), Count: int(pg.Count), PerPage: int(pg.PerPage),
		CurrentPage: int(pg.CurrentPage), TotalPages: int(pg.TotalPages),
	}}
	for i := range items {
		// Entries that are not call objects, or have no sessionId, cannot be
		// counted exactly once.
		if items[i].SessionID == "" {
			p.Skipped++
			p.SkippedKeys = append(p.SkippedKeys, items[i].key())
			continue
		}
		p.Calls = append(p.Calls, items[i].call())
	}
	return p, nil
}

// DecodeCall decodes a Get Call body: {"data": {call}}.
func DecodeCall(body []byte) (*Call, error) {
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := lenientUnmarshal(body, &env); err != nil {
		return nil, err
	}
	raw := bytes.TrimSpace(env.Data)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, errors.New(`"data" is not an object`)
	}
	var call Call
	if err := json.Unmarshal(raw, &call); err != nil {
		return nil, err
	}
	if call.SessionID == "" {
		return nil, errors.New("call has no sessionId")
	}
	return &call, nil
}

// do runs one logical request with retries, the request budget and
// Retry-After, handing a 2xx body to decode.
func (c *Client) do(ctx context.Context, endpoint, path string, decode func([]byte) error) error {
	var err error
	for attempt := 0; ; attempt++ {
		if err = c.wait(ctx); err != nil {
			return err
		}
		err = c.attempt(ctx, endpoint, path, decode)
		if err == nil || !retryable(err) || attempt >= c.cfg.MaxRetries {
			return err
		}
		delay := backoff(attempt)
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.RetryAfter > 0 {
			delay = apiErr.RetryAfter
		}
		if delay > c.cfg.MaxRetryWait {
			return err // wait() holds later calls back until then
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// backoff is capped exponential backoff with full jitter: a random delay in
// [d/2, d] with d = 500ms * 2^attempt, at most 8s.
func backoff(attempt int) time.Duration {
	d := min(500*time.Millisecond<<min(attempt, 5), 8*time.Second)
	return d/2 + rand.N(d/2+1)
}

func retryable(err error) bool {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode == 429 || apiErr.StatusCode >= 500
	}
	var tErr *TransportError
	var dErr *DecodeError
	return errors.As(err, &tErr) || errors.As(err, &dErr)
}

// wait blocks until Retry-After has passed and the budget allows a request.
func (c *Client) wait(ctx context.Context) error {
	c.mu.Lock()
	until := time.Until(c.notBefore)
	c.mu.Unlock()
	if until > 0 {
		t := time.NewTimer(until)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	if c.limiter != nil {
		return c.limiter.Wait(ctx)
	}
	return nil
}

// RetryAfter reports until when the server asked the client to hold back.
func (c *Client) RetryAfter() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.notBefore
}

func (c *Client) attempt(ctx context.Context, endpoint, path string, decode func([]byte) error) (err error) {
	start := time.Now()
	code := 0
	defer func() {
		if c.cfg.Observe != nil {
			c.cfg.Observe(RequestInfo{Endpoint: endpoint, Code: code, Duration: time.Since(start), Err: err})
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return fmt.Errorf("cometchat %s: building request: %w", endpoint, err)
	}
	req.Header.Set("apikey", c.cfg.APIKey)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	if c.cfg.OnBehalfOf != "" {
		req.Header.Set("onBehalfOf", c.cfg.OnBehalfOf)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.transportError(endpoint, err)
	}
	defer resp.Body.Close()
	code = resp.StatusCode
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxBodyBytes+1))
	if err != nil {
		return c.transportError(endpoint, err)
	}
	if int64(len(body)) > c.cfg.MaxBodyBytes {
		return &TransportError{Endpoint: endpoint, Reason: "body_too_large",
			Err: fmt.Errorf("response body over %d bytes", c.cfg.MaxBodyBytes)}
	}
	if code < 200 || code > 299 {
		apiErr := &APIError{Endpoint: endpoint, StatusCode: code,
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
		code, msg := ParseErrorBody(body)
		apiErr.Code, apiErr.Message = c.errorText(code, maxErrorCode), c.errorText(msg, maxErrorMessage)
		if apiErr.Hint = Hint(endpoint, apiErr.StatusCode, apiErr.Code, body); apiErr.Hint != "" {
			apiErr.URL = c.redact(req.URL.String())
		}
		if apiErr.RetryAfter > 0 {
			c.mu.Lock()
			if t := time.Now().Add(apiErr.RetryAfter); t.After(c.notBefore) {
				c.notBefore = t
			}
			c.mu.Unlock()
		}
		return apiErr
	}
	if err := decode(body); err != nil {
		de := &DecodeError{Endpoint: endpoint, Err: errors.New(c.redact(err.Error()))}
		if looksHTML(body) {
			de.URL, de.Hint = c.redact(req.URL.String()), HintURL
		}
		return de
	}
	return nil
}

// transportError classifies a failed round trip. The message keeps the
// underlying error's text, which names the URL but never the key (the key
// travels in a header only).
func (c *Client) transportError(endpoint string, err error) error {
	reason := "connection"
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		reason = "timeout"
	} else if errors.Is(err, context.Canceled) {
		reason = "canceled"
	} else if errors.Is(err, io.ErrUnexpectedEOF) {
		reason = "truncated"
	}
	return &TransportError{Endpoint: endpoint, Reason: reason, Err: errors.New(c.redact(err.Error()))}
}

// redact removes the API key from text that came from elsewhere (a server
// message could echo it back, in any letter case).
func (c *Client) redact(s string) string { return redactKey(s, c.cfg.APIKey) }

// redactKey replaces every occurrence of key in s, ignoring letter case.
func redactKey(s, key string) string {
	if key == "" || len(s) < len(key) {
		return s
	}
	var b strings.Builder
	last := 0
	for i := 0; i+len(key) <= len(s); {
		if strings.EqualFold(s[i:i+len(key)], key) {
			b.WriteString(s[last:i])
			b.WriteString("[REDACTED]")
			i += len(key)
			last = i
			continue
		}
		i++
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// errorText is server text made fit for an error: the key removed first,
// then cut to n bytes, so that a key straddling the cut leaves nothing.
func (c *Client) errorText(s string, n int) string {
	return clip(c.redact(s), n)
}

// parseRetryAfter reads delta-seconds or an HTTP date; zero when absent or
// invalid. Very large values are capped at one hour.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs <= 0 || secs != secs {
			return 0
		}
		d = time.Duration(min(secs, 3600) * float64(time.Second))
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), time.Hour)
}
