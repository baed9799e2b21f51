// Command ingress receives provider callbacks and stores them as events
// (docs/interfaces.md "Callbacks in"). See internal/ingress.
package main

import (
	"context"
	"log/slog"

	"github.com/payhook/payhook/internal/cli"
	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/ingress"
	"github.com/payhook/payhook/internal/registry"
)

func main() { cli.Main(run) }

// run is the whole binary, testable in-process: flags, config (exit 2 when
// bad), then ingress.Run until SIGTERM drains it.
func run(ctx context.Context, env cli.Env) error {
	return cli.Service(ctx, env, "ingress", registry.All(), func(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
		return ingress.Run(ctx, cfg, ingress.RunOptions{Log: log})
	})
}
