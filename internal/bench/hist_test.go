package bench

import (
	"sync"
	"testing"
	"time"
)

func TestBucketsRoundTrip(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 123456789, 1 << 42} {
		lo, hi := bucketBounds(bucketOf(v))
		if v < lo || v > hi {
			t.Errorf("value %d in bucket [%d, %d]", v, lo, hi)
		}
		if v >= exactBelow && float64(hi-lo+1) > float64(v)/64+1 {
			t.Errorf("bucket of %d is [%d, %d]: wider than 1/64 of the value", v, lo, hi)
		}
	}
	// Buckets tile the range: each starts one past the previous end.
	for i := 1; i < histBuckets; i++ {
		_, prevHi := bucketBounds(i - 1)
		lo, _ := bucketBounds(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ends at %d", i, lo, prevHi)
		}
	}
}

func TestQuantiles(t *testing.T) {
	tests := []struct {
		name   string
		values []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"single", []time.Duration{42}, 0.99, 42},
		{"exact small values: median of 1..100", seq(1, 100, 1), 0.5, 50},
		{"exact small values: p99 of 1..100", seq(1, 100, 1), 0.99, 99},
		{"max is exact", seq(1, 100, 1), 1, 100},
		{"q=0 is the minimum", seq(5, 100, 1), 0, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h Histogram
			for _, v := range tc.values {
				h.Record(v)
			}
			if got := h.Quantile(tc.q); got != tc.want {
				t.Fatalf("Quantile(%v) = %v, want %v", tc.q, got, tc.want)
			}
			if h.Count() != uint64(len(tc.values)) {
				t.Fatalf("Count = %d, want %d", h.Count(), len(tc.values))
			}
		})
	}
}

func TestQuantilesWithinBucketPrecision(t *testing.T) {
	var h Histogram
	// 1 µs .. 10 ms in 1 µs steps: 10,000 values.
	for _, v := range seq(time.Microsecond, 10*time.Millisecond, time.Microsecond) {
		h.Record(v)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5 * time.Millisecond}, {0.99, 9900 * time.Microsecond}, {0.999, 9990 * time.Microsecond}} {
		got := h.Quantile(c.q)
		if got < c.want || float64(got) > float64(c.want)*(1+1.0/64) {
			t.Errorf("Quantile(%v) = %v, want %v (+1/64)", c.q, got, c.want)
		}
	}
	if h.Mean() != 5000500*time.Nanosecond {
		t.Errorf("Mean = %v, want 5.0005ms", h.Mean())
	}
	if h.Max() != 10*time.Millisecond {
		t.Errorf("Max = %v", h.Max())
	}
}

func TestRecordConcurrentAndMerge(t *testing.T) {
	var a, b Histogram
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				a.Record(time.Duration(w*1000 + i))
			}
		}()
	}
	wg.Wait()
	b.Record(-time.Second) // negative counts as zero
	b.Record(time.Hour)
	a.Merge(&b)
	if a.Count() != 8002 {
		t.Fatalf("Count = %d, want 8002", a.Count())
	}
	if a.Max() != time.Hour {
		t.Fatalf("Max = %v, want 1h", a.Max())
	}
	if got := a.Quantile(0.0001); got != 0 {
		t.Fatalf("minimum = %v, want 0 (the negative value)", got)
	}
}

func seq(from, to, step time.Duration) []time.Duration {
	var out []time.Duration
	for v := from; v <= to; v += step {
		out = append(out, v)
	}
	return out
}
