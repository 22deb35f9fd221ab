package cometchattest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cometchat-exporter/cometchat-exporter/cometchat"
)

// These tests hold the fake to the API notes with plain HTTP and generic
// JSON, not through the exporter's client: the fake must behave like the
// API, not like the client would like.

const key = "fake-key"

func get(t *testing.T, url string, header map[string]string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var body map[string]any
	require.NoError(t, json.Unmarshal(b, &body), "%s", b)
	return resp.StatusCode, resp.Header, body
}

func withCalls(t *testing.T, n int) (*Server, string) {
	s := New(key)
	for i := range n {
		s.Put(cometchat.Call{SessionID: fmt.Sprintf("c%03d", i), Type: "audio", Mode: "call", ReceiverType: "user",
			Status: []string{"ended", "ongoing", "rejected"}[i%3], InitiatedAt: 1_700_000_000 + int64(i)})
	}
	srv := s.Start()
	t.Cleanup(srv.Close)
	return s, srv.URL + "/v3"
}

func TestListIsNewestFirstWithCappedPages(t *testing.T) {
	_, base := withCalls(t, 130)
	code, _, body := get(t, base+"/calls?perPage=500&page=1", map[string]string{"apikey": key})
	require.Equal(t, 200, code)
	data := body["data"].([]any)
	require.Len(t, data, 100, "perPage is capped at 100")
	assert.Equal(t, "c129", data[0].(map[string]any)["sessionId"], "newest first")
	assert.Equal(t, map[string]any{"total": 130.0, "count": 100.0, "per_page": 100.0, "current_page": 1.0, "total_pages": 2.0},
		body["meta"].(map[string]any)["pagination"])

	_, _, body = get(t, base+"/calls", map[string]string{"apikey": key})
	assert.Len(t, body["data"].([]any), 25, "default page size")
	_, _, body = get(t, base+"/calls?page=9", map[string]string{"apikey": key})
	assert.Empty(t, body["data"].([]any), "past the last page")
}

func TestFiltersAndQuirkyShapes(t *testing.T) {
	_, base := withCalls(t, 30)
	_, _, body := get(t, base+"/calls?status=ongoing&perPage=100", map[string]string{"apikey": key})
	data := body["data"].([]any)
	assert.Len(t, data, 10)
	c := data[0].(map[string]any)
	assert.Equal(t, "ongoing", c["status"])
	assert.Equal(t, "00:00:00", c["totalDuration"], "a timer string, as in the examples")
	assert.Contains(t, c, "metaData")
	assert.Contains(t, c, "mid")
}

func TestErrorBodies(t *testing.T) {
	s, base := withCalls(t, 3)
	cases := []struct {
		header map[string]string
		path   string
		status int
		code   string
	}{
		{nil, "/calls", 401, "AUTH_ERR_EMPTY_APIKEY"},
		{map[string]string{"apikey": "wrong"}, "/calls", 401, "AUTH_ERR_APIKEY_NOT_FOUND"},
		{map[string]string{"APIKEY": key}, "/calls/nope", 404, "ERR_CALL_SESSION_NOT_FOUND"},
	}
	for _, tc := range cases {
		code, _, body := get(t, base+tc.path, tc.header)
		assert.Equal(t, tc.status, code)
		assert.Equal(t, tc.code, body["error"].(map[string]any)["code"])
		assert.NotEmpty(t, body["error"].(map[string]any)["message"])
	}
	s.Revoke(cometchat.CodeNoAccess)
	code, _, body := get(t, base+"/calls", map[string]string{"apikey": key})
	assert.Equal(t, 403, code)
	assert.Equal(t, "AUTH_ERR_NO_ACCESS", body["error"].(map[string]any)["code"])
	s.Restore()
	code, _, body = get(t, base+"/calls/c001", map[string]string{"apikey": key})
	assert.Equal(t, 200, code)
	assert.Equal(t, "c001", body["data"].(map[string]any)["sessionId"])
}

func TestInjectedRateLimit(t *testing.T) {
	s, base := withCalls(t, 3)
	s.InjectSchedule(func(*http.Request, string) Fault { return RateLimitedRetryAfter })
	code, header, body := get(t, base+"/calls", map[string]string{"apikey": key})
	assert.Equal(t, 429, code)
	assert.Equal(t, "1", header.Get("Retry-After"))
	assert.Equal(t, "ERR_TOO_MANY_REQUESTS", body["error"].(map[string]any)["code"])
	assert.Equal(t, map[Fault]int{RateLimitedRetryAfter: 1}, s.Injected())
}

func TestTrafficLifecycles(t *testing.T) {
	s := New(key)
	tr := NewTraffic(s, 3)
	tr.CallsPerMinute = 600
	now := time.Unix(1_700_000_000, 0)
	for range 600 { // ten simulated minutes, a second at a time
		now = now.Add(time.Second)
		tr.Step(now)
	}
	tr.FinishAll(now)
	statuses := map[string]int{}
	var group, recorded, neverJoined int
	for _, c := range s.Calls() {
		statuses[c.Status]++
		if c.ReceiverType == "group" {
			group++
		}
		if c.HasRecording {
			recorded++
		}
		for _, p := range c.Participants {
			if !p.IsJoined && p.State == "unanswered" && c.Status == "ended" {
				neverJoined++
			}
		}
	}
	assert.Equal(t, tr.Created(), len(s.Calls()))
	assert.Zero(t, tr.Live())
	for _, st := range []string{"ended", "rejected", "unanswered", "canceled", "cancelled", "busy"} {
		assert.Positive(t, statuses[st], "status %s appears", st)
	}
	assert.Zero(t, statuses["ongoing"]+statuses["initiated"], "every call finished")
	assert.Positive(t, group)
	assert.Positive(t, recorded)
	assert.Positive(t, neverJoined, "group invitees who never joined")
}

func TestMisbehave(t *testing.T) {
	s := New("k")
	require.ErrorContains(t, s.Misbehave("sideways"), `unknown misbehaviour "sideways"`)
	require.NoError(t, s.Misbehave("unsorted", "millis", "no_total"))
	assert.True(t, s.OmitTotal)
	for i := range 100 {
		s.Put(cometchat.Call{SessionID: fmt.Sprintf("c%03d", i), Status: "ended", InitiatedAt: 1_700_000_000 + int64(i)})
	}
	q := s.Quirky()
	assert.Equal(t, map[string]Quirk{"c049": QuirkMillis, "c099": QuirkMillis}, q, "every 50th new call")
	calls := s.Calls()
	assert.Equal(t, "c074", calls[0].SessionID, "the latest pinned call is listed first, the one before it is not")
	assert.Equal(t, []string{"c099", "c049"}, []string{calls[1].SessionID, calls[2].SessionID}, "then the millisecond entries, sorted by the raw number")
	assert.Equal(t, "c098", calls[3].SessionID)
}

// Forget drops the final calls that ended before a time (these have no
// end: that started before it) and keeps calls in progress.
func TestForget(t *testing.T) {
	s, base := withCalls(t, 30) // c000..c029, c001, c004, ... ongoing
	assert.Equal(t, 7, s.Forget(1_700_000_010), "c000-c009 less the ongoing c001, c004, c007")
	_, _, body := get(t, base+"/calls?perPage=100", map[string]string{"apikey": key})
	var ids []string
	for _, c := range body["data"].([]any) {
		ids = append(ids, c.(map[string]any)["sessionId"].(string))
	}
	assert.Len(t, ids, 23)
	assert.Equal(t, []string{"c010", "c007", "c004", "c001"}, ids[len(ids)-4:])
	assert.Equal(t, 23.0, body["meta"].(map[string]any)["pagination"].(map[string]any)["total"])

	s.Update("c029", func(c *cometchat.Call) { c.EndedAt = 1_700_000_100 })
	assert.Equal(t, 12, s.Forget(1_700_000_050), "by the end where there is one: c029 stays")
	assert.Len(t, s.Calls(), 11, "c029 and the ten calls in progress")
}

// late_listing: every 50th new call is missing from the listings and
// their total until 60 (then 400) more new calls have arrived; Get Call
// finds it all along. Once listed it sits at its time, below the calls
// initiated after it.
func TestLateListing(t *testing.T) {
	s := New(key)
	require.NoError(t, s.Misbehave("late_listing"))
	srv := s.Start()
	t.Cleanup(srv.Close)
	base := srv.URL + "/v3"
	put := func(from, n int) {
		for i := from; i < from+n; i++ {
			s.Put(cometchat.Call{SessionID: fmt.Sprintf("c%03d", i), Status: "ended", InitiatedAt: 1_700_000_000 + int64(i)})
		}
	}
	listed := func() (ids map[string]bool, total float64) {
		ids = map[string]bool{}
		for page := 1; ; page++ {
			_, _, body := get(t, fmt.Sprintf("%s/calls?perPage=100&page=%d", base, page), map[string]string{"apikey": key})
			data := body["data"].([]any)
			if len(data) == 0 {
				return ids, total
			}
			total = body["meta"].(map[string]any)["pagination"].(map[string]any)["total"].(float64)
			for _, c := range data {
				ids[c.(map[string]any)["sessionId"].(string)] = true
			}
		}
	}
	put(0, 69) // the 10th new call, c009, waits for 60 more: c010..c069
	ids, total := listed()
	assert.False(t, ids["c009"])
	assert.False(t, ids["c059"], "nor the 60th, c059")
	assert.Equal(t, 67.0, total, "the total does not count them either")
	code, _, _ := get(t, base+"/calls/c009", map[string]string{"apikey": key})
	assert.Equal(t, http.StatusOK, code, "Get Call finds it")
	put(69, 1)
	ids, total = listed()
	assert.True(t, ids["c009"], "listed once 60 more calls arrived")
	assert.Equal(t, 69.0, total)
	assert.False(t, ids["c059"], "c059 waits for 400")
	assert.Equal(t, "c009", s.Calls()[60].SessionID, "at its place by time")
}
