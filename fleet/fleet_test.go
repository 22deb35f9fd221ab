package fleet

import (
	"context"
	"sync"
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
	pub := &published{latest: map[string]*accountant.Snapshot{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := New(ctx, Settings{
		OnPublish: func(s *accountant.Snapshot) { pub.mu.Lock(); pub.latest[s.App] = s; pub.mu.Unlock() },
		Forget:    func(app string) { pub.mu.Lock(); pub.forgot = append(pub.forgot, app); pub.mu.Unlock() },
	})
	defer f.Stop()

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
