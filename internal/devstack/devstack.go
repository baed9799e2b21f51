// Package devstack runs all of payhook in one process for a newcomer: an
// embedded NATS server (JetStream on local disk), ingress, dispatcher and
// reconciler exactly as their binaries run them, the provider simulator
// sending a steady mix of all five providers (with lost, duplicated and
// corrupted callbacks), and a demo subscriber. It prints where everything
// listens and a live summary until interrupted.
package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/payhook/payhook/internal/cli"
	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/dispatch"
	"github.com/payhook/payhook/internal/embednats"
	"github.com/payhook/payhook/internal/ingress"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/ops"
	"github.com/payhook/payhook/internal/reconcile"
	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/internal/tracing"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
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

// Run starts everything and blocks until ctx is cancelled, then shuts down
// in reverse order: traffic and simulator, ingress (drains in-flight
// callbacks), reconciler, dispatcher, subscriber, NATS.
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
	var want Addrs
	if o.Addrs != nil {
		want = *o.Addrs
	}
	// Listeners first, so that a port in use is known before anything
	// starts and the config can name the real addresses. A newcomer's
	// machine may already run something on 8080 (or a second devstack):
	// defaults move to a free port, and the banner prints where.
	def := DefaultAddrs()
	var notes []string
	lns := map[string]net.Listener{}
	for _, p := range []struct{ name, addr, def string }{
		{"ingress", want.Ingress, def.Ingress}, {"dispatcher", want.Dispatcher, def.Dispatcher},
		{"reconciler", want.Reconciler, def.Reconciler}, {"demo subscriber", want.Subscriber, def.Subscriber},
		{"simulator", want.Sim, def.Sim},
	} {
		ln, note, err := listen(p.name, p.addr, p.def)
		if err != nil {
			return err
		}
		defer ln.Close()
		lns[p.name] = ln
		if note != "" {
			notes = append(notes, note)
		}
	}
	real := Addrs{Ingress: lns["ingress"].Addr().String(), Dispatcher: lns["dispatcher"].Addr().String(),
		Reconciler: lns["reconciler"].Addr().String(), Subscriber: lns["demo subscriber"].Addr().String(), Sim: lns["simulator"].Addr().String()}

	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return fmt.Errorf("devstack: data dir: %w", err)
	}
	// Ports move aside for a second devstack; its data dir must not be shared.
	unlock, err := lockDataDir(o.DataDir)
	if err != nil {
		return fmt.Errorf("devstack: data dir %s: %w", o.DataDir, err)
	}
	defer unlock()
	storeDir := filepath.Join(o.DataDir, "jetstream")
	port := o.NATSPort
	if port == 0 {
		port = DefaultNATSPort
		if !embednats.PortFree("127.0.0.1", port) {
			port = 0
			notes = append(notes, fmt.Sprintf("NATS: 127.0.0.1:%d is in use, so a free port instead", DefaultNATSPort))
		}
	}
	ns, err := embednats.Start("127.0.0.1", port, storeDir)
	if err != nil && o.NATSPort == 0 && port != 0 && !embednats.PortFree("127.0.0.1", port) {
		// Taken between the check and the start: fall back as above.
		notes = append(notes, fmt.Sprintf("NATS: 127.0.0.1:%d is in use, so a free port instead", DefaultNATSPort))
		ns, err = embednats.Start("127.0.0.1", 0, storeDir)
	}
	if err != nil {
		return err
	}
	defer ns.Stop()

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

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	goRun := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	subSrv := ops.NewServer(http.StripPrefix("/hooks", st.Subscriber), ops.DefaultTimeouts)
	go func() { _ = subSrv.Serve(lns["demo subscriber"]) }()
	defer subSrv.Close()

	goRun("dispatcher", func(ctx context.Context) error {
		return dispatch.Run(ctx, cfg, dispatch.RunOptions{Log: log.With("component", "dispatcher"), Listener: lns["dispatcher"], Registry: st.regs["dispatcher"]})
	})
	goRun("reconciler", func(ctx context.Context) error {
		return reconcile.Run(ctx, cfg, reconcile.RunOptions{Log: log.With("component", "reconciler"), Listener: lns["reconciler"], Registry: st.regs["reconciler"], DrainTimeout: 5 * time.Second})
	})
	ingressUp := make(chan struct{})
	goRun("ingress", func(ctx context.Context) error {
		return ingress.Run(ctx, cfg, ingress.RunOptions{Log: log.With("component", "ingress"), Listener: lns["ingress"],
			Registry: st.regs["ingress"], Listening: func(string) { close(ingressUp) }, DrainTimeout: 5 * time.Second})
	})
	select {
	case <-ingressUp:
	case err := <-errc:
		return err
	case <-time.After(30 * time.Second):
		return errors.New("devstack: ingress did not start within 30s")
	}

	st.Sim = providersim.New(providersim.Config{
		IngressURL: "http://" + real.Ingress, Accounts: cfg.Accounts, TimeScale: o.TimeScale,
		Log: log.With("component", "simulator"),
	})
	defer st.Sim.Close()
	// The providers' APIs are under /{provider}/{account}/...; /faults is
	// the simulator's control endpoint (a fault mix on top of the traffic's own).
	simMux := http.NewServeMux()
	simMux.Handle("/faults", st.Sim.FaultsHandler())
	simMux.Handle("/", st.Sim.Handler())
	simSrv := ops.NewServer(simMux, ops.DefaultTimeouts)
	go func() { _ = simSrv.Serve(lns["simulator"]) }()
	defer simSrv.Close()

	for _, n := range notes {
		fmt.Fprintf(out, "devstack: %s\n", n)
	}
	printBanner(out, st, real, o)
	if o.Ready != nil {
		o.Ready(st)
	}
	if o.Rate > 0 {
		goRun("traffic", func(ctx context.Context) error { return st.traffic(ctx, o.Rate, real.Reconciler) })
	}
	tick := time.NewTicker(o.Summary)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			st.Sim.Close()
			cancel()
			wg.Wait()
			st.PrintSummary(out)
			select {
			case err := <-errc:
				return err
			default:
				return nil
			}
		case <-tick.C:
			st.PrintSummary(out)
		}
	}
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

// traffic creates orders at rate, round-robin over the configured
// providers, with a realistic mix of faults; announces each one to the
// reconciler on payhook.watch.{provider} (as a merchant's order service
// would), and submits a UTR for every order of a provider that takes them
// (providers.ReferenceSubmitter). Callbacks are dropped only where the
// reconciler can find the order (a providers.Querier).
func (st *Stack) traffic(ctx context.Context, rate float64, reconcilerAddr string) error {
	nc, err := natsbus.Connect(config.NATS{URL: st.NATSURL}, "payhook-devstack-traffic", nil)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	provs := registry.All()
	accounts := map[string]providers.Account{}
	for _, a := range st.Config.Accounts {
		accounts[a.Provider] = a
	}
	var names []string
	for _, p := range provs.Names() {
		if _, ok := accounts[p]; ok {
			names = append(names, p)
		}
	}
	if len(names) == 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		prov := names[n%len(names)]
		acct := accounts[prov]
		_, queries := providers.Role[providers.Querier](provs, prov)
		_, resends := providers.Role[providers.Retriggerer](provs, prov)
		_, submits := providers.Role[providers.ReferenceSubmitter](provs, prov)
		// The simulator draws an amount in the provider's precision.
		spec := providersim.OrderSpec{Provider: prov, Account: acct.ID, Kind: events.KindPayin}
		if resends && slices.Contains(providersim.Kinds(prov), events.KindPayout) && rng.IntN(5) == 0 {
			spec.Kind = events.KindPayout // a provider that resends on query recovers payouts too
		}
		switch p := rng.Float64(); {
		case p < 0.10:
			spec.Faults.DropCallback = true // lost: the reconciler must find it
		case p < 0.25:
			spec.Faults.Duplicate = 2 // provider retries: absorbed by dedupe
		case p < 0.28:
			spec.Faults.CorruptSignature = true // rejected 4xx, recorded in PAYHOOK_RAW_REJECTED
		case p < 0.35 && providersim.SendsIntermediate(prov):
			spec.Intermediate = true // PAYING before SUCCESS
		}
		if !queries || submits {
			spec.Faults.DropCallback = false // nothing can recover these: no query endpoint
		}
		ord, err := st.Sim.CreateOrder(ctx, spec)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			continue
		}
		if submits {
			go st.submitUTR(ctx, reconcilerAddr, acct.ID, ord.MerchantOrderID, ord.Reference)
			continue
		}
		watch := map[string]string{"account": acct.ID, "kind": string(ord.Kind), "merchant_order_id": ord.MerchantOrderID}
		if n, ok := providers.Role[providers.WatchNeeds](provs, prov); ok && n.WatchNeeds().ProviderOrderID {
			watch["provider_order_id"] = ord.ProviderOrderID
		}
		w, _ := json.Marshal(watch)
		_, _ = js.Publish(ctx, events.WatchSubject(prov), w)
	}
}

func (st *Stack) submitUTR(ctx context.Context, reconcilerAddr, account, order, ref string) {
	if ref == "" {
		return
	}
	select {
	case <-ctx.Done():
		return
	case <-time.After(time.Second):
	}
	b, _ := json.Marshal(map[string]string{"account": account, "merchant_order_id": order, "reference": ref})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+reconcilerAddr+"/v1/references", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+AdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	result := "error"
	if err == nil {
		resp.Body.Close()
		result = fmt.Sprint(resp.StatusCode)
	}
	st.mu.Lock()
	st.utr[result]++
	st.mu.Unlock()
}

func printBanner(out io.Writer, st *Stack, a Addrs, o Options) {
	dedupe := "NATS key-value bucket"
	if o.RedisURL != "" {
		dedupe = "Redis " + o.RedisURL
	}
	fmt.Fprintf(out, `payhook devstack is up.

  NATS (JetStream)   %s   data in %s    watch events:  nats sub --server %s 'payhook.events.>'
  ingress            http://%s    callbacks: POST /v1/callbacks/{provider}/{account}/{kind}
  dispatcher         http://%s    admin: POST /v1/dlq/replay
  reconciler         http://%s    admin: POST /v1/watches, POST /v1/references
  demo subscriber    http://%s/hooks
  provider simulator http://%s    base_url per account: /{provider}/{account}; faults: GET/POST /faults
  dedupe             %s
  admin token        %s
  event signing      dev key in %s (public key %s)
  metrics            /metrics on ingress, dispatcher and reconciler

Accounts: `, st.NATSURL, o.DataDir, st.NATSURL, a.Ingress, a.Dispatcher, a.Reconciler, a.Subscriber, a.Sim, dedupe, AdminToken,
		filepath.Join(o.DataDir, EventKeyFile), st.Config.EventSigning.PublicKeys[0])
	var ids []string
	for _, acc := range st.Config.Accounts {
		ids = append(ids, acc.Provider+"/"+acc.ID)
	}
	fmt.Fprintf(out, "%s\nTraffic: %.1f orders/s with lost, duplicated and corrupted callbacks. Ctrl-C stops.\n\n", strings.Join(ids, ", "), o.Rate)
}

// Totals per provider, for the summary and tests.
type Totals struct {
	Orders, CallbacksSent, Accepted, Duplicates, Rejected, Recovered, Delivered int
	// UTRMatched: a provider that takes UTRs (fantian) sends no callbacks; its traffic is UTRs submitted
	// through the reconciler's POST /v1/references and matched (HTTP 200).
	UTRMatched int
}

// Totals reads the live counters of every part.
func (st *Stack) Totals() map[string]Totals {
	out := map[string]Totals{}
	stats := st.Sim.Stats()
	delivered := st.Subscriber.Delivered()
	st.mu.Lock()
	utrMatched := st.utr[fmt.Sprint(http.StatusOK)]
	st.mu.Unlock()
	provs := registry.All()
	for _, p := range provs.Names() {
		t := Totals{Orders: stats[p].OrdersCreated, CallbacksSent: stats[p].CallbacksSent, Delivered: delivered[p]}
		t.Accepted = int(sum(st.regs["ingress"], "payhook_ingress_callbacks_total", "provider", p, "verdict", "accepted"))
		t.Duplicates = int(sum(st.regs["ingress"], "payhook_ingress_callbacks_total", "provider", p, "verdict", "duplicate"))
		t.Rejected = int(sum(st.regs["ingress"], "payhook_ingress_callbacks_total", "provider", p, "verdict", "rejected"))
		t.Recovered = int(sum(st.regs["reconciler"], "payhook_reconciler_recovered_total", "provider", p))
		if _, ok := providers.Role[providers.ReferenceSubmitter](provs, p); ok {
			t.UTRMatched = utrMatched
		}
		out[p] = t
	}
	return out
}

// PrintSummary writes one table of the totals so far.
func (st *Stack) PrintSummary(out io.Writer) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\tprovider\torders\tcallbacks\tstored\tduplicates absorbed\trejected\trecovered by reconciler\tdelivered\tUTRs matched\t\n", time.Now().Format("15:04:05"))
	tot := st.Totals()
	provs := registry.All()
	names := provs.Names()
	sort.Strings(names)
	for _, p := range names {
		t := tot[p]
		utr := "-" // only payments confirmed by UTR (providers.ReferenceSubmitter)
		if _, ok := providers.Role[providers.ReferenceSubmitter](provs, p); ok {
			utr = fmt.Sprint(t.UTRMatched)
		}
		fmt.Fprintf(tw, "\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t\n", p, t.Orders, t.CallbacksSent, t.Accepted, t.Duplicates, t.Rejected, t.Recovered, t.Delivered, utr)
	}
	tw.Flush()
	repeats, bad := st.Subscriber.Counts()
	st.mu.Lock()
	utr := fmt.Sprint(st.utr)
	st.mu.Unlock()
	fmt.Fprintf(out, "  subscriber: %d redeliveries, %d bad signatures; UTR submissions by HTTP status: %s\n\n", repeats, bad, utr)
}

// sum adds the values of every series of metric name whose labels include
// the given name/value pairs.
func sum(reg *prometheus.Registry, name string, kv ...string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	var total float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(kv); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == kv[i] && l.GetValue() == kv[i+1] {
						found = true
					}
				}
				if !found {
					continue series
				}
			}
			if c := m.GetCounter(); c != nil {
				total += c.GetValue()
			} else if g := m.GetGauge(); g != nil {
				total += g.GetValue()
			}
		}
	}
	return total
}
