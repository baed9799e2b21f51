package ingress

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/ops"
)

// MountOps adds /healthz, /readyz and /metrics to the server's router.
// readyz fails while NATS is unreachable or a stream is missing; extra
// checks (e.g. the dedupe store, as Degraded) are reported beside it.
func (s *Server) MountOps(reg *prometheus.Registry, extra ...ops.Check) {
	mux := http.NewServeMux()
	checks := append([]ops.Check{{Name: "nats", Fn: func(ctx context.Context) error {
		return natsbus.CheckStreams(ctx, s.js)
	}}}, extra...)
	ops.Mount(mux, reg, checks...)
	h := echo.WrapHandler(mux)
	s.echo.GET("/healthz", h)
	s.echo.GET("/readyz", h)
	s.echo.GET("/metrics", h)
}

// Serve answers on ln until ctx is cancelled, reading the streams' sizes
// every StreamUsageEvery for payhook_stream_bytes meanwhile, then drains: it stops
// accepting connections, lets every in-flight callback finish (each is
// either stored and acknowledged or refused — never half-done; bounded by
// drainTimeout), and waits for raw records to be acknowledged.
func (s *Server) Serve(ctx context.Context, ln net.Listener, drainTimeout time.Duration) error {
	var inflight ops.Inflight
	srv := ops.NewServer(inflight.Wrap(s.echo), s.Timeouts())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	uctx, stopUsage := context.WithCancel(ctx)
	defer stopUsage()
	go s.usage.Run(uctx, StreamUsageEvery)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	dctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	err := ops.Shutdown(dctx, srv, &inflight)
	s.Flush(dctx)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Timeouts are ingress's HTTP limits: ops.DefaultTimeouts, with a write
// timeout past the longest a callback may take once its headers are read:
// the body (up to the read timeout), the event's publish and, when it is
// then refused, its raw record's (publish_timeout each), and 10 s for the
// dedupe store and the rest. With the 5 s default: 30+5+5+10 = 50 s.
func (s *Server) Timeouts() ops.Timeouts {
	t := ops.DefaultTimeouts
	t.Write = t.Read + 2*s.cfg.Ingress.PublishTimeout.D() + 10*time.Second
	return t
}

// JetStream returns the JetStream handle the server publishes with.
func (s *Server) JetStream() jetstream.JetStream { return s.js }
