package collector

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/cometchat-exporter/cometchat-exporter/accountant"
)

// HistogramMode is how /metrics serves the call histograms
// (cometchat_call_duration_seconds, cometchat_call_participants;
// --collector.histograms): with classic buckets (17 and 15 series per
// label set, in every format), as native histograms of schema 3 (one
// series each in Prometheus; only protobuf carries the buckets, the text
// formats show the count and sum), or both (a Prometheus scraping native
// histograms keeps the native ones, any other scraper the classic ones).
type HistogramMode int

// The histogram modes.
const (
	ClassicHistograms HistogramMode = iota
	NativeHistograms
	BothHistograms
)

// HistogramModes are the names of the modes, by value.
var HistogramModes = []string{"classic", "native", "both"}

func (m HistogramMode) String() string { return HistogramModes[m] }

// ParseHistogramMode reads a mode by name.
func ParseHistogramMode(s string) (HistogramMode, error) {
	if i := slices.Index(HistogramModes, s); i >= 0 {
		return HistogramMode(i), nil
	}
	return 0, fmt.Errorf("%q is not one of %s", s, strings.Join(HistogramModes, ", "))
}

// callHistogram is a call histogram in the mode: the classic one, with the
// native buckets added (both) or in place of the classic ones (native).
// A histogram whose native buckets do not hold all its calls (none do
// yet for the API latencies) stays classic.
func callHistogram(mode HistogramMode, d *prometheus.Desc, h *accountant.Histogram, bounds []float64, created time.Time, lv ...string) prometheus.Metric {
	m := constHistogram(d, h, bounds, created, lv...)
	if mode == ClassicHistograms || h.NativeCount() != h.Count {
		return m
	}
	pb := &dto.Metric{}
	if err := m.Write(pb); err != nil {
		return m
	}
	hist := pb.Histogram
	hist.Schema, hist.ZeroThreshold, hist.ZeroCount = proto.Int32(accountant.NativeSchema), proto.Float64(0), proto.Uint64(h.NativeZero)
	hist.PositiveSpan, hist.PositiveDelta = nativeSpans(h.Native)
	if len(hist.PositiveSpan) == 0 {
		// An empty span marks a histogram native when it holds no call yet.
		hist.PositiveSpan = []*dto.BucketSpan{{Offset: proto.Int32(0), Length: proto.Uint32(0)}}
	}
	if mode == NativeHistograms {
		hist.Bucket = nil
	}
	return nativeMetric{desc: d, pb: pb}
}

// nativeSpans encodes native bucket counts by index as protobuf spans
// (runs of consecutive buckets, each offset from the end of the one
// before) and deltas (each count minus the one before it).
func nativeSpans(buckets map[int]uint64) ([]*dto.BucketSpan, []int64) {
	idx := make([]int, 0, len(buckets))
	for i, c := range buckets {
		if c > 0 {
			idx = append(idx, i)
		}
	}
	slices.Sort(idx)
	var (
		spans  []*dto.BucketSpan
		deltas []int64
		prev   int64
		next   int // the index after the last one encoded
	)
	for k, i := range idx {
		if k == 0 || i != next {
			offset := i - next
			if k == 0 {
				offset = i
			}
			spans = append(spans, &dto.BucketSpan{Offset: proto.Int32(int32(offset)), Length: proto.Uint32(0)})
		}
		*spans[len(spans)-1].Length++
		c := int64(buckets[i])
		deltas = append(deltas, c-prev)
		prev, next = c, i+1
	}
	return spans, deltas
}

// nativeMetric is a histogram written from its protobuf.
type nativeMetric struct {
	desc *prometheus.Desc
	pb   *dto.Metric
}

func (m nativeMetric) Desc() *prometheus.Desc { return m.desc }

func (m nativeMetric) Write(out *dto.Metric) error {
	out.Label, out.Histogram = m.pb.Label, m.pb.Histogram
	return nil
}
