package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/oklog/run"

	"github.com/payhook/payhook/internal/dispatch"
	"github.com/payhook/payhook/internal/ingress"
	"github.com/payhook/payhook/internal/ops"
	"github.com/payhook/payhook/internal/reconcile"
)

// compose runs the parts as one run group until ctx ends or a part fails.
//
// Teardown order. The group interrupts its parts one after the other in
// the order they are added below, and each interrupt returns only once its
// part has stopped, so this order is the teardown order:
//
//  1. the summary (its last table is printed once everything stopped);
//  2. traffic and the simulator's callbacks: nothing new reaches ingress;
//  3. ingress: in-flight callbacks are stored and answered, or refused;
//  4. reconciler: in-flight polls finish and their outcome is saved;
//  5. dispatcher: in-flight deliveries finish;
//  6. the simulator's provider APIs, which the reconciler polls;
//  7. the demo subscriber, which the dispatcher delivers to.
//
// NATS, the data dir's lock and the listeners are released by Run after
// compose returns.
func (st *Stack) compose(ctx context.Context, o Options, lns listeners, real Addrs, notes []string, log *slog.Logger, out io.Writer) error {
	var g group
	cfg := st.Config
	ingressUp := make(chan struct{})
	trafficGo := make(chan struct{}) // closed once the banner is out

	// The caller's ctx: its end stops the group without an error.
	stop := make(chan struct{})
	g.Add(func() error {
		select {
		case <-ctx.Done():
		case <-stop:
		}
		return nil
	}, func(error) { close(stop) })

	g.part("", func(ctx context.Context) error {
		return st.announce(ctx, o, real, notes, out, ingressUp, trafficGo)
	})
	g.part("traffic", func(ctx context.Context) error {
		// The simulator's own callbacks and retries stop with the traffic.
		defer st.Sim.Close()
		select {
		case <-trafficGo:
		case <-ctx.Done():
			return nil
		}
		if o.Rate <= 0 {
			<-ctx.Done()
			return nil
		}
		return st.traffic(ctx, o.Rate, real.Reconciler)
	})
	g.part("ingress", func(ctx context.Context) error {
		return ingress.Run(ctx, cfg, ingress.RunOptions{Log: log.With("component", "ingress"), Listener: lns["ingress"],
			Registry: st.regs["ingress"], Listening: func(string) { close(ingressUp) }, DrainTimeout: 5 * time.Second})
	})
	g.part("reconciler", func(ctx context.Context) error {
		return reconcile.Run(ctx, cfg, reconcile.RunOptions{Log: log.With("component", "reconciler"), Listener: lns["reconciler"], Registry: st.regs["reconciler"], DrainTimeout: 5 * time.Second})
	})
	g.part("dispatcher", func(ctx context.Context) error {
		return dispatch.Run(ctx, cfg, dispatch.RunOptions{Log: log.With("component", "dispatcher"), Listener: lns["dispatcher"], Registry: st.regs["dispatcher"]})
	})
	// The providers' APIs are under /{provider}/{account}/...; /faults is
	// the simulator's control endpoint (a fault mix on top of the traffic's own).
	simMux := http.NewServeMux()
	simMux.Handle("/faults", st.Sim.FaultsHandler())
	simMux.Handle("/", st.Sim.Handler())
	g.server("simulator", ops.NewServer(simMux, ops.DefaultTimeouts), lns["simulator"])
	g.server("demo subscriber", ops.NewServer(http.StripPrefix("/hooks", st.Subscriber), ops.DefaultTimeouts), lns["demo subscriber"])

	g.Run()
	select {
	case <-trafficGo: // the stack was up: its last summary
		st.PrintSummary(out)
	default:
	}
	return g.firstErr()
}

// announce waits for ingress to listen, prints the notes and the banner,
// calls o.Ready, lets the traffic go, then prints the summary every
// o.Summary until ctx ends.
func (st *Stack) announce(ctx context.Context, o Options, real Addrs, notes []string, out io.Writer, ingressUp <-chan struct{}, trafficGo chan<- struct{}) error {
	select {
	case <-ingressUp:
	case <-ctx.Done():
		return nil
	case <-time.After(30 * time.Second):
		return errors.New("devstack: ingress did not start within 30s")
	}
	for _, n := range notes {
		fmt.Fprintf(out, "devstack: %s\n", n)
	}
	printBanner(out, st, real, o)
	if o.Ready != nil {
		o.Ready(st)
	}
	close(trafficGo)
	tick := time.NewTicker(o.Summary)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			st.PrintSummary(out)
		}
	}
}

// group is a run.Group whose parts stop in order and whose error is the
// first any part returned, including while stopping (a drain cut short).
type group struct {
	run.Group
	mu    sync.Mutex
	first error
}

// part adds f, run until interrupted. An error (other than
// context.Canceled) stops the stack and is returned by Run prefixed with
// name (unless name is empty); a part ending without one before the stack
// stops just waits for the others. The interrupt cancels f's ctx and
// returns once f has returned: that is what makes the order of part calls
// the teardown order.
func (g *group) part(name string, f func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	g.Add(func() error {
		defer close(done)
		err := f(ctx)
		if err == nil || errors.Is(err, context.Canceled) {
			<-ctx.Done()
			return nil
		}
		if name != "" {
			err = fmt.Errorf("%s: %w", name, err)
		}
		g.mu.Lock()
		if g.first == nil {
			g.first = err
		}
		g.mu.Unlock()
		return err
	}, func(error) {
		cancel()
		<-done
	})
}

// server adds an HTTP server on ln as a part; stopping it closes it.
func (g *group) server(name string, srv *http.Server, ln net.Listener) {
	g.part(name, func(ctx context.Context) error {
		go func() {
			<-ctx.Done()
			_ = srv.Close()
		}()
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
}

func (g *group) firstErr() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.first
}
