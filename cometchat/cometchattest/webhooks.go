package cometchattest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"
)

// WebhookPayload is the body CometChat posts for a call event, in the
// reference's two shapes: call_initiated nests the call as a message
// (data.call.data.entities.on.entity.sessionid); the others carry
// data.sessionId.
func WebhookPayload(appID, trigger, sessionID string, at time.Time) []byte {
	data := map[string]any{"sessionId": sessionID, "created_at": at.Unix()}
	if trigger == "call_initiated" {
		data = map[string]any{"call": map[string]any{"receiverType": "user", "data": map[string]any{
			"entities": map[string]any{"on": map[string]any{"entity": map[string]any{
				"sessionid": sessionID, "status": "initiated", "initiatedAt": at.Unix()}}}}}}
	}
	b, _ := json.Marshal(map[string]any{"trigger": trigger, "appId": appID, "region": "us", "webhook": "wh-demo", "data": data})
	return b
}

// SendWebhooks makes the generator post each call event to url as
// CometChat would, with basic auth when user is set. Posts run in the
// background; one that fails is not retried (polling is the safety net).
func (t *Traffic) SendWebhooks(url, appID, user, pass string) {
	client := &http.Client{Timeout: 5 * time.Second}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.OnEvent = func(trigger, sessionID string) {
		body := WebhookPayload(appID, trigger, sessionID, time.Now())
		go func() {
			req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			if err != nil {
				return
			}
			req.Header.Set("Content-Type", "application/json")
			if user != "" {
				req.SetBasicAuth(user, pass)
			}
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
}
