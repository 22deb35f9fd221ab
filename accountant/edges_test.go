package accountant

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cometchat-exporter/cometchat-exporter/cometchat"
	"github.com/cometchat-exporter/cometchat-exporter/cometchat/cometchattest"
)

// The tests in this file pin the edges where counting used to break: one
// test per case, each failing on the first version of the counting core.

func listRequests(h *harness) int64 { return h.fake.Requests(cometchat.EndpointListCalls) }
func getRequests(h *harness) int64  { return h.fake.Requests(cometchat.EndpointGetCall) }

// diskFull fails state writes while it is set, as ENOSPC would.
type diskFull struct {
	on     atomic.Bool
	failed atomic.Int64 // writes failed
}

func (d *diskFull) fault() error {
	if d.on.Load() {
		d.failed.Add(1)
		return fmt.Errorf("write state: %w", syscall.ENOSPC)
	}
	return nil
}

func TestFailedStateWriteNeverPublishesWhatARestartWouldLose(t *testing.T) {
	h := newHarness(t)
	state := filepath.Join(t.TempDir(), "state.json")
	disk := &diskFull{}
	withState := func(c *Config) { c.StateFile = state; c.PerPage = 20; c.diskFault = disk.fault }
	h.start(withState)
	h.poll()
	for i := range 30 {
		h.put(call(fmt.Sprintf("a%02d", i), int64(i), "ended"))
	}
	h.poll()
	require.Equal(t, uint64(30), h.sums().Calls["ended"])
	saved := h.p.Snapshot().State.LastWrite
	require.False(t, saved.IsZero())

	// The disk fills up; 20 more calls end. Polling goes on, and the
	// published counters stay at what the file holds.
	disk.on.Store(true)
	for i := range 20 {
		h.put(call(fmt.Sprintf("b%02d", i), 100+int64(i), "rejected"))
	}
	h.now = h.now.Add(time.Minute)
	h.poll()
	h.poll()
	s := h.p.Snapshot()
	assert.True(t, s.Up, "the API is fine: up stays 1")
	assert.Equal(t, map[string]uint64{"ended": 30}, h.sums().Calls, "nothing unsaved is published")
	assert.Equal(t, uint64(2), s.State.Failures)
	assert.Equal(t, uint64(2), s.API.Errors["state_write"])
	assert.Equal(t, saved, s.State.LastWrite, "the last successful write is the one before the disk filled")

	// A restart now continues from the file: it shows what scrapes saw,
	// and counts the 20 calls once.
	restarted := &harness{t: t, fake: h.fake, url: h.url, now: h.now}
	restarted.start(func(c *Config) { c.StateFile = state; c.PerPage = 20 })
	assert.Equal(t, map[string]uint64{"ended": 30}, restarted.sums().Calls, "never less than a scrape saw")
	restarted.poll()
	assert.Equal(t, map[string]uint64{"ended": 30, "rejected": 20}, restarted.sums().Calls)

	// Without a restart, the first write that succeeds publishes them.
	disk.on.Store(false)
	h.poll()
	assert.Equal(t, map[string]uint64{"ended": 30, "rejected": 20}, h.sums().Calls)
	assert.Equal(t, h.now, h.p.Snapshot().State.LastWrite, "the write that succeeded")
}

func TestJournalOnARealFullDevice(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full on this system")
	}
	h := newHarness(t)
	state := filepath.Join(t.TempDir(), "state.json")
	h.start(func(c *Config) { c.StateFile = state })
	h.poll() // the first save is a snapshot
	require.NoError(t, os.Symlink("/dev/full", state+".journal"))
	h.put(call("x", 1, "ended"))
	h.poll()
	assert.Empty(t, h.sums().Calls, "the journal write failed with ENOSPC: not published")
	assert.Equal(t, uint64(1), h.p.Snapshot().State.Failures)
	// The next save is a snapshot (nothing may follow a torn line), which
	// this disk takes: published then.
	h.poll()
	assert.Equal(t, map[string]uint64{"ended": 1}, h.sums().Calls)
}

func TestJournalReplayRebuildsTheLedger(t *testing.T) {
	h := newHarness(t)
	state := filepath.Join(t.TempDir(), "state.json")
	h.start(func(c *Config) { c.StateFile = state; c.PerPage = 10; c.Capacity = 40; c.Overlap = time.Minute })
	h.put(call("ringing", -30, "initiated"), call("talking", -60, "ongoing"), call("history", -600, "ended"))
	h.poll()
	for round := range 8 {
		for i := range 15 {
			st := []string{"ended", "rejected", "unanswered", "initiated"}[i%4]
			h.put(call(fmt.Sprintf("r%d-%02d", round, i), int64(round*120+i), st))
		}
		undated := call(fmt.Sprintf("undated-%d", round), int64(round*120+50), "ended")
		h.put(undated)
		h.fake.Update(undated.SessionID, func(c *cometchat.Call) { c.InitiatedAt, c.StartedAt, c.EndedAt = 0, 0, 0 })
		if round == 3 {
			h.end("talking", t0.Unix()+int64(round*120))
		}
		h.now = h.now.Add(2 * time.Minute)
		h.poll()
	}
	journal, err := os.Stat(state + ".journal")
	require.NoError(t, err)
	require.Positive(t, journal.Size(), "the polls went to the journal")

	_, l, recovered, err := openStore(state, "test", "", h.cfg.Logger, h.now)
	require.NoError(t, err)
	require.False(t, recovered)
	live := h.p.ledger
	assert.Equal(t, live.ledgerScalars, l.ledgerScalars)
	assert.Equal(t, live.done.entries(), l.done.entries())
	assert.Equal(t, live.undated, l.undated)
	assert.Equal(t, live.totals, l.totals)
	require.Equal(t, len(live.tracked), len(l.tracked))
	for id, tr := range live.tracked {
		want := *tr
		want.seenPoll = 0
		assert.Equal(t, want, *l.tracked[id], id)
	}
}

func TestTornJournalTailIsIgnored(t *testing.T) {
	h := newHarness(t)
	state := filepath.Join(t.TempDir(), "state.json")
	h.start(func(c *Config) { c.StateFile = state })
	h.poll()
	h.put(call("a", 1, "ended"))
	h.poll()
	h.put(call("b", 2, "ended"))
	h.poll()
	data, err := os.ReadFile(state + ".journal")
	require.NoError(t, err)
	snapshot, err := os.ReadFile(state)
	require.NoError(t, err)
	lines := strings.SplitAfter(string(data), "\n")
	require.Len(t, lines, 3, "two records and the empty tail")

	for name, journal := range map[string]string{
		"cut mid-line":    lines[0] + lines[1][:len(lines[1])/2],
		"bad checksum":    lines[0] + "00000000" + lines[1][8:],
		"garbage at tail": lines[0] + "\x00\x00\x00\x00",
	} {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(state, snapshot, 0o600))
			require.NoError(t, os.WriteFile(state+".journal", []byte(journal), 0o600))
			r := &harness{t: t, fake: h.fake, url: h.url, now: h.now}
			r.start(func(c *Config) { c.StateFile = state })
			assert.False(t, r.p.Snapshot().StateRecovered, "a torn tail is not corruption")
			assert.Equal(t, map[string]uint64{"ended": 1}, r.sums().Calls, "the record before the tear")
			r.poll()
			assert.Equal(t, map[string]uint64{"ended": 2}, r.sums().Calls, "b is counted again, once")
			_, l, _, err := openStore(state, "test", "", r.cfg.Logger, r.now)
			require.NoError(t, err)
			assert.Equal(t, 2, l.done.Len(), "the next save rewrote a clean state")
		})
	}
}

func TestNonFiniteNumbersNeverReachACounter(t *testing.T) {
	h := newHarness(t)
	state := filepath.Join(t.TempDir(), "state.json")
	h.start(func(c *Config) { c.StateFile = state })
	h.poll()
	for i, raw := range []string{
		`{"sessionId":"inf","type":"audio","mode":"call","receiverType":"user","status":"ended","initiatedAt":%d,"startedAt":%d,"endedAt":%d,"totalAudioMinutes":"Infinity","totalVideoMinutes":2,"participants":[{"state":"ended","totalAudioMinutes":"Infinity"},{"state":"ended","totalAudioMinutes":0.5}]}`,
		`{"sessionId":"huge","type":"audio","mode":"call","receiverType":"user","status":"ended","initiatedAt":%d,"startedAt":%d,"endedAt":%d,"totalAudioMinutes":1e308,"totalParticipants":"Infinity"}`,
		`{"sessionId":"nan","type":"audio","mode":"call","receiverType":"user","status":"ended","initiatedAt":%d,"startedAt":%d,"endedAt":%d,"totalAudioMinutes":"NaN","recordings":[{"rid":"r","duration":-5}]}`,
		`{"sessionId":"ok","type":"audio","mode":"call","receiverType":"user","status":"ended","initiatedAt":%d,"startedAt":%d,"endedAt":%d,"totalAudioMinutes":1.5}`,
	} {
		at := t0.Unix() + int64(i)
		require.NoError(t, h.fake.PutRaw([]byte(fmt.Sprintf(raw, at, at, at+60))))
	}
	h.poll()
	s := h.p.Snapshot()
	got := h.sums()
	assert.Equal(t, uint64(4), got.Calls["ended"], "every call is counted")
	assert.Equal(t, 90.0, got.AudioSeconds, "only the finite 1.5 minutes")
	assert.Equal(t, 120.0, s.Totals[Labels{"audio", "call", "user"}].VideoSeconds)
	assert.Equal(t, uint64(3), s.API.Errors["invalid_call"], "one per call with unusable values")
	assert.Zero(t, s.State.Failures, "the state stays writable")
	for _, tt := range s.Totals {
		for _, v := range []float64{tt.AudioSeconds, tt.VideoSeconds, tt.ParticipantAudioSeconds, tt.ParticipantVideoSeconds,
			tt.RecordingSeconds, tt.Duration.Sum, tt.ParticipantsPerCall.Sum} {
			assert.False(t, math.IsInf(v, 0) || math.IsNaN(v))
		}
	}
	assert.Equal(t, 30.0, s.Totals[Labels{"audio", "call", "user"}].ParticipantAudioSeconds, "only the finite participant's half minute")
}

// The call-level minutes and the participants' sum are two figures: a
// group call of 19 s where two participants talked 0.6 and 0.5 minutes
// (the reference's own example shape) counts 19 s in one and 66 s in the
// other; neither is derived from the other when one is missing.
func TestTwoMinuteFigures(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.poll()
	at := t0.Unix() + 10
	for _, raw := range []string{
		`{"sessionId":"wall","type":"audio","mode":"call","receiverType":"group","status":"ended","initiatedAt":%d,"startedAt":%d,"endedAt":%d,"totalAudioMinutes":0.31666666666666665,"hasTranscription":true,
		  "participants":[{"state":"ended","totalAudioMinutes":0.6},{"state":"ended","totalAudioMinutes":0.5},{"state":"unanswered"}]}`,
		`{"sessionId":"only-participants","type":"audio","mode":"call","receiverType":"group","status":"ended","initiatedAt":%d,"startedAt":%d,"endedAt":%d,
		  "participants":[{"state":"ended","totalAudioMinutes":1,"totalVideoMinutes":2}]}`,
		`{"sessionId":"only-call","type":"audio","mode":"call","receiverType":"group","status":"ended","initiatedAt":%d,"startedAt":%d,"endedAt":%d,"totalVideoMinutes":3,"hasTranscription":false}`,
	} {
		at++
		require.NoError(t, h.fake.PutRaw([]byte(fmt.Sprintf(raw, at, at, at+19))))
	}
	h.poll()
	got := h.p.Snapshot().Totals[Labels{"audio", "call", "group"}]
	require.NotNil(t, got)
	assert.InDelta(t, 19.0, got.AudioSeconds, 1e-9, "call level: the call's 19 s as reported")
	assert.InDelta(t, 180.0, got.VideoSeconds, 1e-9)
	assert.InDelta(t, (0.6+0.5+1)*60, got.ParticipantAudioSeconds, 1e-9, "participants: 0.6 + 0.5 + 1 minutes")
	assert.InDelta(t, 120.0, got.ParticipantVideoSeconds, 1e-9)
	assert.Equal(t, uint64(1), got.CallsTranscribed)
}

func TestStateBelongsToTheAppsIdentity(t *testing.T) {
	h := newHarness(t)
	state := filepath.Join(t.TempDir(), "state.json")
	h.start(func(c *Config) { c.StateFile = state; c.Identity = "app_id=one" })
	h.poll()
	h.put(call("one-1", 1, "ended"))
	h.poll()
	require.Equal(t, map[string]uint64{"ended": 1}, h.sums().Calls)

	// Another app id under the same name, across a restart: its 200 calls
	// of history are not counted, and the old file is kept aside.
	other := newHarness(t)
	for i := range 200 {
		other.put(call(fmt.Sprintf("two-%03d", i), -int64(i+1)*60, "ended"))
	}
	other.start(func(c *Config) { c.StateFile = state; c.Identity = "app_id=two" })
	assert.Empty(t, other.sums().Calls, "the old app's counters are not continued")
	assert.False(t, other.p.Snapshot().StateRecovered)
	other.poll()
	other.poll()
	assert.Empty(t, other.sums().Calls, "history of the new identity is not counted")
	aside, _ := filepath.Glob(state + ".other-identity-*")
	assert.Len(t, aside, 1, "the old identity's file is moved aside")

	// The same by reload: a resumed poller of another identity starts over.
	other.put(call("two-new", 5, "rejected"))
	other.poll()
	require.Equal(t, map[string]uint64{"rejected": 1}, other.sums().Calls)
	old := other.p
	other.now = other.now.Add(time.Minute) // the reload comes after the calls so far
	other.start(func(c *Config) { c.StateFile = state; c.Identity = "app_id=three"; c.Resume = old })
	other.p.Adopt()
	assert.Empty(t, other.sums().Calls)
	assert.Zero(t, other.p.Snapshot().State.WrittenBytes, "the state counters start over with the rest")
	assert.True(t, other.p.Snapshot().State.LastWrite.IsZero())
	other.poll()
	assert.Empty(t, other.sums().Calls, "the resumed history is the new identity's history")
	aside, _ = filepath.Glob(state + ".other-identity-*")
	assert.Len(t, aside, 2)

	// The same identity by reload keeps everything.
	other.put(call("three-new", 6, "unanswered"))
	other.poll()
	old = other.p
	other.start(func(c *Config) { c.StateFile = state; c.Identity = "app_id=three"; c.Resume = old })
	other.p.Adopt()
	assert.Equal(t, map[string]uint64{"unanswered": 1}, other.sums().Calls)
}

func TestPageShiftOfExactlyOnePageLosesNothing(t *testing.T) {
	for _, omit := range []bool{false, true} {
		t.Run(fmt.Sprintf("omit current_page %v", omit), func(t *testing.T) {
			h := newHarness(t)
			h.fake.OmitCurrentPage = omit
			for i := range 100 {
				h.put(call(fmt.Sprintf("h%03d", i), -int64(1000-i), "ended"))
			}
			h.start(func(c *Config) { c.PerPage = 10; c.Overlap = time.Minute })
			h.poll()
			for i := range 35 {
				h.put(call(fmt.Sprintf("c%02d", i), int64(i), "ended"))
			}
			// Before page 2 and again before page 4, exactly one page (10)
			// of calls arrives at the head: each of those pages repeats
			// the page before it.
			n := 0
			h.fake.SetBeforeRequest(func(r *http.Request) {
				if p := r.URL.Query().Get("page"); r.URL.Query().Get("status") == "" && (p == "2" || p == "4") {
					for range 10 {
						n++
						h.fake.Put(call(fmt.Sprintf("burst%02d", n), 100+int64(n), "rejected"))
					}
				}
			})
			h.now = h.now.Add(time.Minute)
			h.poll()
			h.fake.SetBeforeRequest(nil)
			h.now = h.now.Add(time.Minute)
			h.poll()
			assert.Equal(t, map[string]uint64{"ended": 35, "rejected": uint64(n)}, h.sums().Calls)
		})
	}
}

func TestServerIgnoringPageIsDetected(t *testing.T) {
	for _, omit := range []bool{false, true} {
		t.Run(fmt.Sprintf("omit current_page %v", omit), func(t *testing.T) {
			h := newHarness(t)
			h.fake.OmitCurrentPage = omit
			h.fake.SetBeforeRequest(func(r *http.Request) {
				q := r.URL.Query()
				q.Del("page") // always page 1
				r.URL.RawQuery = q.Encode()
			})
			for i := range 60 {
				h.put(call(fmt.Sprintf("h%02d", i), -int64(i+1)*60, "ended"))
			}
			h.start(func(c *Config) { c.PerPage = 10 })
			h.poll()
			for i := range 5 {
				h.put(call(fmt.Sprintf("n%d", i), int64(i), "rejected"))
			}
			before := listRequests(h)
			h.poll()
			h.poll()
			assert.Equal(t, map[string]uint64{"rejected": 5}, h.sums().Calls)
			assert.LessOrEqual(t, listRequests(h)-before, int64(2*4), "a few requests per poll, not a page per call")
		})
	}
}

func TestOneCallsGetFailureStaysThatCallsFailure(t *testing.T) {
	for _, fault := range []cometchattest.Fault{cometchattest.ServerErrorJSON, cometchattest.InvalidJSON, cometchattest.NoSessionID} {
		t.Run(fault.String(), func(t *testing.T) {
			h := newHarness(t)
			h.put(call("poisoned", -7200, "ongoing"))
			for i := range 150 {
				h.put(call(fmt.Sprintf("h%03d", i), -int64(i), "ended"))
			}
			h.start(func(c *Config) { c.Overlap = time.Minute; c.PerPage = 50; c.Capacity = 100 })
			h.poll()
			h.end("poisoned", t0.Unix()) // out of the ongoing listing, far below the head: Get Call only
			var broken atomic.Bool
			broken.Store(true)
			h.fake.InjectSchedule(func(r *http.Request, endpoint string) cometchattest.Fault {
				if endpoint == cometchat.EndpointGetCall && broken.Load() {
					return fault
				}
				return cometchattest.None
			})
			lists, gets := listRequests(h), getRequests(h)
			for i := range 20 {
				h.now = h.now.Add(30 * time.Second)
				h.put(call(fmt.Sprintf("new%02d", i), int64(30*(i+1)), "rejected"))
				if i == 10 {
					lists = listRequests(h)
				}
				h.poll()
				s := h.p.Snapshot()
				require.True(t, s.Up, "poll %d: the listings work, so up stays 1", i)
			}
			s := h.p.Snapshot()
			assert.Equal(t, uint64(20), h.sums().Calls["rejected"], "the other calls are counted")
			assert.Equal(t, t0.Unix()+600, h.p.ledger.Watermark, "the watermark moves")
			assert.Equal(t, int64(2*10), listRequests(h)-lists, "the last 10 polls: 2 list requests each, not growing")
			assert.LessOrEqual(t, h.p.ledger.Remembered(), 100+2, "the dedupe set stays within its capacity")
			failedGets := getRequests(h) - gets
			assert.Less(t, failedGets, int64(20*2), "Get Call backs off (client retries included)")
			assert.GreaterOrEqual(t, failedGets, int64(4))
			reason := map[cometchattest.Fault]string{cometchattest.ServerErrorJSON: "http_5xx",
				cometchattest.InvalidJSON: "decode", cometchattest.NoSessionID: "decode"}[fault]
			assert.Equal(t, uint64(failedGets), s.API.Errors[reason], "every failure is counted")
			assert.Equal(t, 1, s.Tracked)

			broken.Store(false)
			for range 30 {
				h.now = h.now.Add(30 * time.Second)
				h.poll()
			}
			assert.Equal(t, uint64(1), h.sums().Calls["ended"], "counted once the API answers")
			assert.Zero(t, h.sums().Tracked)
		})
	}
}

func TestNoRescanOfHistoryAfterAnOngoingDiscoveryOrAFailedPoll(t *testing.T) {
	h := newHarness(t)
	for i := range 5000 {
		h.put(call(fmt.Sprintf("h%04d", i), -int64(i+1)*30, "ended"))
	}
	h.start(func(c *Config) { c.PerPage = 100 })
	h.poll()
	idle := func() int64 {
		before := listRequests(h) + getRequests(h)
		h.poll()
		return listRequests(h) + getRequests(h) - before
	}
	require.Equal(t, int64(2), idle())

	// A call starts between the head scan and the ongoing listing: the
	// ongoing listing learns it.
	var once atomic.Bool
	h.fake.SetBeforeRequest(func(r *http.Request) {
		if r.URL.Query().Get("status") == "ongoing" && once.CompareAndSwap(false, true) {
			h.fake.Put(call("sneaky", 10, "ongoing"))
		}
	})
	h.poll()
	h.fake.SetBeforeRequest(nil)
	assert.LessOrEqual(t, idle(), int64(3), "the next poll costs about what an idle poll costs")

	// A poll fails after counting a page.
	for i := range 150 {
		h.put(call(fmt.Sprintf("n%03d", i), 20+int64(i), "rejected"))
	}
	h.fake.InjectSchedule(func(r *http.Request, endpoint string) cometchattest.Fault {
		if r.URL.Query().Get("page") == "2" {
			return cometchattest.BadGatewayHTML
		}
		return cometchattest.None
	})
	before := listRequests(h)
	require.NoError(t, h.p.Poll(context.Background()), "a failing page other than the first is read around")
	assert.LessOrEqual(t, listRequests(h)-before, int64(4), "the calls read around send the scan no deeper")
	h.fake.InjectSchedule(nil)
	h.now = h.now.Add(30 * time.Second)
	h.poll() // a sweep reads the page again, at the next poll interval
	assert.Equal(t, uint64(150), h.sums().Calls["rejected"])
	h.now = h.now.Add(30 * time.Second)
	assert.LessOrEqual(t, idle(), int64(3), "and after a page read around")
}

func TestStuckCallsCostBoundedRequests(t *testing.T) {
	h := newHarness(t)
	for i := range 300 {
		h.put(call(fmt.Sprintf("stuck%03d", i), -3*3600-int64(i), "initiated"))
	}
	for i := range 200 {
		h.put(call(fmt.Sprintf("h%03d", i), -int64(i+1)*10, "ended"))
	}
	h.start(func(c *Config) { c.Interval = 30 * time.Second })
	h.poll()
	require.Equal(t, 300, h.sums().Initiated)
	gets := getRequests(h)
	const polls = 60 // 30 minutes
	for range polls {
		h.now = h.now.Add(30 * time.Second)
		h.poll()
	}
	perPoll := float64(getRequests(h)-gets) / polls
	t.Logf("%.1f Get Calls per poll for 300 stuck calls", perPoll)
	// At every poll that would be 300; with backoff capped at 10 minutes,
	// each call is checked about 7 times in 30 minutes.
	assert.Less(t, perPoll, 300.0/8)

	// One of them ends: counted within the cap.
	h.fake.Update("stuck007", func(c *cometchat.Call) { c.Status, c.EndedAt = "unanswered", t0.Unix() })
	for range 21 {
		h.now = h.now.Add(30 * time.Second)
		h.poll()
	}
	assert.Equal(t, map[string]uint64{"unanswered": 1}, h.sums().Calls)
}

func TestUndatedFinalCallsAreCountedOnceEvenAfterPruning(t *testing.T) {
	h := newHarness(t)
	// Undated ids may take a tenth of the capacity: 4 here.
	h.start(func(c *Config) { c.Capacity = 40; c.PerPage = 10; c.Overlap = time.Minute })
	h.poll()
	for i := range 3 {
		c := call(fmt.Sprintf("undated%d", i), int64(i), "ended")
		c.InitiatedAt, c.StartedAt, c.EndedAt = 0, 0, 0 // at the end of the list
		h.put(c)
	}
	h.poll()
	require.Equal(t, uint64(3), h.sums().Calls["ended"])
	for i := range 100 {
		h.put(call(fmt.Sprintf("c%03d", i), 100+int64(i)*60, "rejected"))
	}
	h.now = h.now.Add(2 * time.Hour)
	h.poll()
	require.Equal(t, uint64(100), h.sums().Calls["rejected"])
	require.LessOrEqual(t, h.p.ledger.Remembered(), 40)
	require.Positive(t, h.p.ledger.Floor, "dated ids were pruned")
	// Read the whole list again, as after a long outage.
	h.p.ledger.Watermark = 0
	h.p.ledger.Missing = 100
	h.poll()
	h.poll()
	assert.Equal(t, map[string]uint64{"ended": 3, "rejected": 100}, h.sums().Calls)
}

func TestReadyAfterTheFirstAttemptEvenWhenItFails(t *testing.T) {
	h := newHarness(t)
	h.fake.SetKey("another")
	h.start()
	select {
	case <-h.p.Ready():
		t.Fatal("ready before any poll")
	default:
	}
	require.Error(t, h.p.Poll(context.Background()))
	select {
	case <-h.p.Ready():
	default:
		t.Fatal("not ready after the first attempt")
	}
	assert.False(t, h.p.Snapshot().Up)
	assert.Equal(t, uint64(1), h.p.Snapshot().API.Errors[cometchat.CodeAPIKeyNotFound])
}

func TestStoppedMidPollCountsNoCanceledErrorAndKeepsUp(t *testing.T) {
	h := newHarness(t)
	h.put(call("m", -60, "ongoing"))
	h.start()
	h.poll()
	blocked := make(chan struct{})
	release := make(chan struct{})
	var once atomic.Bool
	h.fake.SetBeforeRequest(func(r *http.Request) {
		if once.CompareAndSwap(false, true) {
			close(blocked)
			select {
			case <-release:
			case <-time.After(5 * time.Second):
			}
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.p.Run(ctx); close(done) }()
	<-blocked
	cancel()
	<-done
	close(release)
	s := h.p.Snapshot()
	assert.True(t, s.Up)
	assert.Zero(t, s.API.Errors["canceled"])
	assert.Zero(t, s.API.Requests[RequestKey{"list_calls", "none"}])
}

func TestFirstPollOverALongHistoryResumesWhereItFailed(t *testing.T) {
	h := newHarness(t)
	for i := range 2000 {
		h.put(call(fmt.Sprintf("h%04d", i), -int64(i+1)*30, "ended"))
	}
	// Every eighth list request fails: a first poll of 20 pages that
	// started over at every failure would never end.
	var n atomic.Int64
	h.fake.InjectSchedule(func(r *http.Request, endpoint string) cometchattest.Fault {
		if endpoint == cometchat.EndpointListCalls && n.Add(1)%8 == 0 {
			return cometchattest.ServerErrorJSON
		}
		return cometchattest.None
	})
	h.start()
	attempts := 0
	for h.p.Poll(context.Background()) != nil {
		attempts++
		require.Less(t, attempts, 10)
	}
	// The pages that failed were read around; their history is known by
	// id once a sweep has read them again, and never counted.
	skipped := h.p.Snapshot().API.PagesSkipped
	assert.Equal(t, 2000-int(skipped)*100, h.p.ledger.Remembered(), "every history call read is known")
	assert.Equal(t, t0.Unix()-30, h.p.ledger.Watermark, "the head read by the first attempt")
	assert.LessOrEqual(t, h.fake.Requests(cometchat.EndpointListCalls), int64(20+attempts+4), "each page read about once")
	h.fake.InjectSchedule(nil)
	h.put(call("new", h.now.Unix()-t0.Unix()+1, "ended")) // after the start
	h.now = h.now.Add(30 * time.Second)
	h.poll()
	assert.Equal(t, map[string]uint64{"ended": 1}, h.sums().Calls)
	assert.Equal(t, 2000+1, h.p.ledger.Remembered(), "every history call is known")
	assert.Zero(t, h.p.ledger.HistoryGapTo, "the sweep read through what the first poll read around")
}

func TestCatchUpAfterAnOutageLongerThanTheDedupeSetUnderFaults(t *testing.T) {
	h := newHarness(t)
	state := filepath.Join(t.TempDir(), "state.json")
	withState := func(c *Config) { c.StateFile = state; c.Capacity = 500; c.PerPage = 25; c.Overlap = time.Minute }
	for i := range 100 {
		h.put(call(fmt.Sprintf("h%03d", i), -int64(i+1)*60, "ended"))
	}
	h.start(withState)
	h.poll()
	// Down while 2,000 calls ended: four times the dedupe capacity, 80
	// pages. Every eighth list request then fails.
	for i := range 2000 {
		h.put(call(fmt.Sprintf("down%04d", i), int64(i)*3, "rejected"))
	}
	h.now = h.now.Add(2 * time.Hour)
	var n atomic.Int64
	h.fake.InjectSchedule(func(r *http.Request, endpoint string) cometchattest.Fault {
		if endpoint == cometchat.EndpointListCalls && n.Add(1)%8 == 0 {
			return cometchattest.ServerErrorJSON
		}
		return cometchattest.None
	})
	h.start(withState)
	before := listRequests(h)
	attempts := 0
	for h.p.Poll(context.Background()) != nil {
		attempts++
		require.Less(t, attempts, 30, "a catch-up that starts over at every failure never ends")
	}
	h.fake.InjectSchedule(nil)
	for range 3 { // the pages read around are read again by sweeps
		h.now = h.now.Add(30 * time.Second)
		h.poll()
	}
	assert.Equal(t, map[string]uint64{"rejected": 2000}, h.sums().Calls, "every call of the outage, once")
	assert.Less(t, listRequests(h)-before, int64(3*80), "pages are not read again and again")
}

// A call the scans miss, where the list total cannot reveal it (a server
// without a total, a call listed long after its time), is counted by the
// next sweep, once.
func TestSweepCountsACallEveryScanMissed(t *testing.T) {
	h := newHarness(t)
	h.fake.OmitTotal = true
	for i := range 30 { // history, 10 s apart
		h.put(call(fmt.Sprintf("h%d", i), -3000+int64(i)*10, "ended"))
	}
	h.start(func(c *Config) { c.PerPage = 10 })
	h.poll() // first poll: history; the sweep mark is its newest call
	for i := range 30 {
		h.put(call(fmt.Sprintf("a%d", i), int64(i)*10, "ended"))
	}
	h.poll()
	require.Equal(t, uint64(30), h.sums().Calls["ended"])

	for i := range 30 {
		h.put(call(fmt.Sprintf("b%d", i), 1000+int64(i)*10, "ended"))
	}
	// Listed only now, 985 s after its time, below where a poll stops.
	h.put(call("late", 15, "ended"))
	h.poll()
	require.Equal(t, uint64(60), h.sums().Calls["ended"], "a poll stops at the calls it knows")
	h.now = h.now.Add(59 * time.Minute)
	h.poll()
	require.Equal(t, uint64(60), h.sums().Calls["ended"], "no sweep within the hour")

	h.now = h.now.Add(time.Minute)
	h.poll()
	assert.Equal(t, uint64(61), h.sums().Calls["ended"], "the sweep an hour after the last one counts it")
	h.now = h.now.Add(time.Hour)
	h.poll()
	assert.Equal(t, uint64(61), h.sums().Calls["ended"], "once")
}

// The call counters' start is persisted, so a restart keeps it; another
// identity starts over. Exemplars name the newest call counted per status
// and duration bucket, and are published with the persisted counters.
func TestCreatedTimestampAndExemplars(t *testing.T) {
	h := newHarness(t)
	state := filepath.Join(t.TempDir(), "state.json")
	disk := &diskFull{}
	withState := func(c *Config) { c.StateFile = state; c.Identity = "app-1"; c.diskFault = disk.fault }
	h.start(withState)
	started := h.now
	h.poll()
	assert.Equal(t, started.Unix(), h.p.Snapshot().Started.Unix())
	assert.Equal(t, started.Unix(), h.p.Snapshot().StatsStarted.Unix())

	h.now = h.now.Add(time.Hour)
	h.start(withState)
	assert.Equal(t, started.Unix(), h.p.Snapshot().Started.Unix(), "a restart keeps when the counters started")
	assert.Equal(t, h.now.Unix(), h.p.Snapshot().StatsStarted.Unix(), "the API counters start with the process")

	h.put(call("older", 10, "ended"), call("newer", 20, "ended"), call("gone", 15, "unanswered"))
	h.poll()
	ex := h.p.Snapshot().Exemplars[Labels{"audio", "call", "user"}]
	require.NotNil(t, ex)
	assert.Equal(t, "newer", ex.Calls["ended"].SessionID, "the newest call, though the page lists it first")
	assert.Equal(t, 1.0, ex.Calls["ended"].Value)
	assert.Equal(t, h.now, ex.Calls["ended"].At)
	assert.Equal(t, "gone", ex.Calls["unanswered"].SessionID)
	i := sort.SearchFloat64s(DurationBuckets, 60)
	assert.Equal(t, Exemplar{SessionID: "newer", Value: 60, At: h.now, ts: t0.Unix() + 20}, ex.Duration[i])

	// While writes fail, the exemplars stay with the counters published.
	disk.on.Store(true)
	h.put(call("unsaved", 30, "ended"))
	h.poll()
	assert.Equal(t, "newer", h.p.Snapshot().Exemplars[Labels{"audio", "call", "user"}].Calls["ended"].SessionID)
	disk.on.Store(false)
	h.poll()
	assert.Equal(t, "unsaved", h.p.Snapshot().Exemplars[Labels{"audio", "call", "user"}].Calls["ended"].SessionID)

	h.now = h.now.Add(time.Hour)
	h.start(func(c *Config) { withState(c); c.Identity = "app-2" })
	assert.Equal(t, h.now.Unix(), h.p.Snapshot().Started.Unix(), "another identity starts counting anew")
	assert.Empty(t, h.p.Snapshot().Exemplars)
}

// Without a state file nothing is ever written, so the ledger's record of
// what changed since the last write must not grow with every call counted
// (it did: about 70 B per call, for ever).
func TestNoStateFileKeepsNoRecordOfChanges(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.poll()
	for i := range 200 {
		h.now = h.now.Add(time.Second)
		h.put(call(fmt.Sprintf("c%d", i), int64(90+i), "ended"))
		if i%20 == 19 {
			h.poll()
		}
	}
	require.Equal(t, uint64(200), h.sums().Calls["ended"])
	c := h.p.ledger.changes
	assert.Zero(t, len(c.done)+len(c.tracked)+len(c.undated)+len(c.totals), "changes kept without a state file")
}

// While state writes fail, the record of changes does not grow either:
// the next write that succeeds is a whole snapshot, and a restart after it
// continues from every call counted meanwhile.
func TestFailingWritesKeepNoRecordOfChanges(t *testing.T) {
	h := newHarness(t)
	state := filepath.Join(t.TempDir(), "state.json")
	failing := true
	h.start(func(c *Config) { c.StateFile = state })
	h.p.store.fault = func() error {
		if failing {
			return errors.New("disk full")
		}
		return nil
	}
	h.poll()
	for i := range 200 {
		h.now = h.now.Add(time.Second)
		h.put(call(fmt.Sprintf("c%d", i), int64(90+i), "ended"))
		if i%20 == 19 {
			h.p.Poll(context.Background())
		}
	}
	c := h.p.ledger.changes
	assert.Zero(t, len(c.done)+len(c.tracked)+len(c.undated)+len(c.totals), "changes kept while writes fail")
	assert.Zero(t, h.sums().Calls["ended"], "nothing published while nothing is saved")

	failing = false
	h.now = h.now.Add(time.Second)
	h.poll()
	assert.Equal(t, uint64(200), h.sums().Calls["ended"], "published once saved")
	h.start(func(c *Config) { c.StateFile = state })
	h.poll()
	assert.Equal(t, uint64(200), h.sums().Calls["ended"], "a restart continues from the snapshot")
}
