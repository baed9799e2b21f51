package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/dedupestore"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/ops"
	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/internal/retrigger"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

// RunOptions adjust Run for embedding (devstack, tests).
type RunOptions struct {
	Log *slog.Logger
	// Listener, when set, is served instead of listening on cfg.Reconciler.Listen.
	Listener net.Listener
	// Registry receives the metrics (default a new one with Go and process collectors).
	Registry *prometheus.Registry
	// Listening is called with the address once the HTTP side is up.
	Listening func(addr string)
	// DrainTimeout bounds each teardown step (default 30 s).
	DrainTimeout time.Duration
}

// Run is the reconciler as a whole, as cmd/reconciler runs it: NATS, the
// streams and PAYHOOK_RECONCILE, the dedupe store (Redis or NATS KV), the
// retrigger marks, the provider clients, the HTTP side (/healthz, /readyz,
// /metrics, admin API) and Reconciler.Run, until ctx ends. A bad redis.url
// is returned as a *config.Error.
//
// Teardown order (reverse of start-up), once ctx is cancelled (SIGTERM):
// stop the HTTP server (no new watches or UTR submissions; in-flight
// requests finish), drain the reconciler (stop pulling watches, finish
// in-flight polls and save their outcome), close the dedupe store, drain and
// close NATS.
func Run(ctx context.Context, cfg *config.Config, o RunOptions) error {
	if cfg.NATS.URL == "" {
		return &config.Error{Key: "nats.url", Msg: "required for the reconciler"}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = 30 * time.Second
	}
	if o.Registry == nil {
		o.Registry = ops.NewRegistry()
	}
	signer, err := cfg.EventSigning.Signer("reconciler")
	if err != nil {
		return err
	}
	eventKeys, err := closerKeys(cfg.EventSigning)
	if err != nil {
		return err
	}
	if cfg.EventSigning.Disabled {
		o.Log.Warn(config.DisabledWarning)
	}
	provs := registry.All()
	nc, js, err := natsbus.Open(ctx, cfg.NATS, "payhook-reconciler", o.Log)
	if err != nil {
		return err
	}
	defer nc.Drain()
	store, marks, err := openStores(ctx, cfg, js, provs, o.Log)
	if err != nil {
		return err
	}
	defer store.Store.Close()

	r, err := New(Deps{
		Config: cfg, JS: js, Store: store.Store, References: store.Store,
		Providers: provs,
		Retrigger: marks, Signer: signer, EventKeys: eventKeys, Registry: o.Registry, Log: o.Log,
	})
	if err != nil {
		return err
	}
	ln := o.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Reconciler.Listen); err != nil {
			return fmt.Errorf("listen %s: %w", cfg.Reconciler.Listen, err)
		}
	}
	return r.serve(ctx, ln, o)
}

// openStores ensures PAYHOOK_RECONCILE and opens the dedupe store and the
// retrigger marks (nil when unavailable: only the origin label of resent
// callbacks depends on them).
func openStores(ctx context.Context, cfg *config.Config, js jetstream.JetStream, provs *providers.Set, log *slog.Logger) (*dedupestore.Opened, *retrigger.Marks, error) {
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := EnsureQueue(sctx, js, cfg.NATS); err != nil {
		return nil, nil, err
	}
	store, err := dedupestore.Open(sctx, cfg, js)
	if err != nil {
		return nil, nil, err
	}
	marks, err := retrigger.Open(sctx, js, retrigger.DefaultTTL, cfg.NATS.Replicas, provs)
	if err != nil {
		log.Warn("retrigger marks unavailable; resent callbacks will carry origin callback", "err", err)
		marks = nil
	}
	log.Info("dedupe store", "kind", store.Kind)
	return store, marks, nil
}

// serve runs the HTTP side on ln and the reconciler until ctx ends or
// either stops (the first to stop stops both), then stops the HTTP server
// before draining the reconciler. It returns the first error.
func (r *Reconciler) serve(ctx context.Context, ln net.Listener, o RunOptions) error {
	var inflight ops.Inflight
	// The default write timeout (60 s) covers a UTR submission, which waits
	// for the provider up to 25 s.
	srv := ops.NewServer(inflight.Wrap(r.Handler(o.Registry)), ops.DefaultTimeouts)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	rctx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(rctx) }()
	o.Log.Info("reconciler listening", "addr", ln.Addr().String())
	if o.Listening != nil {
		o.Listening(ln.Addr().String())
	}

	first := ops.FirstStop(ctx, serveErr, runErr)
	dctx, dcancel := context.WithTimeout(context.Background(), o.DrainTimeout)
	defer dcancel()
	if err := ops.Shutdown(dctx, srv, &inflight); err != nil && first == nil {
		first = fmt.Errorf("http shutdown: %w", err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) && first == nil {
		first = err
	}
	stopRun()
	if err := <-runErr; err != nil && first == nil {
		first = err
	}
	o.Log.Info("reconciler stopped")
	return first
}

// closerKeys are the keys the closer verifies events under: the configured
// public keys and the reconciler's own private key's public half, so a
// reconciler needs no public key of its own configured. Nil when signing is
// disabled.
func closerKeys(s config.EventSigning) ([]events.PublicKey, error) {
	if s.Disabled {
		return nil, nil
	}
	var keys []events.PublicKey
	if len(s.PublicKeys) > 0 {
		var err error
		if keys, err = s.PublicKeyList("reconciler"); err != nil {
			return nil, err
		}
	}
	k, err := events.ParsePrivateKey(s.PrivateKey)
	if err != nil {
		return nil, &config.Error{Key: "event_signing.private_key", Msg: err.Error()}
	}
	return append(keys, k.Public()), nil
}
