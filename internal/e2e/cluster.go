package e2e

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/ops"
	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providersim"
)

// Service names one of the three payhook binaries a Cluster runs.
type Service string

// The services.
const (
	Ingress    Service = "ingress"
	Dispatcher Service = "dispatcher"
	Reconciler Service = "reconciler"
)

// Services is every service, in start order.
var Services = []Service{Ingress, Dispatcher, Reconciler}

// testAccounts are the demo account of every registered provider
// (providers.Demo), each base_url pointing at the Cluster's simulator.
var testAccounts = func() []providers.Account {
	var out []providers.Account
	for name, d := range providers.With[providers.Demo](registry.All()) {
		a := d.DemoAccount()
		a.Provider = name
		out = append(out, a)
	}
	order := registry.All().Names()
	slices.SortFunc(out, func(x, y providers.Account) int {
		return slices.Index(order, x.Provider) - slices.Index(order, y.Provider)
	})
	return out
}()

// AccountOf is the id of provider's test account ("" when it has none).
func AccountOf(provider string) string {
	for _, a := range testAccounts {
		if a.Provider == provider {
			return a.ID
		}
	}
	return ""
}

// SimulatedProviders lists, in registration order, the registered
// providers with a simulated side of their own (AccountOf gives their test
// account).
func SimulatedProviders() []string {
	provs := registry.All()
	var out []string
	for _, name := range provs.Names() {
		if _, ok := providers.Role[providers.Simulated](provs, name); ok {
			out = append(out, name)
		}
	}
	return out
}

// SubscriberConfig is one subscriber of a Cluster: an in-process Subscriber
// and its entry in the config. Zero fields get the fast test defaults.
type SubscriberConfig struct {
	ID string // default "ledger" for the first, "sub2", "sub3", … after
	// Secret is the Standard Webhooks secret (default a random whsec_ secret).
	Secret string
	Filter config.Filter
	// MaxAttempts (default 100), Timeout (default 1s), BackoffInitial
	// (default 100ms), BackoffMax (default 1s): the dispatcher's retries.
	MaxAttempts    int
	Timeout        time.Duration
	BackoffInitial time.Duration
	BackoffMax     time.Duration
}

// Options tune a Cluster. The zero value is a fast cluster without Redis
// (dedupe in the NATS key-value bucket) and one subscriber.
type Options struct {
	// Redis starts redis-server and points redis.url at it.
	Redis bool
	// RedisSentinel starts Redis under Sentinel instead (a master, a
	// replica, three Sentinels: testenv.StartRedisSentinel) and configures
	// redis.sentinel.
	RedisSentinel bool
	// Subscribers (default one, "ledger").
	Subscribers []SubscriberConfig
	// TimeScale compresses the simulated providers' retry schedules
	// (default 0.001: cashypro's 17 h schedule lasts about a minute).
	TimeScale float64
	// Schedule is reconciler.schedule (default 1s, 2s, 4s) and
	// RetriggerGrace reconciler.retrigger_grace (default 2s).
	Schedule       []time.Duration
	RetriggerGrace time.Duration
	// LogLevel of the services (default info); logs are JSON.
	LogLevel string
	// Start is which services Start starts (default all three); start the
	// others later with StartService.
	Start []Service
	// Configure has the last word on the config before it is written.
	Configure func(*config.Config)
	// Sim adjusts the simulator's config (IngressURL and Accounts are already set).
	Sim func(*providersim.Config)
	// Env is added to the services' environment.
	Env []string
	// NATSCluster runs three nats-server processes as one JetStream
	// cluster, configured as deploy/k8s/nats.yaml configures its
	// StatefulSet (lame-duck grace shortened to 1 s), and the services with all
	// three seed URLs and nats.replicas 3: every stream, key-value bucket
	// and consumer on all three nodes. Without it one server runs.
	NATSCluster bool
}

// Cluster is payhook running as separate processes: nats-server (JetStream
// on disk), optionally redis-server, ingress, dispatcher and reconciler,
// with an in-process provider simulator in front and in-process subscribers
// behind. Everything is on free 127.0.0.1 ports and everything is stopped
// when the test that started it ends, pass or fail.
//
// Methods are safe for concurrent use, except that StartRedis/StopRedis
// (testenv) report failures on the test that called Start.
type Cluster struct {
	// Dir holds the config, the logs (<service>.log, nats.log) and NATS's store.
	Dir string
	// ConfigPath is the file every service was started with; Config is it
	// parsed back (defaults filled in).
	ConfigPath string
	Config     *config.Config
	// NATSURL and RedisURL (empty without Options.Redis).
	NATSURL  string
	RedisURL string
	// Sim is the provider simulator; SimURL its root (accounts' base_url is
	// SimURL/{provider}/{account}).
	Sim    *providersim.Sim
	SimURL string
	// AdminToken is the bearer token of the admin APIs.
	AdminToken string

	opts      Options
	simConfig providersim.Config
	bins      *Binaries
	procs     map[Service]*proc
	nodes     []*natsNode
	redis     *testenv.Redis
	sentinel  *testenv.RedisSentinel
	instances int // StartInstance's count, for names
	subs      []*Subscriber
	nc        *nats.Conn
	js        jetstream.JetStream

	startMu sync.Mutex
}

// Start builds nothing (Main did), starts a cluster and registers its
// teardown with tb.Cleanup. It fails tb when anything does not come up.
func Start(tb testing.TB, o Options) *Cluster {
	tb.Helper()
	o.defaults()
	c := &Cluster{Dir: tb.TempDir(), opts: o, bins: Built(tb), procs: map[Service]*proc{}}
	tb.Cleanup(func() { c.teardown(tb) })

	// NATS first: everything else needs it.
	if err := c.setUpNATS(tb); err != nil {
		tb.Fatal(err)
	}
	if err := c.StartNATS(); err != nil {
		tb.Fatal(err)
	}
	c.dialNATS(tb)
	switch {
	case o.RedisSentinel:
		c.sentinel = testenv.StartRedisSentinel(tb)
	case o.Redis:
		c.redis = testenv.StartRedis(tb)
		c.RedisURL = c.redis.URL
	}
	c.newSubscribers(tb)
	c.startSim(tb)
	c.startServices(tb)
	return c
}

// dialNATS opens the cluster's own NATS connection. Pings every 2 s: on a
// cluster, a node frozen under this connection is left within seconds, as
// the services leave it.
func (c *Cluster) dialNATS(tb testing.TB) {
	tb.Helper()
	nc, err := nats.Connect(c.NATSURL, nats.Name("payhook-e2e"), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond), nats.RetryOnFailedConnect(true),
		nats.PingInterval(2*time.Second), nats.MaxPingsOutstanding(2))
	if err != nil {
		tb.Fatalf("e2e: connect to nats: %v", err)
	}
	c.nc = nc
	c.js, _ = jetstream.New(nc)
}

// newSubscribers fills in the subscribers' default ids ("ledger", then
// sub2, sub3...) and secrets and starts a receiver for each.
func (c *Cluster) newSubscribers(tb testing.TB) {
	tb.Helper()
	for i, sc := range c.opts.Subscribers {
		if sc.ID == "" {
			sc.ID = "ledger"
			if i > 0 {
				sc.ID = "sub" + strconv.Itoa(i+1)
			}
		}
		if sc.Secret == "" {
			sc.Secret = randomSecret()
		}
		c.opts.Subscribers[i] = sc
		s, err := NewSubscriber(sc.ID, sc.Secret)
		if err != nil {
			tb.Fatalf("e2e: subscriber %s: %v", sc.ID, err)
		}
		c.subs = append(c.subs, s)
	}
}

// startSim writes the config (which needs the simulator's address) and
// serves the provider simulator.
func (c *Cluster) startSim(tb testing.TB) {
	tb.Helper()
	o := c.opts
	simLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("e2e: simulator listener: %v", err)
	}
	c.SimURL = "http://" + simLn.Addr().String()
	if err := c.writeConfig(tb); err != nil {
		simLn.Close()
		tb.Fatal(err)
	}
	simCfg := providersim.Config{IngressURL: c.URL(Ingress), Accounts: c.Config.Accounts, TimeScale: o.TimeScale}
	if o.Sim != nil {
		o.Sim(&simCfg)
	}
	c.simConfig = simCfg
	c.Sim = providersim.New(simCfg)
	simSrv := ops.NewServer(c.Sim.Handler(), ops.DefaultTimeouts)
	go func() { _ = simSrv.Serve(simLn) }()
	// Registered after teardown, so it runs before it: the simulator stops
	// posting callbacks before the services go away.
	tb.Cleanup(func() { c.Sim.Close(); _ = simSrv.Close() })
}

// startServices starts Options.Start: ingress first (it creates the
// streams), then the others together.
func (c *Cluster) startServices(tb testing.TB) {
	tb.Helper()
	o := c.opts
	env := append(os.Environ(), o.Env...)
	for _, s := range Services {
		bin := map[Service]string{Ingress: c.bins.Ingress, Dispatcher: c.bins.Dispatcher, Reconciler: c.bins.Reconciler}[s]
		c.procs[s] = &proc{name: string(s), path: bin, args: []string{"--config", c.ConfigPath}, env: env,
			logPath: filepath.Join(c.Dir, string(s)+".log")}
	}
	var rest []Service
	for _, s := range o.Start {
		if s == Ingress {
			if err := c.StartService(Ingress); err != nil {
				tb.Fatal(err)
			}
			continue
		}
		rest = append(rest, s)
	}
	errs := make([]error, len(rest))
	var wg sync.WaitGroup
	for i, s := range rest {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = c.StartService(s) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		tb.Fatal(err)
	}
}

func (o *Options) defaults() {
	if o.TimeScale == 0 {
		o.TimeScale = 0.001
	}
	if len(o.Schedule) == 0 {
		o.Schedule = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}
	}
	if o.RetriggerGrace == 0 {
		o.RetriggerGrace = 2 * time.Second
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	if o.Start == nil {
		o.Start = Services
	}
	if len(o.Subscribers) == 0 {
		o.Subscribers = []SubscriberConfig{{}}
	} else {
		o.Subscribers = slices.Clone(o.Subscribers)
	}
	for i := range o.Subscribers {
		s := &o.Subscribers[i]
		if s.MaxAttempts == 0 {
			s.MaxAttempts = 100
		}
		if s.Timeout == 0 {
			s.Timeout = time.Second
		}
		if s.BackoffInitial == 0 {
			s.BackoffInitial = 100 * time.Millisecond
		}
		if s.BackoffMax == 0 {
			s.BackoffMax = time.Second
		}
	}
}

func (c *Cluster) teardown(tb testing.TB) {
	for _, s := range Services {
		if p := c.procs[s]; p != nil {
			p.kill()
		}
	}
	if c.nc != nil {
		c.nc.Close()
	}
	for _, n := range c.nodes {
		n.kill()
	}
	for _, s := range c.subs {
		s.Close()
	}
	if tb.Failed() {
		for _, s := range Services {
			if p := c.procs[s]; p != nil {
				tb.Logf("e2e: %s log (%s), last 3000 bytes:\n%s", s, p.logPath, p.tail(3000))
			}
		}
		for _, n := range c.nodes {
			tb.Logf("e2e: nats-server %s log, last 1500 bytes:\n%s", n.name, n.tail(1500))
		}
	}
}

// addr is the listen address of s in the config.
func (c *Cluster) addr(s Service) string {
	switch s {
	case Ingress:
		return c.Config.Ingress.Listen
	case Dispatcher:
		return c.Config.Dispatcher.Listen
	case Reconciler:
		return c.Config.Reconciler.Listen
	}
	return ""
}

// URL is the root URL of service s (http://127.0.0.1:PORT).
func (c *Cluster) URL(s Service) string { return "http://" + c.addr(s) }

// CallbackURL is where provider callbacks for account go:
// {ingress}/v1/callbacks/{provider}/{account}/{kind}.
func (c *Cluster) CallbackURL(provider, account, kind string) string {
	return c.URL(Ingress) + "/v1/callbacks/" + provider + "/" + account + "/" + kind
}

// Account is the cluster's (only) account of provider.
func (c *Cluster) Account(provider string) providers.Account {
	for _, a := range c.Config.Accounts {
		if a.Provider == provider {
			return a
		}
	}
	return providers.Account{}
}

// Subscriber returns the subscriber with id ("" = the first).
func (c *Cluster) Subscriber(id string) *Subscriber {
	for _, s := range c.subs {
		if id == "" || s.ID == id {
			return s
		}
	}
	return nil
}

// Subscribers returns every subscriber, in config order.
func (c *Cluster) Subscribers() []*Subscriber { return slices.Clone(c.subs) }

// NATS is the suite's own client connection (reconnects forever).
func (c *Cluster) NATS() *nats.Conn { return c.nc }

// JS is a JetStream client on NATS, for inspecting PAYHOOK_EVENTS,
// PAYHOOK_RAW, PAYHOOK_RAW_REJECTED and PAYHOOK_DLQ.
func (c *Cluster) JS() jetstream.JetStream { return c.js }

// Redis is the redis-server (nil without Options.Redis).
func (c *Cluster) Redis() *testenv.Redis { return c.redis }

// RedisSentinel is Redis under Sentinel (nil without Options.RedisSentinel).
func (c *Cluster) RedisSentinel() *testenv.RedisSentinel { return c.sentinel }

// Secrets lists every secret in the config — account secrets and AES keys,
// subscriber secrets (whole and their base64 key part), the admin token —
// for tests that grep logs for leaks.
func (c *Cluster) Secrets() []string {
	var out []string
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, a := range c.Config.Accounts {
		add(a.Key("secret"))
		add(a.Key("aes_key"))
		add(a.Key("aes_iv"))
	}
	for _, s := range c.Config.Subscribers {
		for _, sec := range append([]string{s.Secret}, s.Secrets...) {
			add(sec)
			add(strings.TrimPrefix(sec, "whsec_"))
		}
	}
	add(c.AdminToken)
	return out
}
