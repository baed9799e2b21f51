// Package devstack runs all of payhook in one process for a newcomer: an
// embedded NATS server (JetStream on local disk), ingress, dispatcher and
// reconciler exactly as their binaries run them, the provider simulator
// sending a steady mix of all five providers (with lost, duplicated and
// corrupted callbacks), and a demo subscriber. It prints where everything
// listens and a live summary until interrupted.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/payhook/payhook/internal/cli"
	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/embednats"
	"github.com/payhook/payhook/internal/ops"
	"github.com/payhook/payhook/internal/tracing"
	"github.com/payhook/payhook/pkg/providersim"
)

// Options tune devstack; the zero value is the documented default.
type Options struct {
	// DataDir holds JetStream's files (default ./.devstack).
	DataDir string
	// NATSPort for the embedded server (default 4222, or a free port when
	// 4222 is taken, e.g. by a NATS already running on the machine).
	NATSPort int
	// RedisURL switches dedupe from the NATS key-value bucket to Redis.
	RedisURL string
	// Rate of simulated orders per second (default 4; negative: no traffic).
	Rate float64
	// TimeScale compresses provider retry schedules (default 0.005: cashypro's
	// 17-hour schedule takes about 5 minutes).
	TimeScale float64
	// Summary is how often the live summary prints (default 5s).
	Summary time.Duration
	// LogLevel is the services' log level: debug, info, warn (default) or
	// error. Their lines go to the same output as the summary.
	LogLevel string
	// TracingEndpoint, when set, turns tracing on: spans of every part go
	// to this OTLP gRPC collector (host:port, plain text), e.g. a local
	// Jaeger's 127.0.0.1:4317.
	TracingEndpoint string
	// Addrs sets the listen addresses. An empty field (or a nil Addrs) is
	// that part's default (DefaultAddrs), and a default that cannot be
	// listened on, typically a port already in use, falls back to a free
	// port on the same host; an address given here must be free, or Run fails.
	Addrs *Addrs
	// Ready, when set, is called once every part is listening.
	Ready func(*Stack)
}

// Stack is a running devstack, for tests and the summary.
type Stack struct {
	Config     *config.Config
	NATSURL    string
	Sim        *providersim.Sim
	Subscriber *Subscriber
	regs       map[string]*prometheus.Registry
	mu         sync.Mutex
	utr        map[string]int
}

// Run starts everything and blocks until ctx is cancelled or a part fails,
// then stops the parts in the order compose gives (traffic and simulator,
// ingress, reconciler, dispatcher, subscriber), then NATS. It returns the
// first part's error, nil when ctx ended it.
func Run(ctx context.Context, o Options, out io.Writer) error {
	o.defaults()
	level := slog.LevelWarn
	if o.LogLevel != "" {
		if err := level.UnmarshalText([]byte(o.LogLevel)); err != nil {
			return &cli.UsageError{Err: fmt.Errorf("--log-level: debug, info, warn or error, got %q", o.LogLevel)}
		}
	}
	if h, p, err := net.SplitHostPort(o.TracingEndpoint); o.TracingEndpoint != "" && (err != nil || h == "" || p == "") {
		return &cli.UsageError{Err: fmt.Errorf("--otlp-endpoint: want host:port (127.0.0.1:4317), got %q", o.TracingEndpoint)}
	}
	// Listeners first, so that a port in use is known before anything
	// starts and the config can name the real addresses.
	lns, real, notes, err := openListeners(o.Addrs)
	if err != nil {
		return err
	}
	defer lns.close()

	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return fmt.Errorf("devstack: data dir: %w", err)
	}
	// Ports move aside for a second devstack; its data dir must not be shared.
	unlock, err := lockDataDir(o.DataDir)
	if err != nil {
		return fmt.Errorf("devstack: data dir %s: %w", o.DataDir, err)
	}
	defer unlock()
	ns, note, err := startNATS(o)
	if err != nil {
		return err
	}
	defer ns.Stop()
	if note != "" {
		notes = append(notes, note)
	}

	eventKey, err := EventKey(o.DataDir)
	if err != nil {
		return err
	}
	cfg, _, err := BuildConfig(ns.URL, o.RedisURL, real, eventKey)
	if err != nil {
		return err
	}
	var h slog.Handler = slog.NewTextHandler(out, &slog.HandlerOptions{Level: level})
	if o.TracingEndpoint != "" {
		cfg.Tracing = config.Tracing{Endpoint: o.TracingEndpoint, Insecure: true}
		h = tracing.LogHandler(h)
	}
	log := slog.New(h)
	stopTracing, err := cli.StartTracing(ctx, cfg, "devstack", log)
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	defer stopTracing()
	st := &Stack{Config: cfg, NATSURL: ns.URL, regs: map[string]*prometheus.Registry{}, utr: map[string]int{}}
	for _, c := range []string{"ingress", "dispatcher", "reconciler"} {
		st.regs[c] = ops.NewRegistry()
	}
	if st.Subscriber, err = NewSubscriber(SubscriberSecret); err != nil {
		return err
	}
	st.Sim = providersim.New(providersim.Config{
		IngressURL: "http://" + real.Ingress, Accounts: cfg.Accounts, TimeScale: o.TimeScale,
		Log: log.With("component", "simulator"),
	})
	defer st.Sim.Close()
	return st.compose(ctx, o, lns, real, notes, log, out)
}

// listeners are devstack's listening sockets, by part.
type listeners map[string]net.Listener

func (l listeners) close() {
	for _, ln := range l {
		ln.Close()
	}
}

// openListeners opens every part's address. A newcomer's machine may
// already run something on 8080 (or a second devstack): defaults move to a
// free port, and notes say where.
func openListeners(want *Addrs) (lns listeners, real Addrs, notes []string, err error) {
	var w Addrs
	if want != nil {
		w = *want
	}
	def := DefaultAddrs()
	lns = listeners{}
	for _, p := range []struct{ name, addr, def string }{
		{"ingress", w.Ingress, def.Ingress}, {"dispatcher", w.Dispatcher, def.Dispatcher},
		{"reconciler", w.Reconciler, def.Reconciler}, {"demo subscriber", w.Subscriber, def.Subscriber},
		{"simulator", w.Sim, def.Sim},
	} {
		ln, note, err := listen(p.name, p.addr, p.def)
		if err != nil {
			lns.close()
			return nil, Addrs{}, nil, err
		}
		lns[p.name] = ln
		if note != "" {
			notes = append(notes, note)
		}
	}
	real = Addrs{Ingress: lns["ingress"].Addr().String(), Dispatcher: lns["dispatcher"].Addr().String(),
		Reconciler: lns["reconciler"].Addr().String(), Subscriber: lns["demo subscriber"].Addr().String(), Sim: lns["simulator"].Addr().String()}
	return lns, real, notes, nil
}

// startNATS starts the embedded NATS server on o.NATSPort, or on
// DefaultNATSPort falling back to a free port when that is taken (note
// says so).
func startNATS(o Options) (ns *embednats.Server, note string, err error) {
	storeDir := filepath.Join(o.DataDir, "jetstream")
	port := o.NATSPort
	if port == 0 {
		port = DefaultNATSPort
		if !embednats.PortFree("127.0.0.1", port) {
			port = 0
			note = fmt.Sprintf("NATS: 127.0.0.1:%d is in use, so a free port instead", DefaultNATSPort)
		}
	}
	ns, err = embednats.Start("127.0.0.1", port, storeDir)
	if err != nil && o.NATSPort == 0 && port != 0 && !embednats.PortFree("127.0.0.1", port) {
		// Taken between the check and the start: fall back as above.
		note = fmt.Sprintf("NATS: 127.0.0.1:%d is in use, so a free port instead", DefaultNATSPort)
		ns, err = embednats.Start("127.0.0.1", 0, storeDir)
	}
	return ns, note, err
}

// errDataDirInUse: another devstack holds the data dir's lock.
var errDataDirInUse = errors.New("in use by another devstack (give this one its own with --data DIR)")

func (o *Options) defaults() {
	if o.DataDir == "" {
		o.DataDir = ".devstack"
	}
	if o.Rate == 0 {
		o.Rate = 4
	}
	if o.TimeScale == 0 {
		o.TimeScale = 0.005
	}
	if o.Summary == 0 {
		o.Summary = 5 * time.Second
	}
}

// listen opens part's address: addr when given (it must be free), else
// def, falling back to a free port on def's host when def cannot be
// listened on. note says when it fell back.
func listen(part, addr, def string) (ln net.Listener, note string, err error) {
	if addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, "", fmt.Errorf("devstack: %s address %s: %w", part, addr, err)
		}
		return ln, "", nil
	}
	ln, err = net.Listen("tcp", def)
	if err == nil {
		return ln, "", nil
	}
	host, _, _ := net.SplitHostPort(def)
	ln, err2 := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err2 != nil {
		return nil, "", fmt.Errorf("devstack: %s: %s: %w; and no free port: %w", part, def, err, err2)
	}
	return ln, fmt.Sprintf("%s: %s is in use, so %s instead", part, def, ln.Addr()), nil
}
