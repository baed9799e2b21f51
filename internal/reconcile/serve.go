package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/dedupestore"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/ops"
	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/internal/retrigger"
	"github.com/payhook/payhook/pkg/events"
)

// ServeOptions adjust Serve for embedding (devstack, tests).
type ServeOptions struct {
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

// Serve is the reconciler as a whole, as cmd/reconciler runs it: NATS, the
// streams and PAYHOOK_RECONCILE, the dedupe store (Redis or NATS KV), the
// retrigger marks, the provider clients, the HTTP side (/healthz, /readyz,
// /metrics, admin API) and Run, until ctx ends. A bad redis.url is returned
// as a *config.Error.
//
// Teardown order (reverse of start-up), once ctx is cancelled (SIGTERM):
// stop the HTTP server (no new watches or UTR submissions; in-flight
// requests finish), drain the reconciler (stop pulling watches, finish
// in-flight polls and save their outcome), close the dedupe store, drain and
// close NATS.
func Serve(ctx context.Context, cfg *config.Config, o ServeOptions) error {
	if cfg.NATS.URL == "" {
		return &config.Error{Key: "nats.url", Msg: "required for the reconciler"}
	}
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = 30 * time.Second
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
		log.Warn(config.DisabledWarning)
	}
	reg := o.Registry
	if reg == nil {
		reg = ops.NewRegistry()
	}
	provs := registry.All()
	nc, js, err := natsbus.Open(ctx, cfg.NATS, "payhook-reconciler", log)
	if err != nil {
		return err
	}
	defer nc.Drain()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, err = EnsureQueue(sctx, js, cfg.NATS)
	var store *dedupestore.Opened
	if err == nil {
		store, err = dedupestore.Open(sctx, cfg, js)
	}
	var marks *retrigger.Marks
	if err == nil {
		if marks, err = retrigger.Open(sctx, js, retrigger.DefaultTTL, cfg.NATS.Replicas, provs); err != nil {
			log.Warn("retrigger marks unavailable; resent callbacks will carry origin callback", "err", err)
			marks, err = nil, nil
		}
	}
	cancel()
	if err != nil {
		return err
	}
	defer store.Store.Close()
	log.Info("dedupe store", "kind", store.Kind)

	r, err := New(Deps{
		Config: cfg, JS: js, Store: store.Store, References: store.Store,
		Providers: provs,
		Retrigger: marks, Signer: signer, EventKeys: eventKeys, Registry: reg, Log: log,
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
	var inflight ops.Inflight
	// The default write timeout (60 s) covers a UTR submission, which waits
	// for the provider up to 25 s.
	srv := ops.NewServer(inflight.Wrap(r.Handler(reg)), ops.DefaultTimeouts)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	rctx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(rctx) }()
	log.Info("reconciler listening", "addr", ln.Addr().String())
	if o.Listening != nil {
		o.Listening(ln.Addr().String())
	}

	// The first actor to stop stops all.
	var first error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		first = fmt.Errorf("http: %w", err)
		serveErr <- nil
	case err := <-runErr:
		first = err
		runErr <- nil
	}
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
	log.Info("reconciler stopped")
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
