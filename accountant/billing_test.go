package accountant

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cometchat-exporter/cometchat-exporter/billing"
)

// The billing period: a call's minutes go to the period in which it
// ended, the figures persist across a restart, roll over at the boundary
// (a call ending a second before it stays in the old period, one a
// second after starts the new one), and a clock set back never reopens a
// closed period.
func TestBillingPeriod(t *testing.T) {
	h := newHarness(t)
	state := filepath.Join(t.TempDir(), "state.json")
	plan := billing.Plan{Day: 21, Zone: "UTC", Minutes: billing.MinutesCall, IncludedAudio: 1000}
	boundary := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC) // t0 is Nov 20, 12:00
	withPlan := func(c *Config) { c.StateFile, c.Billing = state, plan }
	h.start(withPlan)
	h.poll()
	period := func() BillingPeriod { return h.p.Snapshot().Billing }
	assert.Equal(t, time.Date(2026, 10, 21, 0, 0, 0, 0, time.UTC).Unix(), period().Start, "the period holding the first poll")
	require.NotNil(t, h.p.Snapshot().Plan)

	h.put(call("a", 100, "ended")) // 2 audio minutes, ended at t0+162
	h.now = t0.Add(200 * time.Second)
	h.poll()
	assert.Equal(t, 120.0, period().AudioSeconds)

	h.start(withPlan) // a restart continues the period from the state file
	h.poll()
	assert.Equal(t, BillingPeriod{Start: time.Date(2026, 10, 21, 0, 0, 0, 0, time.UTC).Unix(), AudioSeconds: 120}, period())

	b := call("b", 0, "ended")
	b.InitiatedAt, b.StartedAt, b.EndedAt = boundary.Unix()-63, boundary.Unix()-61, boundary.Unix()-1
	h.put(b)
	h.now = boundary.Add(-500 * time.Millisecond)
	h.poll()
	assert.Equal(t, 240.0, period().AudioSeconds, "ended a second before the boundary: the old period")

	c := call("c", 0, "ended")
	c.InitiatedAt, c.StartedAt, c.EndedAt = boundary.Unix()-61, boundary.Unix()-59, boundary.Unix()+1
	h.put(c)
	h.now = boundary.Add(100 * time.Second)
	h.poll()
	assert.Equal(t, BillingPeriod{Start: boundary.Unix(), AudioSeconds: 120}, period(), "a second after: the new period, from zero")

	h.now = boundary.Add(-time.Hour) // the clock set back
	h.poll()
	assert.Equal(t, boundary.Unix(), period().Start, "a closed period never reopens")
	h.start(withPlan)
	h.poll()
	assert.Equal(t, BillingPeriod{Start: boundary.Unix(), AudioSeconds: 120}, period(), "nor after a restart")

	h.start() // without a plan: no period
	h.poll()
	assert.Nil(t, h.p.Snapshot().Plan)
}

// A period with nothing counted rolls over too: the figure drops to zero
// at the boundary, not at the next call.
func TestBillingPeriodRollsOverWhenIdle(t *testing.T) {
	h := newHarness(t)
	plan := billing.Plan{Day: 21, Zone: "Europe/Berlin", Minutes: billing.MinutesCall}
	h.start(func(c *Config) { c.Billing = plan })
	h.poll()
	h.put(call("a", 100, "ended"))
	h.now = t0.Add(200 * time.Second)
	h.poll()
	require.Equal(t, 120.0, h.p.Snapshot().Billing.AudioSeconds)
	berlinMidnight := time.Date(2026, 11, 20, 23, 0, 0, 0, time.UTC) // 00:00 on the 21st in Berlin (UTC+1)
	h.now = berlinMidnight.Add(-time.Second)
	h.poll()
	assert.Equal(t, 120.0, h.p.Snapshot().Billing.AudioSeconds)
	h.now = berlinMidnight.Add(time.Second)
	h.poll()
	assert.Equal(t, BillingPeriod{Start: berlinMidnight.Unix()}, h.p.Snapshot().Billing)
}

// A final call without endedAt is billed in the period it is counted in;
// one whose endedAt is far ahead of the clock (a bad timestamp) too: it
// must not move the period into the future, where it would stay.
func TestBillingOfCallsWithoutAGoodEnd(t *testing.T) {
	h := newHarness(t)
	h.start(func(c *Config) { c.Billing = billing.Plan{Day: 1, Zone: "UTC", Minutes: billing.MinutesCall} })
	h.poll()
	noEnd := call("no-end", 100, "ended")
	noEnd.EndedAt = 0
	future := call("future", 110, "ended")
	future.EndedAt = time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	h.put(noEnd, future)
	h.now = t0.Add(300 * time.Second)
	h.poll()
	b := h.p.Snapshot().Billing
	assert.Equal(t, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Unix(), b.Start, "still November")
	assert.Equal(t, 240.0, b.AudioSeconds, "both calls billed now")
}

// A first start counts the period's history only when the backfill
// reaches back to it; then those calls' minutes are billed too.
func TestBillingBackfill(t *testing.T) {
	for _, tc := range []struct {
		backfill time.Duration
		want     float64
	}{{0, 0}, {48 * time.Hour, 240}} {
		h := newHarness(t)
		h.put(call("yesterday", -86400, "ended"), call("earlier-today", -3600, "ended"))
		h.start(func(c *Config) {
			c.Billing, c.Backfill = billing.Plan{Day: 1, Zone: "UTC", Minutes: billing.MinutesCall}, tc.backfill
		})
		h.poll()
		assert.Equal(t, tc.want, h.p.Snapshot().Billing.AudioSeconds, "backfill %s", tc.backfill)
	}
}

// A reload that changes the plan's day starts the period of the new plan
// afresh, whichever way the day moves.
func TestBillingPlanChanged(t *testing.T) {
	h := newHarness(t)
	state := filepath.Join(t.TempDir(), "state.json")
	plan := func(day int) func(*Config) {
		return func(c *Config) {
			c.StateFile, c.Billing = state, billing.Plan{Day: day, Zone: "UTC", Minutes: billing.MinutesCall}
		}
	}
	h.start(plan(19)) // Nov 19 - Dec 19
	h.poll()
	h.put(call("a", 100, "ended"))
	h.now = t0.Add(200 * time.Second)
	h.poll()
	require.Equal(t, BillingPeriod{Start: time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC).Unix(), AudioSeconds: 120}, h.p.Snapshot().Billing)

	h.start(plan(25)) // Oct 25 - Nov 25: an earlier start
	h.put(call("b", 300, "ended"))
	h.now = t0.Add(400 * time.Second)
	h.poll()
	assert.Equal(t, BillingPeriod{Start: time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC).Unix(), AudioSeconds: 120}, h.p.Snapshot().Billing,
		"the new plan's period, from zero: b counted, a measured under the old plan")

	h.start(plan(20)) // Nov 20 - Dec 20: a later start
	h.put(call("c", 500, "ended"))
	h.now = t0.Add(600 * time.Second)
	h.poll()
	assert.Equal(t, BillingPeriod{Start: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC).Unix(), AudioSeconds: 120}, h.p.Snapshot().Billing)
}
