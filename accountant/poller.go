package accountant

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/cometchat-exporter/cometchat-exporter/cometchat"
)

// Config configures a Poller.
type Config struct {
	// App is the value of the app label.
	App string
	// API configures the client the poller reads the Calls API with. Its
	// Observe hook, if set, is called after the poller's own.
	API cometchat.Config
	// Interval between the starts of two polls.
	Interval time.Duration
	// Overlap: each poll re-reads calls initiated up to this long before the
	// newest call the previous polls saw, to catch calls listed late.
	Overlap time.Duration
	// Backfill counts, at the first poll, final calls initiated within this
	// window before start. Zero counts no history.
	Backfill time.Duration
	// PerPage is requested from List Calls; the server may cap it.
	PerPage int
	// Capacity bounds the done set (ids of counted calls kept for dedupe).
	Capacity int
	// MaxNotFound: a tracked call for which Get Call answers not found this
	// many polls in a row is dropped without being counted.
	MaxNotFound int
	// StateFile, when set, persists the ledger across restarts.
	StateFile string
	Logger    log.Logger
	// OnPublish, when set, is called with every new snapshot, on the
	// poller's goroutine (the collector renders it there, off the scrape
	// path).
	OnPublish func(*Snapshot)
	Now       func() time.Time
	// Resume, when set, is a stopped poller of the same app whose ledger
	// this one continues (a configuration reload); StateFile is then not
	// read.
	Resume *Poller
}

// Poller reads the Calls API in the background and keeps the Ledger of one
// app. Scrapes read its Snapshot; they never wait on the API.
type Poller struct {
	cfg    Config
	client *cometchat.Client
	ledger *Ledger
	stats  APIStats
	poll   uint64
	// statusFilterIgnored is set once a status=ongoing listing returned a
	// final call: the server does not filter, so tracked calls are followed
	// through Get Call alone.
	statusFilterIgnored bool
	up                  bool
	lastSuccess         time.Time
	stateRecovered      bool

	snap      atomic.Pointer[Snapshot]
	ready     chan struct{}
	readyOnce sync.Once
}

// NewPoller returns a poller, restoring its ledger from cfg.StateFile when
// that exists. A state file that cannot be decoded is moved aside and the
// poller starts fresh; one that cannot be read or moved is an error.
func NewPoller(cfg Config) (*Poller, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = 30 * time.Second
	}
	if cfg.Overlap <= 0 {
		cfg.Overlap = 2 * time.Minute
	}
	if cfg.PerPage <= 0 {
		cfg.PerPage = 100
	}
	if cfg.Capacity <= 0 {
		cfg.Capacity = 50000
	}
	if cfg.MaxNotFound <= 0 {
		cfg.MaxNotFound = 20
	}
	if cfg.Logger == nil {
		cfg.Logger = log.NewNopLogger()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Logger = log.With(cfg.Logger, "app", cfg.App)
	p := &Poller{cfg: cfg, ledger: NewLedger(), stats: newAPIStats(), ready: make(chan struct{})}
	api := cfg.API
	next := api.Observe
	api.Observe = func(info cometchat.RequestInfo) {
		p.stats.observe(info)
		if info.Err != nil {
			level.Debug(p.cfg.Logger).Log("msg", "API request failed", "endpoint", info.Endpoint,
				"code", info.Code, "took", info.Duration, "err", info.Err)
		}
		if next != nil {
			next(info)
		}
	}
	client, err := cometchat.New(api)
	if err != nil {
		return nil, err
	}
	p.client = client
	if r := cfg.Resume; r != nil {
		p.ledger, p.statusFilterIgnored, p.stateRecovered = r.ledger, r.statusFilterIgnored, r.stateRecovered
		p.stats = r.stats
		p.up, p.lastSuccess = r.up, r.lastSuccess
		select {
		case <-r.ready:
			p.readyOnce.Do(func() { close(p.ready) })
		default:
		}
		p.cfg.Resume = nil // do not keep the old poller alive
	} else if cfg.StateFile != "" {
		l, recovered, err := loadState(cfg.StateFile, cfg.App, cfg.Logger, cfg.Now())
		if err != nil {
			return nil, err
		}
		p.ledger, p.stateRecovered = l, recovered
	}
	p.publish()
	return p, nil
}

// Snapshot returns the state published by the last poll.
func (p *Poller) Snapshot() *Snapshot { return p.snap.Load() }

// Ready is closed after the first successful poll.
func (p *Poller) Ready() <-chan struct{} { return p.ready }

// Run polls until ctx is done: once at once, then every Interval, later if
// the server asked for it with Retry-After.
func (p *Poller) Run(ctx context.Context) {
	for {
		start := time.Now()
		if err := p.Poll(ctx); err != nil && ctx.Err() == nil {
			level.Warn(p.cfg.Logger).Log("msg", "Poll failed; counters are unchanged by the failure and the poll is retried", "err", err)
		}
		next := start.Add(p.cfg.Interval)
		if ra := p.client.RetryAfter(); ra.After(next) {
			next = ra
		}
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Poll reads the API once and updates the ledger, then persists and
// publishes it. Progress made before an error is kept: it is exact, because
// every counted id is in the done set, and the next poll starts again from
// the head of the list.
func (p *Poller) Poll(ctx context.Context) error {
	p.poll++
	start := time.Now()
	err := p.scan(ctx)
	level.Debug(p.cfg.Logger).Log("msg", "Poll done", "poll", p.poll, "ok", err == nil,
		"tracked", len(p.ledger.tracked), "done_ids", len(p.ledger.done), "floor", p.ledger.Floor,
		"watermark", p.ledger.Watermark, "took", time.Since(start))
	if err == nil {
		p.up, p.lastSuccess = true, p.cfg.Now()
		p.readyOnce.Do(func() { close(p.ready) })
	} else {
		p.up = false
	}
	// Persist before publishing, so that what a scrape has seen is never
	// more than what a restart continues from.
	if p.cfg.StateFile != "" && p.ledger.dirty {
		if serr := saveState(p.cfg.StateFile, p.cfg.App, p.ledger, p.cfg.Now()); serr != nil {
			p.stats.countError("state_write")
			level.Error(p.cfg.Logger).Log("msg", "Writing the state file failed", "file", p.cfg.StateFile, "err", serr)
		} else {
			p.ledger.dirty = false
		}
	}
	p.publish()
	return err
}

func (p *Poller) publish() {
	s := p.ledger.snapshot(p.cfg.App)
	s.Up, s.LastSuccess, s.StateRecovered, s.Interval = p.up, p.lastSuccess, p.stateRecovered, p.cfg.Interval
	s.API = p.stats.clone()
	if p.cfg.OnPublish != nil {
		p.cfg.OnPublish(s)
	}
	p.snap.Store(s)
}

// scan is one poll: the head of the list, the ongoing listing, then Get Call
// for tracked calls neither of them showed.
func (p *Poller) scan(ctx context.Context) error {
	l := p.ledger
	now := p.cfg.Now()
	first := !l.Initialized
	mode := observeMode{poll: p.poll}
	if first && p.cfg.Backfill > 0 {
		mode.backfillFrom = now.Add(-p.cfg.Backfill).Unix()
	}
	overlap := int64(p.cfg.Overlap / time.Second)
	cutoff := l.Watermark - overlap

	var (
		maxTS, minTS = int64(0), int64(math.MaxInt64)
		newIDs       int
		total        int
		reachedEnd   bool
		prevFirst    string
	)
	for page := 1; ; page++ {
		pg, err := p.client.List(ctx, cometchat.ListOptions{Page: page, PerPage: p.cfg.PerPage})
		if err != nil {
			return fmt.Errorf("listing calls, page %d: %w", page, err)
		}
		p.skipped(pg.Skipped)
		if page == 1 {
			total = pg.Pagination.Total
		}
		crossed := false
		for i := range pg.Calls {
			c := &pg.Calls[i]
			ts := c.Timestamp()
			known := l.Known(c.SessionID)
			l.Observe(c, mode)
			if !known {
				newIDs++
			}
			if ts > 0 {
				maxTS, minTS = max(maxTS, ts), min(minTS, ts)
				if !first && ((known && ts < cutoff) || ts < l.Floor) {
					crossed = true
				}
			}
		}
		reachedEnd = lastPage(pg, page, p.cfg.PerPage)
		// A server that ignores page would serve page 1 forever.
		if len(pg.Calls) > 0 {
			if pg.Calls[0].SessionID == prevFirst {
				reachedEnd = true
			}
			prevFirst = pg.Calls[0].SessionID
		}
		if reachedEnd {
			break
		}
		if first {
			// The first poll reads the whole history, up to the dedupe
			// capacity, so that a call listed late later is told apart
			// from history by its id rather than by its timestamp.
			if len(l.done) >= p.cfg.Capacity && (mode.backfillFrom == 0 || minTS < mode.backfillFrom) {
				break
			}
			continue
		}
		if !crossed {
			continue
		}
		// Past the overlap. If the list grew by more calls than this poll
		// found, some were listed below it: read on, down to the floor.
		missing := l.LastTotal > 0 && total-l.LastTotal > newIDs
		belowFloor := l.Floor > 0 && minTS < l.Floor
		if !missing || belowFloor {
			break
		}
	}

	if err := p.scanOngoing(ctx, mode); err != nil {
		return err
	}
	if err := p.getUnseen(ctx, mode); err != nil {
		return err
	}

	if first {
		l.Floor = 0
		if !reachedEnd && minTS != math.MaxInt64 {
			l.Floor = minTS + 1
		}
		l.Initialized = true
		l.dirty = true
	}
	if wm := min(maxTS, now.Unix()+300); wm > l.Watermark {
		l.Watermark = wm
		l.dirty = true
	}
	if total != l.LastTotal {
		l.LastTotal = total
		l.dirty = true
	}
	l.Prune(p.cfg.Capacity, l.Watermark-overlap)
	return nil
}

// lastPage reports whether pg is the last page, trusting meta.pagination
// when it is there and a short page when it is not.
func lastPage(pg *cometchat.Page, page, perPage int) bool {
	n := len(pg.Calls) + pg.Skipped
	switch {
	case n == 0:
		return true
	case pg.Pagination.TotalPages > 0:
		return page >= pg.Pagination.TotalPages
	case pg.Pagination.PerPage > 0:
		return n < pg.Pagination.PerPage
	default:
		return n < perPage
	}
}

// scanOngoing reads the status=ongoing listing, which shows calls in
// progress however far down the list they are.
func (p *Poller) scanOngoing(ctx context.Context, mode observeMode) error {
	if p.statusFilterIgnored {
		return nil
	}
	for page := 1; ; page++ {
		pg, err := p.client.List(ctx, cometchat.ListOptions{Page: page, PerPage: p.cfg.PerPage, Status: "ongoing"})
		if err != nil {
			return fmt.Errorf("listing ongoing calls, page %d: %w", page, err)
		}
		p.skipped(pg.Skipped)
		for i := range pg.Calls {
			if _, final := NormalizeStatus(&pg.Calls[i]); final {
				p.statusFilterIgnored = true
			}
			p.ledger.Observe(&pg.Calls[i], mode)
		}
		if p.statusFilterIgnored {
			level.Info(p.cfg.Logger).Log("msg", "The API ignores the status filter; following calls in progress through Get Call")
			return nil
		}
		if lastPage(pg, page, p.cfg.PerPage) {
			return nil
		}
	}
}

// getUnseen asks Get Call about every tracked call this poll did not see:
// a long meeting that has left the head of the list, a ringing call listed
// late.
func (p *Poller) getUnseen(ctx context.Context, mode observeMode) error {
	var ids []string
	for id, t := range p.ledger.tracked {
		if t.seenPoll != p.poll {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		c, err := p.client.Get(ctx, id)
		var apiErr *cometchat.APIError
		if errors.As(err, &apiErr) && apiErr.NotFound() {
			t := p.ledger.tracked[id]
			t.NotFound++
			p.ledger.dirty = true
			if t.NotFound >= p.cfg.MaxNotFound {
				p.ledger.Untrack(id)
				p.stats.countError("call_not_found")
				level.Warn(p.cfg.Logger).Log("msg", "Dropped a tracked call that Get Call keeps answering not found", "polls", t.NotFound)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("getting a tracked call: %w", err)
		}
		c.SessionID = id
		p.ledger.Observe(c, mode) // also resets the not-found streak

	}
	return nil
}

func (p *Poller) skipped(n int) {
	for range n {
		p.stats.countError("invalid_call")
	}
}
