package cometchat

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The seed corpus is the notes' shapes (testdata/*.json) plus the odd ones
// below; `go test` runs it, `go test -fuzz` explores further (see README).
func addSeeds(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		``, `null`, `[]`, `{}`, `{"data":null}`, `{"data":[null,1,"x",{}]}`,
		`{"data":[{"sessionId":"a","participants":{"uid":"x"},"recordings":"none"}]}`,
		`{"data":[{"sessionId":"a","totalAudioMinutes":"1e309","initiatedAt":-1,"totalParticipants":1.5}]}`,
		`{"data":{"sessionId":"a","totalDuration":12.5}}`,
		`{"error":{"code":"AUTH_ERR_APIKEY_NOT_FOUND","message":"bad"}}`,
		`{"error":"flat string"}`, `{"code":123,"message":["x"]}`, `<html>502</html>`,
	} {
		f.Add([]byte(s))
	}
}

func FuzzDecodePage(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := DecodePage(body)
		if err != nil {
			return
		}
		for _, c := range p.Calls {
			if c.SessionID == "" {
				t.Fatalf("a call without sessionId was returned")
			}
			c.Timestamp()
		}
		if p.Skipped < 0 {
			t.Fatalf("negative skipped count")
		}
	})
}

func FuzzDecodeCall(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := DecodeCall(body)
		if err == nil && c.SessionID == "" {
			t.Fatalf("a call without sessionId was returned")
		}
	})
}

func FuzzParseErrorBody(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		code, msg := ParseErrorBody(body)
		c := &Client{cfg: Config{APIKey: "fuzz-key"}}
		if m := c.errorText(msg, maxErrorMessage); len(m) > maxErrorMessage+3 || strings.Contains(m, "fuzz-key") {
			t.Fatalf("message not clipped or not redacted: %q", m)
		}
		reason := ErrorReason(&APIError{StatusCode: 500, Code: code})
		if len(reason) > 64 || reason == "" {
			t.Fatalf("unbounded reason %q", reason)
		}
	})
}
