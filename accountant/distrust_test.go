package accountant

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests of this file each take one assumption about the API (its
// order, its timestamps, its pages, its ids) or about the exporter's own
// bookkeeping, break it, and check that the break costs requests, never
// calls.

// TestIdlePollsWriteNothing: a poll that learns nothing writes nothing:
// no snapshot, no journal line, no fsync.
func TestIdlePollsWriteNothing(t *testing.T) {
	h := newHarness(t)
	for i := range 30 {
		h.put(call(fmt.Sprintf("h%02d", i), int64(-3600+i), "ended"))
	}
	state := filepath.Join(t.TempDir(), "state")
	h.start(func(c *Config) { c.StateFile = state; c.PerPage = 10 })
	h.poll()
	h.put(call("new", 10, "ended"))
	for range 2 { // the poll after one that learned settles the list total's bookkeeping
		h.now = h.now.Add(30 * time.Second)
		h.poll()
	}
	written := h.p.Snapshot().State.WrittenBytes
	require.Positive(t, written)
	journal, err := os.Stat(state + ".journal")
	require.NoError(t, err)
	for range 5 {
		h.now = h.now.Add(30 * time.Second)
		h.poll()
	}
	assert.Equal(t, written, h.p.Snapshot().State.WrittenBytes, "idle polls wrote to the state")
	after, err := os.Stat(state + ".journal")
	require.NoError(t, err)
	assert.Equal(t, journal.Size(), after.Size())
	assert.Equal(t, journal.ModTime(), after.ModTime())

	// A new call is written again.
	h.put(call("newer", 200, "ended"))
	h.now = h.now.Add(30 * time.Second)
	h.poll()
	assert.Greater(t, h.p.Snapshot().State.WrittenBytes, written)
}

// TestReloadOfAChangedAppKeepsItsSweepSchedule: a reload that changes an
// app's settings but not its identity does not make the next poll a sweep.
func TestReloadOfAChangedAppKeepsItsSweepSchedule(t *testing.T) {
	h := newHarness(t)
	h.put(call("a", -60, "ended"))
	h.start(func(c *Config) { c.SweepEvery = time.Hour })
	h.poll()
	h.now = h.now.Add(30 * time.Second)
	h.poll() // the first poll after the start is a sweep
	swept := h.p.lastSweep
	require.False(t, swept.IsZero())

	cfg := h.cfg
	cfg.Interval, cfg.Resume = 2*time.Minute, h.p
	p, err := NewPoller(cfg)
	require.NoError(t, err)
	p.Adopt()
	assert.Equal(t, swept, p.lastSweep, "the sweep schedule survives the reload")
	assert.False(t, sweepDue(p.ledger.Initialized, p.lastSweep, h.now.Add(time.Minute), time.Hour))
}
