package redisdedupe_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/dedupe/dedupetest"
	"github.com/payhook/payhook/pkg/dedupe/redisdedupe"
	"github.com/payhook/payhook/pkg/events"
)

// MustStore starts a redis-server and a store on it with cfg.
func MustStore(tb testing.TB, cfg redisdedupe.Config) *redisdedupe.Store {
	tb.Helper()
	r := testenv.StartRedis(tb)
	s, err := redisdedupe.New(r.URL, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// memory is what Redis spends on the events recorded by record(i), i < n:
// the sum of MEMORY USAGE over payhook's keys, and the growth of
// used_memory (which also counts the expires table and hash-table growth).
func memory(tb testing.TB, s *redisdedupe.Store, n int, record func(i int)) (usage, used int64) {
	tb.Helper()
	ctx, rdb := context.Background(), s.Client()
	before := usedMemory(tb, rdb)
	for i := range n {
		record(i)
	}
	used = usedMemory(tb, rdb) - before
	iter := rdb.Scan(ctx, 0, redisdedupe.DefaultPrefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		u, err := rdb.MemoryUsage(ctx, iter.Val(), 0).Result()
		if err != nil {
			tb.Fatal(err)
		}
		usage += u
	}
	if err := iter.Err(); err != nil {
		tb.Fatal(err)
	}
	return usage, used
}

func usedMemory(tb testing.TB, rdb redis.UniversalClient) int64 {
	tb.Helper()
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return n
		}
	}
	tb.Fatal("no used_memory in INFO")
	return 0
}

// shapes of tracked orders: one terminal event per order (the common case: a
// callback that succeeds), or pending then succeeded (two events, one hash).
var shapes = []struct {
	name     string
	statuses []events.Status
}{
	{"one event per order", []events.Status{events.StatusSucceeded}},
	{"pending and succeeded per order", []events.Status{events.StatusPending, events.StatusSucceeded}},
}

func recordShape(tb testing.TB, s *redisdedupe.Store, statuses []events.Status) func(int) {
	return func(i int) {
		o := dedupetest.Order(fmt.Sprintf("%016d", 1_000_000_000_000+i)) // a 16-digit merchant order id
		for _, st := range statuses {
			dedupetest.MustRecord(tb, s, dedupetest.ID(o, st), o, st)
		}
	}
}

// TestBytesPerEvent keeps the memory target: under 200 bytes of Redis
// memory per tracked event (event mark + order state), by MEMORY USAGE.
func TestBytesPerEvent(t *testing.T) {
	const n = 2000
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			s := MustStore(t, redisdedupe.Config{})
			usage, used := memory(t, s, n, recordShape(t, s, sh.statuses))
			events := float64(n * len(sh.statuses))
			t.Logf("%.1f bytes/event by MEMORY USAGE, %.1f by used_memory", float64(usage)/events, float64(used)/events)
			if per := float64(usage) / events; per >= 200 || per < 20 {
				t.Fatalf("%.1f bytes/event, want 20..200", per)
			}
		})
	}
}

// BenchmarkBytesPerEvent reports Redis memory per tracked event.
//
//	go test -run XXX -bench BytesPerEvent -benchtime 20000x ./pkg/dedupe/redisdedupe
func BenchmarkBytesPerEvent(b *testing.B) {
	for _, sh := range shapes {
		b.Run(sh.name, func(b *testing.B) {
			s := MustStore(b, redisdedupe.Config{})
			b.ResetTimer()
			usage, used := memory(b, s, b.N, recordShape(b, s, sh.statuses))
			b.StopTimer()
			events := float64(b.N * len(sh.statuses))
			b.ReportMetric(float64(usage)/events, "bytes/event")
			b.ReportMetric(float64(used)/events, "used_memory-bytes/event")
		})
	}
}

// ingressLoad runs ops Check+Record pairs, as ingress does per new callback,
// from workers goroutines, and returns pairs per second.
func ingressLoad(tb testing.TB, s *redisdedupe.Store, workers, ops int, salt string) float64 {
	tb.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Int64
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for {
				i := next.Add(1)
				if i > int64(ops) {
					return
				}
				o := dedupetest.Order(salt + strconv.FormatInt(i, 10))
				id := dedupetest.ID(o, events.StatusSucceeded)
				if _, err := s.Check(ctx, id, o); err != nil {
					failed.Add(1)
					continue
				}
				if err := s.Record(ctx, id, o, events.StatusSucceeded); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		tb.Fatalf("%d of %d operations failed", f, ops)
	}
	return float64(ops) / time.Since(start).Seconds()
}

// BenchmarkBatching compares batched and unbatched stores under the same
// parallel load (64 callbacks in flight) and reports batched/unbatched
// throughput.
//
//	go test -run XXX -bench Batching -benchtime 5x ./pkg/dedupe/redisdedupe
func BenchmarkBatching(b *testing.B) {
	const workers, ops = 64, 5000
	plain := MustStore(b, redisdedupe.Config{})
	batched := MustStore(b, redisdedupe.Config{Batch: 64, Pipelines: 2, BatchDelay: 100 * time.Microsecond})
	var sumPlain, sumBatched float64
	for i := range b.N {
		sumPlain += ingressLoad(b, plain, workers, ops, fmt.Sprintf("p%d-", i))
		sumBatched += ingressLoad(b, batched, workers, ops, fmt.Sprintf("b%d-", i))
	}
	b.ReportMetric(sumPlain/float64(b.N), "unbatched-pairs/s")
	b.ReportMetric(sumBatched/float64(b.N), "batched-pairs/s")
	b.ReportMetric(sumBatched/sumPlain, "batched/unbatched")
}
