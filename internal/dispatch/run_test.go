package dispatch

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/config"
)

// TestRunReturnsHTTPError: a listener that fails stops the dispatcher, and
// Run says so rather than delivering on without its health and admin side.
func TestRunReturnsHTTPError(t *testing.T) {
	h := newHarness(t)
	cfg := &config.Config{AdminToken: adminToken, NATS: config.NATS{URL: h.n.URL, Replicas: 1},
		Subscribers: []config.Subscriber{sub(t, "ledger", "http://127.0.0.1:1/")}, EventSigning: h.cfg.EventSigning}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close() // Serve fails at once
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), cfg, RunOptions{Listener: ln, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}()
	select {
	case err := <-done:
		if err == nil || !strings.HasPrefix(err.Error(), "http: ") {
			t.Fatalf("Run = %v, want the HTTP server's error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run went on with its HTTP server failed")
	}
}
