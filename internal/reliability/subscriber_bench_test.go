package reliability_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/e2e"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers/jpglo"
	"github.com/payhook/payhook/pkg/providersim"
)

// BenchmarkOneSubscriberReplicas measures what one subscriber gets from 1
// and from 2 dispatcher replicas: a backlog of events stored while no
// dispatcher ran, drained to one subscriber that answers in 20 ms (a
// typical webhook endpoint), at the default concurrency (16), and from
// one replica at concurrency 64: the knob that does raise it. The figure
// is events delivered per second from the first dispatcher's start to the
// last delivery. Pinning (docs/dispatcher.md) serves a subscriber from one
// replica at a time, so the second replica is expected to add nothing:
// this benchmark is the measurement behind that. Run:
//
//	go test ./internal/reliability -run '^$' -bench OneSubscriberReplicas -benchtime 1x
func BenchmarkOneSubscriberReplicas(b *testing.B) {
	const backlog = 3000
	for _, tc := range []struct{ replicas, concurrency int }{{1, 16}, {2, 16}, {1, 64}} {
		replicas := tc.replicas
		b.Run(fmt.Sprintf("replicas=%d/concurrency=%d", tc.replicas, tc.concurrency), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				c := e2e.Start(b, e2e.Options{Start: []e2e.Service{e2e.Ingress}, TimeScale: 0.0001,
					Configure: func(cfg *config.Config) { cfg.Subscribers[0].Concurrency = tc.concurrency }})
				sub := c.Subscriber("")
				sub.SetMode(e2e.Slow(20 * time.Millisecond))
				ctx := context.Background()
				for i := range backlog {
					if _, err := c.Sim.CreateOrder(ctx, providersim.OrderSpec{Provider: jpglo.Name, Account: "glo-in",
						Kind: events.KindPayin, Outcome: providersim.Succeeded, MerchantOrderID: fmt.Sprintf("B%06d", i)}); err != nil {
						b.Fatal(err)
					}
				}
				deadline := time.Now().Add(2 * time.Minute)
				for stored(b, c) < backlog {
					if time.Now().After(deadline) {
						b.Fatalf("only %d of %d events stored", stored(b, c), backlog)
					}
					time.Sleep(100 * time.Millisecond)
				}
				b.StartTimer()
				start := time.Now()
				if err := c.StartService(e2e.Dispatcher); err != nil {
					b.Fatal(err)
				}
				if replicas == 2 {
					if _, err := c.StartInstance(b, e2e.Dispatcher, nil); err != nil {
						b.Fatal(err)
					}
				}
				for sub.Stats().Unique < backlog {
					if time.Since(start) > 5*time.Minute {
						b.Fatalf("delivered %d of %d", sub.Stats().Unique, backlog)
					}
					time.Sleep(20 * time.Millisecond)
				}
				took := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(backlog)/took.Seconds(), "events/s")
				b.Logf("%d replica(s): %d events to one subscriber (20 ms per answer, concurrency %d) in %.2f s: %.0f events/s",
					replicas, backlog, tc.concurrency, took.Seconds(), float64(backlog)/took.Seconds())
			}
		})
	}
}

func stored(tb testing.TB, c *e2e.Cluster) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.JS().Stream(ctx, natsbus.StreamEvents)
	if err != nil {
		tb.Fatal(err)
	}
	return s.CachedInfo().State.Msgs
}
