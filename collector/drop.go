package collector

import (
	"fmt"
	"strings"

	"github.com/cometchat-exporter/cometchat-exporter/accountant"
)

// LabelDrop names the call label dimensions that /metrics leaves out
// (--collector.drop-labels): the series of label sets that differ only in
// them are summed into one, whose dropped labels are empty, which
// Prometheus stores as no label at all. Sums of counters and of histogram
// buckets are exact, so every figure stays exact, only less finely split.
type LabelDrop struct {
	CallType, Mode, ReceiverType bool
}

// DroppableLabels are the labels LabelDrop can leave out.
var DroppableLabels = []string{"call_type", "mode", "receiver_type"}

// ParseLabelDrop reads a comma-separated list of DroppableLabels.
func ParseLabelDrop(list string) (LabelDrop, error) {
	var d LabelDrop
	for _, name := range strings.Split(list, ",") {
		switch name = strings.TrimSpace(name); name {
		case "":
		case "call_type":
			d.CallType = true
		case "mode":
			d.Mode = true
		case "receiver_type":
			d.ReceiverType = true
		default:
			return LabelDrop{}, fmt.Errorf("%q is not a label that can be dropped (%s)", name, strings.Join(DroppableLabels, ", "))
		}
	}
	return d, nil
}

func (d LabelDrop) key(lb accountant.Labels) accountant.Labels {
	if d.CallType {
		lb.CallType = ""
	}
	if d.Mode {
		lb.Mode = ""
	}
	if d.ReceiverType {
		lb.ReceiverType = ""
	}
	return lb
}

// Apply returns s with its call label sets merged by what d keeps; s
// itself is not changed. With nothing to drop it returns s. The collector
// applies it (Options.DropLabels) to every snapshot it collects.
func (d LabelDrop) Apply(s *accountant.Snapshot) *accountant.Snapshot {
	if d == (LabelDrop{}) || s == nil {
		return s
	}
	out := *s
	out.Totals = make(map[accountant.Labels]*accountant.Totals, len(s.Totals))
	for lb, t := range s.Totals {
		k := d.key(lb)
		if out.Totals[k] == nil {
			out.Totals[k] = &accountant.Totals{Calls: map[string]uint64{}, Participants: map[string]uint64{}}
		}
		addTotals(out.Totals[k], t)
	}
	out.Active = make(map[accountant.Labels]accountant.Active, len(s.Active))
	for lb, a := range s.Active {
		k := d.key(lb)
		sum := out.Active[k]
		sum.Initiated += a.Initiated
		sum.Ongoing += a.Ongoing
		sum.Participants += a.Participants
		out.Active[k] = sum
	}
	out.Exemplars = make(map[accountant.Labels]*accountant.Exemplars, len(s.Exemplars))
	for lb, e := range s.Exemplars {
		k := d.key(lb)
		if out.Exemplars[k] == nil {
			out.Exemplars[k] = &accountant.Exemplars{Calls: map[string]accountant.Exemplar{}}
		}
		newestExemplars(out.Exemplars[k], e)
	}
	return &out
}

// addTotals adds src into dst.
func addTotals(dst, src *accountant.Totals) {
	for k, v := range src.Calls {
		dst.Calls[k] += v
	}
	for k, v := range src.Participants {
		dst.Participants[k] += v
	}
	dst.AudioSeconds += src.AudioSeconds
	dst.VideoSeconds += src.VideoSeconds
	dst.ParticipantAudioSeconds += src.ParticipantAudioSeconds
	dst.ParticipantVideoSeconds += src.ParticipantVideoSeconds
	dst.CallsRecorded += src.CallsRecorded
	dst.CallsTranscribed += src.CallsTranscribed
	dst.Recordings += src.Recordings
	dst.RecordingSeconds += src.RecordingSeconds
	addHistogram(&dst.Duration, &src.Duration)
	addHistogram(&dst.ParticipantsPerCall, &src.ParticipantsPerCall)
}

func addHistogram(dst, src *accountant.Histogram) {
	if len(dst.Buckets) < len(src.Buckets) {
		dst.Buckets = append(dst.Buckets, make([]uint64, len(src.Buckets)-len(dst.Buckets))...)
	}
	for i, v := range src.Buckets {
		dst.Buckets[i] += v
	}
	dst.Count += src.Count
	dst.Sum += src.Sum
	if len(src.Native) > 0 && dst.Native == nil {
		dst.Native = map[int]uint64{}
	}
	for i, c := range src.Native {
		dst.Native[i] += c
	}
	dst.NativeZero += src.NativeZero
}

// newestExemplars keeps, per series, the exemplar of the call counted last.
func newestExemplars(dst, src *accountant.Exemplars) {
	newer := func(a, b accountant.Exemplar) bool { return a.SessionID == "" || b.At.After(a.At) }
	for st, e := range src.Calls {
		if newer(dst.Calls[st], e) {
			dst.Calls[st] = e
		}
	}
	if len(dst.Duration) < len(src.Duration) {
		dst.Duration = append(dst.Duration, make([]accountant.Exemplar, len(src.Duration)-len(dst.Duration))...)
	}
	for i, e := range src.Duration {
		if e.SessionID != "" && newer(dst.Duration[i], e) {
			dst.Duration[i] = e
		}
	}
}
