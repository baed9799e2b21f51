// Command reconciler chases open orders until each has a terminal event,
// and submits UTRs to fantian. See internal/reconcile, docs/reconciler.md
// and docs/interfaces.md.
package main

import (
	"context"
	"log/slog"

	"github.com/payhook/payhook/internal/cli"
	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/reconcile"
	"github.com/payhook/payhook/internal/registry"
)

func main() { cli.Main(run) }

// run is the whole binary, testable in-process: flags, config (exit 2 when
// bad), then reconcile.Run until SIGTERM drains it.
func run(ctx context.Context, env cli.Env) error {
	return cli.Service(ctx, env, "reconciler", registry.All(), func(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
		return reconcile.Run(ctx, cfg, reconcile.RunOptions{Log: log})
	})
}
