package accountant

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cometchat-exporter/cometchat-exporter/cometchat"
)

// busyState is a store holding a ledger of 50,000 remembered ids, the
// default dedupe capacity, and a function that runs one busy poll's worth
// of changes (100 calls counted, 20 calls in progress changing) and saves.
func busyState(tb testing.TB) (s *store, poll func(i int) error) {
	const capacity = 50_000
	dir := tb.TempDir()
	now := t0
	s, l, _, err := openStore(filepath.Join(dir, "state.json"), "bench", "id", log.NewNopLogger(), now)
	require.NoError(tb, err)
	for i := range capacity {
		c := call(fmt.Sprintf("v1.us.28c4ab6a2b1e8d4.history%06d", i), -int64(capacity-i)*3, "ended")
		l.Observe(&c, observeMode{})
	}
	l.Initialized = true
	require.NoError(tb, s.save(l, now))
	return s, func(i int) error {
		now = now.Add(30 * time.Second)
		base := int64(i+1) * 30
		for j := range 100 {
			c := call(fmt.Sprintf("v1.us.28c4ab6a2b1e8d4.new%06d-%03d", i, j), base+int64(j%30), []string{"ended", "rejected", "unanswered"}[j%3])
			c.Participants = append(c.Participants, cometchat.Participant{UID: "c", State: "unanswered"})
			l.Observe(&c, observeMode{})
		}
		for j := range 20 {
			c := call(fmt.Sprintf("v1.us.28c4ab6a2b1e8d4.live%06d-%03d", i, j), base, "ongoing")
			c.Participants = c.Participants[:1+j%2]
			l.Observe(&c, observeMode{})
		}
		l.Watermark = t0.Unix() + base
		l.Prune(capacity, l.Watermark-120)
		return s.save(l, now)
	}
}

// TestStateWritesAreProportionalToChange: with 50,000 remembered ids, a
// busy poll writes under 256 KiB on average, compactions included, where
// rewriting the whole state each poll would write its full size.
func TestStateWritesAreProportionalToChange(t *testing.T) {
	s, poll := busyState(t)
	full := s.snapshotSize
	require.Greater(t, full, int64(1<<20), "a whole state of 50,000 ids is over 1 MiB")
	before := s.written
	const polls = 200
	snapshots := 0
	for i := range polls {
		size := s.snapshotSize
		require.NoError(t, poll(i))
		if s.journalSize == 0 || s.snapshotSize != size {
			snapshots++
		}
	}
	perPoll := float64(s.written-before) / polls
	t.Logf("whole state %d KiB; %.1f KiB written per busy poll on average over %d polls, %d compactions",
		full>>10, perPoll/1024, polls, snapshots)
	assert.Less(t, perPoll, 256.0*1024)
	assert.Positive(t, snapshots, "the journal was compacted")
	assert.Less(t, snapshots, polls/5)
}

// BenchmarkStateWriteBusyPoll reports the bytes written per busy poll
// with 50,000 remembered ids (see busyState), compactions included.
func BenchmarkStateWriteBusyPoll(b *testing.B) {
	s, poll := busyState(b)
	b.ReportMetric(float64(s.snapshotSize)/1024, "whole-state-KiB")
	before := s.written
	b.ResetTimer()
	for i := range b.N {
		if err := poll(i); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(s.written-before)/float64(b.N)/1024, "KiB/poll")
}

// More changes than a record holds (a backfill, a catch-up) are not kept
// key by key: the record overflows, holds nothing, and the next save
// writes a snapshot, from which a restart recovers every call. The next
// small change goes to the journal again.
func TestChangesOverflowToASnapshot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s, l, _, err := openStore(path, "app", "id", log.NewNopLogger(), t0)
	require.NoError(t, err)
	l.Initialized = true
	require.NoError(t, s.save(l, t0))
	n := maxChanges + 500
	for i := range n {
		c := call(fmt.Sprintf("v1.us.overflow%06d", i), -int64(n-i), "ended")
		require.Equal(t, Counted, func() Outcome { o, _ := l.Observe(&c, observeMode{}); return o }())
	}
	require.True(t, l.changes.overflow)
	assert.Zero(t, l.changes.len(), "an overflowed record holds no keys")
	snapshot := s.snapshotSize
	require.NoError(t, s.save(l, t0.Add(time.Minute)))
	assert.Zero(t, s.journalSize, "the overflow was saved as a snapshot")
	assert.Greater(t, s.snapshotSize, snapshot)
	assert.False(t, l.changes.overflow)

	c := call("v1.us.after", 10, "ended")
	l.Observe(&c, observeMode{})
	require.NoError(t, s.save(l, t0.Add(2*time.Minute)))
	assert.Positive(t, s.journalSize, "a small change goes to the journal")

	_, back, _, err := openStore(path, "app", "id", log.NewNopLogger(), t0.Add(3*time.Minute))
	require.NoError(t, err)
	assert.Equal(t, n+1, back.Remembered())
	assert.Equal(t, l.totals, back.totals)
	assert.Equal(t, l.ledgerScalars, back.ledgerScalars)
	assert.Equal(t, uint64(n+1), back.Learned)
}
