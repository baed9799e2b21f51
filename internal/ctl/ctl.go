// Package ctl is payhookctl, the operator's command line: it answers an
// SRE's questions about payhook (what happened to an order, which
// subscribers lag or are paused, which orders are still being chased) and
// does the operator's work (pause, resume, replay, poll now, cancel) on the
// same config file as the services. It reads and writes the state the
// services keep in NATS JetStream (streams and key-value buckets), so it
// needs no address of a service and sees what every replica sees.
//
// Every command prints a human-readable table, or with --json one JSON
// document. Commands that change something take --dry-run.
package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/cli"
	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
)

// usage is printed for a missing or unknown command.
const usage = `usage: payhookctl [--config FILE] [--json] COMMAND ...

  trace PROVIDER ACCOUNT ORDER_ID              raw requests, events, every delivery attempt, the watch
  replay --subscriber S --since T [--until T] [--provider P] [--status S]
                                               re-send stored events to S (same webhook-id)
  retry --subscriber S (--event ID ... | --all)  attempt now the events of S waiting in backoff (dispatcher admin API)
  reprocess --provider P [--account A] --since T [--until T] [--reason R]
                                               run rejected requests through today's verification (ingress admin API)
  subscribers ls                               state of every subscriber: lag, breaker, pause and why, last error
  subscribers pause SUBSCRIBER [--reason TEXT] stop deliveries on every replica (events are kept)
  subscribers resume SUBSCRIBER                deliver again
  dlq ls SUBSCRIBER                            dead letters of a subscriber
  dlq replay SUBSCRIBER [--event-id ID ...]    re-deliver dead letters (same webhook-id)
  watches ls [--provider P] [--state S]        watches: open, closed, expired, cancelled
  watches get WATCH_ID | PROVIDER ACCOUNT ORDER_ID [--kind K]
  watches poll-now WATCH_ID | PROVIDER ACCOUNT ORDER_ID [--kind K]
  watches cancel WATCH_ID | PROVIDER ACCOUNT ORDER_ID [--kind K] [--reason TEXT]

Every command takes --config (default $PAYHOOK_CONFIG), --json and --timeout;
those that change something take --dry-run.`

// Run is payhookctl: env.Args without the program name.
func Run(ctx context.Context, env cli.Env) error {
	g := newCommon(env)
	fs := g.flags("payhookctl")
	rest, err := parse(fs, env.Args)
	if err != nil {
		return err
	}
	if g.version {
		fmt.Fprintln(env.Stdout, "payhookctl", cli.Version)
		return nil
	}
	if len(rest) == 0 {
		return &cli.UsageError{Err: errors.New(usage)}
	}
	cmd, args := rest[0], rest[1:]
	verb := ""
	if len(args) > 0 {
		verb, args = args[0], args[1:]
	}
	var run func(context.Context, *common, []string) error
	// trace, replay, reprocess and retry take no verb: their arguments follow them.
	switch cmd {
	case "trace":
		return traceCommand(ctx, g, rest[1:])
	case "replay":
		return replayCommand(ctx, g, rest[1:])
	case "reprocess":
		return reprocessCommand(ctx, g, rest[1:])
	case "retry":
		return retryCommand(ctx, g, rest[1:])
	}
	switch cmd + " " + verb {
	case "subscribers ls", "subscribers list":
		run = subscribersList
	case "subscribers pause":
		run = subscribersPause
	case "subscribers resume":
		run = subscribersResume
	case "dlq ls", "dlq list":
		run = dlqList
	case "dlq replay":
		run = dlqReplay
	case "watches ls", "watches list":
		run = watchesList
	case "watches get":
		run = watchesGet
	case "watches poll-now":
		run = watchesPollNow
	case "watches cancel":
		run = watchesCancel
	default:
		return &cli.UsageError{Err: fmt.Errorf("unknown command %q\n%s", strings.TrimSpace(cmd+" "+verb), usage)}
	}
	return run(ctx, g, args)
}

// common holds the flags every command takes and what they lead to.
type common struct {
	env        cli.Env
	configPath string
	json       bool
	timeout    time.Duration
	version    bool

	cfg *config.Config
	nc  *nats.Conn
	js  jetstream.JetStream
}

func newCommon(env cli.Env) *common {
	def, _ := env.LookupEnv("PAYHOOK_CONFIG")
	return &common{env: env, configPath: def, timeout: 30 * time.Second}
}

// flags is a flag set named name with the common flags, which may so come
// before or after the command.
func (g *common) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(g.env.Stderr)
	fs.StringVar(&g.configPath, "config", g.configPath, "config file (YAML); default $PAYHOOK_CONFIG")
	fs.BoolVar(&g.json, "json", g.json, "print one JSON document instead of a table")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "give up after this long")
	fs.BoolVar(&g.version, "version", g.version, "print the version and exit")
	return fs
}

// parse parses flags anywhere among the arguments (flag stops at the first
// positional one) and returns the positional ones in order. Everything after
// the first positional argument of the top level is left to the command.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	top := fs.Name() == "payhookctl"
	for {
		if err := fs.Parse(args); err != nil {
			return nil, &cli.UsageError{Err: err}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if top {
			return args, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// connect loads the config and connects to NATS (once).
func (g *common) connect(ctx context.Context) error {
	if g.js != nil {
		return nil
	}
	if g.configPath == "" {
		return &cli.UsageError{Err: &config.Error{Msg: "no config file: pass --config FILE or set PAYHOOK_CONFIG"}}
	}
	cfg, err := config.Load(g.configPath, g.env.LookupEnv)
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	if cfg.NATS.URL == "" {
		return &cli.UsageError{Err: &config.Error{Key: "nats.url", Msg: "required by payhookctl"}}
	}
	log := slog.New(slog.NewTextHandler(g.env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	nc, err := natsbus.Connect(cfg.NATS, "payhookctl", log)
	if err != nil {
		return err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return fmt.Errorf("%w: jetstream: %v", natsbus.ErrUnavailable, err)
	}
	g.cfg, g.nc, g.js = cfg, nc, js
	return nil
}

func (g *common) close() {
	if g.nc != nil {
		_ = g.nc.Drain()
	}
}

// start parses a command's flags and connects; the returned context ends
// after --timeout.
func (g *common) start(ctx context.Context, fs *flag.FlagSet, args []string, npos ...int) (context.Context, context.CancelFunc, []string, error) {
	pos, err := parse(fs, args)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(npos) > 0 && !slices.Contains(npos, len(pos)) {
		return nil, nil, nil, &cli.UsageError{Err: fmt.Errorf("%s: wrong number of arguments (%d)\n%s", fs.Name(), len(pos), usage)}
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	if err := g.connect(ctx); err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return ctx, func() { g.close(); cancel() }, pos, nil
}

// subscriber returns the configured subscriber id, or a usage error.
func (g *common) subscriber(id string) (config.Subscriber, error) {
	for _, s := range g.cfg.Subscribers {
		if s.ID == id {
			return s, nil
		}
	}
	return config.Subscriber{}, &cli.UsageError{Err: fmt.Errorf("subscriber %q is not in the config", id)}
}

// emit prints v as JSON with --json, else calls table.
func (g *common) emit(v any, table func(w io.Writer)) error {
	if g.json {
		enc := json.NewEncoder(g.env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(g.env.Stdout, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// progress tells the operator about long work, on stderr so that stdout
// stays one document.
func (g *common) progress(format string, args ...any) {
	fmt.Fprintf(g.env.Stderr, format+"\n", args...)
}

// ts formats a time for a table ("-" when zero).
func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// dash shows an empty string as "-".
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
