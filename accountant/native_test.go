package accountant

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNativeIndex(t *testing.T) {
	for v, want := range map[float64]int{
		1: 0, 1.05: 1, math.Pow(2, 1.0/8): 1, math.Pow(2, 1.0/8) * 1.0001: 2,
		2: 8, 0.5: -8, 0.75: -3, 5: 19, 60: 48, 21600: 116,
	} {
		assert.Equal(t, want, nativeIndex(v), "%v", v)
	}
}

// The native buckets are client_golang's own for schema 3: the same
// observations in a native histogram of client_golang land in the same
// buckets, with the same zero bucket.
func TestNativeBucketsAreClientGolangs(t *testing.T) {
	ref := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x", Help: "x",
		NativeHistogramBucketFactor: math.Pow(2, 1.0/8), NativeHistogramZeroThreshold: prometheus.NativeHistogramZeroThresholdZero,
		NativeHistogramMaxBucketNumber: 0})
	var h Histogram
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 5000 {
		v := math.Exp(r.NormFloat64()*2 + 3) // 0.1 s to hours
		switch i % 50 {
		case 0:
			v = 0
		case 1:
			v = math.Ldexp(1, i%20-4) // a power of two: exactly on a bound
		case 2, 3, 4:
			v = float64(r.IntN(30_000)) // whole seconds, as durations are
		}
		ref.Observe(v)
		h.observe(DurationBuckets, v)
	}
	var m dto.Metric
	require.NoError(t, ref.Write(&m))
	rh := m.GetHistogram()
	require.Equal(t, int32(NativeSchema), rh.GetSchema())
	want := map[int]uint64{}
	idx, count := int32(0), int64(0)
	deltas := rh.GetPositiveDelta()
	k := 0
	for _, span := range rh.GetPositiveSpan() {
		idx += span.GetOffset()
		for range span.GetLength() {
			count += deltas[k]
			k++
			if count > 0 {
				want[int(idx)] = uint64(count)
			}
			idx++
		}
	}
	assert.Equal(t, want, h.Native)
	assert.Equal(t, rh.GetZeroCount(), h.NativeZero)
	assert.Equal(t, h.Count, h.nativeCount())
}

// A histogram from a state file written before native buckets were kept
// gets the native buckets its classic ones imply, at their upper bounds;
// one that has them is left alone.
func TestFillNative(t *testing.T) {
	h := Histogram{Buckets: make([]uint64, len(DurationBuckets)), Count: 10, Sum: 1000}
	h.Buckets[0], h.Buckets[3] = 3, 2 // 3 calls up to 5 s, 2 up to 60 s, 5 above 6 h
	h.FillNative(DurationBuckets)
	assert.Equal(t, map[int]uint64{nativeIndex(5): 3, nativeIndex(60): 2, nativeIndex(2 * 21600): 5}, h.Native)
	assert.Equal(t, uint64(10), h.nativeCount())
	h.observe(DurationBuckets, 7)
	before := h.Native[nativeIndex(7)]
	h.FillNative(DurationBuckets)
	assert.Equal(t, before, h.Native[nativeIndex(7)], "filled once")
	assert.Equal(t, h.Count, h.nativeCount())
}
