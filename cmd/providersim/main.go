// Command providersim runs the provider simulator (pkg/providersim) as a
// process: it serves every configured account's provider API and sends
// steady traffic of signed callbacks to payhook's ingress.
//
// The accounts come from a payhook config file (--config), the same one
// ingress and the reconciler read; point each account's base_url at
// http://{--listen}/{provider}/{account-id} (printed at start-up).
//
//	providersim --config payhook.yaml --ingress http://127.0.0.1:8080 --rate 5 --timescale 0.01
//
// Faults: --drop, --duplicate, --reorder, --corrupt, --delay, --query-fail
// and --query-timeout are each the probability (0..1) that an order gets
// that fault (providersim.FaultMix), drawn when the order is created.
// A running simulator's mix is read and replaced at http://{--listen}/faults:
//
//	curl -s localhost:8090/faults                       # the current mix
//	curl -s localhost:8090/faults -d '{"drop":0.2,"query_fail":0.1}'   # replace it
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/payhook/payhook/internal/cli"
	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/ops"
	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/pkg/providersim"
)

func main() { cli.Main(run) }

// options are the command line beyond the shared flags.
type options struct {
	listen, ingress string
	rate, timescale float64
	seed            int64
	mix             providersim.FaultMix
}

// run is the whole binary, testable in-process. Teardown order: stop the
// traffic generator (ctx), close the simulator (stops delays and retries
// and releases queries hung by the QueryTimeout fault), then shut the HTTP
// server down, letting in-flight API requests finish, and print the stats.
func run(ctx context.Context, env cli.Env) error {
	o, cfg, err := parseFlags(env)
	if err != nil {
		return err
	}
	sim := providersim.New(providersim.Config{
		IngressURL: o.ingress,
		Accounts:   cfg.Accounts,
		TimeScale:  o.timescale,
		Log:        cli.Logger(cfg, env.Stderr),
		Seed:       o.seed,
		Faults:     o.mix,
	})
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		sim.Close()
		return err
	}
	root := "http://" + ln.Addr().String()
	announce(env, root, o, cfg)
	// The providers' APIs live under /{provider}/{account}/..., so /faults
	// cannot collide with them.
	mux := http.NewServeMux()
	mux.Handle("/faults", sim.FaultsHandler())
	mux.Handle("/", sim.Handler())
	srv := ops.NewServer(mux, ops.DefaultTimeouts)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	tctx, stopTraffic := context.WithCancel(ctx)
	defer stopTraffic()
	trafficDone := make(chan struct{})
	go func() {
		defer close(trafficDone)
		if o.rate == 0 {
			return
		}
		// Pending orders settle after 30 s of provider time.
		settle := max(time.Duration(float64(30*time.Second)*o.timescale), 10*time.Millisecond)
		_ = sim.Run(tctx, providersim.TrafficSpec{Rate: o.rate, SettleAfter: settle})
	}()

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = err
	}
	stopTraffic()
	<-trafficDone
	sim.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && runErr == nil {
		runErr = err
	}
	printStats(env, sim.Stats())
	return runErr
}

// parseFlags reads the command line and the config and checks them; the
// ingress URL defaults to the config's ingress.listen.
func parseFlags(env cli.Env) (options, *config.Config, error) {
	var o options
	f := cli.NewFlags("providersim", env)
	f.Providers = registry.All()
	f.Set.StringVar(&o.listen, "listen", "127.0.0.1:8090", "address to serve the providers' APIs on")
	f.Set.StringVar(&o.ingress, "ingress", "", "payhook ingress root URL (default http://{ingress.listen from the config})")
	f.Set.Float64Var(&o.rate, "rate", 1, "orders per second; 0 serves the APIs without traffic")
	f.Set.Float64Var(&o.timescale, "timescale", 1, "multiplier for provider retry schedules and delays (0.001 = 1000× faster)")
	f.Set.Int64Var(&o.seed, "seed", 0, "random seed for ids, amounts and traffic (0 = from the clock)")
	mix := &o.mix
	f.Set.Float64Var(&mix.Drop, "drop", 0, "probability an order's callbacks are never sent (the reconciler must find it)")
	f.Set.Float64Var(&mix.Duplicate, "duplicate", 0, "probability an order's final callback is sent again (--duplicate-n extra copies)")
	f.Set.IntVar(&mix.DuplicateN, "duplicate-n", 1, "extra copies of a duplicated callback")
	f.Set.Float64Var(&mix.Reorder, "reorder", 0, "probability the opposite terminal status is called back first (not mrnpay)")
	f.Set.Float64Var(&mix.Corrupt, "corrupt", 0, "probability every callback of an order carries a bad signature (mpurse: bad ciphertext)")
	f.Set.Float64Var(&mix.Delay, "delay", 0, "probability an order stays pending up to --max-delay before completing")
	f.Set.DurationVar(&mix.MaxDelay, "max-delay", 2*time.Second, "longest delay drawn for --delay (real time, not scaled)")
	f.Set.Float64Var(&mix.QueryFails, "query-fail", 0, "probability the query endpoints answer an order with HTTP 500 and the provider's error")
	f.Set.Float64Var(&mix.QueryTimeout, "query-timeout", 0, "probability the query endpoints never answer an order")
	if err := f.Parse(env, env.Args); err != nil {
		return o, nil, err
	}
	cfg, err := f.LoadConfig(env)
	if err != nil {
		return o, nil, err
	}
	switch {
	case o.rate < 0:
		return o, nil, &cli.UsageError{Err: errors.New("--rate must not be negative")}
	case o.timescale <= 0:
		return o, nil, &cli.UsageError{Err: errors.New("--timescale must be positive")}
	case len(cfg.Accounts) == 0:
		return o, nil, &cli.UsageError{Err: &config.Error{Key: "accounts", Msg: "providersim needs at least one account"}}
	}
	if err := o.mix.Validate(); err != nil {
		return o, nil, &cli.UsageError{Err: err}
	}
	if o.ingress == "" {
		o.ingress = "http://" + cfg.Ingress.Listen
	}
	return o, cfg, nil
}

// announce prints where the simulator listens, each account's base_url and
// the fault mix.
func announce(env cli.Env, root string, o options, cfg *config.Config) {
	fmt.Fprintf(env.Stdout, "providersim listening on %s, posting callbacks to %s\n", root, o.ingress)
	for _, a := range cfg.Accounts {
		fmt.Fprintf(env.Stdout, "  account %s (%s): base_url %s\n", a.ID, a.Provider, providersim.BaseURL(root, a))
	}
	fmt.Fprintf(env.Stdout, "  faults: %s (GET or POST %s/faults to read or replace)\n", o.mix, root)
}

func printStats(env cli.Env, stats map[string]providersim.ProviderStats) {
	names := make([]string, 0, len(stats))
	for n := range stats {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		b, _ := json.Marshal(stats[n])
		fmt.Fprintf(env.Stdout, "stats %s %s\n", n, b)
	}
}
