package billing

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func zone(t *testing.T, name string) *time.Location {
	loc, err := time.LoadLocation(name)
	require.NoError(t, err)
	return loc
}

func name(loc *time.Location) string { return loc.String() }

func TestPeriod(t *testing.T) {
	berlin, newYork := zone(t, "Europe/Berlin"), zone(t, "America/New_York")
	for _, tc := range []struct {
		name       string
		day        int
		loc        *time.Location
		at         time.Time
		start, end time.Time
	}{
		{"day 1, mid-month", 1, time.UTC, time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC),
			time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)},
		{"day 1, the first second", 1, time.UTC, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
			time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)},
		{"day 1, the last second", 1, time.UTC, time.Date(2026, 2, 28, 23, 59, 59, 0, time.UTC),
			time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"day 15, before it", 15, time.UTC, time.Date(2026, 1, 14, 23, 59, 59, 0, time.UTC),
			time.Date(2025, 12, 15, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)},
		{"day 15, on it", 15, time.UTC, time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC),
			time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC), time.Date(2026, 2, 15, 0, 0, 0, 0, time.UTC)},
		{"day 28 in February", 28, time.UTC, time.Date(2028, 2, 29, 10, 0, 0, 0, time.UTC), // a leap year
			time.Date(2028, 2, 28, 0, 0, 0, 0, time.UTC), time.Date(2028, 3, 28, 0, 0, 0, 0, time.UTC)},
		{"day 28 in a 31-day month", 28, time.UTC, time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC),
			time.Date(2026, 1, 28, 0, 0, 0, 0, time.UTC), time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC)},
		{"Berlin, the zone's midnight not UTC's", 1, berlin, time.Date(2026, 2, 28, 23, 30, 0, 0, time.UTC),
			time.Date(2026, 3, 1, 0, 0, 0, 0, berlin), time.Date(2026, 4, 1, 0, 0, 0, 0, berlin)},
		{"Berlin, across the spring change (743 hours)", 15, berlin, time.Date(2026, 3, 29, 12, 0, 0, 0, berlin),
			time.Date(2026, 3, 15, 0, 0, 0, 0, berlin), time.Date(2026, 4, 15, 0, 0, 0, 0, berlin)},
		{"New York, across the autumn change", 1, newYork, time.Date(2026, 11, 1, 1, 30, 0, 0, newYork),
			time.Date(2026, 11, 1, 0, 0, 0, 0, newYork), time.Date(2026, 12, 1, 0, 0, 0, 0, newYork)},
		{"New York, one second before the boundary", 1, newYork, time.Date(2026, 12, 1, 4, 59, 59, 0, time.UTC),
			time.Date(2026, 11, 1, 0, 0, 0, 0, newYork), time.Date(2026, 12, 1, 0, 0, 0, 0, newYork)},
		{"New York, one second after", 1, newYork, time.Date(2026, 12, 1, 5, 0, 1, 0, time.UTC),
			time.Date(2026, 12, 1, 0, 0, 0, 0, newYork), time.Date(2027, 1, 1, 0, 0, 0, 0, newYork)},
		{"December to January", 10, time.UTC, time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC),
			time.Date(2026, 12, 10, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 10, 0, 0, 0, 0, time.UTC)},
	} {
		p := Plan{Day: tc.day, Zone: name(tc.loc)}
		start, end := p.Period(tc.at)
		assert.True(t, start.Equal(tc.start), "%s: start %s, want %s", tc.name, start, tc.start)
		assert.True(t, end.Equal(tc.end), "%s: end %s, want %s", tc.name, end, tc.end)
		assert.False(t, tc.at.Before(start) || !tc.at.Before(end), "%s: the period holds the time", tc.name)
	}
	p := Plan{Day: 15, Zone: "Europe/Berlin"}
	start, end := p.Period(time.Date(2026, 3, 20, 0, 0, 0, 0, berlin))
	assert.Equal(t, 31*24*time.Hour-time.Hour, end.Sub(start), "a month long in the zone: an hour short across the spring change")
}

func TestParse(t *testing.T) {
	p, err := Parse(Settings{})
	require.NoError(t, err)
	assert.False(t, p.Enabled(), "no settings, no plan")
	p, err = Parse(Settings{IncludedAudio: "10000"})
	require.NoError(t, err)
	assert.Equal(t, Plan{Day: 1, Zone: "UTC", Minutes: MinutesCall, IncludedAudio: 10000}, p, "the defaults: day 1, UTC, call-level minutes")
	p, err = Parse(Settings{Day: "15", Zone: "Europe/Berlin", Minutes: "participant", IncludedTotal: "2500.5"})
	require.NoError(t, err)
	assert.Equal(t, 15, p.Day)
	assert.Equal(t, "Europe/Berlin", p.Zone)
	assert.Equal(t, 2500.5, p.IncludedTotal)
	for s, want := range map[Settings]string{
		{Day: "29"}:             `billing_day: want a day of the month from 1 to 28 (a later day would not exist in every month), got "29"`,
		{Day: "0"}:              `billing_day: want a day of the month from 1 to 28 (a later day would not exist in every month), got "0"`,
		{Zone: "Local"}:         `billing_time_zone: want an IANA time zone such as Europe/Berlin or UTC, got "Local"`,
		{Zone: "Mars/Base"}:     `billing_time_zone: want an IANA time zone such as Europe/Berlin or UTC, got "Mars/Base"`,
		{Minutes: "both"}:       `billing_minutes: want call (the call's totalAudioMinutes and totalVideoMinutes) or participant (the sum over its participants), got "both"`,
		{IncludedVideo: "-1"}:   `included_video_minutes: want a number of minutes, 0 or more, got "-1"`,
		{IncludedAudio: "NaN"}:  `included_audio_minutes: want a number of minutes, 0 or more, got "NaN"`,
		{IncludedTotal: "+Inf"}: `included_minutes: want a number of minutes, 0 or more, got "+Inf"`,
		{IncludedTotal: "100", IncludedAudio: "50"}: "included_minutes (a pool shared by audio and video) and included_audio_minutes or included_video_minutes both set: a plan has one or the other",
	} {
		_, err := Parse(s)
		if assert.Error(t, err, "%+v", s) {
			assert.Equal(t, want, err.Error())
		}
	}
}
