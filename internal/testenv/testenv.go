// Package testenv holds what several packages' tests share: finding the
// external tools (promtool, prometheus) and collecting a process's output.
package testenv

import (
	"bytes"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// RequireTool finds an external tool on PATH. Under CI=true a missing tool
// fails the test, so that CI never passes by skipping; elsewhere the test
// is skipped.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required under CI=true but is not on PATH", name)
	}
	t.Skipf("%s not on PATH", name)
	return ""
}

// Buffer collects a process's output; it is safe for concurrent writes.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }

// String returns what was written so far.
func (s *Buffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
