package ingress

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/ops"
	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/internal/retrigger"
	"github.com/payhook/payhook/pkg/providers"
)

// RunOptions adjust Run for embedding (devstack, the benchmark, tests).
type RunOptions struct {
	Log *slog.Logger
	// Listener, when set, is served instead of listening on cfg.Ingress.Listen.
	Listener net.Listener
	// Registry receives the metrics (default a new registry with Go and process collectors).
	Registry *prometheus.Registry
	// Listening is called with the address once ingress accepts callbacks.
	Listening func(addr string)
	// DrainTimeout bounds the graceful shutdown (default 30 s).
	DrainTimeout time.Duration
}

// Run is ingress as a whole: connect to NATS, create or update the streams,
// open the dedupe store, serve callbacks until ctx ends, then drain.
// Teardown order (reverse of start-up): stop accepting callbacks and finish
// in-flight ones (each stored and acknowledged, or refused), wait for raw
// records, close the dedupe store, drain and close NATS.
func Run(ctx context.Context, cfg *config.Config, o RunOptions) error {
	if cfg.NATS.URL == "" {
		return &config.Error{Key: "nats.url", Msg: "required for ingress"}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	signer, err := cfg.EventSigning.Signer("ingress")
	if err != nil {
		return err
	}
	if cfg.EventSigning.Disabled {
		o.Log.Warn(config.DisabledWarning)
	}
	if o.Registry == nil {
		o.Registry = ops.NewRegistry()
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = 30 * time.Second
	}
	nc, js, err := natsbus.Open(ctx, cfg.NATS, "payhook-ingress", o.Log)
	if err != nil {
		return err
	}
	defer nc.Drain()
	if err := CheckBodyLimit(cfg.Ingress.BodyLimit, nc.MaxPayload()); err != nil {
		return err
	}
	dd, checks, closeDedupe, err := OpenDedupe(ctx, cfg, js, o.Log)
	if err != nil {
		return err
	}
	defer closeDedupe()
	provs := registry.All()
	marks, err := retrigger.Open(ctx, js, retrigger.DefaultTTL, cfg.NATS.Replicas, provs)
	if err != nil {
		// Only the origin label depends on it: run without.
		o.Log.Warn("retrigger marks unavailable; resent callbacks will carry origin callback", "err", err)
		marks = nil
	}
	srv, err := New(Deps{Config: cfg, JS: js, Providers: providers.With[providers.Inbound](provs), Dedupe: dd, Retrigger: marks, Signer: signer, Registry: o.Registry, Log: o.Log})
	if err != nil {
		return err
	}
	srv.MountOps(o.Registry, checks...)
	ln := o.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Ingress.Listen); err != nil {
			return fmt.Errorf("listen %s: %w", cfg.Ingress.Listen, err)
		}
	}
	o.Log.Info("ingress listening", "addr", ln.Addr().String())
	if o.Listening != nil {
		o.Listening(ln.Addr().String())
	}
	return srv.Serve(ctx, ln, o.DrainTimeout)
}
