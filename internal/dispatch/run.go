package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/payhook/payhook/internal/cli"
	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/ops"
)

// Listening, when set, is called with the admin/ops listener's address once
// it listens (tests start Main on port 0).
var Listening func(addr string)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// Main is cmd/dispatcher:
//
//	dispatcher [--config FILE]                                   serve
//	dispatcher dlq list   --subscriber ID [--config FILE]        print dead letters (JSON lines)
//	dispatcher dlq replay --subscriber ID [--event-id ID ...]    re-deliver dead letters
func Main(ctx context.Context, env cli.Env) error {
	args := env.Args
	if len(args) >= 2 && args[0] == "dlq" {
		return dlqCommand(ctx, env, args[1], args[2:])
	}
	if len(args) >= 1 && args[0] == "dlq" {
		return &cli.UsageError{Err: errors.New("usage: dispatcher dlq list|replay --subscriber ID")}
	}
	f := cli.NewFlags("dispatcher", env)
	if err := f.Parse(env, args); err != nil {
		return err
	}
	cfg, err := f.LoadConfig(env)
	if err != nil {
		return err
	}
	if cfg.NATS.URL == "" {
		return &cli.UsageError{Err: &config.Error{Key: "nats.url", Msg: "required"}}
	}
	log := cli.Logger(cfg, env.Stderr).With("component", "dispatcher")
	err = Serve(ctx, cfg, ServeOptions{Log: log, Listening: Listening, Reloads: cli.Reloads(ctx, f.ConfigPath, env.LookupEnv, log)})
	var ce *config.Error
	if errors.As(err, &ce) {
		return &cli.UsageError{Err: err}
	}
	return err
}

// ServeOptions adjust Serve for embedding (devstack, tests).
type ServeOptions struct {
	Log *slog.Logger
	// Listener, when set, is served instead of listening on cfg.Dispatcher.Listen.
	Listener net.Listener
	// Registry receives the metrics (default a new one with Go and process collectors).
	Registry *prometheus.Registry
	// Listening is called with the address once the HTTP side is up.
	Listening func(addr string)
	// Reloads delivers configs to apply while serving (cmd/dispatcher: the
	// file again at every SIGHUP): their subscribers, by Reload.
	Reloads <-chan *config.Config
}

// Serve is the dispatcher as a whole: NATS, streams, consumers, deliveries,
// and the HTTP side (/healthz, /readyz, /metrics, admin API) until ctx ends.
func Serve(ctx context.Context, cfg *config.Config, o ServeOptions) error {
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	if cfg.NATS.URL == "" {
		return &cli.UsageError{Err: &config.Error{Key: "nats.url", Msg: "required"}}
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
	mux := http.NewServeMux()
	ops.Mount(mux, reg, ops.Check{Name: "nats", Fn: func(ctx context.Context) error {
		if err := natsbus.CheckStreams(ctx, js, Streams...); err != nil {
			return err
		}
		_, err := js.Stream(ctx, StreamReplay)
		return err
	}}, ops.Check{Name: "consumers", Fn: d.CheckConsumers})
	mux.Handle("/v1/", d.Handler())
	ln := o.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Dispatcher.Listen); err != nil {
			return fmt.Errorf("listen %s: %w", cfg.Dispatcher.Listen, err)
		}
	}
	srv := ops.NewServer(mux, ops.DefaultTimeouts)
	go func() { _ = srv.Serve(ln) }()
	if o.Listening != nil {
		o.Listening(ln.Addr().String())
	}
	log.Info("dispatcher started", "listen", ln.Addr().String(), "subscribers", len(cfg.Subscribers))

	// Teardown order, on SIGTERM (ctx cancelled):
	//  1. Run stops fetching, gives held messages back to JetStream and waits
	//     for in-flight deliveries (bounded by the longest subscriber timeout
	//     + 1s; then they are cancelled and redelivered later: at-least-once);
	//  2. the HTTP server shuts down (health and admin answer until then, so
	//     /metrics sees the drain);
	//  3. NATS is flushed (the last Ack/Nak reach the server) and closed.
	if o.Reloads != nil {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case c := <-o.Reloads:
					rctx, cancel := context.WithTimeout(ctx, reloadTimeout)
					res, err := d.Reload(rctx, c)
					cancel()
					if err != nil {
						log.Error("config reload failed; nothing was added, the running subscribers go on", "err", err)
						continue
					}
					log.Info("config reloaded", "added", res.Added, "pending_restart", res.Pending)
				}
			}
		}()
	}
	runErr := d.Run(ctx)
	shctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	_ = srv.Shutdown(shctx)
	cancel()
	// Flush so the last Ack/Nak reach the server before the deferred Close.
	if err := nc.FlushTimeout(2 * time.Second); err != nil {
		log.Warn("nats flush", "err", err)
	}
	log.Info("dispatcher stopped")
	return runErr
}

func dlqCommand(ctx context.Context, env cli.Env, verb string, args []string) error {
	f := cli.NewFlags("dispatcher dlq "+verb, env)
	sub := f.Set.String("subscriber", "", "subscriber id (required)")
	var ids multiFlag
	if verb == "replay" {
		f.Set.Var(&ids, "event-id", "event id to replay (repeatable; default all)")
	}
	if verb != "list" && verb != "replay" {
		return &cli.UsageError{Err: fmt.Errorf("unknown dlq command %q (want list or replay)", verb)}
	}
	if err := f.Parse(env, args); err != nil {
		return err
	}
	if *sub == "" {
		return &cli.UsageError{Err: errors.New("--subscriber is required")}
	}
	cfg, err := f.LoadConfig(env)
	if err != nil {
		return err
	}
	found := false
	for _, s := range cfg.Subscribers {
		found = found || s.ID == *sub
	}
	if !found {
		return &cli.UsageError{Err: fmt.Errorf("subscriber %q is not in the config", *sub)}
	}
	if cfg.NATS.URL == "" {
		return &cli.UsageError{Err: &config.Error{Key: "nats.url", Msg: "required"}}
	}
	log := cli.Logger(cfg, env.Stderr)
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	nc, js, err := natsbus.Attach(ctx, cfg.NATS, "payhook-dispatcher-cli", log, Streams...)
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := EnsureReplayStream(ctx, js, cfg.NATS); err != nil {
		return err
	}
	enc := json.NewEncoder(env.Stdout)
	if verb == "list" {
		dls, err := ListDLQ(ctx, js, *sub)
		if err != nil {
			return err
		}
		for _, dl := range dls {
			if err := enc.Encode(dl); err != nil {
				return err
			}
		}
		return nil
	}
	res, err := Replay(ctx, js, *sub, ids)
	if err != nil {
		return err
	}
	return enc.Encode(res)
}
