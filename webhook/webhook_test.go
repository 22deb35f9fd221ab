package webhook

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cometchat-exporter/cometchat-exporter/accountant"
)

// router records hints for the apps it knows by app id.
type router struct {
	mu    sync.Mutex
	apps  map[string]string // app id -> name
	hints []accountant.Hint
}

func (r *router) Hint(appID string, h accountant.Hint) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	name, ok := r.apps[appID]
	if !ok {
		return nil
	}
	r.hints = append(r.hints, h)
	return []string{name}
}

func post(h http.Handler, body string) int {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, Path, strings.NewReader(body)))
	return rec.Code
}

// The two payload shapes of the reference: data.sessionId, and
// call_initiated's message with a lower-case sessionid.
const (
	ended     = `{"trigger":"call_ended","appId":"abc123","region":"us","webhook":"wh-1","data":{"sessionId":"v1.us.abc.1","created_at":1692869395}}`
	initiated = `{"trigger":"call_initiated","appId":"abc123","data":{"call":{"receiverType":"user","data":{"entities":{"on":{"entity":{"sessionid":"v1.us.abc.2","status":"initiated","type":"audio","initiatedAt":1692869390}}}}}}}`
)

func TestDecodeBothShapes(t *testing.T) {
	e, err := Decode([]byte(ended))
	require.NoError(t, err)
	assert.Equal(t, Event{AppID: "abc123", Trigger: "call_ended", SessionID: "v1.us.abc.1"}, e)
	e, err = Decode([]byte(initiated))
	require.NoError(t, err)
	assert.Equal(t, Event{AppID: "abc123", Trigger: "call_initiated", SessionID: "v1.us.abc.2"}, e)
	e, err = Decode([]byte(`{"trigger":7,"appId":"abc123","data":{"sessionId":"s"},"extra":[1]}`))
	require.NoError(t, err, "a field of another type is read as empty")
	assert.Equal(t, Event{AppID: "abc123", SessionID: "s"}, e)
	for _, bad := range []string{``, `[]`, `null`, `"x"`, `{"trigger":`} {
		_, err := Decode([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
}

func TestHandler(t *testing.T) {
	r := &router{apps: map[string]string{"abc123": "prod"}}
	reg := prometheus.NewRegistry()
	h := NewHandler(r, reg, log.NewNopLogger())
	count := func(app, trigger, result string) float64 {
		return testutil.ToFloat64(h.total.WithLabelValues(app, trigger, result))
	}

	assert.Equal(t, 200, post(h, ended))
	assert.Equal(t, 200, post(h, initiated))
	require.Len(t, r.hints, 2)
	assert.Equal(t, "v1.us.abc.1", r.hints[0].SessionID)
	assert.True(t, r.hints[0].Final)
	assert.False(t, r.hints[1].Final)
	assert.Equal(t, 1.0, count("prod", "call_ended", "hinted"))
	assert.Equal(t, 1.0, count("prod", "call_initiated", "hinted"))

	assert.Equal(t, 200, post(h, strings.Replace(ended, "abc123", "someone-else", 1)), "an unknown app gets 200: no retries")
	assert.Equal(t, 1.0, count("", "call_ended", "unknown_app"))
	assert.Equal(t, 200, post(h, `{"trigger":"recording_generated","appId":"abc123","data":{"sessionId":"v1.us.abc.1","rid":"r1"}}`))
	assert.Equal(t, 200, post(h, `{"trigger":"brand_new_trigger","appId":"abc123","data":{"sessionId":"x"}}`))
	assert.Equal(t, 2.0, count("", "other", "ignored"), "unknown triggers are other")
	assert.Equal(t, 200, post(h, `{"trigger":"call_ended","appId":"abc123","data":{}}`))
	assert.Equal(t, 1.0, count("", "call_ended", "no_session_id"))
	assert.Len(t, r.hints, 2, "none of these is passed on")

	assert.Equal(t, 400, post(h, `{"trigger":"call_ended",`))
	assert.Equal(t, 1.0, count("", "other", "malformed"))
	long := strings.Repeat("s", MaxSessionID+1)
	assert.Equal(t, 400, post(h, `{"trigger":"call_ended","appId":"abc123","data":{"sessionId":"`+long+`"}}`), "a session id over 256 bytes")
	assert.Equal(t, 400, post(h, `{"trigger":"call_initiated","appId":"abc123","data":{"call":{"data":{"entities":{"on":{"entity":{"sessionid":"`+long+`"}}}}}}}`))
	assert.Equal(t, 3.0, count("", "other", "malformed"))
	assert.Equal(t, 200, post(h, `{"trigger":"call_ended","appId":"abc123","data":{"sessionId":"`+long[1:]+`"}}`), "256 bytes is fine")
	r.hints = r.hints[:2]
	big := `{"trigger":"call_ended","appId":"abc123","data":{"sessionId":"s","pad":"` + strings.Repeat("x", MaxBody) + `"}}`
	assert.Equal(t, 413, post(h, big))
	assert.Equal(t, 1.0, count("", "other", "too_large"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, Path, nil))
	assert.Equal(t, 405, rec.Code)
	assert.Len(t, r.hints, 2)
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{ended, initiated, `{}`, `{"data":null}`, `{"data":{"call":{"data":{"entities":{"on":{"entity":null}}}}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := Decode(body)
		if err != nil {
			return
		}
		h := NewHandler(&router{apps: map[string]string{e.AppID: "a"}}, prometheus.NewRegistry(), log.NewNopLogger())
		if code := post(h, string(body)); code != 200 && len(body) <= MaxBody {
			t.Fatalf("a decodable body got %d", code)
		}
	})
}
