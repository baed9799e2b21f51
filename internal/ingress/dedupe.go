package ingress

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/dedupestore"
	"github.com/payhook/payhook/internal/ops"
	"github.com/payhook/payhook/internal/publisher"
)

// OpenDedupe builds the dedupe store the config asks for (Redis when
// redis.url is set, else NATS key-value buckets) and returns it with its
// readiness check (Degraded: dedupe down never makes ingress unready) and a
// close function.
func OpenDedupe(ctx context.Context, cfg *config.Config, js jetstream.JetStream, log *slog.Logger) (publisher.Deduper, []ops.Check, func(), error) {
	o, err := dedupestore.Open(ctx, cfg, js)
	if err != nil {
		return nil, nil, nil, err
	}
	log.Info("dedupe store", "kind", o.Kind, "window", cfg.Dedupe.Window.D().String())
	return publisher.StoreDeduper{Store: o.Store}, []ops.Check{o.Check}, func() { _ = o.Store.Close() }, nil
}
