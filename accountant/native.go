package accountant

import (
	"math"
	"sort"
)

// Native histogram buckets, kept beside the classic ones so that
// /metrics can serve either (collector --collector.histograms). The schema
// is 3: each power of two is split into 8 buckets, a bucket's upper bound
// being 2^(i/8), as client_golang's native histograms count them. A value
// of zero or less goes to the zero bucket.
const NativeSchema = 3

// nativeBounds are the fractions of a power of two where schema 3's
// buckets end, as math.Frexp returns them: 2^(j/8 - 1) for j = 0..7.
var nativeBounds = func() []float64 {
	b := make([]float64, 1<<NativeSchema)
	for j := range b {
		b[j] = math.Pow(2, float64(j)/float64(len(b))-1)
	}
	return b
}()

// nativeIndex is the index of the native bucket holding v > 0.
func nativeIndex(v float64) int {
	frac, exp := math.Frexp(v)
	return sort.SearchFloat64s(nativeBounds, frac) + (exp-1)*len(nativeBounds)
}

// observeNative counts v into the native buckets.
func (h *Histogram) observeNative(v float64) { h.nativeAdd(v, 1) }

// nativeCount is the number of observations in the native buckets.
func (h *Histogram) nativeCount() uint64 {
	n := h.NativeZero
	for _, c := range h.Native {
		n += c
	}
	return n
}

// FillNative gives a histogram from a state file written before native
// buckets were kept the native buckets its classic ones imply: each
// classic bucket's calls at its upper bound, those above the last bound
// at twice it. The count and sum are exact; only where those earlier
// calls sit within their classic bucket is lost. Calls counted since are
// observed natively as they come.
func (h *Histogram) FillNative(bounds []float64) {
	if h.Count == 0 || h.nativeCount() > 0 {
		return
	}
	var below uint64
	for i, c := range h.Buckets {
		if c > 0 && i < len(bounds) {
			h.nativeAdd(bounds[i], c)
			below += c
		}
	}
	if h.Count > below && len(bounds) > 0 {
		h.nativeAdd(2*bounds[len(bounds)-1], h.Count-below)
	}
}

// nativeAdd counts n observations of v (zero or less: the zero bucket).
func (h *Histogram) nativeAdd(v float64, n uint64) {
	if v <= 0 {
		h.NativeZero += n
		return
	}
	if h.Native == nil {
		h.Native = map[int]uint64{}
	}
	h.Native[nativeIndex(v)] += n
}

// fillNative fills the native buckets of both histograms (see
// Histogram.FillNative).
func (t *Totals) fillNative() {
	t.Duration.FillNative(DurationBuckets)
	t.ParticipantsPerCall.FillNative(ParticipantBuckets)
}

// NativeCount is the number of observations in the native buckets; it
// equals Count in a histogram that keeps them.
func (h *Histogram) NativeCount() uint64 { return h.nativeCount() }
