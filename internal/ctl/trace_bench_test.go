package ctl

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/reconcile"
	"github.com/payhook/payhook/internal/trace"
	"github.com/payhook/payhook/pkg/events"
)

// traceEvents is how many events BenchmarkTrace stores in the index before
// timing traces. The target is 1,000,000 indexed events (make bench passes it;
// filling takes minutes); the default keeps a plain -bench run short.
var traceEvents = flag.Int("trace-events", 20000, "events stored in PAYHOOK_TRACE before BenchmarkTrace times traces")

// BenchmarkTrace times payhookctl trace of one order among -trace-events
// stored ones, each with its event, its raw request and a delivery attempt
// in the index (three entries per event), on a real NATS with file storage.
func BenchmarkTrace(b *testing.B) {
	n := *traceEvents
	s := newStack(b, "accounts:\n  - {id: glo-in, provider: jpglo, merchant_id: \"1\", secret: \"k\", currency: INR}\n")
	ctx := context.Background()
	if err := trace.Ensure(ctx, s.js, config.NATS{Replicas: 1, TraceMaxAge: config.Duration(24 * time.Hour), TraceMaxBytes: 8 << 30}); err != nil {
		b.Fatal(err)
	}
	// The reconciler's queue and watch records, empty: a trace looks the
	// order's watch up in both, for each kind.
	if _, err := reconcile.EnsureQueue(ctx, s.js, config.NATS{Replicas: 1}); err != nil {
		b.Fatal(err)
	}
	if _, err := reconcile.WatchKV(ctx, s.js, config.NATS{Replicas: 1}, time.Hour); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for i := range n {
		order := fmt.Sprintf("B-%d", i)
		e := events.Event{Provider: "jpglo", Account: "glo-in", Kind: events.KindPayin, Status: events.StatusSucceeded, MerchantOrderID: order}
		id := e.ID()
		key := trace.OrderIndexKey("jpglo", "glo-in", order)
		now := time.Now().UTC()
		for _, m := range []struct {
			key string
			e   trace.Entry
		}{
			{key, trace.Entry{Type: trace.TypeEvent, At: now, EventID: id, Kind: "payin", EventStatus: "succeeded", Origin: "callback", EventSeq: uint64(i + 1)}},
			{trace.EventIndexKey(id), trace.Entry{Type: trace.TypeRaw, At: now, RawStream: "PAYHOOK_RAW", RawSeq: uint64(i + 1), EventID: id, Verdict: "accepted", Status: 200}},
			{key, trace.Entry{Type: trace.TypeAttempt, At: now, EventID: id, Subscriber: "ledger", Attempt: 1, HTTPStatus: 200, LatencyMS: 3.2, Outcome: "delivered"}},
		} {
			if _, err := s.js.PublishMsgAsync(trace.Message(m.key, m.e, "")); err != nil {
				b.Fatal(err)
			}
		}
		if i%1000 == 999 { // under the client's 4,000 outstanding async publishes
			select {
			case <-s.js.PublishAsyncComplete():
			case <-time.After(time.Minute):
				b.Fatal("publishing the index stalled")
			}
		}
		if i%100000 == 99999 {
			b.Logf("stored %d events (%s)", i+1, time.Since(start).Round(time.Second))
		}
	}
	<-s.js.PublishAsyncComplete()
	st, err := s.js.Stream(ctx, trace.Stream)
	if err != nil {
		b.Fatal(err)
	}
	info, _ := st.Info(ctx)
	b.Logf("index: %d events, %d entries, %d MiB, filled in %s", n, info.State.Msgs, info.State.Bytes>>20, time.Since(start).Round(time.Second))
	g := newCommon(s.env())
	g.configPath = s.cfgPath
	if err := g.connect(ctx); err != nil {
		b.Fatal(err)
	}
	defer g.close()
	b.ResetTimer()
	var worst time.Duration
	for range b.N {
		order := fmt.Sprintf("B-%d", rand.IntN(n))
		t0 := time.Now()
		res, err := Trace(ctx, g, "jpglo", "glo-in", order)
		worst = max(worst, time.Since(t0))
		if err != nil || len(res.Events) != 1 || len(res.Raw) != 1 || len(res.Deliveries) != 1 {
			b.Fatalf("trace %s: %v %+v", order, err, res)
		}
	}
	b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
}
