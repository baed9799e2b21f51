package ingress_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/ingress"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/publisher"
	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/dedupe/memdedupe"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/jpglo"
)

// BenchmarkCallback is the whole ingress path for a jpglo pay-in (HTTP,
// verify, decode, dedupe, JetStream publish with PubAck on a real embedded
// server, raw record), with an in-memory dedupe store so that only
// ingress's own work and NATS are measured. Run with -benchmem; compare
// allocs/op before and after a change. Every event is signed, as in
// production; BenchmarkCallbackUnsigned is the same path without the
// signature, so the two give its share of a callback.
func BenchmarkCallback(b *testing.B) { benchCallback(b, testenv.EventSigner(b), nil) }

// BenchmarkCallbackUnsigned is BenchmarkCallback with event signing disabled.
func BenchmarkCallbackUnsigned(b *testing.B) { benchCallback(b, nil, nil) }

// BenchmarkCallbackRedis is BenchmarkCallback with the production dedupe
// store: Redis (a real redis-server) opened as ingress opens it
// (OpenDedupe: batched Check and Record), so the Redis client's share of a
// callback is in the number. Its batches wait up to 200 µs for company, so
// it runs 64 callbacks at once (as a loaded ingress sees them) rather than
// one per core, which would measure mostly that wait.
func BenchmarkCallbackRedis(b *testing.B) {
	b.SetParallelism(32)
	cfg := &config.Config{Redis: config.Redis{URL: testenv.StartRedis(b).URL}}
	dd, _, closeStore, err := ingress.OpenDedupe(context.Background(), cfg, nil, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer closeStore()
	benchCallback(b, testenv.EventSigner(b), dd)
}

// benchCallback runs the callback path with dd as the dedupe store (nil:
// an in-memory one).
func benchCallback(b *testing.B, signer *events.Signer, dd publisher.Deduper) {
	if dd == nil {
		dd = publisher.StoreDeduper{Store: memdedupe.New(memdedupe.Config{})}
	}
	n := testenv.StartNATS(b)
	js, _ := jetstream.New(n.Connect(b))
	cfg := &config.Config{Accounts: []providers.Account{{ID: "glo-in", Provider: "jpglo", Keys: providers.Keys{"merchant_id": "1", "secret": seedKey}, Currency: "INR"}}}
	cfg.Ingress.BodyLimit = 64 << 10
	cfg.Ingress.PublishTimeout = config.Duration(5 * time.Second)
	if err := natsbus.EnsureStreams(context.Background(), js, cfg.NATS); err != nil {
		b.Fatal(err)
	}
	srv, err := ingress.New(ingress.Deps{Config: cfg, JS: js, Providers: registry.Inbound(),
		Dedupe: dd, Signer: signer,
		// Production logs JSON to a pipe; a terminal's text output is not what is measured.
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		client := ts.Client()
		for pb.Next() {
			order := fmt.Sprintf("B%d", seq.Add(1))
			params := map[string]any{"order_no": "P" + order, "mch_order_no": order, "status": "success",
				"apply_amount": 10000, "real_amount": 10000, "pay_type": "pix", "timestamp": 1656945134}
			params["sign"] = jpglo.Sign(params, seedKey)
			body := fmt.Sprintf(`{"order_no":%q,"mch_order_no":%q,"status":"success","apply_amount":10000,"real_amount":10000,"pay_type":"pix","timestamp":1656945134,"sign":%q}`,
				"P"+order, order, params["sign"])
			resp, err := client.Post(ts.URL+"/v1/callbacks/jpglo/glo-in/payin", "application/json", bytes.NewBufferString(body))
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
}
