package collector

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cometchat-exporter/cometchat-exporter/cometchat"
)

// APIMetrics are the exporter's own metrics about its requests to the API.
type APIMetrics struct {
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// knownReasons are created at zero for every app, so that increase() and
// rate() see the first error.
var knownReasons = []string{
	cometchat.CodeAPIKeyNotFound, cometchat.CodeNoAccess, cometchat.CodeEmptyAPIKey,
	"rate_limited", "http_5xx", "http_4xx", "timeout", "connection", "truncated", "decode",
}

// NewAPIMetrics returns the request metrics, registered on reg.
func NewAPIMetrics(reg prometheus.Registerer) *APIMetrics {
	m := &APIMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cometchat_exporter_api_requests_total",
			Help: "HTTP requests to the Calls API, by endpoint and status code (none when no answer came back).",
		}, []string{"app", "endpoint", "code"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cometchat_exporter_api_errors_total",
			Help: "Failed requests and unusable data, by reason: a CometChat error code or a class such as timeout, rate_limited, http_5xx, decode.",
		}, []string{"app", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cometchat_exporter_api_request_duration_seconds",
			Help:    "Duration of HTTP requests to the Calls API.",
			Buckets: []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"app", "endpoint"}),
	}
	reg.MustRegister(m.requests, m.errors, m.latency)
	return m
}

// Init creates an app's error series at zero.
func (m *APIMetrics) Init(app string) {
	for _, r := range knownReasons {
		m.errors.WithLabelValues(app, r)
	}
}

// Observe records one HTTP attempt of an app.
func (m *APIMetrics) Observe(app string, info cometchat.RequestInfo) {
	code := "none"
	if info.Code > 0 {
		code = strconv.Itoa(info.Code)
	}
	m.requests.WithLabelValues(app, info.Endpoint, code).Inc()
	m.latency.WithLabelValues(app, info.Endpoint).Observe(info.Duration.Seconds())
	if info.Err != nil {
		m.Error(app, cometchat.ErrorReason(info.Err))
	}
}

// Error counts a problem of an app by reason.
func (m *APIMetrics) Error(app, reason string) {
	m.errors.WithLabelValues(app, reason).Inc()
}

// Forget deletes every series of an app that was removed.
func (m *APIMetrics) Forget(app string) {
	l := prometheus.Labels{"app": app}
	m.requests.DeletePartialMatch(l)
	m.errors.DeletePartialMatch(l)
	m.latency.DeletePartialMatch(l)
}
