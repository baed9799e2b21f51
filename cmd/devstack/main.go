// Command devstack runs all of payhook in one process, with an embedded
// NATS server, the provider simulator and a demo subscriber: the first thing
// to run. `go run ./cmd/devstack` needs no flags and no config file. A
// default port already in use (8080–8083, 8090, NATS 4222) moves to a free
// one and the banner prints the real addresses; --*-listen flags pin them.
package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/payhook/payhook/internal/cli"
	"github.com/payhook/payhook/internal/devstack"
)

func main() { cli.Main(run) }

func run(ctx context.Context, env cli.Env) error {
	fs := flag.NewFlagSet("devstack", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	var o devstack.Options
	var addrs devstack.Addrs
	o.Addrs = &addrs
	fs.StringVar(&addrs.Ingress, "ingress-listen", "", "ingress address (default "+devstack.IngressAddr+", or a free port if taken)")
	fs.StringVar(&addrs.Dispatcher, "dispatcher-listen", "", "dispatcher address (default "+devstack.DispatcherAddr+", or a free port if taken)")
	fs.StringVar(&addrs.Reconciler, "reconciler-listen", "", "reconciler address (default "+devstack.ReconcilerAddr+", or a free port if taken)")
	fs.StringVar(&addrs.Subscriber, "subscriber-listen", "", "demo subscriber address (default "+devstack.SubscriberAddr+", or a free port if taken)")
	fs.StringVar(&addrs.Sim, "sim-listen", "", "provider simulator address (default "+devstack.SimAddr+", or a free port if taken)")
	version := fs.Bool("version", false, "print the version and exit")
	fs.StringVar(&o.DataDir, "data", ".devstack", "directory for JetStream's files")
	fs.IntVar(&o.NATSPort, "nats-port", 0, "embedded NATS port (default 4222, or a free port if taken)")
	fs.StringVar(&o.RedisURL, "redis", "", "Redis URL for dedupe (default: a NATS key-value bucket)")
	fs.Float64Var(&o.Rate, "rate", 4, "simulated orders per second (negative: none)")
	fs.Float64Var(&o.TimeScale, "timescale", 0.005, "provider retry schedules run this much faster than real time")
	fs.DurationVar(&o.Summary, "summary", 0, "how often to print the summary (default 5s)")
	fs.StringVar(&o.LogLevel, "log-level", "warn", "the services' log level: debug, info, warn or error")
	fs.StringVar(&o.TracingEndpoint, "otlp-endpoint", "", "send OpenTelemetry spans to this OTLP gRPC collector, host:port (default: tracing off)")
	if err := fs.Parse(env.Args); err != nil {
		return &cli.UsageError{Err: err}
	}
	if *version {
		fmt.Fprintln(env.Stdout, "devstack", cli.Version)
		return nil
	}
	return devstack.Run(ctx, o, env.Stdout)
}
