package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Plan is an open-loop arrival schedule: Rate requests per second, evenly
// spaced, for Duration. Request i is due at start + At(i) whatever happened
// to earlier requests, which is what keeps slow responses from hiding
// latency (no coordinated omission: Gil Tene's "How NOT to measure latency").
type Plan struct {
	Rate     float64
	Duration time.Duration
}

// N is the number of requests the plan sends: floor(Rate × Duration).
func (p Plan) N() int64 {
	if p.Rate <= 0 || p.Duration <= 0 {
		return 0
	}
	return int64(p.Rate * p.Duration.Seconds())
}

// At is the offset from the start at which request i is due: i / Rate.
func (p Plan) At(i int64) time.Duration {
	return time.Duration(float64(i) * float64(time.Second) / p.Rate)
}

// Result is what a load phase measured.
type Result struct {
	Sent     int64         // requests started
	OK       int64         // requests whose check passed
	Errors   int64         // transport errors or failed checks
	Late     int64         // open loop: requests that started over 1 ms after they were due
	Elapsed  time.Duration // first send to last completion
	Latency  *Histogram    // per request: completion − due time (open) or − start (closed)
	FirstErr string        // the first error seen, for the report
}

// Throughput is completed requests (OK or not) per second of Elapsed.
func (r Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Sent) / r.Elapsed.Seconds()
}

// Do sends request i; due is when it was scheduled. It returns nil when the
// response is what the target promises (e.g. the provider's ack).
type Do func(ctx context.Context, i int64, due time.Time) error

type tally struct {
	ok, errs, late atomic.Int64
	once           sync.Once
	first          string
}

func (t *tally) add(err error) {
	if err == nil {
		t.ok.Add(1)
		return
	}
	t.errs.Add(1)
	t.once.Do(func() { t.first = err.Error() })
}

// RunOpen sends plan.N() requests through `workers` concurrent senders,
// request i handed out at its due time. When every worker is busy, due
// requests wait in a queue and their waiting counts as latency, exactly as a
// provider's callbacks would wait. Latency is measured from the due time,
// not from when a worker got to it.
func RunOpen(ctx context.Context, plan Plan, workers int, do Do) Result {
	n := plan.N()
	h := &Histogram{}
	var t tally
	type job struct {
		i   int64
		due time.Time
	}
	// The queue holds every request that can be due, so the scheduler never
	// blocks on slow workers and never delays a due time.
	queue := make(chan job, min(n, 1<<20)+1)
	var wg sync.WaitGroup
	for w := 0; w < max(workers, 1); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range queue {
				if time.Since(j.due) > time.Millisecond {
					t.late.Add(1)
				}
				err := do(ctx, j.i, j.due)
				h.Record(time.Since(j.due))
				t.add(err)
			}
		}()
	}
	start := time.Now()
	var sent int64
	for i := int64(0); i < n && ctx.Err() == nil; i++ {
		due := start.Add(plan.At(i))
		if d := time.Until(due); d > 0 {
			sleepUntil(ctx, due)
		}
		queue <- job{i: i, due: due}
		sent++
	}
	close(queue)
	wg.Wait()
	return Result{Sent: sent, OK: t.ok.Load(), Errors: t.errs.Load(), Late: t.late.Load(),
		Elapsed: time.Since(start), Latency: h, FirstErr: t.first}
}

// sleepUntil sleeps until t. time.Sleep's granularity on Linux is ~50 µs
// plus scheduling delay; at high rates the scheduler simply hands out every
// request that became due since it last woke, so the average rate is exact
// even when individual sleeps overshoot.
func sleepUntil(ctx context.Context, t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}

// RunClosed runs `workers` senders back to back for d: each sends its next
// request as soon as the previous answered. It measures the maximum
// sustainable throughput; its latencies are service times, not what a
// provider would see under a fixed arrival rate.
func RunClosed(ctx context.Context, d time.Duration, workers int, do Do) Result {
	h := &Histogram{}
	var t tally
	var next atomic.Int64
	ctx2, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < max(workers, 1); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx2.Err() == nil {
				i := next.Add(1) - 1
				s := time.Now()
				err := do(ctx, i, s)
				h.Record(time.Since(s))
				t.add(err)
			}
		}()
	}
	wg.Wait()
	return Result{Sent: next.Load(), OK: t.ok.Load(), Errors: t.errs.Load(),
		Elapsed: time.Since(start), Latency: h, FirstErr: t.first}
}
