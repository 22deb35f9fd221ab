// Package webhook receives CometChat's call webhooks. A webhook is a hint
// that a call changed, never a record: the handler names the call to the
// app's poller, which looks it up with Get Call and counts it through the
// ledger, exactly once, as a poll would.
package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cometchat-exporter/cometchat-exporter/accountant"
)

// MaxBody is the largest payload accepted; a larger one gets 413.
const MaxBody = 1 << 20

// MaxSessionID is the longest session id accepted (CometChat's are under
// 100 bytes); a payload with a longer one gets 400, so that the hint queue
// holds at most this much per entry.
const MaxSessionID = 256

// Path is where the listener takes webhooks.
const Path = "/webhook"

// Triggers whose call is over, and triggers of a call starting or in
// progress; any other trigger is counted as "other" and ignored.
var (
	finalTriggers = map[string]bool{"call_ended": true, "call_busy": true, "call_cancelled": true,
		"call_rejected": true, "call_unanswered": true, "meeting_ended": true}
	startTriggers = map[string]bool{"call_initiated": true, "call_started": true, "meeting_started": true,
		"call_participant_joined": true, "call_participant_left": true,
		"meeting_participant_joined": true, "meeting_participant_left": true}
)

// Event is what the exporter reads of a webhook payload.
type Event struct {
	AppID     string
	Trigger   string
	SessionID string
}

// payload mirrors the fields read, in both shapes: data.sessionId, and
// call_initiated's data.call.data.entities.on.entity.sessionid.
type payload struct {
	Trigger string `json:"trigger"`
	AppID   string `json:"appId"`
	Data    struct {
		SessionID string `json:"sessionId"`
		Call      struct {
			Data struct {
				Entities struct {
					On struct {
						Entity struct {
							SessionID string `json:"sessionid"`
						} `json:"entity"`
					} `json:"on"`
				} `json:"entities"`
			} `json:"data"`
		} `json:"call"`
	} `json:"data"`
}

// Decode reads a payload. Only a body that is not a JSON object is an
// error; a field of another type or missing is read as empty.
func Decode(body []byte) (Event, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return Event{}, err
	}
	if raw == nil {
		return Event{}, errors.New("not a JSON object")
	}
	var p payload
	// A field of an unexpected type leaves the rest decoded.
	var typeErr *json.UnmarshalTypeError
	if err := json.Unmarshal(body, &p); err != nil && !errors.As(err, &typeErr) {
		return Event{}, err
	}
	e := Event{AppID: p.AppID, Trigger: p.Trigger, SessionID: p.Data.SessionID}
	if e.SessionID == "" {
		e.SessionID = p.Data.Call.Data.Entities.On.Entity.SessionID
	}
	if len(e.SessionID) > MaxSessionID {
		return Event{}, fmt.Errorf("session id of %d bytes, over %d", len(e.SessionID), MaxSessionID)
	}
	return e, nil
}

// Router passes a hint to the apps with an app id and returns their names.
type Router interface {
	Hint(appID string, h accountant.Hint) []string
}

// Handler answers webhooks: 200 once the hint is queued (the work happens
// after the answer), 400 for a body that is not a JSON object or names a
// session id over MaxSessionID bytes, 413 for one
// over MaxBody, 405 for anything but POST. An unknown app id gets 200 too,
// so that CometChat does not retry it forever. Credentials are checked
// before this handler (exporter-toolkit's basic auth).
type Handler struct {
	router Router
	logger log.Logger
	now    func() time.Time
	total  *prometheus.CounterVec
	fwd    *Forwarder
}

// ForwardWith makes the handler forward webhooks for the apps of other
// shards through f (see Forwarder); call it before serving.
func (h *Handler) ForwardWith(f *Forwarder) { h.fwd = f }

// NewHandler returns a handler whose metrics reg registers.
func NewHandler(router Router, reg prometheus.Registerer, logger log.Logger) *Handler {
	h := &Handler{router: router, logger: logger, now: time.Now,
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cometchat_exporter_webhooks_total",
			Help: "Webhooks received, by app, trigger (other when unknown) and result: hinted, forwarded (to the shard polling the app), unknown_app, no_session_id, ignored, malformed, too_large.",
		}, []string{"app", "trigger", "result"})}
	reg.MustRegister(h.total)
	return h
}

// Results of a webhook.
const (
	resultHinted     = "hinted"        // passed to the app's poller
	resultForwarded  = "forwarded"     // sent on to the shard polling the app
	resultUnknownApp = "unknown_app"   // no app has that app id
	resultNoSession  = "no_session_id" // a known trigger without a session id
	resultIgnored    = "ignored"       // a trigger that says nothing of a call's state
	resultMalformed  = "malformed"
	resultTooLarge   = "too_large"
	otherTrigger     = "other"
	noApp            = ""
)

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	received := h.now()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "only POST", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		h.total.WithLabelValues(noApp, otherTrigger, resultTooLarge).Inc()
		http.Error(w, "payload over 1 MiB", http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		return // the sender went away
	}
	e, err := Decode(body)
	if err != nil {
		h.total.WithLabelValues(noApp, otherTrigger, resultMalformed).Inc()
		http.Error(w, "malformed payload: "+err.Error(), http.StatusBadRequest)
		return
	}
	trigger, final := e.Trigger, finalTriggers[e.Trigger]
	if !final && !startTriggers[trigger] {
		trigger = otherTrigger
	}
	result := resultHinted
	var apps []string
	remote := false // forwarded to another shard
	switch {
	case trigger == otherTrigger:
		result = resultIgnored
	case e.SessionID == "":
		result = resultNoSession
	default:
		apps = h.router.Hint(e.AppID, accountant.Hint{SessionID: e.SessionID, Final: final, Received: received})
		if h.fwd != nil && r.Header.Get(ForwardedHeader) == "" {
			for shard, names := range h.fwd.remote(e.AppID) {
				h.fwd.forward(shard, body, r.Header)
				for _, app := range names {
					h.total.WithLabelValues(app, trigger, resultForwarded).Inc()
				}
				remote = true
			}
		}
		if len(apps) == 0 && !remote {
			result = resultUnknownApp
		}
	}
	if len(apps) == 0 && !remote {
		h.total.WithLabelValues(noApp, trigger, result).Inc()
	}
	for _, app := range apps {
		h.total.WithLabelValues(app, trigger, result).Inc()
	}
	if result != resultHinted {
		level.Debug(h.logger).Log("msg", "Webhook not passed on", "trigger", trigger, "result", result)
	}
	w.WriteHeader(http.StatusOK)
}
