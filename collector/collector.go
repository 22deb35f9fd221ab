// Package collector turns the accountant's snapshots into Prometheus
// metrics. It does no I/O: Collect reads immutable snapshots, so a scrape
// never waits on the API or on a poll.
package collector

import (
	"sort"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cometchat-exporter/cometchat-exporter/accountant"
	"github.com/cometchat-exporter/cometchat-exporter/billing"
)

var callLabels = []string{"app", "call_type", "mode", "receiver_type"}

func desc(name, help string, extra ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, append(append([]string{}, callLabels...), extra...), nil)
}

var (
	callsDesc = desc("cometchat_calls_total",
		"Calls that reached a final status, counted once each, by final status.", "status")
	audioDesc = desc("cometchat_call_audio_seconds_total",
		"Call-level totalAudioMinutes x 60 of finished calls, as the API reports it.")
	videoDesc = desc("cometchat_call_video_seconds_total",
		"Call-level totalVideoMinutes x 60 of finished calls, as the API reports it.")
	participantAudioDesc = desc("cometchat_participant_audio_seconds_total",
		"Sum over the participant entries of finished calls of their totalAudioMinutes x 60.")
	participantVideoDesc = desc("cometchat_participant_video_seconds_total",
		"Sum over the participant entries of finished calls of their totalVideoMinutes x 60.")
	participantsDesc = desc("cometchat_participants_total",
		"Participant entries of finished calls, by participant state.", "state")
	recordedDesc = desc("cometchat_calls_recorded_total",
		"Finished calls that have a recording.")
	transcribedDesc = desc("cometchat_calls_transcribed_total",
		"Finished calls that have a transcription.")
	recordingsDesc = desc("cometchat_recordings_total",
		"Recording entries of finished calls.")
	recordingSecondsDesc = desc("cometchat_recording_seconds_total",
		"Recording duration of finished calls, in seconds.")
	durationDesc = desc("cometchat_call_duration_seconds",
		"Wall-clock length (endedAt - startedAt) of ended calls.")
	callParticipantsDesc = desc("cometchat_call_participants",
		"totalParticipants (joined device entries) of finished calls.")
	activeDesc = desc("cometchat_calls_active",
		"Calls in progress now, by status.", "status")
	activeParticipantsDesc = desc("cometchat_participants_active",
		"Participants in state ongoing in calls in progress.")

	upDesc = prometheus.NewDesc("cometchat_up",
		"1 if the last poll of the Calls API succeeded, 0 otherwise.", []string{"app"}, nil)
	lastPollDesc = prometheus.NewDesc("cometchat_last_successful_poll_timestamp_seconds",
		"Unix time of the end of the last successful poll; 0 before the first.", []string{"app"}, nil)
	intervalDesc = prometheus.NewDesc("cometchat_exporter_poll_interval_seconds",
		"Configured time between polls of the Calls API.", []string{"app"}, nil)
	trackedDesc = prometheus.NewDesc("cometchat_exporter_calls_tracked",
		"Calls seen in progress and watched until they are final.", []string{"app"}, nil)
	abandonedDesc = prometheus.NewDesc("cometchat_exporter_calls_abandoned_total",
		"Tracked calls dropped uncounted because Get Call kept answering not found.", []string{"app"}, nil)
	seenDesc = prometheus.NewDesc("cometchat_exporter_calls_seen_total",
		"Distinct calls the exporter has learned from the API (counted, history or in progress), as last persisted; compare with cometchat_api_calls_listed.", []string{"app"}, nil)
	listedDesc = prometheus.NewDesc("cometchat_api_calls_listed",
		"The API's own count of the calls List Calls holds (meta.pagination.total of the last head scan); absent when the API sends none.", []string{"app"}, nil)
	anomaliesDesc = prometheus.NewDesc("cometchat_api_anomalies_total",
		"List entries against what the API reference implies, each entry once per kind while the process runs (see docs/anomalies.md).", []string{"app", "kind"}, nil)
	pagesSkippedDesc = prometheus.NewDesc("cometchat_api_pages_skipped_total",
		"List pages that kept failing and were read around; a sweep reads them again with backoff.", []string{"app"}, nil)
	recoveredDesc = prometheus.NewDesc("cometchat_exporter_state_recovered",
		"1 if the state file was unusable at start, was moved aside, and counting started fresh.", []string{"app"}, nil)
	billingMinutesDesc = prometheus.NewDesc("cometchat_billing_period_minutes",
		"Minutes of the calls that ended in the current billing period, by kind (audio, video, total), as billing_minutes chooses (call-level or participant-summed); with a billing plan only.", []string{"app", "kind"}, nil)
	billingStartDesc = prometheus.NewDesc("cometchat_billing_period_start_timestamp_seconds",
		"Start of the current billing period (billing_day at midnight in billing_time_zone).", []string{"app"}, nil)
	billingEndDesc = prometheus.NewDesc("cometchat_billing_period_end_timestamp_seconds",
		"End of the current billing period: the start of the next.", []string{"app"}, nil)
	planIncludedDesc = prometheus.NewDesc("cometchat_plan_included_minutes",
		"Minutes the plan includes per billing period, by kind (audio, video, or total for a shared pool); only the kinds configured.", []string{"app", "kind"}, nil)
	statePersistedDesc = prometheus.NewDesc("cometchat_exporter_state_persisted",
		"1 if the app's counts persist across restarts: a state file is set (--state.file) and its last write, if any, succeeded; 0 without one, or while writes fail.", []string{"app"}, nil)
	stateWriteDesc = prometheus.NewDesc("cometchat_exporter_state_last_write_success_timestamp_seconds",
		"Unix time of the last successful write of the state file; 0 before the first. While writes fail, the call counters stay at their last saved values.", []string{"app"}, nil)
	stateFailuresDesc = prometheus.NewDesc("cometchat_exporter_state_write_failures_total",
		"Failed writes of the state file.", []string{"app"}, nil)
	stateBytesDesc = prometheus.NewDesc("cometchat_exporter_state_written_bytes_total",
		"Bytes written to the state file and its journal.", []string{"app"}, nil)

	requestsDesc = prometheus.NewDesc("cometchat_exporter_api_requests_total",
		"HTTP requests to the Calls API, by endpoint and status code (none when no answer came back).",
		[]string{"app", "endpoint", "code"}, nil)
	errorsDesc = prometheus.NewDesc("cometchat_exporter_api_errors_total",
		"Failed requests and unusable data, by reason: a CometChat error code or a class such as timeout, rate_limited, http_5xx, decode.",
		[]string{"app", "reason"}, nil)
	latencyDesc = prometheus.NewDesc("cometchat_exporter_api_request_duration_seconds",
		"Duration of HTTP requests to the Calls API.", []string{"app", "endpoint"}, nil)
)

// Collector exposes the call metrics of every app.
type Collector struct {
	snapshots func() []*accountant.Snapshot
	opts      Options
}

// Options are how the collector shapes the call series.
type Options struct {
	// Histograms is how the call histograms are served (classic by default).
	Histograms HistogramMode
	// DropLabels are the call labels left out, their series summed.
	DropLabels LabelDrop
}

var _ prometheus.Collector = (*Collector)(nil)

// New returns a collector over the snapshots that f returns at each scrape.
func New(f func() []*accountant.Snapshot) *Collector {
	return &Collector{snapshots: f}
}

// With sets the options.
func (c *Collector) With(o Options) *Collector {
	c.opts = o
	return c
}

// Describe sends every descriptor.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{callsDesc, audioDesc, videoDesc, participantAudioDesc, participantVideoDesc, participantsDesc,
		recordedDesc, transcribedDesc, recordingsDesc, recordingSecondsDesc, durationDesc, callParticipantsDesc,
		activeDesc, activeParticipantsDesc, upDesc, lastPollDesc, intervalDesc, trackedDesc, abandonedDesc, recoveredDesc,
		seenDesc, listedDesc, anomaliesDesc, pagesSkippedDesc,
		statePersistedDesc, stateWriteDesc, stateFailuresDesc, stateBytesDesc,
		billingMinutesDesc, billingStartDesc, billingEndDesc, planIncludedDesc,
		requestsDesc, errorsDesc, latencyDesc} {
		ch <- d
	}
}

// Collect sends the metrics of the latest snapshots.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.snapshots() {
		if s != nil {
			collectApp(ch, c.opts.DropLabels.Apply(s), c.opts)
		}
	}
}

func collectApp(ch chan<- prometheus.Metric, s *accountant.Snapshot, opts Options) {
	mode := opts.Histograms
	gauge := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	// Call counters have counted since the ledger started; the poller's
	// own (API, state writes) since the poller did.
	counter := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- constCounter(d, v, s.Started, lv...)
	}
	statsCounter := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- constCounter(d, v, s.StatsStarted, lv...)
	}
	gauge(upDesc, b2f(s.Up), s.App)
	gauge(lastPollDesc, unixSeconds(s.LastSuccess), s.App)
	gauge(intervalDesc, s.Interval.Seconds(), s.App)
	gauge(trackedDesc, float64(s.Tracked), s.App)
	counter(abandonedDesc, float64(s.Abandoned), s.App)
	counter(seenDesc, float64(s.Seen), s.App)
	if s.Listed > 0 {
		gauge(listedDesc, float64(s.Listed), s.App)
	}
	for _, k := range accountant.AnomalyKinds {
		statsCounter(anomaliesDesc, float64(s.API.Anomalies[k]), s.App, k)
	}
	statsCounter(pagesSkippedDesc, float64(s.API.PagesSkipped), s.App)
	gauge(recoveredDesc, b2f(s.StateRecovered), s.App)
	gauge(statePersistedDesc, b2f(s.State != nil && !s.State.Failing), s.App)
	if p := s.Plan; p != nil && s.Billing.Start > 0 {
		b := s.Billing
		audio, video := b.AudioSeconds, b.VideoSeconds
		if p.Minutes == billing.MinutesParticipant {
			audio, video = b.ParticipantAudioSeconds, b.ParticipantVideoSeconds
		}
		gauge(billingMinutesDesc, audio/60, s.App, "audio")
		gauge(billingMinutesDesc, video/60, s.App, "video")
		gauge(billingMinutesDesc, (audio+video)/60, s.App, "total")
		start, end := p.Period(time.Unix(b.Start, 0))
		gauge(billingStartDesc, float64(start.Unix()), s.App)
		gauge(billingEndDesc, float64(end.Unix()), s.App)
		for _, inc := range []struct {
			kind string
			v    float64
		}{{"audio", p.IncludedAudio}, {"video", p.IncludedVideo}, {"total", p.IncludedTotal}} {
			if inc.v > 0 {
				gauge(planIncludedDesc, inc.v, s.App, inc.kind)
			}
		}
	}
	if st := s.State; st != nil {
		gauge(stateWriteDesc, unixSeconds(st.LastWrite), s.App)
		statsCounter(stateFailuresDesc, float64(st.Failures), s.App)
		statsCounter(stateBytesDesc, float64(st.WrittenBytes), s.App)
	}
	for _, k := range s.API.SortedRequestKeys() {
		statsCounter(requestsDesc, float64(s.API.Requests[k]), s.App, k.Endpoint, k.Code)
	}
	reasons := make([]string, 0, len(s.API.Errors))
	for r := range s.API.Errors {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		statsCounter(errorsDesc, float64(s.API.Errors[r]), s.App, r)
	}
	endpoints := make([]string, 0, len(s.API.Latency))
	for e := range s.API.Latency {
		endpoints = append(endpoints, e)
	}
	sort.Strings(endpoints)
	for _, e := range endpoints {
		h := s.API.Latency[e]
		ch <- constHistogram(latencyDesc, h, accountant.LatencyBuckets, s.StatsStarted, s.App, e)
	}

	// Every known label set, and every other one ever seen, gets all its
	// series, zeros included, so that increase() and rate() see the first
	// call of each (Prometheus' instrumentation guide: avoid missing
	// metrics).
	for _, lb := range labelSets(s, opts.DropLabels) {
		lv := []string{s.App, lb.CallType, lb.Mode, lb.ReceiverType}
		with := func(v string) []string { return append(append([]string{}, lv...), v) }
		a := s.Active[lb]
		gauge(activeDesc, float64(a.Initiated), with("initiated")...)
		gauge(activeDesc, float64(a.Ongoing), with("ongoing")...)
		gauge(activeParticipantsDesc, float64(a.Participants), lv...)
		t := s.Totals[lb]
		if t == nil {
			t = zero
		}
		ex := s.Exemplars[lb]
		for _, st := range accountant.FinalStatuses {
			m := constCounter(callsDesc, float64(t.Calls[st]), s.Started, with(st)...)
			if ex != nil {
				m = withExemplars(m, ex.Calls[st])
			}
			ch <- m
		}
		for _, st := range accountant.ParticipantStates {
			counter(participantsDesc, float64(t.Participants[st]), with(st)...)
		}
		counter(audioDesc, t.AudioSeconds, lv...)
		counter(videoDesc, t.VideoSeconds, lv...)
		counter(participantAudioDesc, t.ParticipantAudioSeconds, lv...)
		counter(participantVideoDesc, t.ParticipantVideoSeconds, lv...)
		counter(recordedDesc, float64(t.CallsRecorded), lv...)
		counter(transcribedDesc, float64(t.CallsTranscribed), lv...)
		counter(recordingsDesc, float64(t.Recordings), lv...)
		counter(recordingSecondsDesc, t.RecordingSeconds, lv...)
		duration := callHistogram(mode, durationDesc, &t.Duration, accountant.DurationBuckets, s.Started, lv...)
		if ex != nil {
			duration = withExemplars(duration, ex.Duration...)
		}
		ch <- duration
		ch <- callHistogram(mode, callParticipantsDesc, &t.ParticipantsPerCall, accountant.ParticipantBuckets, s.Started, lv...)
	}
}

var zero = &accountant.Totals{Calls: map[string]uint64{}, Participants: map[string]uint64{}}

// labelSets returns the known label sets (accountant.KnownLabelSets,
// without the labels drop leaves out) and
// those with totals or calls in progress, sorted so that output order is
// stable.
func labelSets(s *accountant.Snapshot, drop LabelDrop) []accountant.Labels {
	seen := map[accountant.Labels]bool{}
	var out []accountant.Labels
	for _, lb := range accountant.KnownLabelSets() {
		if lb = drop.key(lb); !seen[lb] {
			seen[lb] = true
			out = append(out, lb)
		}
	}
	for lb := range s.Totals {
		if !seen[lb] {
			seen[lb] = true
			out = append(out, lb)
		}
	}
	for lb := range s.Active {
		if !seen[lb] {
			out = append(out, lb)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.CallType != b.CallType {
			return a.CallType < b.CallType
		}
		if a.Mode != b.Mode {
			return a.Mode < b.Mode
		}
		return a.ReceiverType < b.ReceiverType
	})
	return out
}

func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// constCounter is a counter with its created timestamp, when known.
func constCounter(d *prometheus.Desc, v float64, created time.Time, lv ...string) prometheus.Metric {
	if created.IsZero() {
		return prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, lv...)
	}
	return must(prometheus.NewConstMetricWithCreatedTimestamp(d, prometheus.CounterValue, v, created, lv...))
}

// constHistogram is a histogram with its created timestamp, when known.
func constHistogram(d *prometheus.Desc, h *accountant.Histogram, bounds []float64, created time.Time, lv ...string) prometheus.Metric {
	if created.IsZero() {
		return prometheus.MustNewConstHistogram(d, h.Count, h.Sum, h.Cumulative(bounds), lv...)
	}
	return must(prometheus.NewConstHistogramWithCreatedTimestamp(d, h.Count, h.Sum, h.Cumulative(bounds), created, lv...))
}

func must(m prometheus.Metric, err error) prometheus.Metric {
	if err != nil {
		panic(err) // the descriptors and label counts are fixed in this file
	}
	return m
}

// exemplarLabel names the session id in an exemplar; never a label.
const exemplarLabel = "session_id"

// withExemplars attaches the calls' session ids to m as exemplars. An id
// OpenMetrics cannot carry (not UTF-8, or longer than its 128-rune limit
// for exemplar labels) is left out; the metric is never lost for it.
func withExemplars(m prometheus.Metric, calls ...accountant.Exemplar) prometheus.Metric {
	var exs []prometheus.Exemplar
	for _, c := range calls {
		if c.SessionID == "" || !utf8.ValidString(c.SessionID) ||
			utf8.RuneCountInString(exemplarLabel)+utf8.RuneCountInString(c.SessionID) > prometheus.ExemplarMaxRunes {
			continue
		}
		exs = append(exs, prometheus.Exemplar{Value: c.Value, Labels: prometheus.Labels{exemplarLabel: c.SessionID}, Timestamp: c.At})
	}
	if len(exs) == 0 {
		return m
	}
	if em, err := prometheus.NewMetricWithExemplars(m, exs...); err == nil {
		return em
	}
	return m
}
