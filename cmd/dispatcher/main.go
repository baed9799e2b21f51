// Command dispatcher delivers payhook events to subscribers; see
// internal/dispatch and docs/dispatcher.md.
//
//	dispatcher [--config FILE]                                   serve
//	dispatcher dlq list   --subscriber ID [--config FILE]        print dead letters (JSON lines)
//	dispatcher dlq replay --subscriber ID [--event-id ID ...]    re-deliver dead letters
package main

import (
	"context"
	"errors"

	"github.com/payhook/payhook/internal/cli"
	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/dispatch"
)

func main() { cli.Main(run) }

// run is the whole binary, testable in-process: flags, config (exit 2 when
// bad), then dispatch.Run until SIGTERM drains it; the config file is read
// again at every SIGHUP (dispatch.Reload says what reloads).
func run(ctx context.Context, env cli.Env) error {
	args := env.Args
	if len(args) >= 1 && args[0] == "dlq" {
		if len(args) < 2 {
			return &cli.UsageError{Err: errors.New("usage: dispatcher dlq list|replay --subscriber ID")}
		}
		return dlqCommand(ctx, env, args[1], args[2:])
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
		return &cli.UsageError{Err: &config.Error{Key: "nats.url", Msg: "required for the dispatcher"}}
	}
	log := cli.Logger(cfg, env.Stderr).With("component", "dispatcher", "version", cli.Version)
	stopTracing, err := cli.StartTracing(ctx, cfg, "dispatcher", log)
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	defer stopTracing()
	err = dispatch.Run(ctx, cfg, dispatch.RunOptions{Log: log, Reloads: cli.Reloads(ctx, f.ConfigPath, env.LookupEnv, log)})
	var ce *config.Error
	if errors.As(err, &ce) {
		return &cli.UsageError{Err: err}
	}
	return err
}
