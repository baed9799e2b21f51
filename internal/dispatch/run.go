package dispatch

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
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/ops"
)

// RunOptions adjust Run for embedding (cmd/dispatcher, devstack, tests).
type RunOptions struct {
	Log *slog.Logger
	// Listener, when set, is served instead of listening on cfg.Dispatcher.Listen.
	Listener net.Listener
	// Registry receives the metrics (default a new one with Go and process collectors).
	Registry *prometheus.Registry
	// Listening is called with the address once the HTTP side is up.
	Listening func(addr string)
	// Reloads delivers configs to apply while running (cmd/dispatcher: the
	// file again at every SIGHUP), each by Reload.
	Reloads <-chan *config.Config
}

// Run is the dispatcher as a whole: NATS, streams, consumers, deliveries,
// and the HTTP side (/healthz, /readyz, /metrics, admin API) until ctx ends
// or one of them fails. It returns nil after a drain that ctx started, and
// the first error otherwise (the HTTP server's included).
//
// Teardown order, on SIGTERM (ctx cancelled) or a failure:
//  1. deliveries stop fetching, give held messages back to JetStream and
//     wait for the in-flight ones (bounded by the longest subscriber
//     timeout + 1s; then they are cancelled and redelivered later:
//     at-least-once);
//  2. the HTTP server shuts down (health and admin answer until then, so
//     /metrics sees the drain);
//  3. NATS is flushed (the last Ack/Nak reach the server) and closed.
func Run(ctx context.Context, cfg *config.Config, o RunOptions) error {
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	if cfg.NATS.URL == "" {
		return &config.Error{Key: "nats.url", Msg: "required for the dispatcher"}
	}
	// Checked before NATS is dialled, so a missing key exits 2 at once.
	if _, err := cfg.EventSigning.PublicKeyList("dispatcher"); err != nil {
		return err
	}
	if cfg.EventSigning.Disabled {
		log.Warn(config.DisabledWarning)
	}
	nc, js, err := natsbus.Attach(ctx, cfg.NATS, "payhook-dispatcher", log, Streams...)
	if err != nil {
		return err
	}
	defer nc.Close()
	reg := o.Registry
	if reg == nil {
		reg = ops.NewRegistry()
	}
	d, err := New(cfg, js, reg, log)
	if err != nil {
		return err
	}
	ln := o.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Dispatcher.Listen); err != nil {
			return fmt.Errorf("listen %s: %w", cfg.Dispatcher.Listen, err)
		}
	}
	srv := ops.NewServer(d.opsMux(reg), ops.DefaultTimeouts)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	rctx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- d.Run(rctx) }()
	if o.Reloads != nil {
		go d.applyReloads(rctx, o.Reloads)
	}
	if o.Listening != nil {
		o.Listening(ln.Addr().String())
	}
	log.Info("dispatcher started", "listen", ln.Addr().String(), "subscribers", len(cfg.Subscribers))

	first := ops.FirstStop(ctx, serveErr, runErr)
	stop()
	if err := <-runErr; err != nil && first == nil {
		first = err
	}
	shctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	if err := srv.Shutdown(shctx); err != nil && first == nil {
		first = fmt.Errorf("http shutdown: %w", err)
	}
	cancel()
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) && first == nil {
		first = fmt.Errorf("http: %w", err)
	}
	// Flush so the last Ack/Nak reach the server before the deferred Close.
	if err := nc.FlushTimeout(2 * time.Second); err != nil {
		log.Warn("nats flush", "err", err)
	}
	log.Info("dispatcher stopped")
	return first
}

// opsMux is the dispatcher's HTTP side: health, readiness, metrics, and
// the admin API under /v1/.
func (d *Dispatcher) opsMux(reg *prometheus.Registry) *http.ServeMux {
	mux := http.NewServeMux()
	ops.Mount(mux, reg, ops.Check{Name: "nats", Fn: func(ctx context.Context) error {
		if err := natsbus.CheckStreams(ctx, d.js, Streams...); err != nil {
			return err
		}
		_, err := d.js.Stream(ctx, StreamReplay)
		return err
	}}, ops.Check{Name: "consumers", Fn: d.CheckConsumers})
	mux.Handle("/v1/", d.Handler())
	return mux
}

// applyReloads applies each config from reloads until ctx ends.
func (d *Dispatcher) applyReloads(ctx context.Context, reloads <-chan *config.Config) {
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-reloads:
			rctx, cancel := context.WithTimeout(ctx, reloadTimeout)
			res, err := d.Reload(rctx, c)
			cancel()
			var re *RestartError
			switch {
			case errors.As(err, &re):
				d.log.Error("config not reloaded: it changes keys that only a restart applies; the running config stays", "keys", re.Keys)
			case err != nil:
				d.log.Error("config not reloaded; the running config stays", "err", err)
			default:
				d.log.Info("config reloaded", "added", res.Added, "changed", res.Changed, "removed", res.Removed)
			}
		}
	}
}
