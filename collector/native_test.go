package collector

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cometchat-exporter/cometchat-exporter/accountant"
)

// protoFamilies scrapes a handler in protobuf and decodes every family,
// each in one message.
func protoFamilies(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	srv := httptest.NewServer(h)
	defer srv.Close()
	_, body := scrape(t, srv.URL, acceptProm3Proto, "")
	dec := expfmt.NewDecoder(bytes.NewReader(body), expfmt.NewFormat(expfmt.TypeProtoDelim))
	out := map[string]*dto.MetricFamily{}
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err == io.EOF {
			return out
		} else {
			require.NoError(t, err)
		}
		require.NotContains(t, out, mf.GetName(), "one message per family")
		out[mf.GetName()] = mf
	}
}

// decodeSpans turns protobuf spans and deltas back into counts by index.
func decodeSpans(h *dto.Histogram) map[int]uint64 {
	out := map[int]uint64{}
	idx, count, k := int32(0), int64(0), 0
	for _, span := range h.GetPositiveSpan() {
		idx += span.GetOffset()
		for range span.GetLength() {
			count += h.GetPositiveDelta()[k]
			k++
			out[int(idx)] = uint64(count)
			idx++
		}
	}
	return out
}

// Each mode of --collector.histograms in protobuf: native buckets exactly
// the ledger's, classic buckets only where the mode keeps them, the same
// count and sum; and a histogram whose native buckets do not hold all its
// calls stays classic.
func TestHistogramModes(t *testing.T) {
	s := fullSnapshot("a", 12)
	lb := accountant.Labels{CallType: "audio", Mode: "call", ReceiverType: "user"}
	d := &s.Totals[lb].Duration
	d.Native[3]++ // keep the count in step: one call more, in native bucket 3 (about 1.3 s)
	d.Buckets[0]++
	d.Count++
	d.Sum += 1.3
	partial := accountant.Labels{CallType: "video", Mode: "meet", ReceiverType: "group"}
	s.Totals[partial].Duration.Count++ // one call the native buckets lack
	for _, tc := range []struct {
		mode            HistogramMode
		classic, native bool
	}{
		{ClassicHistograms, true, false},
		{NativeHistograms, false, true},
		{BothHistograms, true, true},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			e := NewExposition()
			e.Options.Histograms = tc.mode
			e.Update(s)
			fams := protoFamilies(t, e.Handler(prometheus.NewRegistry(), nil))
			var checked int
			for _, m := range fams["cometchat_call_duration_seconds"].Metric {
				h := m.GetHistogram()
				labels := map[string]string{}
				for _, l := range m.Label {
					labels[l.GetName()] = l.GetValue()
				}
				want := s.Totals[accountant.Labels{CallType: labels["call_type"], Mode: labels["mode"], ReceiverType: labels["receiver_type"]}].Duration
				assert.Equal(t, want.Count, h.GetSampleCount())
				assert.Equal(t, want.Sum, h.GetSampleSum())
				if labels["mode"] == "meet" && labels["call_type"] == "video" && labels["receiver_type"] == "group" {
					assert.Nil(t, h.Schema, "native buckets short of the count: classic only")
					assert.Len(t, h.Bucket, len(accountant.DurationBuckets))
					continue
				}
				assert.Equal(t, tc.native, h.Schema != nil, "native")
				assert.Equal(t, tc.classic, len(h.Bucket) > 0, "classic buckets")
				if tc.native {
					assert.Equal(t, int32(accountant.NativeSchema), h.GetSchema())
					assert.Equal(t, want.Native, decodeSpans(h))
					assert.Equal(t, want.NativeZero, h.GetZeroCount())
				}
				checked++
			}
			assert.Equal(t, 11, checked)
		})
	}
}

// What a mode does to the text exposition's series: native histograms
// show only their count, sum and +Inf bucket there.
func TestSeriesPerAppByHistogramMode(t *testing.T) {
	s := fullSnapshot("a", 12)
	assert.Equal(t, 705, seriesWith(t, Options{Histograms: ClassicHistograms}, s))
	assert.Equal(t, 705, seriesWith(t, Options{Histograms: BothHistograms}, s), "both: the text keeps the classic buckets")
	assert.Equal(t, 705-12*(len(accountant.DurationBuckets)+len(accountant.ParticipantBuckets)), seriesWith(t, Options{Histograms: NativeHistograms}, s))
}

// What a Prometheus scraping native histograms stores per app: one series
// per native histogram (the figures of the table in docs/scaling.md).
func TestNativeSeriesInPrometheus(t *testing.T) {
	stored := func(opts Options, s *accountant.Snapshot) int {
		e := NewExposition()
		e.Options = opts
		e.Update(s)
		n := 0
		for _, mf := range protoFamilies(t, e.Handler(prometheus.NewRegistry(), nil)) {
			for _, m := range mf.Metric {
				switch h := m.GetHistogram(); {
				case h == nil:
					n++
				case h.Schema != nil:
					n++ // a native histogram is one series
				default:
					n += len(h.Bucket) + 3 // the buckets, +Inf, sum and count
				}
			}
		}
		return n
	}
	assert.Equal(t, 705, stored(Options{}, fullSnapshot("a", 12)))
	assert.Equal(t, 345, stored(Options{Histograms: NativeHistograms}, fullSnapshot("a", 12)))
	assert.Equal(t, 105, stored(Options{Histograms: NativeHistograms, DropLabels: LabelDrop{Mode: true, ReceiverType: true}}, fullSnapshot("a", 12)))
}

func TestParseHistogramMode(t *testing.T) {
	for i, name := range HistogramModes {
		m, err := ParseHistogramMode(name)
		require.NoError(t, err)
		assert.Equal(t, HistogramMode(i), m)
	}
	_, err := ParseHistogramMode("exponential")
	assert.Error(t, err)
}
