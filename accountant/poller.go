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

	"github.com/cometchat-exporter/cometchat-exporter/billing"
	"github.com/cometchat-exporter/cometchat-exporter/cometchat"
)

// Config configures a Poller.
type Config struct {
	// App is the value of the app label.
	App string
	// Identity names the data the app reads: its app id, base URL and
	// onBehalfOf (never the key). State belongs to an identity: a state
	// file or a resumed poller of another identity is not continued.
	Identity string
	// API configures the client the poller reads the Calls API with. Its
	// Observe hook, if set, is called after the poller's own.
	API cometchat.Config
	// Interval between the starts of two polls.
	Interval time.Duration
	// Overlap: each poll re-reads calls initiated up to this long before the
	// newest call the previous polls saw, to catch calls listed late; less
	// while the list total agrees (see reRead).
	Overlap time.Duration
	// Billing is the app's billing period and plan (zero: none).
	Billing billing.Plan
	// Backfill counts, at the first poll, final calls initiated within this
	// window before start. Zero counts no history.
	Backfill time.Duration
	// PerPage is requested from List Calls; the server may cap it.
	PerPage int
	// Capacity bounds the dedupe set (ids of counted calls kept for dedupe).
	Capacity int
	// MaxNotFound: a tracked call for which Get Call answers not found this
	// many checks in a row is dropped without being counted.
	MaxNotFound int
	// OnHintCounted, when set, is told how long after its webhook arrived
	// a hinted call was counted.
	OnHintCounted func(time.Duration)
	// SweepEvery: at most this long after the last sweep (and at the first
	// poll after a start), a poll's head scan reads on past the calls the
	// last polls read, down to where the previous sweep began. A call the
	// scans missed is counted then. See sweepDue.
	SweepEvery time.Duration
	// StateFile, when set, persists the ledger across restarts.
	StateFile string
	Logger    log.Logger
	// OnPublish, when set, is called with every new snapshot, on the
	// poller's goroutine (the collector renders it there, off the scrape
	// path).
	OnPublish func(*Snapshot)
	Now       func() time.Time
	// Resume, when set, is a poller of the same app whose state this one
	// continues after a configuration reload (see Adopt); StateFile is
	// then not read.
	Resume *Poller
	// Deferred: NewPoller touches no file and publishes nothing; Adopt
	// reads the state file and publishes. A reload builds every poller
	// first and commits them only when all could be built.
	Deferred bool

	// diskFault, when set, fails state writes as a full disk would (tests).
	diskFault func() error
	// getCallsOnly checks every tracked call that no listing showed with
	// Get Call, never a page below the head: the baseline of benchmarks.
	getCallsOnly bool
	// observed, when set, is told the outcome of every observation (tests).
	observed func(id string, o Outcome)
}

// Poller reads the Calls API in the background and keeps the Ledger of one
// app. Scrapes read its Snapshot; they never wait on the API.
type Poller struct {
	cfg    Config
	client *cometchat.Client
	ledger *Ledger
	store  *store // nil without a state file
	// persisted is the counters as last persisted: what is published.
	persisted counters
	stats     APIStats
	poll      uint64
	// statusFilterIgnored is set once a status=ongoing listing returned a
	// final call: the server does not filter, so tracked calls are followed
	// through Get Call alone.
	statusFilterIgnored bool
	up                  bool
	lastSuccess         time.Time
	stateRecovered      bool
	writeFailures       uint64
	writeFailing        bool // the last write failed
	// statsStarted is when stats and writeFailures began counting.
	statsStarted time.Time
	// lastSweep is when the last sweep completed; zero until one has since
	// the start. sweepRetry, when set, is when a sweep reads again a part
	// of the list that scans read around (pages that kept failing), the
	// holeStreak-th time in a row.
	lastSweep  time.Time
	sweepRetry time.Time
	holeStreak int
	// agreed counts the busy head scans in a row that the list total
	// accounted for exactly (see totalAgrees, reRead). Not persisted: a
	// start re-reads the whole overlap until the total has agreed again.
	agreed int
	// anomalies are the entries already counted in APIStats.Anomalies,
	// by kind and id (see anomaly).
	anomalies map[string]struct{}
	// lookedUp is when each call was last looked up for a hint (hintDue).
	lookedUp map[string]time.Time
	// stopping is set once Run's context is done: a request canceled
	// because the poller is being stopped is not an API error.
	stopping atomic.Bool

	// hints are session ids that webhooks named, for Run to look up.
	hints chan Hint

	snap      atomic.Pointer[Snapshot]
	ready     chan struct{}
	readyOnce sync.Once
}

// NewPoller returns a poller, restoring its ledger from cfg.StateFile when
// that exists (see openStore). With cfg.Resume set it reads nothing: call
// Adopt once the resumed poller has stopped.
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
	if cfg.SweepEvery <= 0 {
		cfg.SweepEvery = time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = log.NewNopLogger()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Logger = log.With(cfg.Logger, "app", cfg.App)
	p := &Poller{cfg: cfg, ledger: NewLedger(), stats: newAPIStats(), statsStarted: cfg.Now(), ready: make(chan struct{}),
		hints: make(chan Hint, maxHintsQueued)}
	p.ledger.plan = cfg.Billing
	api := cfg.API
	next := api.Observe
	api.Observe = func(info cometchat.RequestInfo) {
		// A request cut short because the poller is stopping (shutdown, a
		// reload) is not the API's failure.
		if p.stopping.Load() && cometchat.ErrorReason(info.Err) == "canceled" {
			return
		}
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
	if cfg.Resume != nil || cfg.Deferred {
		return p, nil
	}
	if err := p.open(); err != nil {
		return nil, err
	}
	p.begin()
	return p, nil
}

// open reads the state file, if any (see openStore).
func (p *Poller) open() error {
	if p.cfg.StateFile == "" {
		return nil
	}
	s, l, recovered, err := openStore(p.cfg.StateFile, p.cfg.App, p.cfg.Identity, p.cfg.Logger, p.cfg.Now())
	if err != nil {
		return err
	}
	p.store, p.ledger, p.stateRecovered = s, l, recovered
	p.ledger.plan = p.cfg.Billing
	return nil
}

// begin publishes the state the poller starts from.
func (p *Poller) begin() {
	if p.store != nil {
		p.store.fault = p.cfg.diskFault
	}
	p.ledger.begin(p.cfg.Now())
	if p.store == nil || p.persisted.totals == nil {
		p.persisted = p.ledger.counters()
	}
	p.publish()
}

// Adopt takes over the state of cfg.Resume, which must have stopped. The
// same identity continues its ledger, counters and health. Another
// identity starts over as a first start: its state file is moved aside.
// Adopt cannot fail, so a reload can build its pollers first and switch
// to them without a way back.
func (p *Poller) Adopt() {
	r := p.cfg.Resume
	if r == nil {
		if p.cfg.Deferred && p.snap.Load() == nil {
			if err := p.open(); err != nil {
				level.Error(p.cfg.Logger).Log("msg", "State file unusable; running without it", "err", err)
			}
			p.begin()
		}
		return
	}
	p.cfg.Resume = nil // do not keep the old poller alive
	if r.cfg.Identity != p.cfg.Identity {
		level.Warn(p.cfg.Logger).Log("msg", "The app's identity changed; starting over as a first start (history is not counted)",
			"old", r.cfg.Identity, "new", p.cfg.Identity)
		if r.store != nil && r.store.path == p.cfg.StateFile {
			r.store.startOver(p.cfg.Identity, p.cfg.Now())
			p.store = r.store
		} else if err := p.open(); err != nil {
			// The state file was added by this reload: read it like a start.
			level.Error(p.cfg.Logger).Log("msg", "State file unusable; running without it", "err", err)
		}
	} else {
		p.ledger, p.store, p.persisted = r.ledger, r.store, r.persisted
		p.ledger.plan = p.cfg.Billing
		p.statusFilterIgnored, p.stateRecovered = r.statusFilterIgnored, r.stateRecovered
		p.stats, p.writeFailures, p.statsStarted = r.stats, r.writeFailures, r.statsStarted
		p.up, p.lastSuccess, p.lastSweep = r.up, r.lastSuccess, r.lastSweep
		p.sweepRetry, p.holeStreak, p.anomalies, p.lookedUp = r.sweepRetry, r.holeStreak, r.anomalies, r.lookedUp
		select {
		case <-r.ready:
			p.readyOnce.Do(func() { close(p.ready) })
		default:
		}
		if p.store != nil && p.store.path != p.cfg.StateFile {
			p.store = nil // the reload removed the state file
		}
	}
	p.begin()
}

// Snapshot returns the state published by the last poll.
func (p *Poller) Snapshot() *Snapshot { return p.snap.Load() }

// Ready is closed after the first poll attempt has finished, successful
// or not: from then on the app's metrics (cometchat_up included) say how
// it is doing.
func (p *Poller) Ready() <-chan struct{} { return p.ready }

// Run polls until ctx is done: once at once, then every Interval, later if
// the server asked for it with Retry-After.
func (p *Poller) Run(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() { p.stopping.Store(true) })
	defer stop()
	for first := true; ; first = false {
		start := time.Now()
		if err := p.Poll(ctx); err != nil && ctx.Err() == nil {
			level.Warn(p.cfg.Logger).Log("msg", "Poll failed; counters are unchanged by the failure and the poll is retried", "err", err)
		}
		next := start.Add(p.cfg.Interval)
		if first {
			// Apps started together (a start, a reload) poll first at
			// once, then each at its own phase of the interval.
			next = next.Add(phase(p.cfg.App, p.cfg.Interval))
		}
		if ra := p.client.RetryAfter(); ra.After(next) {
			next = ra
		}
		if !p.waitForPoll(ctx, next) {
			return
		}
	}
}

// waitForPoll waits until the next poll is due, applying the webhooks'
// hints meanwhile; a burst of hints makes the poll due at once. It
// returns false when ctx is done.
func (p *Poller) waitForPoll(ctx context.Context, next time.Time) bool {
	t := time.NewTimer(time.Until(next))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case h := <-p.hints:
			batch := p.due(p.gatherHints(h))
			if pollInstead(len(batch)) {
				return true
			}
			if len(batch) > 0 {
				p.applyHints(ctx, batch)
			}
		}
	}
}

// Poll reads the API once and updates the ledger, then persists it and
// publishes what was persisted. Progress made before an error is kept: it
// is exact, because every counted id is in the dedupe set.
func (p *Poller) Poll(ctx context.Context) error {
	p.poll++
	start := time.Now()
	p.ledger.rollBilling(p.cfg.Now())
	err := p.scan(ctx)
	interrupted := ctx.Err() != nil
	level.Debug(p.cfg.Logger).Log("msg", "Poll done", "poll", p.poll, "ok", err == nil, "interrupted", interrupted,
		"tracked", len(p.ledger.tracked), "remembered", p.ledger.Remembered(), "floor", p.ledger.Floor,
		"watermark", p.ledger.Watermark, "missing", p.ledger.Missing, "took", time.Since(start))
	switch {
	case err == nil:
		p.up, p.lastSuccess = true, p.cfg.Now()
	case interrupted:
		// Stopped mid-poll (shutdown or reload): says nothing about the API.
	default:
		p.up = false
	}
	p.persist()
	p.publish()
	if !interrupted {
		p.readyOnce.Do(func() { close(p.ready) })
	}
	return err
}

// persist writes the ledger's changes. The counters published are those
// persisted: when the write fails, /metrics keeps the last persisted
// values, so a restart (which continues from the file) never shows less
// than a scrape has seen. The calls counted meanwhile stay in the ledger
// and are published with the next write that succeeds.
func (p *Poller) persist() {
	if p.store == nil {
		p.persisted = p.ledger.counters()
		p.ledger.clearChanges() // nothing is written: what changed is of no use, and would grow for ever
		return
	}
	if err := p.store.save(p.ledger, p.cfg.Now()); err != nil {
		p.writeFailures++
		p.writeFailing = true
		p.stats.countError("state_write")
		level.Error(p.cfg.Logger).Log("msg", "Writing the state file failed; /metrics keeps the last saved counters until a write succeeds",
			"file", p.store.path, "err", err)
		return
	}
	p.writeFailing = false
	p.persisted = p.ledger.counters()
}

func (p *Poller) publish() {
	s := p.ledger.snapshot(p.cfg.App, p.persisted)
	s.Up, s.LastSuccess, s.StateRecovered, s.Interval = p.up, p.lastSuccess, p.stateRecovered, p.cfg.Interval
	s.API, s.StatsStarted = p.stats.clone(), p.statsStarted
	if p.store != nil {
		s.State = &StateStats{LastWrite: p.store.lastWrite, Failures: p.writeFailures, Failing: p.writeFailing, WrittenBytes: p.store.written}
	}
	if p.cfg.OnPublish != nil {
		p.cfg.OnPublish(s)
	}
	p.snap.Store(s)
}

// scan is one poll: the head of the list, the ongoing listing, Get Call
// for tracked calls neither showed, then the bookkeeping. Only a failed
// head scan skips the bookkeeping: the other steps fail call by call.
func (p *Poller) scan(ctx context.Context) error {
	now := p.cfg.Now()
	mode := observeMode{poll: p.poll, at: now}
	if !p.ledger.Initialized && p.cfg.Backfill > 0 {
		mode.backfillFrom = now.Add(-p.cfg.Backfill).Unix()
	}
	sweep := sweepDue(p.ledger.Initialized, p.lastSweep, p.sweepRetry, now, p.cfg.SweepEvery)
	head, err := p.headScan(ctx, mode, sweep)
	if err != nil {
		p.agreed = 0
		// Keep the progress of a failed scan, or a long read under a
		// flaky API never ends: the next scan goes on from the failed page
		// (see ResumePage). Its watermark is kept too, the calls below it
		// being found through the list total, which a first poll does
		// not need and a server without a total cannot give.
		l := p.ledger
		l.ResumePage = head.failedPage
		if head.firstSkipped > 0 {
			// The next scan jumps here past what this one read: not past
			// a page it read around.
			l.ResumePage = head.firstSkipped
		}
		if head.rebase {
			// A baseline is one only once a scan that read it completes:
			// the calls below the failed page are not found through it.
			l.LastTotal, l.TotalEmpty = 0, false
		}
		if head.first || l.haveTotal() {
			l.Watermark = max(l.Watermark, head.newest(now))
		}
		p.holes(head, now) // the pages it read around stay to be read again
		return err         // no pruning: the calls below the failed page are unread
	}
	p.agreed = totalAgrees(p.agreed, totalCheck{Total: p.ledger.LastTotal, Skipped: head.skipped > 0,
		Stop: head.stop, Learned: head.learned, Residual: p.ledger.Missing - head.learned})
	// The ongoing listing first: what it shows in progress needs no other
	// check, so the pages below the head are chosen for the rest.
	ongoingErr := p.scanOngoing(ctx, mode)
	if !head.exhausted && !p.cfg.getCallsOnly {
		p.readBelow(ctx, mode, head)
	}
	p.recheck(ctx, mode)
	p.bookkeeping(head, now)
	return ongoingErr
}

// unchecked returns the times of the tracked calls that no listing showed
// this poll and that are due for a check (see recheckDue).
func (p *Poller) unchecked(now time.Time) []int64 {
	var ts []int64
	for _, t := range p.ledger.tracked {
		if t.seenPoll != p.poll && recheckDue(t, now) {
			ts = append(ts, t.TS)
		}
	}
	return ts
}

// readBelow reads list pages below the head scan while each is cheaper
// than the Get Calls it saves (see pageBelowPays). It only learns the
// state of tracked calls; what else such a page holds is the head scan's
// and the sweeps' (a call missing there is found through the list total).
// A failure or a list that moved under it leaves the rest to Get Call.
func (p *Poller) readBelow(ctx context.Context, mode observeMode, head headResult) {
	page, bottom, span := head.lastPage, head.lastBottom, head.lastSpan
	for range maxPagesBelow {
		if !pageBelowPays(p.unchecked(p.cfg.Now()), bottom, span) || ctx.Err() != nil {
			return
		}
		page++
		pg, err := p.client.List(ctx, cometchat.ListOptions{Page: page, PerPage: p.cfg.PerPage})
		if err != nil {
			level.Debug(p.cfg.Logger).Log("msg", "A list page below the head failed; Get Call checks its calls", "page", page, "err", err)
			return
		}
		oldest := bottom
		for i := range pg.Calls {
			c := &pg.Calls[i]
			if ts := c.Timestamp(); ts > 0 && !c.ScaledTimestamps {
				oldest = min(oldest, ts)
			}
			if _, tracked := p.ledger.tracked[c.SessionID]; tracked {
				p.observe(c, mode)
			}
		}
		f := pageFacts{Page: page, CurrentPage: pg.Pagination.CurrentPage, TotalPages: pg.Pagination.TotalPages,
			PerPage: pg.Pagination.PerPage, Entries: len(pg.Calls) + pg.Skipped}
		if f.PerPage <= 0 {
			f.PerPage = p.cfg.PerPage
		}
		if oldest >= bottom || listEnd(f) != readOn {
			return
		}
		span, bottom = bottom-oldest, oldest
	}
}

func (p *Poller) overlap() int64 { return int64(p.cfg.Overlap / time.Second) }

// headResult is what a head scan found.
type headResult struct {
	maxTS, minTS int64 // of the calls read; minTS is MaxInt64 when none had one
	first        bool  // it was the first poll
	sweep        bool  // it was a sweep
	stop         verdict
	exhausted    bool // it read everything it could (see exhausted)
	failedPage   int  // the page whose request failed
	// skipped counts the pages read around; holeLow is the newest call
	// time below them, down to which a sweep reads them again.
	skipped      int
	firstSkipped int // the first page read around
	holeLow      int64
	// lastPage is the last page the scan read; lastBottom the oldest
	// in-place call time on it, and lastSpan how far back from the one
	// before that page reached (for pageBelowPays).
	lastPage             int
	lastBottom, lastSpan int64
	// learned counts the ids the head scan learned. They were all in the
	// list when its total was read: calls that arrive later land on page 1,
	// already read. The ongoing listing and Get Call, which run after it,
	// may learn such later calls, so only these are set against the total.
	learned int
	// rebase: the total of its first page is a new baseline (foldTotal).
	rebase bool
}

// newest is the newest call time the scan read, but never more than five
// minutes ahead of the clock: a call dated in the future cannot move the
// watermark past calls still to come.
func (h headResult) newest(now time.Time) int64 { return min(h.maxTS, now.Unix()+300) }

// headScan reads the list from its head (newest first) until nextPage says
// stop. A sweep reads on past what the last polls read, down to where the
// previous sweep began (SweepMark). The list's order is a hint: an entry
// out of place is counted as an anomaly and never decides where the scan
// stops (see outOfPlace, pastLine). A page other than the first that
// keeps failing is read around (see holeRetry); the first failing fails
// the scan.
func (p *Poller) headScan(ctx context.Context, mode observeMode, sweep bool) (headResult, error) {
	l := p.ledger
	res := headResult{minTS: math.MaxInt64, first: !l.Initialized, sweep: sweep, holeLow: math.MaxInt64}
	// Crossing the cutoff means reaching what earlier polls read: the deep
	// read for missing calls starts there and may jump to ResumePage. A
	// sweep goes on until it crosses sweptTo as well. The re-read above
	// the cutoff shrinks while the list total agrees (see reRead).
	cutoff := l.Watermark - int64(reRead(p.agreed, sweep, p.cfg.Overlap)/time.Second)
	sweptTo := l.SweepMark - p.overlap()
	seen := map[uint64]bool{} // keys of the ids read in this scan -> learned in it
	state := scanState{First: res.first, Resume: l.ResumePage, Sweep: sweep}
	var (
		prevTS     int64  // the last in-place dated entry read
		prevID     string // and its id
		skippedRun int    // pages in a row read around
		holeOpen   bool   // a page was read around; the next page read bounds it
	)
	for page := 1; ; page = following(page, state) {
		pg, err := p.client.List(ctx, cometchat.ListOptions{Page: page, PerPage: p.cfg.PerPage})
		if err != nil {
			if page == 1 || ctx.Err() != nil || skippedRun+1 >= maxSkippedInARow {
				res.failedPage = page
				return res, fmt.Errorf("listing calls, page %d: %w", page, err)
			}
			skippedRun++
			res.skipped++
			if res.firstSkipped == 0 {
				res.firstSkipped = page
			}
			holeOpen = true
			p.stats.PagesSkipped++
			level.Warn(p.cfg.Logger).Log("msg", "A list page keeps failing; reading around it, and a sweep reads it again later",
				"page", page, "err", err)
			state.StalePages = 0
			continue
		}
		skippedRun = 0
		p.unidentified(pg.SkippedKeys)
		if page == 1 {
			res.rebase = p.foldTotal(pg.Pagination.Total, len(pg.Calls)+pg.Skipped)
		}
		p.checkPagination(page, pg)
		f := pageFacts{Page: page, CurrentPage: pg.Pagination.CurrentPage, TotalPages: pg.Pagination.TotalPages,
			PerPage: pg.Pagination.PerPage, Entries: len(pg.Calls) + pg.Skipped}
		if f.PerPage <= 0 {
			f.PerPage = p.cfg.PerPage
		}
		es := make([]entryFact, len(pg.Calls))
		for i := range pg.Calls {
			c := &pg.Calls[i]
			k := idKey(c.SessionID)
			learnedHere, readBefore := seen[k]
			knownBefore := l.Known(c.SessionID) && !learnedHere
			if !readBefore {
				f.NewInScan++
				seen[k] = !knownBefore
			}
			es[i] = entryFact{TS: c.Timestamp(), Known: knownBefore}
		}
		// A timestamp in another unit or a null initiatedAt is what a server
		// sorts wrongly (by the raw number, nulls first): such entries may
		// stand in a block at the head, in order among themselves, so their
		// place never counts. The order is judged without them, and the
		// stops ignore them and the entries found out of place.
		ordered := append([]entryFact(nil), es...)
		unplaced := make([]bool, len(es))
		for i := range pg.Calls {
			if c := &pg.Calls[i]; c.ScaledTimestamps || c.NoInitiatedAt {
				ordered[i].TS, unplaced[i] = 0, true
			}
		}
		flags, prevOut := outOfPlace(ordered, prevTS)
		if prevOut {
			p.anomaly("unsorted", prevID)
		}
		ignore := make([]bool, len(flags))
		for i := range flags {
			ignore[i] = flags[i] || unplaced[i]
		}
		next := make([]int64, len(es)) // the next in-place time after each entry on this page
		for i, after := len(es)-1, int64(0); i >= 0; i-- {
			next[i] = after
			if es[i].TS > 0 && !ignore[i] {
				after = es[i].TS
			}
		}
		above := prevTS
		for i := range pg.Calls {
			c := &pg.Calls[i]
			p.callAnomalies(c)
			if flags[i] {
				p.anomaly("unsorted", c.SessionID)
			}
			// Where an undated call sits: the newer of its in-place
			// neighbours (one old entry before it, listed out of order,
			// must not make a new call history).
			mode.listedAt, mode.head = max(prevTS, next[i]), true
			if prevTS == 0 {
				mode.listedAt = math.MaxInt64 // the top of the list
			}
			if p.observe(c, mode) == TooOld && l.Missing-int(l.accounted()-l.LearnedAtTotal) > 0 {
				// Listed below the floor while the total says a call is
				// missing: most likely that call, listed late. It cannot
				// be counted; it is accounted for, so that no poll
				// searches for it again.
				if p.anomaly("late_listed", c.SessionID) {
					l.Uncountable++
				}
			}
			if ts := es[i].TS; ts > 0 && !ignore[i] {
				res.maxTS, res.minTS = max(res.maxTS, ts), min(res.minTS, ts)
				if holeOpen {
					res.holeLow = min(res.holeLow, ts)
					holeOpen = false
				}
				prevTS, prevID = ts, c.SessionID
			}
		}
		res.lastPage = page
		if prevTS > 0 && prevTS != above {
			res.lastBottom, res.lastSpan = prevTS, res.maxTS-prevTS
			if above > 0 {
				res.lastSpan = above - prevTS
			}
		}
		f.Crossed = pastLine(es, ignore, cutoff, true)
		f.SweptTo = pastLine(es, ignore, sweptTo, true)
		f.BelowFloor = l.Floor > 0 && pastLine(es, ignore, l.Floor, false)
		if f.NewInScan == 0 {
			state.StalePages++
		} else {
			state.StalePages = 0
		}
		if f.Crossed || state.PastKnown > 0 {
			state.PastKnown++
		}
		// The calls of pages read around are missing as expected: a sweep
		// reads them again, so they send no scan deeper.
		state.MissingLeft = l.Missing - int(l.accounted()-l.LearnedAtTotal) - res.skipped*f.PerPage
		state.Full = l.Remembered() >= p.cfg.Capacity && (mode.backfillFrom == 0 || res.minTS < mode.backfillFrom)
		// Deep enough for the dedupe set (larger than its capacity while a
		// catch-up holds its ids) and every call the total says is
		// missing; beyond that the server is not a list that ends.
		state.MaxPages = (max(p.cfg.Capacity, l.Remembered())+max(l.Missing, 0))/max(f.PerPage, 1) + 50
		if v := nextPage(f, state); v != readOn {
			res.stop, res.exhausted = v, exhausted(v, page, state.StalePages)
			res.learned = int(l.accounted() - l.LearnedAtTotal)
			if v == stopIgnoresPage || v == stopStale || v == stopPageLimit {
				level.Debug(p.cfg.Logger).Log("msg", "Head scan stopped early", "why", v, "page", page)
			}
			return res, nil
		}
	}
}

// foldTotal takes the list total of a head scan's first page into the
// estimate of missing calls (see ledgerScalars). Entries is the page's
// size, to tell the total of an empty list (0, sent or not) from one the
// server does not send. It reports whether the total is a new baseline:
// usable where the last one was not, so that the growth since cannot be
// known. The head scan's bookkeeping then takes every call it learned as
// what the total counts beyond the known ones (see resetsMissing).
func (p *Poller) foldTotal(total, entries int) (rebase bool) {
	l := p.ledger
	usable := total > 0 || entries == 0
	if !usable {
		total = 0
	}
	rebase = usable && !l.haveTotal()
	if usable && !rebase {
		l.Missing = max(0, l.Missing+(total-l.LastTotal)-int(l.accounted()-l.LearnedAtTotal))
	} else {
		l.Missing = 0
	}
	l.LastTotal, l.TotalEmpty, l.LearnedAtTotal = total, usable && total == 0, l.accounted()
	return rebase
}

// bookkeeping runs after every poll whose head scan succeeded, whatever
// the ongoing listing and Get Calls did.
func (p *Poller) bookkeeping(head headResult, now time.Time) {
	l := p.ledger
	if resetsMissing(head.first, head.rebase, head.exhausted, l.Missing, head.learned) {
		l.Missing = head.learned
	}
	l.ResumePage = 0
	if head.first {
		l.Initialized = true
		if head.stop != stopEnd && head.minTS != math.MaxInt64 {
			l.setFloor(head.minTS + 1)
		}
	}
	if (head.first || head.sweep) && sweepCompleted(head.stop) {
		// Every call above what this scan read first has been read now;
		// the next sweep reads down to here.
		l.SweepMark = max(l.SweepMark, head.newest(now))
		p.lastSweep = now
		switch {
		case head.skipped > 0 || head.first:
		case readThrough(head.stop):
			// Read through: what was read around is known by id now.
			p.sweepRetry, p.holeStreak = time.Time{}, 0
			l.HoleLow, l.HistoryGapFrom, l.HistoryGapTo = 0, 0, 0
		case head.stop == stopPageLimit:
			// What was read around is deeper than any scan reaches (the
			// dedupe capacity): stop holding ids for it. History there
			// stays history (HistoryGap).
			p.sweepRetry, p.holeStreak = time.Time{}, 0
			l.HoleLow = 0
		}
	}
	p.holes(head, now)
	if l.HoleLow > 0 {
		l.SweepMark = min(l.SweepMark, l.HoleLow)
	}
	if wm := head.newest(now); wm > l.Watermark {
		l.Watermark = wm
	}
	// Pruning raises the floor over what it drops; while the list total
	// says calls are still unread below, they would fall under it. So a
	// catch-up holds its ids until it is done, as a first poll does, and
	// nothing below a part of the list still to be read again is dropped.
	keepFrom := l.Watermark - p.overlap()
	if l.HoleLow > 0 {
		keepFrom = min(keepFrom, l.HoleLow-p.overlap())
	}
	if l.Missing <= head.learned {
		l.Prune(p.cfg.Capacity, keepFrom)
	}
}

// holes records the pages a head scan read around, failed or not: the
// newest call time below them (HoleLow; where that is unknown, the floor),
// down to which sweeps read, sooner and then less and less often (see
// holeRetry), until one reads through. In a first poll, the history there
// is not known by id (see Ledger.history).
func (p *Poller) holes(head headResult, now time.Time) {
	if head.skipped == 0 {
		return
	}
	l := p.ledger
	low := head.holeLow
	if low == math.MaxInt64 { // nothing read below them
		low = max(l.Floor, 1)
	}
	if l.HoleLow == 0 || low < l.HoleLow {
		l.HoleLow = low
	}
	if l.SweepMark > 0 {
		l.SweepMark = min(l.SweepMark, low) // the next sweep reads down to below them
	}
	if head.first {
		// What the pages held cannot be bounded by the times around them
		// (the list's order is a hint): until a sweep reads through, every
		// unknown call that ended before the start is history.
		l.HistoryGapFrom, l.HistoryGapTo = 1, l.Started
	}
	p.holeStreak++
	p.sweepRetry = holeRetry(p.holeStreak, now, p.cfg.Interval, p.cfg.SweepEvery)
}

// scanOngoing reads the status=ongoing listing, which shows calls in
// progress however far down the list they are.
func (p *Poller) scanOngoing(ctx context.Context, mode observeMode) error {
	if p.statusFilterIgnored {
		return nil
	}
	seen := map[string]bool{}
	for page := 1; page <= 100; page++ {
		pg, err := p.client.List(ctx, cometchat.ListOptions{Page: page, PerPage: p.cfg.PerPage, Status: "ongoing"})
		if err != nil {
			return fmt.Errorf("listing ongoing calls, page %d: %w", page, err)
		}
		p.unidentified(pg.SkippedKeys)
		fresh := 0
		for i := range pg.Calls {
			c := &pg.Calls[i]
			if _, final := NormalizeStatus(c); final {
				p.statusFilterIgnored = true
			}
			if !seen[c.SessionID] {
				seen[c.SessionID] = true
				fresh++
			}
			p.observe(c, mode)
		}
		if p.statusFilterIgnored {
			level.Info(p.cfg.Logger).Log("msg", "The API ignores the status filter; following calls in progress through Get Call")
			return nil
		}
		f := pageFacts{Page: page, CurrentPage: pg.Pagination.CurrentPage, TotalPages: pg.Pagination.TotalPages,
			PerPage: pg.Pagination.PerPage, Entries: len(pg.Calls) + pg.Skipped, NewInScan: fresh}
		if f.PerPage <= 0 {
			f.PerPage = p.cfg.PerPage
		}
		// Calls in progress are few: stop at the end, or at the first page
		// that brings nothing new; Get Call covers what this misses.
		if fresh == 0 || listEnd(f) != readOn {
			return nil
		}
	}
	return nil
}

// recheck asks Get Call about the tracked calls that no listing showed
// this poll and that are due (see planRecheck). A failure stays that
// call's: it is counted, backed off, and the poll goes on.
func (p *Poller) recheck(ctx context.Context, mode observeMode) {
	l := p.ledger
	now := p.cfg.Now()
	var ids []string
	for id, t := range l.tracked {
		if t.seenPoll != p.poll && recheckDue(t, now) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		before := *l.tracked[id]
		c, err := p.client.Get(ctx, id)
		var apiErr *cometchat.APIError
		switch {
		case errors.As(err, &apiErr) && apiErr.NotFound():
			t := planRecheck(before, checkNotFound, now, p.cfg.Interval)
			l.Reschedule(id, t)
			if t.NotFound >= p.cfg.MaxNotFound {
				l.Untrack(id)
				p.stats.countError("call_not_found")
				level.Warn(p.cfg.Logger).Log("msg", "Dropped a tracked call that Get Call keeps answering not found", "checks", t.NotFound)
			}
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			t := planRecheck(before, checkFailed, now, p.cfg.Interval)
			l.Reschedule(id, t)
			level.Debug(p.cfg.Logger).Log("msg", "Get Call of a tracked call failed; retrying it later", "failures", t.Failures,
				"next_check", time.Unix(t.NextCheck, 0), "err", err)
		default:
			c.SessionID = id
			if o := p.observe(c, mode); o == Tracking {
				after := *l.tracked[id]
				before.TS, before.Status = after.TS, after.Status
				l.Reschedule(id, planRecheck(before, checkInProgress, now, p.cfg.Interval))
			}
		}
	}
}

// observe applies an observation and counts the values it could not use.
func (p *Poller) observe(c *cometchat.Call, mode observeMode) Outcome {
	o, invalid := p.ledger.Observe(c, mode)
	if p.cfg.observed != nil {
		p.cfg.observed(c.SessionID, o)
	}
	if invalid > 0 {
		p.stats.countError("invalid_call")
		level.Debug(p.cfg.Logger).Log("msg", "A counted call had values that are not numbers a counter can take; counted them as zero", "values", invalid)
	}
	return o
}

// anomaly counts an entry of kind once per id while the process runs,
// and reports whether this was the first time. The set of ids is bounded:
// when full it starts over, and an entry may then be counted again.
func (p *Poller) anomaly(kind, id string) bool {
	k := kind + "\x00" + id
	if _, ok := p.anomalies[k]; ok {
		return false
	}
	if p.anomalies == nil || len(p.anomalies) >= maxAnomalyIDs {
		p.anomalies = map[string]struct{}{}
	}
	p.anomalies[k] = struct{}{}
	p.stats.Anomalies[kind]++
	level.Debug(p.cfg.Logger).Log("msg", "The API listed an entry against the reference", "kind", kind)
	return true
}

// maxAnomalyIDs bounds the ids remembered for anomaly counting.
const maxAnomalyIDs = 10000

// callAnomalies counts what a listed call's own fields show.
func (p *Poller) callAnomalies(c *cometchat.Call) {
	if c.ScaledTimestamps {
		p.anomaly("timestamp_unit", c.SessionID)
	}
	if c.NoInitiatedAt {
		p.anomaly("no_initiated_at", c.SessionID)
	}
}

// unidentified takes the entries a page listed without a sessionId. They
// cannot be counted; each is accounted for once, so that the list total
// does not send every poll looking for it.
func (p *Poller) unidentified(keys []string) {
	for _, k := range keys {
		if p.anomaly("no_session_id", k) {
			p.ledger.Uncountable++
		}
	}
}

// checkPagination counts a page whose meta.pagination is missing or
// contradicts the page, once per kind of contradiction.
func (p *Poller) checkPagination(page int, pg *cometchat.Page) {
	if problem := paginationProblem(page, len(pg.Calls)+pg.Skipped, pg.Pagination); problem != "" {
		p.anomaly("bad_pagination", problem)
	}
}

// Hint is a webhook's word that a call changed: the poller looks the call
// up with Get Call and counts it through the ledger, as a poll would.
type Hint struct {
	SessionID string
	// Final: the trigger said the call is over (ended, busy, rejected...).
	Final bool
	// Received is when the webhook arrived, for the latency histogram.
	Received time.Time
	tries    int
}

// Hint queues a hint for Run; it never blocks. A full queue drops it: the
// next poll finds the call anyway.
func (p *Poller) Hint(h Hint) bool {
	select {
	case p.hints <- h:
		return true
	default:
		return false
	}
}

// gatherHints collects the hints arriving within hintWindow of the first,
// one per session id, the final one kept.
func (p *Poller) gatherHints(first Hint) []Hint {
	byID := map[string]int{}
	var batch []Hint
	add := func(h Hint) {
		if i, ok := byID[h.SessionID]; ok {
			batch[i].Final = batch[i].Final || h.Final
			return
		}
		byID[h.SessionID] = len(batch)
		batch = append(batch, h)
	}
	add(first)
	window := time.NewTimer(hintWindow)
	defer window.Stop()
	for {
		select {
		case h := <-p.hints:
			add(h)
		case <-window.C:
			return batch
		}
	}
}

// due keeps the hints that are worth a Get Call: of calls not counted yet
// (a repeated delivery is not), and not looked up for a hint moments ago
// (see hintDue). Before the first poll none is: what is history is not
// known yet, and that poll reads everything anyway.
func (p *Poller) due(batch []Hint) []Hint {
	if !p.ledger.Initialized {
		return nil
	}
	out := batch[:0]
	for _, h := range batch {
		if h.tries == 0 && (p.ledger.isDone(h.SessionID) || !hintDue(h, p.lookedUp[h.SessionID])) {
			continue
		}
		out = append(out, h)
	}
	return out
}

// lookedUpForHint records when a call was looked up for a hint.
func (p *Poller) lookedUpForHint(h Hint) {
	if len(p.lookedUp) >= maxHintLookups {
		for id, at := range p.lookedUp {
			if h.Received.Sub(at) >= hintCoalesce {
				delete(p.lookedUp, id)
			}
		}
		if len(p.lookedUp) >= maxHintLookups {
			p.lookedUp = nil
		}
	}
	if p.lookedUp == nil {
		p.lookedUp = map[string]time.Time{}
	}
	p.lookedUp[h.SessionID] = h.Received
}

// applyHints looks up each hinted call with Get Call and observes it
// through the ledger, then persists and publishes, as a poll does. Before
// the first successful poll nothing is applied: what is history is not
// known yet, and that poll reads everything anyway.
func (p *Poller) applyHints(ctx context.Context, batch []Hint) {
	l := p.ledger
	if !l.Initialized {
		return
	}
	now := p.cfg.Now()
	mode := observeMode{poll: p.poll, at: now, listedAt: math.MaxInt64} // a webhook's call is new
	for _, h := range batch {
		if ctx.Err() != nil {
			return
		}
		if l.isDone(h.SessionID) {
			continue // a repeated delivery, or counted by a poll already
		}
		p.lookedUpForHint(h)
		c, err := p.client.Get(ctx, h.SessionID)
		var apiErr *cometchat.APIError
		switch {
		case errors.As(err, &apiErr) && apiErr.NotFound():
			p.retryHint(h) // the API may list a call a moment after its webhook
			continue
		case err != nil:
			continue // the poll will find it
		}
		c.SessionID = h.SessionID
		switch p.observe(c, mode) {
		case Counted:
			if p.cfg.OnHintCounted != nil {
				p.cfg.OnHintCounted(now.Sub(h.Received))
			}
		case Tracking:
			if h.Final {
				p.retryHint(h) // the API does not show the end yet
			}
		}
	}
	p.persist()
	p.publish()
}

// retryHint queues a hint again after hintRetryAfter, a few times; then
// the call is left to the polls.
func (p *Poller) retryHint(h Hint) {
	if h.tries++; h.tries >= maxHintTries {
		return
	}
	time.AfterFunc(hintRetryAfter, func() { p.Hint(h) })
}
