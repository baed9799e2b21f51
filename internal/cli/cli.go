// Package cli is the start-up shared by every payhook binary: flags
// (--config, --version), config loading with exit status 2 on a bad file,
// logging, and SIGTERM/SIGINT turned into context cancellation.
package cli

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/tracing"
)

// Version is set at build time with -ldflags "-X github.com/payhook/payhook/internal/cli.Version=v1.2.3".
var Version = "dev"

// ExitConfig is the exit status for a bad config or bad flags
// (docs/interfaces.md "Processes").
const ExitConfig = 2

// UsageError is a bad flag or config; main exits with status 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Env is what a binary needs from its process, so tests can run it in-process.
type Env struct {
	Args      []string // without the program name
	LookupEnv func(string) (string, bool)
	Stdout    io.Writer
	Stderr    io.Writer
}

// OSEnv is the real process environment.
func OSEnv() Env {
	return Env{Args: os.Args[1:], LookupEnv: os.LookupEnv, Stdout: os.Stdout, Stderr: os.Stderr}
}

// Flags holds the common flags; FlagSet lets a binary add its own.
type Flags struct {
	Set        *flag.FlagSet
	ConfigPath string
	Version    bool
	// Providers, when set, are the providers the binary links: LoadConfig
	// then also checks what only they know (config.CheckProviders).
	Providers config.Providers
}

// NewFlags defines --config and --version on a new flag set named name.
func NewFlags(name string, env Env) *Flags {
	f := &Flags{Set: flag.NewFlagSet(name, flag.ContinueOnError)}
	f.Set.SetOutput(env.Stderr)
	def, _ := env.LookupEnv("PAYHOOK_CONFIG")
	f.Set.StringVar(&f.ConfigPath, "config", def, "config file (YAML); default $PAYHOOK_CONFIG")
	f.Set.BoolVar(&f.Version, "version", false, "print the version and exit")
	return f
}

// Parse parses args. ErrVersion means the version was printed.
func (f *Flags) Parse(env Env, args []string) error {
	if err := f.Set.Parse(args); err != nil {
		return &UsageError{Err: err}
	}
	if f.Version {
		fmt.Fprintf(env.Stdout, "%s %s\n", f.Set.Name(), Version)
		return ErrVersion
	}
	return nil
}

// ErrVersion is returned by Parse after printing the version.
var ErrVersion = errors.New("version printed")

// LoadConfig loads the file named by --config; a missing flag or bad file is a UsageError.
func (f *Flags) LoadConfig(env Env) (*config.Config, error) {
	if f.ConfigPath == "" {
		return nil, &UsageError{Err: &config.Error{Msg: "no config file: pass --config FILE or set PAYHOOK_CONFIG"}}
	}
	c, err := config.Load(f.ConfigPath, env.LookupEnv)
	if err == nil && f.Providers != nil {
		err = c.CheckProviders(f.Providers)
	}
	if err != nil {
		return nil, &UsageError{Err: err}
	}
	return c, nil
}

// Logger builds the slog logger the config asks for.
func Logger(c *config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Log.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if c.Log.Format == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	if c.Tracing.Enabled() {
		h = tracing.LogHandler(h)
	}
	return slog.New(h)
}

// StartTracing starts OpenTelemetry tracing as cfg.tracing says, for the
// binary named name, and returns what flushes and stops it (bounded to 5 s;
// call it last). Off by default, and then both cost nothing.
func StartTracing(ctx context.Context, cfg *config.Config, name string, log *slog.Logger) (stop func(), err error) {
	shutdown, err := tracing.Setup(ctx, cfg.Tracing, name)
	if err != nil {
		return nil, &config.Error{Key: "tracing", Msg: err.Error()}
	}
	if cfg.Tracing.Enabled() {
		log.Info("tracing on", "endpoint", cfg.Tracing.Endpoint, "protocol", cmp.Or(cfg.Tracing.Protocol, "grpc"), "sample_ratio", cfg.Tracing.Ratio())
	}
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdown(sctx); err != nil {
			log.Warn("tracing: spans not flushed", "err", err)
		}
	}, nil
}

// Main runs run with a context cancelled on SIGTERM or SIGINT and exits:
// 0 on success (including a drained shutdown), 2 on a usage or config error
// (one line on stderr), 1 otherwise.
func Main(run func(ctx context.Context, env Env) error) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	// SIGHUP never stops a binary: the dispatcher reloads its subscribers
	// on it (Reloads), the others ignore it.
	signal.Ignore(syscall.SIGHUP)
	env := OSEnv()
	if _, set := env.LookupEnv("GOGC"); !set {
		// payhook's heaps are small (~10 MiB live): trading some memory for
		// less GC CPU on every callback (RSS stays far under 100 MiB at
		// 1,000 callbacks/s; docs/benchmarks.md). GOGC overrides.
		debug.SetGCPercent(300)
	}
	stopProfile := cpuProfile(env)
	err := run(ctx, env)
	stopProfile()
	stop()
	os.Exit(ExitCode(err, env.Stderr))
}

// cpuProfile writes a CPU profile of the whole run to
// $PAYHOOK_CPUPROFILE_DIR/<program>-<pid>.pprof when that variable is set
// (for the benchmark and for diagnosing a live process after the fact).
func cpuProfile(env Env) func() {
	dir, ok := env.LookupEnv("PAYHOOK_CPUPROFILE_DIR")
	if !ok || dir == "" {
		return func() {}
	}
	name := filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", filepath.Base(os.Args[0]), os.Getpid()))
	f, err := os.Create(name)
	if err != nil {
		fmt.Fprintln(env.Stderr, "cpu profile:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(env.Stderr, "cpu profile:", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// ExitCode maps run's error to an exit status, printing it as one line.
func ExitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, ErrVersion), errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(*UsageError)):
		fmt.Fprintln(stderr, err)
		return ExitConfig
	default:
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
}

// Service is the whole of a service binary (ingress, reconciler): flags,
// config (exit 2 when bad; nats.url is required), a logger tagged with the
// component, then serve until ctx ends. provs are the providers the binary
// links, whose account keys the config is checked against. A *config.Error
// that serve returns (a setting found unusable at start) is also a usage error.
func Service(ctx context.Context, env Env, name string, provs config.Providers, serve func(context.Context, *config.Config, *slog.Logger) error) error {
	f := NewFlags(name, env)
	f.Providers = provs
	if err := f.Parse(env, env.Args); err != nil {
		return err
	}
	cfg, err := f.LoadConfig(env)
	if err != nil {
		return err
	}
	if cfg.NATS.URL == "" {
		return &UsageError{Err: &config.Error{Key: "nats.url", Msg: "required for the " + name}}
	}
	log := Logger(cfg, env.Stderr).With("component", name, "version", Version)
	stopTracing, err := StartTracing(ctx, cfg, name, log)
	if err != nil {
		return &UsageError{Err: err}
	}
	defer stopTracing()
	err = serve(ctx, cfg, log)
	var ce *config.Error
	if errors.As(err, &ce) {
		return &UsageError{Err: err}
	}
	return err
}

// Reloads loads the config file at path again at every SIGHUP until ctx
// ends and sends each config that validates; one that does not is logged
// (one line naming the key) and the running config stays. Nothing else
// happens on SIGHUP: no drain, no restart.
func Reloads(ctx context.Context, path string, lookup func(string) (string, bool), log *slog.Logger) <-chan *config.Config {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	out := make(chan *config.Config)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			c, err := config.Load(path, lookup)
			if err != nil {
				log.Error("SIGHUP: config not reloaded; the running one stays", "err", err)
				continue
			}
			select {
			case out <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}
