package cometchattest

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Fault is a misbehaviour the server can inject instead of an answer.
type Fault int

// The faults. NotFound and NoSessionID apply to Get Call only (a listed
// call that Get Call does not find, or answers without its id); the
// others to both endpoints.
const (
	None Fault = iota
	RateLimited
	RateLimitedRetryAfter
	ServerErrorJSON // 500 with a JSON error body
	BadGatewayHTML  // 502 with an HTML page
	UnavailableEmpty
	Hang // holds the request until the client gives up
	Reset
	Truncated // 200 whose body stops mid-JSON
	InvalidJSON
	WrongShape // valid JSON, not the envelope
	AuthNotFound
	NoAccess
	NotFound
	// NoSessionID is a 200 whose call has no sessionId (Get Call only).
	NoSessionID
)

var faultNames = map[Fault]string{
	None: "none", RateLimited: "rate_limited", RateLimitedRetryAfter: "rate_limited_retry_after",
	ServerErrorJSON: "500_json", BadGatewayHTML: "502_html", UnavailableEmpty: "503_empty",
	Hang: "hang", Reset: "reset", Truncated: "truncated", InvalidJSON: "invalid_json",
	WrongShape: "wrong_shape", AuthNotFound: "auth_not_found", NoAccess: "no_access", NotFound: "not_found",
	NoSessionID: "no_session_id",
}

func (f Fault) String() string { return faultNames[f] }

// AllFaults lists every fault.
var AllFaults = []Fault{RateLimited, RateLimitedRetryAfter, ServerErrorJSON, BadGatewayHTML,
	UnavailableEmpty, Hang, Reset, Truncated, InvalidJSON, WrongShape, AuthNotFound, NoAccess, NotFound, NoSessionID}

type faults struct {
	mu       sync.Mutex
	rng      *rand.Rand
	rate     float64
	kinds    []Fault
	schedule func(r *http.Request, endpoint string) Fault
	hang     time.Duration
	retry    string
	injected map[Fault]int
}

// InjectRandom makes a fraction rate of requests fail with a fault drawn
// from kinds, using a generator seeded with seed.
func (s *Server) InjectRandom(rate float64, seed uint64, kinds ...Fault) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.rate, s.faults.kinds = rate, kinds
	s.faults.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// InjectSchedule decides the fault of each request; it overrides
// InjectRandom while it returns something other than None.
func (s *Server) InjectSchedule(f func(r *http.Request, endpoint string) Fault) {
	s.faults.mu.Lock()
	s.faults.schedule = f
	s.faults.mu.Unlock()
}

// SetHang bounds how long a Hang fault holds a request (default 30s); the
// request ends earlier when the client goes away.
func (s *Server) SetHang(d time.Duration) {
	s.faults.mu.Lock()
	s.faults.hang = d
	s.faults.mu.Unlock()
}

// SetRetryAfter sets the Retry-After value that RateLimitedRetryAfter
// sends (default "1"). Tests may use fractional seconds to run faster.
func (s *Server) SetRetryAfter(v string) {
	s.faults.mu.Lock()
	s.faults.retry = v
	s.faults.mu.Unlock()
}

// Injected returns how many times each fault was served.
func (s *Server) Injected() map[Fault]int {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	out := map[Fault]int{}
	for k, v := range s.faults.injected {
		out[k] = v
	}
	return out
}

func (f *faults) pick(r *http.Request, endpoint string) Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	fault := None
	if f.schedule != nil {
		fault = f.schedule(r, endpoint)
	}
	if fault == None && f.rate > 0 && len(f.kinds) > 0 && f.rng.Float64() < f.rate {
		fault = f.kinds[f.rng.IntN(len(f.kinds))]
	}
	if (fault == NotFound || fault == NoSessionID) && endpoint != "get_call" {
		fault = None
	}
	if fault != None {
		if f.injected == nil {
			f.injected = map[Fault]int{}
		}
		f.injected[fault]++
	}
	return fault
}

// inject serves a fault, if one is due, and reports whether it did.
func (f *faults) inject(w http.ResponseWriter, r *http.Request, endpoint string) bool {
	fault := f.pick(r, endpoint)
	switch fault {
	case None:
		return false
	case RateLimited:
		writeError(w, http.StatusTooManyRequests, "ERR_TOO_MANY_REQUESTS", "Rate limit exceeded.")
	case RateLimitedRetryAfter:
		f.mu.Lock()
		ra := f.retry
		f.mu.Unlock()
		if ra == "" {
			ra = "1"
		}
		w.Header().Set("Retry-After", ra)
		writeError(w, http.StatusTooManyRequests, "ERR_TOO_MANY_REQUESTS", "Rate limit exceeded.")
	case ServerErrorJSON:
		writeError(w, http.StatusInternalServerError, "ERR_INTERNAL", "Something went wrong.")
	case BadGatewayHTML:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		w.Write([]byte("<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>\n"))
	case UnavailableEmpty:
		w.WriteHeader(http.StatusServiceUnavailable)
	case Hang:
		f.mu.Lock()
		d := f.hang
		f.mu.Unlock()
		if d <= 0 {
			d = 30 * time.Second
		}
		select {
		case <-r.Context().Done():
		case <-time.After(d):
		}
		w.WriteHeader(http.StatusGatewayTimeout)
	case Reset:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return true
			}
		}
		panic(http.ErrAbortHandler)
	case Truncated:
		body := `{"data":[{"sessionId":"v1.us.trunc","type":"audio","mode":"call","status":"ended","totalAudioMinutes":1.5,"partic`
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)*2))
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(body))
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		panic(http.ErrAbortHandler) // closes the connection mid-body
	case InvalidJSON:
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"data": [ {"sessionId": "x", } ]`))
	case WrongShape:
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"data": {"calls": "maintenance"}, "meta": []}`))
	case AuthNotFound:
		writeError(w, http.StatusUnauthorized, "AUTH_ERR_APIKEY_NOT_FOUND", "The provided API key is invalid.")
	case NoAccess:
		writeError(w, http.StatusForbidden, "AUTH_ERR_NO_ACCESS", "The API key does not have access to this resource.")
	case NotFound:
		writeError(w, http.StatusNotFound, "ERR_CALL_SESSION_NOT_FOUND", "The call session does not exist.")
	case NoSessionID:
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"data": {"status": "ended", "type": "audio", "totalAudioMinutes": 1}}`))
	}
	return true
}
