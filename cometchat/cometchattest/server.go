// Package cometchattest is a fake CometChat Calls API, in the spirit of
// net/http/httptest. It serves tests and the exporter's --demo mode.
//
// It behaves like the notes say the real API does, not like the client would
// like: newest first by initiatedAt, perPage capped at 100 (default 25),
// meta.pagination computed at request time (so pages shift while calls
// arrive), the documented filters, the real error bodies, quirky call shapes
// (floats for minutes, totalDuration as a timer string on calls and a float
// on never-joined participants, extra fields) and injectable faults.
package cometchattest

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cometchat-exporter/cometchat-exporter/cometchat"
)

// TimeFilter says what the server does with startedAt/endedAt, which the
// reference leaves ambiguous.
type TimeFilter int

// The readings of startedAt/endedAt.
const (
	TimeFilterIgnore TimeFilter = iota // ignore them
	TimeFilterExact                    // match the exact value
	TimeFilterBounds                   // startedAt >= v, endedAt <= v
)

// Server is a fake Calls API. Its zero value is not usable; call New.
type Server struct {
	mu      sync.Mutex
	key     string
	revoked string // error code answered to every request while set
	calls   map[string]*entry
	order   []*entry // newest first once sorted
	sorted  bool
	seq     uint64

	// Settings; set them before serving or under Lock.
	TimeFilter    TimeFilter
	IgnorePerPage bool // serve the default page size whatever is asked
	// RepeatAcrossPages starts every page after the first with the last
	// call of the page before: the same call on two pages.
	RepeatAcrossPages bool
	// IgnoreStatusFilter makes status= filter nothing.
	IgnoreStatusFilter bool
	DefaultPer         int // default perPage (25)
	MaxPer             int // perPage cap (100)
	// OmitCurrentPage leaves meta.pagination.current_page out.
	OmitCurrentPage bool
	// OmitTotal leaves meta.pagination.total and total_pages out.
	OmitTotal bool

	faults    *faults
	misbehave *misbehaviour

	// beforeRequest, when set, runs before each request is answered (with
	// the server unlocked): tests use it to make calls arrive mid-scan.
	beforeRequest atomic.Pointer[func(r *http.Request)]

	requests map[string]*atomic.Int64
}

type entry struct {
	call  cometchat.Call
	raw   json.RawMessage // served verbatim when set
	seq   uint64
	quirk Quirk
	// pin, when set, is the entry's place in the list counted from the
	// head (1 is first), whatever its time.
	pin int
	// hidden, when positive, is how many more new calls must arrive
	// before the entry is listed (Get Call finds it meanwhile): a call
	// listed late (see the late_listing misbehaviour).
	hidden int
	// sortTS is the initiatedAt the server sorts by. It is kept when a
	// later update blanks the call's timestamps: the server's own record
	// of the call keeps its place in the list, the JSON just lacks them.
	sortTS int64
}

// Quirk is a way one listed entry departs from the reference: what a
// real server might do that nothing in the reference rules out.
type Quirk int

// The quirks.
const (
	QuirkNone Quirk = iota
	// QuirkMillis: the entry's timestamps are in milliseconds, and the
	// server sorts by that number, so the entry comes first.
	QuirkMillis
	// QuirkNullInitiatedAt: initiatedAt is null, and the server sorts
	// nulls first.
	QuirkNullInitiatedAt
	// QuirkNoSessionID: the list shows the entry without its sessionId
	// (Get Call by id still finds it).
	QuirkNoSessionID
)

var quirkNames = map[Quirk]string{QuirkNone: "none", QuirkMillis: "millis",
	QuirkNullInitiatedAt: "null_initiated_at", QuirkNoSessionID: "no_session_id"}

func (q Quirk) String() string { return quirkNames[q] }

// SetQuirk gives a stored call a quirk; it reports whether the call exists.
func (s *Server) SetQuirk(id string, q Quirk) bool {
	return s.resort(id, func(e *entry) { e.quirk = q })
}

// Quirky returns the stored calls that have a quirk, and which.
func (s *Server) Quirky() map[string]Quirk {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]Quirk{}
	for id, e := range s.calls {
		if e.quirk != QuirkNone {
			out[id] = e.quirk
		}
	}
	return out
}

// Pin lists a stored call at place pos from the head (1 is first)
// whatever its time: an entry out of order. Zero unpins it.
func (s *Server) Pin(id string, pos int) bool { return s.resort(id, func(e *entry) { e.pin = pos }) }

// resort changes how a stored call is listed; it reports whether the call
// exists.
func (s *Server) resort(id string, f func(*entry)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.calls[id]
	if ok {
		f(e)
		s.sorted = false
	}
	return ok
}

// New returns a fake API that accepts key in the apikey header.
func New(key string) *Server {
	return &Server{
		key: key, calls: map[string]*entry{}, DefaultPer: 25, MaxPer: 100,
		faults:   &faults{rng: rand.New(rand.NewPCG(1, 2))},
		requests: map[string]*atomic.Int64{cometchat.EndpointListCalls: {}, cometchat.EndpointGetCall: {}},
	}
}

// Start serves s on a new loopback httptest server.
func (s *Server) Start() *httptest.Server { return httptest.NewServer(s) }

// Requests returns how many requests an endpoint has answered (list_calls,
// get_call), faults included.
func (s *Server) Requests(endpoint string) int64 { return s.requests[endpoint].Load() }

// Lock and Unlock hold the server still: settings may change while it
// serves between the two.
func (s *Server) Lock()   { s.mu.Lock() }
func (s *Server) Unlock() { s.mu.Unlock() }

// SetKey changes the accepted API key.
func (s *Server) SetKey(key string) { s.mu.Lock(); s.key = key; s.mu.Unlock() }

// Revoke makes every request fail with code (AUTH_ERR_APIKEY_NOT_FOUND or
// AUTH_ERR_NO_ACCESS) until Restore.
func (s *Server) Revoke(code string) { s.mu.Lock(); s.revoked = code; s.mu.Unlock() }

// Restore ends a Revoke.
func (s *Server) Restore() { s.Revoke("") }

// Put adds or replaces a call.
func (s *Server) Put(c cometchat.Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.put(&entry{call: c})
}

// PutRaw adds or replaces a call given as raw JSON (for example one of the
// API reference's own examples), served byte for byte.
func (s *Server) PutRaw(raw json.RawMessage) error {
	var c cometchat.Call
	if err := json.Unmarshal(raw, &c); err != nil {
		return err
	}
	if c.SessionID == "" {
		return fmt.Errorf("raw call has no sessionId")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.put(&entry{call: c, raw: append(json.RawMessage(nil), raw...)})
	return nil
}

func (s *Server) put(e *entry) {
	e.sortTS = e.call.InitiatedAt
	if old, ok := s.calls[e.call.SessionID]; ok {
		e.seq = old.seq
		if e.sortTS == 0 {
			e.sortTS = old.sortTS
		}
		*old = *e
		s.sorted = false
		return
	}
	s.seq++
	e.seq = s.seq
	s.misbehave.add(s, e)
	s.calls[e.call.SessionID] = e
	s.order = append(s.order, e)
	s.sorted = false
}

// Forget drops the final calls that ended before ts (those without an
// end: that were initiated before it), as a retention window would, and
// returns how many it dropped. A long run at busy traffic uses it so that
// what grows is measured in the client, not in the fake.
func (s *Server) Forget(ts int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.order[:0]
	for _, e := range s.order {
		c := &e.call
		end := c.EndedAt
		if end <= 0 {
			end = c.InitiatedAt
		}
		if c.Status != "initiated" && c.Status != "ongoing" && end > 0 && end < ts {
			delete(s.calls, c.SessionID)
			continue
		}
		kept = append(kept, e)
	}
	dropped := len(s.order) - len(kept)
	clear(s.order[len(kept):])
	s.order = kept
	return dropped
}

// Update changes a stored call in place; it reports whether the call exists.
func (s *Server) Update(id string, f func(*cometchat.Call)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.calls[id]
	if !ok {
		return false
	}
	f(&e.call)
	if e.call.InitiatedAt != 0 {
		e.sortTS = e.call.InitiatedAt
	}
	e.raw = nil
	s.sorted = false
	return true
}

// Calls returns a copy of every stored call, newest first.
func (s *Server) Calls() []cometchat.Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sort()
	out := make([]cometchat.Call, len(s.order))
	for i, e := range s.order {
		out[i] = e.call
	}
	return out
}

func (s *Server) sort() {
	if s.sorted {
		return
	}
	key := func(e *entry) int64 {
		switch e.quirk {
		case QuirkMillis:
			return e.sortTS * 1000
		case QuirkNullInitiatedAt:
			return math.MaxInt64
		}
		return e.sortTS
	}
	sort.SliceStable(s.order, func(i, j int) bool {
		a, b := s.order[i], s.order[j]
		if ka, kb := key(a), key(b); ka != kb {
			return ka > kb
		}
		return a.seq > b.seq
	})
	var pinned []*entry
	rest := s.order[:0:0]
	for _, e := range s.order {
		if e.pin > 0 {
			pinned = append(pinned, e)
		} else {
			rest = append(rest, e)
		}
	}
	sort.SliceStable(pinned, func(i, j int) bool { return pinned[i].pin < pinned[j].pin })
	for _, e := range pinned {
		at := min(e.pin-1, len(rest))
		rest = append(rest[:at], append([]*entry{e}, rest[at:]...)...)
	}
	s.order = rest
	s.sorted = true
}

// ServeHTTP answers GET /calls, GET /calls/{id}, with an optional /v3 prefix.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v3"), "/")
	endpoint := cometchat.EndpointListCalls
	if strings.HasPrefix(path, "/calls/") {
		endpoint = cometchat.EndpointGetCall
	} else if path != "/calls" {
		writeError(w, http.StatusNotFound, "ERR_ROUTE_NOT_FOUND", "no such route")
		return
	}
	s.requests[endpoint].Add(1)
	if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, "ERR_METHOD_NOT_ALLOWED", "only GET is supported")
		return
	}
	if f := s.beforeRequest.Load(); f != nil {
		(*f)(r)
	}
	if s.faults.inject(w, r, endpoint) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := r.Header.Get("apikey")
	switch {
	case key == "":
		writeError(w, http.StatusUnauthorized, cometchat.CodeEmptyAPIKey, "The API key is missing from the request headers.")
		return
	case key != s.key:
		writeError(w, http.StatusUnauthorized, cometchat.CodeAPIKeyNotFound, "The provided API key is invalid.")
		return
	case s.revoked == cometchat.CodeNoAccess:
		writeError(w, http.StatusForbidden, s.revoked, "The API key does not have access to this resource.")
		return
	case s.revoked != "":
		writeError(w, http.StatusUnauthorized, s.revoked, "The provided API key is invalid.")
		return
	}
	if endpoint == cometchat.EndpointGetCall {
		s.serveGet(w, strings.TrimPrefix(path, "/calls/"))
		return
	}
	s.serveList(w, r)
}

func (s *Server) serveGet(w http.ResponseWriter, id string) {
	if id == "" {
		writeError(w, http.StatusBadRequest, "ERR_EMPTY_CALL_SESSION_ID", "The session id is empty.")
		return
	}
	e, ok := s.calls[id]
	if !ok {
		writeError(w, http.StatusNotFound, cometchat.CodeSessionNotFound, fmt.Sprintf("The call session %s does not exist.", id))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": render(e, false)})
}

func (s *Server) serveList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page := atoiOr(q.Get("page"), 1)
	per := atoiOr(q.Get("perPage"), s.DefaultPer)
	if page < 1 {
		page = 1
	}
	if per < 1 || s.IgnorePerPage {
		per = s.DefaultPer
	}
	per = min(per, s.MaxPer)
	s.sort()
	match := s.order
	if filtered(q) || s.misbehave.hiding() {
		match = nil
		for _, e := range s.order {
			if e.hidden <= 0 && s.matches(&e.call, q) {
				match = append(match, e)
			}
		}
	}
	total := len(match)
	pages := int(math.Ceil(float64(total) / float64(per)))
	lo, hi := min((page-1)*per, total), min(page*per, total)
	data := make([]any, 0, hi-lo+1)
	if s.RepeatAcrossPages && lo > 0 && lo < hi {
		data = append(data, render(match[lo-1], true))
	}
	for _, e := range match[lo:hi] {
		data = append(data, render(e, true))
	}
	pagination := map[string]any{
		"total": total, "count": len(data), "per_page": per,
		"current_page": page, "total_pages": pages,
	}
	if s.OmitCurrentPage {
		delete(pagination, "current_page")
	}
	if s.OmitTotal {
		delete(pagination, "total")
		delete(pagination, "total_pages")
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "meta": map[string]any{"pagination": pagination}})
}

// SetBeforeRequest sets a function run before each request is answered
// (nil for none); it may be changed while requests are being served.
func (s *Server) SetBeforeRequest(f func(r *http.Request)) {
	if f == nil {
		s.beforeRequest.Store(nil)
		return
	}
	s.beforeRequest.Store(&f)
}

func (s *Server) matches(c *cometchat.Call, q map[string][]string) bool {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	if v := get("type"); v != "" && !strings.EqualFold(c.Type, v) {
		return false
	}
	if v := get("mode"); v != "" && !strings.EqualFold(c.Mode, v) {
		return false
	}
	if v := get("receiverType"); v != "" && !strings.EqualFold(c.ReceiverType, v) {
		return false
	}
	if v := get("status"); v != "" && !s.IgnoreStatusFilter && !strings.EqualFold(c.Status, v) {
		return false
	}
	if v := get("hasRecording"); v != "" && strconv.FormatBool(c.HasRecording) != v {
		return false
	}
	if v := get("uid"); v != "" {
		found := c.Initiator == v || c.Receiver == v
		for _, p := range c.Participants {
			found = found || p.UID == v
		}
		if !found {
			return false
		}
	}
	if v := get("participantsCount"); v != "" && strconv.FormatInt(c.TotalParticipants, 10) != v {
		return false
	}
	for _, f := range []struct {
		key   string
		val   int64
		lower bool
	}{{"startedAt", c.StartedAt, true}, {"endedAt", c.EndedAt, false}} {
		v, err := strconv.ParseInt(get(f.key), 10, 64)
		if err != nil {
			continue
		}
		switch s.TimeFilter {
		case TimeFilterExact:
			if f.val != v {
				return false
			}
		case TimeFilterBounds:
			if (f.lower && f.val < v) || (!f.lower && (f.val == 0 || f.val > v)) {
				return false
			}
		}
	}
	return true
}

// filtered reports whether a query has any parameter besides paging.
func filtered(q map[string][]string) bool {
	for k := range q {
		if k != "page" && k != "perPage" {
			return true
		}
	}
	return false
}

func atoiOr(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return def
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// writeError answers with the API's error envelope.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"code": code, "message": msg, "devMessage": msg, "source": "calls-api",
	}})
}

// render turns a stored call into the shape the reference's examples have.
func render(e *entry, listing bool) any {
	if e.raw != nil {
		return e.raw
	}
	c := &e.call
	m := map[string]any{
		"sessionId": c.SessionID, "type": c.Type, "mode": c.Mode,
		"receiverType": c.ReceiverType, "status": c.Status,
		"initiator": c.Initiator, "receiver": c.Receiver,
		"totalAudioMinutes":      number(c.AudioMinutes),
		"totalVideoMinutes":      number(c.VideoMinutes),
		"totalDurationInMinutes": number(c.AudioMinutes + c.VideoMinutes),
		"totalDuration":          clock(c.EndedAt - c.StartedAt),
		"totalParticipants":      c.TotalParticipants,
		"hasRecording":           c.HasRecording,
		"hasTranscription":       c.HasTranscription,
		"mid":                    fmt.Sprintf("m-%d", e.seq),
		"metaData":               []any{},
		"tags":                   []any{},
	}
	unit := int64(1)
	if e.quirk == QuirkMillis {
		unit = 1000
	}
	if c.InitiatedAt > 0 {
		m["initiatedAt"] = c.InitiatedAt * unit
	}
	if c.StartedAt > 0 {
		m["startedAt"] = c.StartedAt * unit
	}
	if c.EndedAt > 0 {
		m["endedAt"] = c.EndedAt * unit
	} else {
		m["totalDuration"] = "00:00:00"
	}
	switch e.quirk {
	case QuirkNullInitiatedAt:
		m["initiatedAt"] = nil
	case QuirkNoSessionID:
		if listing {
			delete(m, "sessionId")
		}
	}
	parts := make([]any, 0, len(c.Participants))
	for _, p := range c.Participants {
		pm := map[string]any{
			"uid": p.UID, "state": p.State, "isJoined": p.IsJoined,
			"totalAudioMinutes": number(p.AudioMinutes), "totalVideoMinutes": number(p.VideoMinutes),
		}
		if p.IsJoined {
			pm["deviceId"], pm["joinedAt"], pm["totalDurationInMinutes"] = p.DeviceID, p.JoinedAt, p.DurationMinutes
			if p.LeftAt > 0 {
				pm["leftAt"] = p.LeftAt
			}
		} else {
			pm["totalDuration"] = p.DurationMinutes // the examples' spelling for never-joined entries
		}
		parts = append(parts, pm)
	}
	m["participants"] = parts
	if len(c.Recordings) > 0 {
		recs := make([]any, 0, len(c.Recordings))
		for _, r := range c.Recordings {
			recs = append(recs, map[string]any{"rid": r.RID, "duration": number(r.DurationMinutes),
				"startTime": r.StartTime, "endTime": r.EndTime, "recording_url": r.URL})
		}
		m["recordings"] = recs
	}
	return m
}

// number renders a float as JSON can carry it: a value JSON has no number
// for (NaN, ±Infinity) goes out as a string, as a JavaScript back end
// serialising it through String() would send it.
func number(v float64) any {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "Infinity"
	case math.IsInf(v, -1):
		return "-Infinity"
	}
	return v
}

func clock(secs int64) string {
	if secs < 0 {
		secs = 0
	}
	return fmt.Sprintf("%02d:%02d:%02d", secs/3600, secs/60%60, secs%60)
}
