// Command payhook-bench is payhook's reproducible benchmark
// (docs/benchmarks.md). With no subcommand it builds cmd/ingress and
// cmd/dispatcher, starts NATS (JetStream, file storage) and redis-server on
// free ports, a bare echo baseline and a webhook subscriber, drives them with
// signed callbacks of every inbound provider and prints a table.
//
//	payhook-bench [flags]                          run the benchmark (make bench)
//	payhook-bench serve-nats --port P --dir D      child: NATS with JetStream
//	payhook-bench serve-echo --addr A              child: the echo baseline
//	payhook-bench serve-naive --addr A --nats U --redis U   child: the straightforward handler (second baseline)
//	payhook-bench serve-minimal --addr A --nats U [--sign] [--raw]    child: the minimal durable handler (third baseline)
//	payhook-bench serve-ingress --config F [--cpuprofile P]   child: ingress with a CPU profile
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/payhook/payhook/internal/bench"
	"github.com/payhook/payhook/internal/cli"
)

func main() { cli.Main(run) }

func run(ctx context.Context, env cli.Env) error {
	if len(env.Args) > 0 {
		switch env.Args[0] {
		case "serve-nats":
			fs := newFlags("serve-nats", env)
			port := fs.Int("port", 4222, "port on 127.0.0.1")
			dir := fs.String("dir", "", "JetStream store directory")
			if err := fs.Parse(env.Args[1:]); err != nil {
				return &cli.UsageError{Err: err}
			}
			return bench.ServeNATS(ctx, *port, *dir)
		case "serve-echo":
			fs := newFlags("serve-echo", env)
			addr := fs.String("addr", "127.0.0.1:0", "listen address")
			if err := fs.Parse(env.Args[1:]); err != nil {
				return &cli.UsageError{Err: err}
			}
			return bench.ServeEcho(ctx, *addr)
		case "serve-naive":
			fs := newFlags("serve-naive", env)
			addr := fs.String("addr", "127.0.0.1:0", "listen address")
			natsURL := fs.String("nats", "", "NATS URL")
			redisURL := fs.String("redis", "", "Redis URL")
			if err := fs.Parse(env.Args[1:]); err != nil {
				return &cli.UsageError{Err: err}
			}
			return bench.ServeNaive(ctx, *addr, *natsURL, *redisURL)
		case "serve-minimal":
			fs := newFlags("serve-minimal", env)
			addr := fs.String("addr", "127.0.0.1:0", "listen address")
			natsURL := fs.String("nats", "", "NATS URL")
			sign := fs.Bool("sign", false, "sign every event (ed25519, as payhook does)")
			raw := fs.Bool("raw", false, "record every request as ingress does (the audit record)")
			if err := fs.Parse(env.Args[1:]); err != nil {
				return &cli.UsageError{Err: err}
			}
			return bench.ServeMinimal(ctx, *addr, *natsURL, *sign, *raw)
		case "serve-ingress":
			fs := newFlags("serve-ingress", env)
			cfg := fs.String("config", "", "config file")
			prof := fs.String("cpuprofile", "", "write a CPU profile here")
			if err := fs.Parse(env.Args[1:]); err != nil {
				return &cli.UsageError{Err: err}
			}
			return bench.ServeIngress(ctx, *cfg, *prof)
		}
	}
	fs := newFlags("payhook-bench", env)
	var o bench.Options
	fs.IntVar(&o.Conns, "conns", 64, "closed loop (max req/s): concurrent connections")
	fs.IntVar(&o.Workers, "workers", 256, "open loop: concurrent senders")
	fs.DurationVar(&o.Warmup, "warmup", 3*time.Second, "warm-up before each phase")
	fs.DurationVar(&o.MaxDuration, "max-duration", 15*time.Second, "each max-throughput phase")
	fs.DurationVar(&o.LatencyDuration, "latency-duration", 20*time.Second, "the open-loop latency phase (the baseline's is half)")
	fs.Float64Var(&o.LoadFraction, "load", 0.5, "latency phase rate, as a fraction of payhook's max")
	fs.Float64Var(&o.RSSRate, "steady-rate", 1000, "steady phase rate (req/s), where RSS is read")
	fs.DurationVar(&o.RSSDuration, "steady-duration", 10*time.Second, "steady phase duration")
	fs.IntVar(&o.Subscribers, "subscribers", 3, "dispatcher subscribers; -1 runs ingress only")
	fs.StringVar(&o.IngressBin, "ingress-bin", "", "prebuilt cmd/ingress (default: go build)")
	fs.StringVar(&o.DispatcherBin, "dispatcher-bin", "", "prebuilt cmd/dispatcher (default: go build)")
	fs.StringVar(&o.Dir, "dir", "", "work directory (default: a temp dir)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the work directory (logs, stores, config)")
	fs.StringVar(&o.Profile, "cpuprofile", "", "run ingress with a CPU profile written here (mirror of cmd/ingress)")
	fs.IntVar(&o.Rounds, "rounds", 1, "max-throughput rounds (baseline then payhook each); >1 reports every ratio and the median")
	if err := fs.Parse(env.Args); err != nil {
		return &cli.UsageError{Err: err}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	o.Self = self
	o.Log = env.Stderr
	rep, err := bench.Run(ctx, o)
	if err != nil {
		return err
	}
	rep.Print(env.Stdout)
	return nil
}

func newFlags(name string, env cli.Env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "usage: payhook-bench %s [flags]\n", name)
		fs.PrintDefaults()
	}
	return fs
}
