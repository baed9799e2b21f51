// Package dedupestore opens the dedupe store a config asks for, so ingress,
// the reconciler and devstack choose it the same way: Redis when redis.url is
// set, else NATS key-value buckets on the same JetStream.
package dedupestore

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/ops"
	"github.com/payhook/payhook/pkg/dedupe"
	"github.com/payhook/payhook/pkg/dedupe/kvdedupe"
	"github.com/payhook/payhook/pkg/dedupe/redisdedupe"
)

// Store is both halves of pkg/dedupe: event/order state and reference claims.
type Store interface {
	dedupe.Store
	dedupe.References
}

// Opened is a store with what a binary reports about it.
type Opened struct {
	Store Store
	// Kind is "redis" or "nats-kv".
	Kind string
	// Check is the readiness probe: Degraded, because a dedupe outage falls
	// back to JetStream's duplicate window and never refuses callbacks.
	Check ops.Check
}

// redisLog sends go-redis's own log lines (one "failed to dial" per
// attempt while Redis is down) to slog at debug level: payhook already logs
// and counts the outage once per affected callback, and go-redis's logger is
// process-wide.
type redisLog struct{}

func (redisLog) Printf(ctx context.Context, format string, v ...any) {
	slog.DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
}

var quietRedis sync.Once

// Open opens the store. A Redis that is down at start is not an error (the
// client reconnects; calls fail fast with dedupe.ErrUnavailable meanwhile);
// a bad URL is.
func Open(ctx context.Context, cfg *config.Config, js jetstream.JetStream) (*Opened, error) {
	var (
		s    Store
		kind string
	)
	if cfg.Redis.UsesRedis() {
		quietRedis.Do(func() { redis.SetLogger(redisLog{}) })
		// Coalesce concurrent callbacks' look-ups into pipelines of up to 64:
		// one pipeline in flight, and while it is, calls queue up for the
		// next; a batch waits at most 200 µs for company. Under make bench this cut ingress CPU per callback
		// from ~278 to ~246 µs against 2 pipelines / 100 µs: fewer, fuller
		// round trips (docs/benchmarks.md).
		rcfg := redisdedupe.Config{Window: cfg.Dedupe.Window.D(), Batch: 64, Pipelines: 1, BatchDelay: 200 * time.Microsecond}
		var (
			rs  *redisdedupe.Store
			err error
		)
		if sn := cfg.Redis.Sentinel; sn.Enabled() {
			rs, err = redisdedupe.NewSentinel(redisdedupe.Sentinel{Master: sn.Master, Addrs: sn.Addrs, Password: sn.Password}, cfg.Redis.URL, rcfg)
		} else {
			rs, err = redisdedupe.New(cfg.Redis.URL, rcfg)
		}
		if err != nil {
			return nil, &config.Error{Key: "redis.url", Msg: err.Error()}
		}
		s, kind = rs, "redis"
	} else {
		ks, err := kvdedupe.New(ctx, js, kvdedupe.Config{Window: cfg.Dedupe.Window.D(), Replicas: cfg.NATS.Replicas})
		if err != nil {
			return nil, fmt.Errorf("dedupe: nats key-value buckets: %w", err)
		}
		s, kind = ks, "nats-kv"
	}
	return &Opened{Store: s, Kind: kind, Check: ops.Check{
		// The same name on every binary (the reconciler reports its own
		// "dedupe" check), so probes and dashboards match one name.
		Name: "dedupe", Degraded: true, Fn: s.Ping,
	}}, nil
}
