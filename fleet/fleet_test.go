package fleet

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cometchat-exporter/cometchat-exporter/accountant"
	"github.com/cometchat-exporter/cometchat-exporter/cometchat"
	"github.com/cometchat-exporter/cometchat-exporter/cometchat/cometchattest"
	"github.com/cometchat-exporter/cometchat-exporter/config"
)

const key = "fleet-key"

type published struct {
	mu     sync.Mutex
	latest map[string]*accountant.Snapshot
	forgot []string
}

// into sets the fleet's hooks to record into p.
func (p *published) into(s Settings) Settings {
	p.latest = map[string]*accountant.Snapshot{}
	s.OnPublish = func(snap *accountant.Snapshot) { p.mu.Lock(); p.latest[snap.App] = snap; p.mu.Unlock() }
	s.Forget = func(app string) { p.mu.Lock(); p.forgot = append(p.forgot, app); p.mu.Unlock() }
	return s
}

// startFleet returns a fleet that is stopped when the test ends.
func startFleet(t *testing.T, s Settings) *Fleet {
	ctx, cancel := context.WithCancel(context.Background())
	f := New(ctx, s)
	t.Cleanup(func() { f.Stop(); cancel() })
	return f
}

func (p *published) get(app string) *accountant.Snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.latest[app]
}

func calls(s *accountant.Snapshot) uint64 {
	var n uint64
	for _, t := range s.Totals {
		for _, v := range t.Calls {
			n += v
		}
	}
	return n
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		require.True(t, time.Now().Before(deadline), "condition not met in 5s")
		time.Sleep(20 * time.Millisecond)
	}
}

func TestApplyAddsRemovesAndKeepsCounters(t *testing.T) {
	fakeA, fakeB := cometchattest.New(key), cometchattest.New(key)
	srvA, srvB := fakeA.Start(), fakeB.Start()
	defer srvA.Close()
	defer srvB.Close()
	app := func(name, url string, every time.Duration) config.App {
		return config.App{Name: name, AppID: name, BaseURL: url + "/v3", APIKey: key, PollInterval: every}
	}
	pub := &published{}
	f := startFleet(t, pub.into(Settings{}))

	alpha := app("alpha", srvA.URL, 50*time.Millisecond)
	require.NoError(t, f.Apply([]config.App{alpha}))
	waitFor(t, f.Ready)
	now := time.Now().Unix()
	fakeA.Put(cometchat.Call{SessionID: "a1", Status: "ended", InitiatedAt: now})
	waitFor(t, func() bool { s := pub.get("alpha"); return s != nil && calls(s) == 1 })
	first := f.members["alpha"].poller

	// Add beta; alpha is unchanged and keeps its poller.
	beta := app("beta", srvB.URL, 50*time.Millisecond)
	require.NoError(t, f.Apply([]config.App{alpha, beta}))
	assert.Same(t, first, f.members["alpha"].poller)
	waitFor(t, f.Ready)

	// Change alpha's interval: a new poller continues the same counters.
	alpha.PollInterval = 80 * time.Millisecond
	require.NoError(t, f.Apply([]config.App{alpha, beta}))
	assert.NotSame(t, first, f.members["alpha"].poller)
	assert.Equal(t, uint64(1), calls(f.members["alpha"].poller.Snapshot()), "counters carried over")
	fakeA.Put(cometchat.Call{SessionID: "a2", Status: "rejected", InitiatedAt: now + 1})
	waitFor(t, func() bool { return calls(pub.get("alpha")) == 2 })

	// Remove beta.
	require.NoError(t, f.Apply([]config.App{alpha}))
	assert.NotContains(t, f.members, "beta")
	assert.Equal(t, []string{"beta"}, pub.forgot)

	// A bad app fails the whole reload and changes nothing.
	bad := app("gamma", "::bad", time.Second)
	bad.BaseURL = ""
	assert.Error(t, f.Apply([]config.App{alpha, bad}))
	assert.Contains(t, f.members, "alpha")
	assert.NotContains(t, f.members, "gamma")
}

// fastApp is an app named name, with that app id, polling url every 50 ms.
func fastApp(name, url string) config.App {
	return config.App{Name: name, AppID: name, BaseURL: url + "/v3", APIKey: key, PollInterval: 50 * time.Millisecond}
}

func TestReloadIsAllOrNothing(t *testing.T) {
	fake := cometchattest.New(key)
	srv := fake.Start()
	defer srv.Close()
	dir := t.TempDir()
	app := func(name string) config.App { return fastApp(name, srv.URL) }
	pub := &published{}
	f := startFleet(t, pub.into(Settings{StateFile: filepath.Join(dir, "state"), PerAppState: true}))
	a, b := app("a"), app("b")
	require.NoError(t, f.Apply([]config.App{a, b}))
	waitFor(t, f.Ready)
	pa, pb := f.members["a"].poller, f.members["b"].poller

	// b removed, a changed, c new but unusable: nothing changes at all.
	c := app("c")
	c.BaseURL = ""
	a2 := a
	a2.PollInterval = 70 * time.Millisecond
	err := f.Apply([]config.App{a2, c})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `app "c"`)
	assert.Same(t, pa, f.members["a"].poller, "a keeps its poller")
	assert.Same(t, pb, f.members["b"].poller, "b is not stopped")
	assert.Empty(t, pub.forgot, "no series were dropped")
	fake.Put(cometchat.Call{SessionID: "b1", Status: "ended", InitiatedAt: time.Now().Unix() - 2})
	waitFor(t, func() bool { s := pub.get("b"); return s != nil && calls(s) == 1 })

	// Another app id under the same name: a fresh start, not the old counters.
	a3 := a
	a3.AppID = "a-other"
	fake.Put(cometchat.Call{SessionID: "a1", Status: "ended", InitiatedAt: time.Now().Unix() - 1})
	waitFor(t, func() bool { return calls(pub.get("a")) == 2 }) // a1 and b1: the same fake
	require.NoError(t, f.Apply([]config.App{a3, b}))
	p3 := f.members["a"].poller
	waitFor(t, func() bool { s := p3.Snapshot(); return s != nil && s.LastSuccess.After(time.Time{}) })
	assert.Zero(t, calls(p3.Snapshot()), "the new identity's history is not counted")
	aside, _ := filepath.Glob(filepath.Join(dir, "state.a.other-identity-*"))
	assert.Len(t, aside, 1)
}

func TestReadyWithAnAppWhoseKeyIsWrong(t *testing.T) {
	fake := cometchattest.New(key)
	srv := fake.Start()
	defer srv.Close()
	f := startFleet(t, Settings{})
	good := config.App{Name: "good", AppID: "good", BaseURL: srv.URL + "/v3", APIKey: key, PollInterval: time.Minute}
	bad := config.App{Name: "bad", AppID: "bad", BaseURL: srv.URL + "/v3", APIKey: "wrong", PollInterval: time.Minute}
	require.NoError(t, f.Apply([]config.App{good, bad}))
	waitFor(t, f.Ready)
	assert.False(t, f.members["bad"].poller.Snapshot().Up, "scraped, and its up says what is wrong")
}

func TestReloadMidPollCountsNoCanceledError(t *testing.T) {
	fake := cometchattest.New(key)
	var hook atomic.Pointer[func(*http.Request)]
	fake.SetBeforeRequest(func(r *http.Request) {
		if h := hook.Load(); h != nil {
			(*h)(r)
		}
	})
	srv := fake.Start()
	defer srv.Close()
	f := startFleet(t, Settings{})
	a := config.App{Name: "a", AppID: "a", BaseURL: srv.URL + "/v3", APIKey: key, PollInterval: 20 * time.Millisecond}
	require.NoError(t, f.Apply([]config.App{a}))
	waitFor(t, f.Ready)
	first := f.members["a"].poller
	waitFor(t, func() bool { return first.Snapshot().Up })
	var blocked sync.Once
	inPoll := make(chan struct{})
	block := func(r *http.Request) {
		blocked.Do(func() { close(inPoll) })
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
	}
	hook.Store(&block)
	<-inPoll
	a.PollInterval = 30 * time.Millisecond
	require.NoError(t, f.Apply([]config.App{a}))
	s := f.members["a"].poller.Snapshot()
	assert.True(t, s.Up, "a reload does not drop up")
	assert.Zero(t, s.API.Errors["canceled"])
	assert.Zero(t, s.API.Requests[accountant.RequestKey{Endpoint: "list_calls", Code: "none"}])
}

// TestFailedReloadTouchesNoFileAndPublishesNothing: a reload that adds an
// app whose state file belongs to another identity, then fails on a later
// app, leaves that file where it was and publishes no series for it.
func TestFailedReloadTouchesNoFileAndPublishesNothing(t *testing.T) {
	fake := cometchattest.New(key)
	srv := fake.Start()
	defer srv.Close()
	dir := t.TempDir()
	app := func(name string) config.App { return fastApp(name, srv.URL) }
	// b's state file, written by an app of another identity.
	other := startFleet(t, Settings{StateFile: filepath.Join(dir, "state"), PerAppState: true})
	ob := app("b")
	ob.AppID = "b-before"
	require.NoError(t, other.Apply([]config.App{ob}))
	waitFor(t, other.Ready)
	other.Stop()
	before, err := os.ReadFile(filepath.Join(dir, "state.b"))
	require.NoError(t, err)

	pub := &published{}
	f := startFleet(t, pub.into(Settings{StateFile: filepath.Join(dir, "state"), PerAppState: true}))
	require.NoError(t, f.Apply([]config.App{app("a")}))
	waitFor(t, f.Ready)
	c := app("c")
	c.BaseURL = ""
	err = f.Apply([]config.App{app("a"), app("b"), c})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `app "c"`)
	after, err := os.ReadFile(filepath.Join(dir, "state.b"))
	require.NoError(t, err, "b's state file is where it was")
	assert.Equal(t, before, after)
	aside, _ := filepath.Glob(filepath.Join(dir, "state.b.*"))
	assert.Empty(t, aside, "nothing was moved aside")
	assert.Nil(t, pub.get("b"), "no series of b were published")

	// A state path that cannot work fails the reload before anything.
	require.NoError(t, os.Mkdir(filepath.Join(dir, "state.d"), 0o700))
	err = f.Apply([]config.App{app("a"), app("b"), app("d")})
	require.ErrorContains(t, err, "is a directory")
	assert.Nil(t, pub.get("b"))

	// The same reload without c commits, and only then is b's file read.
	require.NoError(t, f.Apply([]config.App{app("a"), app("b")}))
	waitFor(t, func() bool { return pub.get("b") != nil })
	aside, _ = filepath.Glob(filepath.Join(dir, "state.b.other-identity-*"))
	assert.Len(t, aside, 1)
}

// Many apps in one process: each polls on one goroutine of its own, so
// the process's goroutines grow by one per app and nothing else, and an
// app whose API hangs delays no other app's polls.
func TestManyAppsOneGoroutineEachAndNoneWaitsForAnother(t *testing.T) {
	const n = 300
	fake := cometchattest.New(key)
	srv := fake.Start()
	defer srv.Close()
	slow := cometchattest.New(key)
	slow.SetHang(time.Minute)
	slow.InjectSchedule(func(*http.Request, string) cometchattest.Fault { return cometchattest.Hang })
	slowSrv := slow.Start()
	defer slowSrv.Close()
	defer slowSrv.CloseClientConnections()

	var pub published
	f := startFleet(t, pub.into(Settings{Timeout: 50 * time.Second}))
	base := runtime.NumGoroutine()
	apps := []config.App{{Name: "hanging", AppID: "hanging", BaseURL: slowSrv.URL + "/v3", APIKey: key, PollInterval: time.Minute}}
	for i := range n {
		name := fmt.Sprintf("app%03d", i)
		apps = append(apps, config.App{Name: name, AppID: name, BaseURL: srv.URL + "/v3", APIKey: key, PollInterval: time.Minute})
	}
	require.NoError(t, f.Apply(apps))
	waitFor(t, func() bool {
		for _, a := range apps[1:] {
			if s := pub.get(a.Name); s == nil || s.LastSuccess.IsZero() {
				return false
			}
		}
		return true
	})
	assert.True(t, pub.get("hanging") == nil || pub.get("hanging").LastSuccess.IsZero(), "the hanging app is still in its first poll")
	// One goroutine per poller; the rest is the HTTP client's and the
	// test server's connections, a few per connection kept open.
	grown := runtime.NumGoroutine() - base
	t.Logf("%d apps: %d more goroutines", n+1, grown)
	assert.GreaterOrEqual(t, grown, n+1)
	assert.LessOrEqual(t, grown, n+1+40)
}
