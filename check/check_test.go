package check

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cometchat-exporter/cometchat-exporter/cometchat"
	"github.com/cometchat-exporter/cometchat-exporter/cometchat/cometchattest"
	"github.com/cometchat-exporter/cometchat-exporter/config"
)

const key = "check-secret-key-5b1e"

// report runs the check against a fake misbehaving in the named ways,
// holding 250 calls (ten of them in progress).
func report(t *testing.T, misbehave ...string) (string, bool) {
	fake := cometchattest.New(key)
	require.NoError(t, fake.Misbehave(misbehave...))
	now := time.Now().Unix()
	for i := range 250 {
		at := now - int64(250-i)*60
		c := cometchat.Call{SessionID: fmt.Sprintf("v1.us.check.%d", i), Type: "audio", Mode: "call", ReceiverType: "user",
			Status: "ended", InitiatedAt: at, StartedAt: at + 2, EndedAt: at + 30}
		if i >= 240 {
			c.Status, c.EndedAt = "ongoing", 0
		}
		fake.Put(c)
	}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	app := config.App{Name: "prod", AppID: "a1", BaseURL: srv.URL + "/v3", APIKey: key}
	var out strings.Builder
	ok := Run(context.Background(), []config.App{app}, func(a config.App) (*cometchat.Client, error) {
		return cometchat.New(cometchat.Config{BaseURL: a.BaseURL, APIKey: a.APIKey, MaxRetries: -1})
	}, &out)
	assert.NotContains(t, out.String(), key, "never the key")
	return out.String(), ok
}

// Against the fake in each misbehaving mode, the check names what it
// found, and fails only where calls would go uncounted.
func TestCheckEachMisbehaviour(t *testing.T) {
	out, ok := report(t)
	assert.True(t, ok, out)
	assert.NotContains(t, out, "warn", "the reference behaviour:\n%s", out)
	assert.Contains(t, out, "result: the exporter will count these apps correctly")

	for name, want := range map[string]string{
		"unsorted":             "warn  order: ",
		"millis":               "warn  timestamp units: 5 of 100 entries in milliseconds",
		"null_initiated_at":    "warn  initiatedAt: 5 of 100 entries without initiatedAt",
		"no_session_id":        "FAIL  sessionId: 2 of 100 entries without sessionId",
		"failing_page":         "warn  page 3: cometchat list_calls: HTTP 500",
		"no_total":             "warn  pagination total: meta.pagination.total is missing",
		"no_current_page":      "warn  pagination current_page: current_page is 0 on page 1",
		"ignore_status_filter": "warn  status=ongoing filter: 90 of 100 entries not ongoing",
		"ignore_per_page":      "warn  page size: asked 100, got 25 of 250: pages are capped at 25",
		"repeat_across_pages":  "warn  page 2: 101 entries, 1 of them on an earlier page too",
		// One look cannot see a call that is not listed yet; the exporter
		// finds it through the list total, the overlap and sweeps.
		"late_listing": "result: the exporter will count these apps correctly",
	} {
		t.Run(name, func(t *testing.T) {
			require.Contains(t, cometchattest.Misbehaviours, name)
			out, ok := report(t, name)
			assert.Contains(t, out, want, out)
			assert.Equal(t, name != "no_session_id", ok, "only calls that cannot be counted fail the check:\n%s", out)
		})
	}
	assert.Len(t, cometchattest.Misbehaviours, 11, "a new misbehaviour needs its case here")
}

func TestCheckFailsWhenNothingCanBeRead(t *testing.T) {
	fake := cometchattest.New(key)
	fake.Revoke(cometchat.CodeAPIKeyNotFound)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	var out strings.Builder
	ok := Run(context.Background(), []config.App{{Name: "prod", BaseURL: srv.URL + "/v3", APIKey: key}}, func(a config.App) (*cometchat.Client, error) {
		return cometchat.New(cometchat.Config{BaseURL: a.BaseURL, APIKey: a.APIKey, MaxRetries: -1})
	}, &out)
	assert.False(t, ok)
	assert.Contains(t, out.String(), "FAIL  list calls: cometchat list_calls: HTTP 401 AUTH_ERR_APIKEY_NOT_FOUND")
	assert.Contains(t, out.String(), cometchat.HintKey)
	assert.Contains(t, out.String(), "result: the exporter will NOT count every call")
}
