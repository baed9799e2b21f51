package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/payhook/payhook/internal/cli"
	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/dispatch"
	"github.com/payhook/payhook/internal/natsbus"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// dlqCommand is "dispatcher dlq list|replay": dead letters of one
// subscriber, printed as JSON lines, or re-delivered.
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
	nc, js, err := natsbus.Attach(ctx, cfg.NATS, "payhook-dispatcher-cli", log, dispatch.Streams...)
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := dispatch.EnsureReplayStream(ctx, js, cfg.NATS); err != nil {
		return err
	}
	enc := json.NewEncoder(env.Stdout)
	if verb == "list" {
		dls, err := dispatch.ListDLQ(ctx, js, *sub)
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
	res, err := dispatch.Replay(ctx, js, *sub, ids)
	if err != nil {
		return err
	}
	return enc.Encode(res)
}
