package bench

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram is a concurrent, log-linear bucketed latency histogram in the
// spirit of HdrHistogram: values below 128 ns are exact; above, every
// power-of-two octave is split into 64 linear sub-buckets, so a recorded
// value is known to within 1/64 (1.6 %) of itself. 2,432 buckets (19 KiB)
// cover 0 to 2^43 ns (about 2.4 hours); longer values land in the last bucket.
//
// Record is lock-free (one atomic add per value plus max tracking), so many
// load-generator workers can share one Histogram.
type Histogram struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64
	max    atomic.Uint64
}

const (
	subBits     = 6                // 64 sub-buckets per octave
	subCount    = 1 << subBits     // 64
	exactBelow  = 2 * subCount     // 128: values below are their own bucket
	maxExp      = 43 - subBits - 1 // octaves above exactBelow: 2^7 .. 2^43
	histBuckets = exactBelow + maxExp*subCount
)

// bucketOf maps a value in ns to its bucket index.
func bucketOf(v uint64) int {
	if v < exactBelow {
		return int(v)
	}
	// shift so that v>>shift is in [64, 128): the top 7 bits of v.
	shift := bits.Len64(v) - (subBits + 1)
	idx := exactBelow + (shift-1)*subCount + int(v>>uint(shift)) - subCount
	if idx >= histBuckets {
		return histBuckets - 1
	}
	return idx
}

// bucketBounds returns the smallest and largest value of bucket idx.
func bucketBounds(idx int) (lo, hi uint64) {
	if idx < exactBelow {
		return uint64(idx), uint64(idx)
	}
	shift := uint((idx-exactBelow)/subCount + 1)
	m := uint64((idx-exactBelow)%subCount + subCount)
	return m << shift, (m+1)<<shift - 1
}

// Record adds one observation; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(d)
	}
	h.counts[bucketOf(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Merge adds every observation of o to h.
func (h *Histogram) Merge(o *Histogram) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c > 0 {
			h.counts[i].Add(c)
		}
	}
	h.n.Add(o.n.Load())
	h.sum.Add(o.sum.Load())
	for {
		m, v := h.max.Load(), o.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Count is the number of observations.
func (h *Histogram) Count() uint64 { return h.n.Load() }

// Max is the largest observation, exactly.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Mean is the exact mean of the observations (0 when empty).
func (h *Histogram) Mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}

// Quantile returns the value at quantile q (0 < q ≤ 1): the upper bound of
// the bucket holding the ceil(q·n)-th smallest observation, capped at Max,
// the HdrHistogram convention ("no observation at this rank was slower").
// It returns 0 when the histogram is empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	if rank < 1 {
		rank = 1
	}
	if rank > n {
		rank = n
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			_, hi := bucketBounds(i)
			if m := h.max.Load(); hi > m {
				hi = m
			}
			return time.Duration(hi)
		}
	}
	return h.Max()
}
