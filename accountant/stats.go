package accountant

import (
	"sort"
	"strconv"

	"github.com/cometchat-exporter/cometchat-exporter/cometchat"
)

// LatencyBuckets are the bounds of the API request latency histogram.
var LatencyBuckets = []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// KnownReasons are error reasons whose counters exist from the start, so
// that increase() and rate() see the first error.
var KnownReasons = []string{
	cometchat.CodeAPIKeyNotFound, cometchat.CodeNoAccess, cometchat.CodeEmptyAPIKey,
	"unauthorized", "forbidden", "redirect",
	"rate_limited", "http_5xx", "http_4xx", "timeout", "connection", "truncated", "decode",
}

// RequestKey labels an API request counter.
type RequestKey struct {
	Endpoint string
	Code     string // HTTP status, or "none" when no answer came back
}

// APIStats are the poller's own counts of its requests to the API. The
// client reports every attempt synchronously on the poller's goroutine, so
// they need no lock.
type APIStats struct {
	Requests map[RequestKey]uint64
	// Errors by reason: a CometChat error code or a class (see
	// cometchat.ErrorReason), plus invalid_call, call_not_found and
	// state_write from the poller itself.
	Errors  map[string]uint64
	Latency map[string]*Histogram // by endpoint
	// Anomalies counts the entries the API listed against what the
	// reference implies, by kind (see AnomalyKinds), each entry once per
	// kind while the process runs.
	Anomalies map[string]uint64
	// PagesSkipped counts head-scan pages that kept failing and were
	// read around; a sweep reads their part of the list again.
	PagesSkipped uint64
}

// AnomalyKinds are the kinds of cometchat_api_anomalies_total; see
// docs/anomalies.md for what each means and costs.
var AnomalyKinds = []string{
	"unsorted",        // an entry out of newest-first order
	"timestamp_unit",  // a timestamp in milliseconds or microseconds
	"no_initiated_at", // initiatedAt missing or null
	"no_session_id",   // an entry without sessionId: it cannot be counted
	"bad_pagination",  // meta.pagination missing, or at odds with the page
	"late_listed",     // an unknown call listed below what the scans already passed
}

func newAPIStats() APIStats {
	s := APIStats{Requests: map[RequestKey]uint64{}, Errors: map[string]uint64{}, Latency: map[string]*Histogram{},
		Anomalies: map[string]uint64{}}
	for _, r := range KnownReasons {
		s.Errors[r] = 0
	}
	for _, k := range AnomalyKinds {
		s.Anomalies[k] = 0
	}
	return s
}

func (s *APIStats) observe(info cometchat.RequestInfo) {
	code := "none"
	if info.Code > 0 {
		code = strconv.Itoa(info.Code)
	}
	s.Requests[RequestKey{info.Endpoint, code}]++
	h := s.Latency[info.Endpoint]
	if h == nil {
		h = &Histogram{}
		s.Latency[info.Endpoint] = h
	}
	h.observe(LatencyBuckets, info.Duration.Seconds())
	if info.Err != nil {
		s.countError(cometchat.ErrorReason(info.Err))
	}
}

// maxReasons bounds the reason label: error codes come from the server,
// and a misbehaving one must not create series without end.
const maxReasons = 64

func (s *APIStats) countError(reason string) {
	if _, ok := s.Errors[reason]; !ok && len(s.Errors) >= maxReasons {
		reason = "other"
	}
	s.Errors[reason]++
}

func (s *APIStats) clone() APIStats {
	c := APIStats{Requests: make(map[RequestKey]uint64, len(s.Requests)),
		Errors: make(map[string]uint64, len(s.Errors)), Latency: make(map[string]*Histogram, len(s.Latency)),
		Anomalies: make(map[string]uint64, len(s.Anomalies)), PagesSkipped: s.PagesSkipped}
	for k, v := range s.Anomalies {
		c.Anomalies[k] = v
	}
	for k, v := range s.Requests {
		c.Requests[k] = v
	}
	for k, v := range s.Errors {
		c.Errors[k] = v
	}
	for k, h := range s.Latency {
		hc := *h
		hc.Buckets = append([]uint64(nil), h.Buckets...)
		c.Latency[k] = &hc
	}
	return c
}

// SortedRequestKeys returns the request keys in a stable order.
func (s *APIStats) SortedRequestKeys() []RequestKey {
	keys := make([]RequestKey, 0, len(s.Requests))
	for k := range s.Requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Endpoint != keys[j].Endpoint {
			return keys[i].Endpoint < keys[j].Endpoint
		}
		return keys[i].Code < keys[j].Code
	})
	return keys
}
