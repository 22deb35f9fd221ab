// Package fleet runs one poller per configured app and applies
// configuration reloads: added apps start, removed apps stop, changed apps
// restart with their counters carried over, unchanged apps are not touched.
package fleet

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/cometchat-exporter/cometchat-exporter/accountant"
	"github.com/cometchat-exporter/cometchat-exporter/cometchat"
	"github.com/cometchat-exporter/cometchat-exporter/config"
)

// Settings are shared by every app.
type Settings struct {
	Timeout              time.Duration
	MaxRequestsPerMinute int
	Overlap              time.Duration
	Capacity             int
	// StateFile persists state. With one app from flags it is the file
	// itself; with a config file, each app uses StateFile + "." + name.
	StateFile   string
	PerAppState bool
	UserAgent   string
	Logger      log.Logger
	// OnPublish receives every new snapshot of every app (the collector
	// renders it); Forget is told about removed apps.
	OnPublish func(*accountant.Snapshot)
	Forget    func(app string)
	// OnHintCounted, when set, is told how long after its webhook a hinted
	// call of an app was counted.
	OnHintCounted func(app string, d time.Duration)
}

// Fleet is the set of running pollers.
type Fleet struct {
	s   Settings
	ctx context.Context

	mu      sync.Mutex // serialises Apply and Stop
	members map[string]*member
	// view is what /-/ready reads: a copy of the pollers, replaced on
	// every change, so that it never waits for a reload.
	view atomic.Pointer[[]*accountant.Poller]
	// routes are the pollers by CometChat app id, for webhooks, replaced
	// with view.
	routes atomic.Pointer[map[string][]route]
}

type route struct {
	app    string
	poller *accountant.Poller
}

type member struct {
	app    config.App
	poller *accountant.Poller
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns an empty fleet whose pollers stop when ctx is done.
func New(ctx context.Context, s Settings) *Fleet {
	if s.Logger == nil {
		s.Logger = log.NewNopLogger()
	}
	if s.Forget == nil {
		s.Forget = func(string) {}
	}
	return &Fleet{s: s, ctx: ctx, members: map[string]*member{}}
}

// Apply makes the running set match apps, all or nothing. First it builds
// every poller the change needs (clients, and a check of the state paths
// of new apps), touching nothing that runs, no file and no series; if any
// fails, nothing changes and the error is returned. Then it switches, a step that cannot fail: removed apps
// stop, changed apps stop and their new pollers adopt their state (see
// accountant.Poller.Adopt), new apps start.
func (f *Fleet) Apply(apps []config.App) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	defer f.publish()
	want := map[string]bool{}
	for _, a := range apps {
		want[a.Name] = true
	}
	type change struct {
		app    config.App
		old    *member
		poller *accountant.Poller
	}
	var changes []change
	for _, a := range apps {
		old := f.members[a.Name]
		if old != nil && old.app == a {
			continue
		}
		var resume *accountant.Poller
		if old != nil {
			resume = old.poller
		}
		cfg := f.pollerConfig(a, resume)
		if cfg.StateFile != "" && (old == nil || f.pollerConfig(old.app, nil).StateFile != cfg.StateFile) {
			if err := accountant.CheckStateFile(cfg.StateFile); err != nil {
				return fmt.Errorf("app %q: %w", a.Name, err)
			}
		}
		cfg.Deferred = true // no file touched, no series published before the commit
		p, err := accountant.NewPoller(cfg)
		if err != nil {
			return fmt.Errorf("app %q: %w", a.Name, err)
		}
		changes = append(changes, change{a, old, p})
	}

	for name, m := range f.members {
		if !want[name] {
			m.stop()
			delete(f.members, name)
			f.s.Forget(name)
			level.Info(f.s.Logger).Log("msg", "Stopped polling a removed app", "app", name)
		}
	}
	for _, c := range changes {
		if c.old != nil {
			c.old.stop()
		}
		c.poller.Adopt()
		f.start(c.app, c.poller)
		level.Info(f.s.Logger).Log("msg", "Polling app", "app", c.app.Name, "base_url", c.app.BaseURL,
			"interval", c.app.PollInterval, "backfill", c.app.Backfill, "resumed", c.old != nil)
	}
	return nil
}

// Identity names the data an app reads; state is kept per identity.
func Identity(a config.App) string {
	return fmt.Sprintf("app_id=%s base_url=%s on_behalf_of=%s", a.AppID, a.BaseURL, a.OnBehalfOf)
}

// ClientConfig is the API client configuration of an app.
func ClientConfig(a config.App, s Settings) cometchat.Config {
	c := cometchat.Config{
		BaseURL: a.BaseURL, APIKey: a.APIKey, OnBehalfOf: a.OnBehalfOf,
		Timeout: s.Timeout, MaxRequestsPerMinute: s.MaxRequestsPerMinute, UserAgent: s.UserAgent,
	}
	if a.CAFile != "" {
		// Checked when the configuration was loaded; read again here so
		// that a reload picks up a renewed certificate.
		if pool, err := cometchat.LoadCAFile(a.CAFile); err == nil {
			c.Transport = cometchat.TransportWithCAs(pool)
		}
	}
	return c
}

func (f *Fleet) pollerConfig(a config.App, resume *accountant.Poller) accountant.Config {
	state := f.s.StateFile
	if state != "" && f.s.PerAppState {
		state += "." + a.Name
	}
	return accountant.Config{
		App: a.Name, Identity: Identity(a), API: ClientConfig(a, f.s), Interval: a.PollInterval, Backfill: a.Backfill,
		Overlap: f.s.Overlap, Capacity: f.s.Capacity, StateFile: state, Logger: f.s.Logger,
		OnPublish: f.s.OnPublish, Resume: resume, OnHintCounted: f.hintCounted(a.Name), Billing: a.Billing,
	}
}

func (f *Fleet) hintCounted(app string) func(time.Duration) {
	if f.s.OnHintCounted == nil {
		return nil
	}
	return func(d time.Duration) { f.s.OnHintCounted(app, d) }
}

// Hint passes a webhook's hint to the apps with that app id, and returns
// their names; none when no app has that id.
func (f *Fleet) Hint(appID string, h accountant.Hint) []string {
	r := f.routes.Load()
	if r == nil {
		return nil
	}
	var apps []string
	for _, rt := range (*r)[appID] {
		rt.poller.Hint(h)
		apps = append(apps, rt.app)
	}
	return apps
}

func (f *Fleet) start(a config.App, p *accountant.Poller) {
	ctx, cancel := context.WithCancel(f.ctx)
	m := &member{app: a, poller: p, cancel: cancel, done: make(chan struct{})}
	f.members[a.Name] = m
	go func() {
		defer close(m.done)
		p.Run(ctx)
	}()
}

func (m *member) stop() {
	m.cancel()
	<-m.done
}

// Stop stops every poller and waits for them.
func (f *Fleet) Stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.members {
		m.stop()
	}
}

func (f *Fleet) publish() {
	ps := make([]*accountant.Poller, 0, len(f.members))
	routes := map[string][]route{}
	for _, m := range f.members {
		ps = append(ps, m.poller)
		routes[m.app.AppID] = append(routes[m.app.AppID], route{m.app.Name, m.poller})
	}
	f.view.Store(&ps)
	f.routes.Store(&routes)
}

func (f *Fleet) pollers() []*accountant.Poller {
	if v := f.view.Load(); v != nil {
		return *v
	}
	return nil
}

// Ready reports whether every app has finished its first poll attempt,
// successful or not (a shard with no apps is ready at once). An app whose
// key is wrong is then scraped, so that its cometchat_up of 0 and its
// error counters can alert, rather than keeping the whole exporter out of
// its Service.
func (f *Fleet) Ready() bool {
	for _, p := range f.pollers() {
		select {
		case <-p.Ready():
		default:
			return false
		}
	}
	return true
}

// Snapshots are the apps' last published states, by app name.
func (f *Fleet) Snapshots() []*accountant.Snapshot {
	var out []*accountant.Snapshot
	for _, p := range f.pollers() {
		if s := p.Snapshot(); s != nil {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].App < out[j].App })
	return out
}
