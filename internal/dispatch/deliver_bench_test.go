package dispatch

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/internal/trace"
	"github.com/payhook/payhook/pkg/events"
)

// BenchmarkDeliverThreeSubscribers measures the dispatcher draining a
// backlog of b.N signed events, each of its own order, to three
// subscribers on one HTTP server that answers 200 at once: one op is one
// event delivered three times (verification, three signed POSTs, three
// acks, three attempt-log entries, metrics), and every attempt must be in
// PAYHOOK_TRACE at the end. The backlog is stored and the dispatcher made
// before the timer starts. allocs/op counts the whole
// process: the embedded NATS server and the HTTP server as well as the
// dispatcher; so does cpu-ns/op, the process's CPU time per event. Run with a fixed count, e.g.
//
//	go test ./internal/dispatch -run '^$' -bench DeliverThreeSubscribers -benchmem -benchtime 3000x
func BenchmarkDeliverThreeSubscribers(b *testing.B) {
	n := testenv.StartNATS(b)
	js, err := jetstream.New(n.Connect(b))
	if err != nil {
		b.Fatal(err)
	}
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got.Add(1)
	}))
	b.Cleanup(srv.Close)
	var subs []config.Subscriber
	for i := range 3 {
		subs = append(subs, config.Subscriber{
			ID: fmt.Sprintf("s%d", i), URL: srv.URL, Secret: newSecret(b), MaxAttempts: 15,
			Timeout: config.Duration(5 * time.Second), BackoffInitial: config.Duration(time.Second),
			BackoffMax: config.Duration(time.Minute), Concurrency: 16, Start: config.StartAll,
		})
	}
	cfg := &config.Config{AdminToken: adminToken, Subscribers: subs, NATS: config.NATS{Replicas: 1},
		EventSigning: config.EventSigning{PublicKeys: []string{testenv.EventPublicKey}}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := natsbus.EnsureStreams(ctx, js, cfg.NATS); err != nil {
		b.Fatal(err)
	}
	// The attempt log's stream, which the reconciler makes in production.
	if err := trace.Ensure(ctx, js, cfg.NATS); err != nil {
		b.Fatal(err)
	}
	publishBacklog(b, js, b.N)

	// Info level, as in production: debug lines are off.
	log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	d, err := New(cfg, js, prometheus.NewRegistry(), log)
	if err != nil {
		b.Fatal(err)
	}
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cpu0 := processCPU(b)
	b.ResetTimer()
	go func() { done <- d.Run(rctx) }()
	want := int64(3 * b.N)
	deadline := time.Now().Add(time.Duration(b.N)*10*time.Millisecond + 30*time.Second)
	for got.Load() < want {
		if time.Now().After(deadline) {
			b.Fatalf("delivered %d of %d", got.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
	stop()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	// Every attempt is in the attempt log.
	var logged uint64
	for range 100 {
		s, err := js.Stream(context.Background(), trace.Stream)
		if err != nil {
			b.Fatal(err)
		}
		if logged = s.CachedInfo().State.Msgs; logged >= uint64(want) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if logged != uint64(want) {
		b.Fatalf("%d attempts in %s, want %d", logged, trace.Stream, want)
	}
}

// processCPU is the CPU time (user and system) the process has used so far:
// less sensitive than wall time to other work on a shared machine.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// publishBacklog stores n signed events, each of its own order.
func publishBacklog(b *testing.B, js jetstream.JetStream, n int) {
	b.Helper()
	signer := testenv.EventSigner(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute+time.Duration(n)*time.Millisecond)
	defer cancel()
	const window = 256
	acks := make([]jetstream.PubAckFuture, 0, window)
	wait := func() {
		for _, a := range acks {
			select {
			case <-a.Ok():
			case err := <-a.Err():
				b.Fatal(err)
			case <-ctx.Done():
				b.Fatal(ctx.Err())
			}
		}
		acks = acks[:0]
	}
	for i := range n {
		e := event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, fmt.Sprintf("bench-%07d", i))
		body, err := e.MarshalCloudEvent()
		if err != nil {
			b.Fatal(err)
		}
		h := nats.Header{}
		signer.Sign(h, e.ID(), time.Now(), body)
		h.Set(jetstream.MsgIDHeader, e.ID())
		a, err := js.PublishMsgAsync(&nats.Msg{Subject: e.Subject(), Data: body, Header: h})
		if err != nil {
			b.Fatal(err)
		}
		if acks = append(acks, a); len(acks) == window {
			wait()
		}
	}
	wait()
}
