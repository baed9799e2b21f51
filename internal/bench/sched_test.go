package bench

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestPlan(t *testing.T) {
	tests := []struct {
		name  string
		plan  Plan
		n     int64
		at    int64
		atDur time.Duration
	}{
		{"1000/s for 2s", Plan{1000, 2 * time.Second}, 2000, 1500, 1500 * time.Millisecond},
		{"fractional rate", Plan{2.5, 2 * time.Second}, 5, 3, 1200 * time.Millisecond},
		{"zero rate sends nothing", Plan{0, time.Second}, 0, 0, 0},
		{"zero duration sends nothing", Plan{100, 0}, 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.plan.N(); got != tc.n {
				t.Fatalf("N = %d, want %d", got, tc.n)
			}
			if tc.plan.Rate > 0 {
				if got := tc.plan.At(tc.at); got != tc.atDur {
					t.Fatalf("At(%d) = %v, want %v", tc.at, got, tc.atDur)
				}
			}
		})
	}
}

// TestRunOpenSendsEveryRequestOnceAtItsDueTime checks the schedule: each
// index once, due times exactly start + i/rate, errors counted.
func TestRunOpenSendsEveryRequestOnceAtItsDueTime(t *testing.T) {
	plan := Plan{Rate: 2000, Duration: 100 * time.Millisecond}
	var mu sync.Mutex
	due := map[int64]time.Time{}
	res := RunOpen(context.Background(), plan, 4, func(_ context.Context, i int64, d time.Time) error {
		mu.Lock()
		defer mu.Unlock()
		if _, dup := due[i]; dup {
			t.Errorf("request %d sent twice", i)
		}
		due[i] = d
		if i%10 == 0 {
			return errors.New("boom")
		}
		return nil
	})
	if res.Sent != 200 || int64(len(due)) != 200 || res.Latency.Count() != 200 {
		t.Fatalf("sent %d, distinct %d, recorded %d; want 200 each", res.Sent, len(due), res.Latency.Count())
	}
	if res.Errors != 20 || res.OK != 180 || res.FirstErr != "boom" {
		t.Fatalf("errors %d ok %d first %q; want 20, 180, boom", res.Errors, res.OK, res.FirstErr)
	}
	start := due[0]
	for i := int64(0); i < 200; i++ {
		if got, want := due[i].Sub(start), plan.At(i); got != want {
			t.Fatalf("request %d due at +%v, want +%v", i, got, want)
		}
	}
}

// TestRunOpenCountsQueueingAsLatency is the coordinated-omission check: one
// worker whose requests take 5 ms, offered 1 request/ms. A closed-loop tool
// would report ~5 ms for every request; measured from the due time, request
// i waits for the i before it, so the slowest latency is at least
// 50 × 5 ms − 49 × 1 ms = 201 ms.
func TestRunOpenCountsQueueingAsLatency(t *testing.T) {
	res := RunOpen(context.Background(), Plan{Rate: 1000, Duration: 50 * time.Millisecond}, 1,
		func(context.Context, int64, time.Time) error {
			time.Sleep(5 * time.Millisecond)
			return nil
		})
	if res.Sent != 50 {
		t.Fatalf("sent %d, want 50", res.Sent)
	}
	if res.Latency.Max() < 201*time.Millisecond {
		t.Fatalf("max latency %v: queueing behind slow requests was not counted", res.Latency.Max())
	}
	if res.Late < 40 {
		t.Fatalf("late = %d, want most of the 50 requests started late", res.Late)
	}
}

func TestRunClosedCountsEveryRequest(t *testing.T) {
	var mu sync.Mutex
	seen := map[int64]bool{}
	res := RunClosed(context.Background(), 50*time.Millisecond, 3, func(_ context.Context, i int64, _ time.Time) error {
		mu.Lock()
		seen[i] = true
		mu.Unlock()
		time.Sleep(time.Millisecond)
		return nil
	})
	if res.Sent == 0 || res.Sent != int64(len(seen)) || res.Latency.Count() != uint64(res.Sent) || res.OK != res.Sent {
		t.Fatalf("sent %d, distinct %d, recorded %d, ok %d", res.Sent, len(seen), res.Latency.Count(), res.OK)
	}
	if res.Throughput() <= 0 {
		t.Fatal("zero throughput")
	}
}
