package cometchattest

import (
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/cometchat-exporter/cometchat-exporter/cometchat"
)

// Traffic generates synthetic calls in a Server. Calls ring, then are
// answered, rejected, left unanswered or canceled; answered calls run for a
// while and end with audio or video minutes. It mixes 1:1 and group calls,
// audio and video, call, meet and presenter modes; some calls are recorded,
// some group invitees never join, some users join from two devices.
type Traffic struct {
	s   *Server
	mu  sync.Mutex
	rng *rand.Rand
	// CallsPerMinute is the mean rate of new calls.
	CallsPerMinute float64
	// Speed divides every ringing and talking time (1 = realistic-ish, 10 =
	// ten times faster).
	Speed float64
	// Quirks, as fractions of calls (zero by default):
	// Stuck calls ring until FinishAll, as calls whose end the API never
	// records; Poisoned calls end with a minute value that is not a number
	// a counter can take (Infinity, NaN, 1e308); Undated calls end with no
	// timestamp at all in their JSON, while keeping their place in the
	// list.
	Stuck, Poisoned, Undated float64
	// OnEvent, when set, is told of each call event as a webhook trigger
	// names it (call_initiated, call_started, call_ended, call_busy,
	// call_cancelled, call_rejected, call_unanswered), after the store
	// changed. It is called with the generator locked: it must not block.
	OnEvent func(trigger, sessionID string)

	live    map[string]*life
	last    time.Time
	carry   float64
	n       uint64
	prefix  string
	created int
}

type life struct {
	answered bool
	stuck    bool
	outcome  string
	deadline time.Time
	talk     time.Duration
}

// NewTraffic returns a generator for s, deterministic for a seed.
func NewTraffic(s *Server, seed uint64) *Traffic {
	return &Traffic{s: s, rng: rand.New(rand.NewPCG(seed, seed+1)), CallsPerMinute: 60, Speed: 1,
		live: map[string]*life{}, prefix: fmt.Sprintf("v1.us.%x", seed)}
}

// Run steps the generator every tick until ctx is done.
func (t *Traffic) Run(ctx context.Context, tick time.Duration) {
	tk := time.NewTicker(tick)
	defer tk.Stop()
	t.Step(time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tk.C:
			t.Step(now)
		}
	}
}

// Created is the number of calls generated so far.
func (t *Traffic) Created() int { t.mu.Lock(); defer t.mu.Unlock(); return t.created }

// Live is the number of calls in progress.
func (t *Traffic) Live() int { t.mu.Lock(); defer t.mu.Unlock(); return len(t.live) }

// Step advances the simulation to now: new calls arrive, due calls move on.
func (t *Traffic) Step(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.last.IsZero() {
		t.carry += now.Sub(t.last).Minutes() * t.CallsPerMinute
	} else {
		t.carry = 1
	}
	t.last = now
	for ; t.carry >= 1; t.carry-- {
		t.start(now)
	}
	// In a fixed order, so that a seed makes the same traffic every time.
	for _, id := range slices.Sorted(maps.Keys(t.live)) {
		l := t.live[id]
		if now.Before(l.deadline) || l.stuck {
			continue
		}
		if !l.answered && l.outcome == "answered" {
			l.answered = true
			l.deadline = now.Add(l.talk)
			t.s.Update(id, func(c *cometchat.Call) { answer(c, now) })
			t.event("call_started", id)
			continue
		}
		var status string
		t.s.Update(id, func(c *cometchat.Call) { t.finish(c, l.outcome, now); status = c.Status })
		t.event(finalTriggers[status], id)
		delete(t.live, id)
	}
}

// finalTriggers name the webhook trigger of each final status.
var finalTriggers = map[string]string{"ended": "call_ended", "busy": "call_busy", "canceled": "call_cancelled",
	"cancelled": "call_cancelled", "rejected": "call_rejected", "unanswered": "call_unanswered"}

func (t *Traffic) event(trigger, id string) {
	if t.OnEvent != nil && trigger != "" {
		t.OnEvent(trigger, id)
	}
}

// Burst starts n calls at once at now, as when exactly a page of calls
// arrives between two page requests.
func (t *Traffic) Burst(n int, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for range n {
		t.start(now)
	}
}

// FinishAll ends every call in progress at now.
func (t *Traffic) FinishAll(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range slices.Sorted(maps.Keys(t.live)) {
		l := t.live[id]
		t.s.Update(id, func(c *cometchat.Call) {
			if l.outcome == "answered" && !l.answered {
				answer(c, now)
			}
			t.finish(c, l.outcome, now)
		})
		delete(t.live, id)
	}
}

func (t *Traffic) scaled(d time.Duration) time.Duration {
	if t.Speed > 0 {
		d = time.Duration(float64(d) / t.Speed)
	}
	return d
}

func (t *Traffic) start(now time.Time) {
	r := t.rng
	t.n++
	t.created++
	c := cometchat.Call{
		SessionID:   fmt.Sprintf("%s.%d", t.prefix, t.n),
		Type:        pick(r, []string{"audio", "video"}, []float64{0.55, 0.45}),
		Status:      "initiated",
		Initiator:   fmt.Sprintf("user%d", r.IntN(500)),
		InitiatedAt: now.Unix(),
	}
	group := r.Float64() < 0.3
	if group {
		c.ReceiverType, c.Receiver = "group", fmt.Sprintf("group%d", r.IntN(40))
		c.Mode = pick(r, []string{"call", "meet", "presenter"}, []float64{0.4, 0.4, 0.2})
	} else {
		c.ReceiverType, c.Receiver = "user", fmt.Sprintf("user%d", r.IntN(500))
		c.Mode = pick(r, []string{"call", "meet"}, []float64{0.9, 0.1})
	}
	invited := 1
	if group {
		invited = 2 + r.IntN(6)
	}
	c.Participants = append(c.Participants, cometchat.Participant{UID: c.Initiator, State: "ongoing"})
	for i := range invited {
		c.Participants = append(c.Participants, cometchat.Participant{UID: fmt.Sprintf("%s-m%d", c.Receiver, i), State: "unanswered"})
	}
	outcome := pick(r, []string{"answered", "rejected", "unanswered", "canceled", "busy"}, []float64{0.68, 0.1, 0.12, 0.08, 0.02})
	ring := t.scaled(time.Duration(2+r.IntN(12)) * time.Second)
	// Mostly short calls, some long ones: a log-normal around 40s.
	talk := time.Duration(math.Exp(r.NormFloat64()*1.1+math.Log(40))) * time.Second
	if r.Float64() < 0.03 {
		talk = time.Duration(10+r.IntN(50)) * time.Minute
	}
	t.live[c.SessionID] = &life{outcome: outcome, deadline: now.Add(ring), talk: t.scaled(max(talk, time.Second)),
		stuck: t.Stuck > 0 && r.Float64() < t.Stuck}
	t.s.Put(c)
	t.event("call_initiated", c.SessionID)
}

// answer: the call connects; the initiator and some invitees join.
func answer(c *cometchat.Call, now time.Time) {
	c.Status, c.StartedAt = "ongoing", now.Unix()
	for i := range c.Participants {
		p := &c.Participants[i]
		// Every other group invitee joins; 1:1 receivers always do.
		if i == 0 || c.ReceiverType == "user" || i%2 == 1 {
			p.State, p.IsJoined, p.JoinedAt = "ongoing", true, now.Unix()
			p.DeviceID = fmt.Sprintf("dev-%s-%d", p.UID, i)
		}
	}
}

func (t *Traffic) finish(c *cometchat.Call, outcome string, now time.Time) {
	r := t.rng
	c.EndedAt = now.Unix()
	switch outcome {
	case "answered":
		c.Status = "ended"
		joined := 0
		for i := range c.Participants {
			p := &c.Participants[i]
			if !p.IsJoined {
				continue
			}
			joined++
			p.State, p.LeftAt = "ended", now.Unix()
			mins := float64(p.LeftAt-p.JoinedAt)/60 + r.Float64()/60
			if c.Type == "video" {
				p.VideoMinutes = mins
			} else {
				p.AudioMinutes = mins
			}
			p.DurationMinutes = mins
			c.AudioMinutes += p.AudioMinutes
			c.VideoMinutes += p.VideoMinutes
		}
		// One joined user in twenty was on two devices: one more entry.
		if r.Float64() < 0.05 && joined > 0 {
			dup := c.Participants[0]
			dup.DeviceID += "-b"
			c.Participants = append(c.Participants, dup)
			c.AudioMinutes += dup.AudioMinutes
			c.VideoMinutes += dup.VideoMinutes
			joined++
		}
		c.TotalParticipants = int64(joined)
		// The call-level minutes come in both shapes the reference shows:
		// mostly the wall-clock length of the call, as in its examples,
		// sometimes the participants' sum, as its prose says.
		if r.Float64() < 0.7 {
			length := float64(c.EndedAt-c.StartedAt) / 60
			if c.Type == "video" {
				c.AudioMinutes, c.VideoMinutes = 0, length
			} else {
				c.AudioMinutes, c.VideoMinutes = length, 0
			}
		}
		c.HasTranscription = r.Float64() < 0.2
		if (c.Type == "video" || c.ReceiverType == "group") && r.Float64() < 0.3 {
			c.HasRecording = true
			length := float64(c.EndedAt-c.StartedAt) / 60
			for k := range 1 + r.IntN(2) {
				c.Recordings = append(c.Recordings, cometchat.Recording{
					RID: fmt.Sprintf("rec-%s-%d", c.SessionID, k), DurationMinutes: length * (0.3 + 0.6*r.Float64()),
					StartTime: c.StartedAt, EndTime: c.EndedAt,
					URL: fmt.Sprintf("https://recordings.invalid/%s-%d.mp4", c.SessionID, k),
				})
			}
		}
	default:
		c.Status = outcome
		if outcome == "canceled" && r.Float64() < 0.4 {
			c.Status = "cancelled" // the SDK's spelling
		}
		c.TotalParticipants = 0
		for i := range c.Participants {
			p := &c.Participants[i]
			switch {
			case i == 0:
				p.State = "ended"
			case outcome == "rejected" && i == 1:
				p.State = "rejected"
			default:
				p.State = "unanswered"
			}
		}
	}
	if t.Poisoned > 0 && r.Float64() < t.Poisoned {
		c.AudioMinutes = []float64{math.Inf(1), math.NaN(), 1e308}[r.IntN(3)]
	}
	if t.Undated > 0 && r.Float64() < t.Undated {
		c.InitiatedAt, c.StartedAt, c.EndedAt = 0, 0, 0
	}
}

// SeedHistory adds n final calls initiated between from and to, as history
// that was there before an exporter started.
func (t *Traffic) SeedHistory(n int, from, to time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	span := to.Sub(from)
	for i := range n {
		at := from.Add(time.Duration(float64(span) * float64(i) / float64(max(n, 1))))
		t.start(at)
		id := fmt.Sprintf("%s.%d", t.prefix, t.n)
		l := t.live[id]
		delete(t.live, id)
		t.s.Update(id, func(c *cometchat.Call) {
			if l.outcome == "answered" {
				answer(c, at.Add(5*time.Second))
			}
			t.finish(c, l.outcome, at.Add(5*time.Second+l.talk))
		})
	}
}

func pick(r *rand.Rand, vals []string, weights []float64) string {
	x := r.Float64()
	for i, w := range weights {
		if x < w {
			return vals[i]
		}
		x -= w
	}
	return vals[len(vals)-1]
}
