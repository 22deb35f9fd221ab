package collector

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cometchat-exporter/cometchat-exporter/accountant"
)

func TestParseLabelDrop(t *testing.T) {
	for in, want := range map[string]LabelDrop{
		"":                                  {},
		"mode":                              {Mode: true},
		"mode,receiver_type":                {Mode: true, ReceiverType: true},
		" receiver_type , call_type ":       {CallType: true, ReceiverType: true},
		"call_type,mode,receiver_type,mode": {CallType: true, Mode: true, ReceiverType: true},
	} {
		got, err := ParseLabelDrop(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"status", "app", "mode,Mode", "mode;receiver_type"} {
		_, err := ParseLabelDrop(in)
		assert.Error(t, err, in)
	}
}

// Dropping labels sums the label sets that differ only in them, exactly:
// every figure of the merged series is the sum of those it replaces, the
// newest exemplar stays, and the original snapshot is left as it was.
func TestLabelDropSumsExactly(t *testing.T) {
	s := fullSnapshot("a", 12)
	lb := func(ct, m, rt string) accountant.Labels {
		return accountant.Labels{CallType: ct, Mode: m, ReceiverType: rt}
	}
	s.Totals[lb("audio", "call", "user")].Calls["ended"] = 7
	s.Totals[lb("audio", "meet", "group")].AudioSeconds = 1.5
	s.Active = map[accountant.Labels]accountant.Active{lb("audio", "call", "user"): {Ongoing: 2, Participants: 4}, lb("audio", "meet", "group"): {Initiated: 1}}
	newest := accountant.Exemplar{SessionID: "newest", Value: 1, At: time.Unix(1_800_000_000, 0)}
	s.Exemplars[lb("audio", "presenter", "group")].Calls["ended"] = newest
	before := fmt.Sprint(s.Totals[lb("audio", "call", "user")])

	d := LabelDrop{Mode: true, ReceiverType: true}
	got := d.Apply(s)
	audio := lb("audio", "", "")
	require.Len(t, got.Totals, 2, "audio and video")
	// Summed here field by field, not with addTotals.
	var ended, rejected, joined, recorded, recordings, durationCount, duration5s uint64
	var audioS, video, pAudio, pVideo, recSeconds, durationSum float64
	for l, t := range s.Totals {
		if l.CallType != "audio" {
			continue
		}
		ended, rejected, joined = ended+t.Calls["ended"], rejected+t.Calls["rejected"], joined+t.Participants["ended"]
		audioS, video, pAudio, pVideo = audioS+t.AudioSeconds, video+t.VideoSeconds, pAudio+t.ParticipantAudioSeconds, pVideo+t.ParticipantVideoSeconds
		recorded, recordings, recSeconds = recorded+t.CallsRecorded, recordings+t.Recordings, recSeconds+t.RecordingSeconds
		durationCount, durationSum, duration5s = durationCount+t.Duration.Count, durationSum+t.Duration.Sum, duration5s+t.Duration.Buckets[0]
	}
	g := got.Totals[audio]
	require.NotNil(t, g)
	assert.Equal(t, []uint64{ended, rejected, joined}, []uint64{g.Calls["ended"], g.Calls["rejected"], g.Participants["ended"]})
	assert.Equal(t, []float64{audioS, video, pAudio, pVideo, recSeconds, durationSum},
		[]float64{g.AudioSeconds, g.VideoSeconds, g.ParticipantAudioSeconds, g.ParticipantVideoSeconds, g.RecordingSeconds, g.Duration.Sum})
	assert.Equal(t, []uint64{recorded, recordings, durationCount, duration5s},
		[]uint64{g.CallsRecorded, g.Recordings, g.Duration.Count, g.Duration.Buckets[0]})
	assert.Positive(t, ended)
	assert.Positive(t, durationCount)
	assert.Equal(t, g.Duration.Count, g.Duration.NativeCount(), "the native buckets summed too")
	assert.Equal(t, g.ParticipantsPerCall.Count, g.ParticipantsPerCall.NativeCount())
	assert.Equal(t, accountant.Active{Initiated: 1, Ongoing: 2, Participants: 4}, got.Active[audio])
	assert.Equal(t, newest, got.Exemplars[audio].Calls["ended"])
	assert.Equal(t, before, fmt.Sprint(s.Totals[lb("audio", "call", "user")]), "the snapshot is not changed")
	assert.Len(t, s.Totals, 12)
	assert.Same(t, s, LabelDrop{}.Apply(s), "nothing to drop")

	// The exposition with the labels dropped: one series where there were
	// six, and no unmerged zero series of the known label sets.
	assert.Equal(t, perApp+2*perLabelSet, seriesWith(t, Options{DropLabels: d}, s))
}

// Series per app for each setting of --collector.drop-labels (the table
// in docs/scaling.md), with the 12 label sets every app has.
func TestSeriesPerAppByLabelDrop(t *testing.T) {
	for drop, want := range map[string]int{
		"":                             705,
		"receiver_type":                381,
		"mode":                         273,
		"mode,receiver_type":           165,
		"call_type,mode,receiver_type": 111,
	} {
		d, err := ParseLabelDrop(drop)
		require.NoError(t, err)
		assert.Equal(t, want, seriesWith(t, Options{DropLabels: d}, fullSnapshot("a", 12)), "--collector.drop-labels=%s", drop)
	}
}
