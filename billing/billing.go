// Package billing holds an app's billing period and plan: the period in
// which each call's minutes are billed (the one in which it ended), its
// boundaries in the plan's time zone, and the minutes the plan includes.
package billing

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
	_ "time/tzdata" // zones work on an image without a zone database (FROM scratch)
)

// Which minutes count toward the plan. The API reference is ambiguous
// about what totalAudioMinutes and totalVideoMinutes measure (see the
// README): call-level takes them as reported, participant sums the
// participants' own minutes.
const (
	MinutesCall        = "call"
	MinutesParticipant = "participant"
)

// Plan is an app's billing period and included minutes. The zero Plan is
// none: no period is kept.
type Plan struct {
	// Day is the day of the month a period starts, 1 to 28, at midnight
	// in Zone.
	Day int
	// Zone is an IANA time zone name ("" is UTC); the Plan stays
	// comparable, so that a reload can tell an unchanged app.
	Zone string
	// Minutes is MinutesCall or MinutesParticipant.
	Minutes string
	// Included minutes per kind: audio, video, or a pool shared by both
	// (total); 0 when the plan does not say.
	IncludedAudio, IncludedVideo, IncludedTotal float64
}

// Enabled reports whether a billing period is kept.
func (p Plan) Enabled() bool { return p.Day != 0 }

// Period returns the billing period holding t: [start, end), the start
// day at midnight in the zone, so that a period is a calendar month long
// whatever daylight saving does to its hours.
func (p Plan) Period(t time.Time) (start, end time.Time) {
	loc := location(p.Zone)
	t = t.In(loc)
	y, m, _ := t.Date()
	start = time.Date(y, m, p.Day, 0, 0, 0, 0, loc)
	if t.Before(start) {
		start = time.Date(y, m-1, p.Day, 0, 0, 0, 0, loc)
	}
	sy, sm, _ := start.Date()
	return start, time.Date(sy, sm+1, p.Day, 0, 0, 0, 0, loc)
}

var zones sync.Map // name -> *time.Location

// location is the zone of that name, loaded once (Parse checked it).
func location(name string) *time.Location {
	if name == "" || name == "UTC" {
		return time.UTC
	}
	if l, ok := zones.Load(name); ok {
		return l.(*time.Location)
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC
	}
	zones.Store(name, l)
	return l
}

// Settings are a plan as written in a config file or in flags.
type Settings struct {
	Day, Zone, Minutes                          string
	IncludedAudio, IncludedVideo, IncludedTotal string
}

// Parse checks s and returns the plan; an empty Settings is no plan. Each
// error names the key (as in the config file) it is about.
func Parse(s Settings) (Plan, error) {
	if s == (Settings{}) {
		return Plan{}, nil
	}
	p := Plan{Day: 1, Zone: "UTC", Minutes: MinutesCall}
	if s.Day != "" {
		d, err := strconv.Atoi(s.Day)
		if err != nil || d < 1 || d > 28 {
			return Plan{}, fmt.Errorf("billing_day: want a day of the month from 1 to 28 (a later day would not exist in every month), got %q", s.Day)
		}
		p.Day = d
	}
	if s.Zone != "" {
		if _, err := time.LoadLocation(s.Zone); err != nil || s.Zone == "Local" {
			return Plan{}, fmt.Errorf("billing_time_zone: want an IANA time zone such as Europe/Berlin or UTC, got %q", s.Zone)
		}
		p.Zone = s.Zone
	}
	switch s.Minutes {
	case "":
	case MinutesCall, MinutesParticipant:
		p.Minutes = s.Minutes
	default:
		return Plan{}, fmt.Errorf("billing_minutes: want %s (the call's totalAudioMinutes and totalVideoMinutes) or %s (the sum over its participants), got %q",
			MinutesCall, MinutesParticipant, s.Minutes)
	}
	for _, f := range []struct {
		key string
		raw string
		v   *float64
	}{
		{"included_audio_minutes", s.IncludedAudio, &p.IncludedAudio},
		{"included_video_minutes", s.IncludedVideo, &p.IncludedVideo},
		{"included_minutes", s.IncludedTotal, &p.IncludedTotal},
	} {
		if f.raw == "" {
			continue
		}
		v, err := strconv.ParseFloat(f.raw, 64)
		if err != nil || v < 0 || v != v || v > 1e15 {
			return Plan{}, fmt.Errorf("%s: want a number of minutes, 0 or more, got %q", f.key, f.raw)
		}
		*f.v = v
	}
	if p.IncludedTotal > 0 && (p.IncludedAudio > 0 || p.IncludedVideo > 0) {
		return Plan{}, errors.New("included_minutes (a pool shared by audio and video) and included_audio_minutes or included_video_minutes both set: a plan has one or the other")
	}
	return p, nil
}
