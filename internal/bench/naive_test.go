package bench

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/internal/testenv"
)

// TestNaiveHandlerStoresOnceAndAcks checks that the straightforward handler
// is a fair second baseline: it verifies like ingress (a tampered callback
// is refused), answers with each provider's own ack, and stores one message
// per distinct callback (a resend is acknowledged and not stored again).
func TestNaiveHandlerStoresOnceAndAcks(t *testing.T) {
	r := testenv.StartRedis(t)
	testStoresOnceAndAcks(t, NaiveStream, func(ctx context.Context, addr, natsURL string) error {
		return ServeNaive(ctx, addr, natsURL, naiveRedisURL(r.URL))
	})
}

// TestMinimalHandlerStoresOnceAndAcks checks the same of the minimal
// durable handler: it verifies (a tampered callback is refused), answers
// each provider's ack, and stores one message per distinct callback (a
// resend inside JetStream's duplicate window is not stored again).
// The contract floor (signed, with raw records) also records every
// acknowledged request, the provider's retries included.
func TestMinimalHandlerStoresOnceAndAcks(t *testing.T) {
	for _, v := range []struct {
		name      string
		sign, raw bool
	}{{"unsigned", false, false}, {"signed", true, false}, {"floor", true, true}} {
		t.Run(v.name, func(t *testing.T) {
			js := testStoresOnceAndAcks(t, MinimalStream, func(ctx context.Context, addr, natsURL string) error {
				return ServeMinimal(ctx, addr, natsURL, v.sign, v.raw)
			})
			s, err := js.Stream(context.Background(), MinimalRawStream)
			if !v.raw {
				if err == nil {
					t.Fatalf("%s made %s", v.name, MinimalRawStream)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var msgs uint64
			testenv.Eventually(t, 5*time.Second, func() bool { // published without waiting
				info, err := s.Info(context.Background())
				if err != nil {
					return false
				}
				msgs = info.State.Msgs
				return msgs >= 2*storesOnceDistinct
			}, "raw records: want %d (every acknowledged request)", 2*storesOnceDistinct)
			if msgs != 2*storesOnceDistinct {
				t.Fatalf("%d raw records, want %d (every acknowledged request)", msgs, 2*storesOnceDistinct)
			}
		})
	}
}

// storesOnceDistinct is how many distinct callbacks testStoresOnceAndAcks
// sends, each twice.
const storesOnceDistinct = 40

// testStoresOnceAndAcks serves a baseline, sends it storesOnceDistinct
// callbacks twice each and a tampered one, checks the answers and the
// messages on stream, and returns a JetStream context on the server once
// serve has returned.
func testStoresOnceAndAcks(t *testing.T, stream string, serve func(ctx context.Context, addr, natsURL string) error) jetstream.JetStream {
	t.Helper()
	n := testenv.StartNATS(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	port := testenv.FreePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	done := make(chan error, 1)
	go func() { done <- serve(ctx, addr, n.URL) }()
	testenv.Eventually(t, 10*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	}, "handler not ready")

	g, err := NewGenerator(Accounts(), DefaultMix, "naive-")
	if err != nil {
		t.Fatal(err)
	}
	inbound := registry.Inbound()
	cl, err := NewClient("http://"+addr, 4, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const distinct = storesOnceDistinct
	for i := range distinct {
		cb, err := g.Next()
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // the provider's retry of the same callback
			resp, err := cl.Post(ctx, cb.Path, cb.Header, cb.Body)
			if err != nil {
				t.Fatal(err)
			}
			want := inbound[cb.Provider].Ack(cb.Kind).Body
			if resp.Status != http.StatusOK || !bytes.Equal(resp.Body, want) {
				t.Fatalf("callback %d (%s/%s): HTTP %d %q, want 200 %q", i, cb.Provider, cb.Kind, resp.Status, resp.Body, want)
			}
		}
	}
	cb, _ := g.Next()
	tampered := bytes.Clone(cb.Body)
	tampered[len(tampered)/2] ^= 1
	if resp, err := cl.Post(ctx, cb.Path, cb.Header, tampered); err != nil || resp.Status == http.StatusOK {
		t.Fatalf("tampered callback: %v, HTTP %d; want a refusal", err, resp.Status)
	}

	js, err := jetstream.New(n.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != distinct {
		t.Fatalf("stored %d messages, want %d (one per distinct callback)", info.State.Msgs, distinct)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	return js
}
