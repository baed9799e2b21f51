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
func TestMinimalHandlerStoresOnceAndAcks(t *testing.T) {
	for _, sign := range []bool{false, true} {
		t.Run(map[bool]string{false: "unsigned", true: "signed"}[sign], func(t *testing.T) {
			testStoresOnceAndAcks(t, MinimalStream, func(ctx context.Context, addr, natsURL string) error {
				return ServeMinimal(ctx, addr, natsURL, sign)
			})
		})
	}
}

func testStoresOnceAndAcks(t *testing.T, stream string, serve func(ctx context.Context, addr, natsURL string) error) {
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
	const distinct = 40
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
}
