package providersim

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

// Config configures a simulator.
type Config struct {
	// IngressURL is payhook ingress's root, e.g. http://127.0.0.1:8080;
	// callbacks go to {IngressURL}/v1/callbacks/{provider}/{account}/{kind}.
	IngressURL string
	// Accounts are the merchant accounts, the same ones payhook is
	// configured with: the simulator signs and encrypts with their secrets
	// and keys and checks merchant ids against them.
	Accounts []providers.Account
	// TimeScale multiplies every provider delay (retry schedules, the
	// staff's handling of replenishments and appeals): 1 (or 0) is real time, 0.001 makes
	// a 17-hour retry schedule last about a minute.
	TimeScale float64
	// HTTPClient posts callbacks; default a client with a 10 s timeout.
	// Redirects are never followed (a provider may count 301/302 as
	// received: SimAcked sees them).
	HTTPClient *http.Client
	// Log receives one line per delivery outcome; default discards.
	Log *slog.Logger
	// Seed makes generated ids, amounts and traffic reproducible; 0 seeds
	// from the clock (so that a restarted devstack does not repeat ids).
	Seed int64
	// Faults is a probability mix applied to every order created (on top of
	// the order's own Faults).
	Faults FaultMix
	// CallbackFailures makes a provider that usually calls back only
	// successes (providers.SimSelective) call back failures too, where its
	// callbacks can say so. Off by default.
	CallbackFailures bool
	// AppealOutcome decides appeals merchants submit through a provider's
	// API (providers.SimOpen; default succeeded).
	AppealOutcome Outcome
	// ReplenishDelay and AppealDelay are how long a provider's staff take
	// to complete a replenishment or decide an appeal opened through its
	// API before the callback (default 5 min and 10 min, an assumption;
	// scaled by TimeScale).
	ReplenishDelay time.Duration
	AppealDelay    time.Duration
}

// ProviderStats counts one provider's activity.
type ProviderStats struct {
	OrdersCreated int
	// CallbacksSent counts every POST, first attempts and retries.
	CallbacksSent int
	// Acked counts deliveries acknowledged; Rejected counts attempts that
	// were not (any reply the provider does not take as received, or a transport error).
	Acked    int
	Rejected int
	// Retried counts attempts after the first; GaveUp counts deliveries
	// abandoned after the schedule's last retry.
	Retried int
	GaveUp  int
	// Dropped counts callbacks withheld by Faults.DropCallback.
	Dropped int
	// Requests counts merchant API requests (queries, submissions);
	// BadSignatures those refused for their signature; Resends the
	// callbacks re-sent on request (SimDesk.Resend).
	Requests      int
	BadSignatures int
	Resends       int
}

// Sim is a running simulator. It is safe for concurrent use.
type Sim struct {
	cfg      Config
	hc       *http.Client
	log      *slog.Logger
	accounts map[string]providers.Account // provider/id

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	rnd    *rand.Rand
	orders map[string]*order
	seq    []string // ids in creation order
	stats  map[string]*ProviderStats
	// byRef indexes references already matched (UTR → order id).
	byRef map[string]string
	// byProviderOrder indexes pay-in orders by provider/account/provider order number.
	byProviderOrder map[string]string
}

func providerOrderKey(provider, account, no string) string {
	return provider + "/" + account + "/" + no
}

// New returns a simulator. Call Close to stop its callbacks.
func New(cfg Config) *Sim {
	if cfg.TimeScale <= 0 {
		cfg.TimeScale = 1
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.AppealOutcome == "" {
		cfg.AppealOutcome = Succeeded
	}
	if cfg.ReplenishDelay <= 0 {
		cfg.ReplenishDelay = 5 * time.Minute
	}
	if cfg.AppealDelay <= 0 {
		cfg.AppealDelay = 10 * time.Minute
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		hc = &c
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	s := &Sim{
		cfg:      cfg,
		hc:       hc,
		log:      cfg.Log,
		accounts: make(map[string]providers.Account, len(cfg.Accounts)),
		rnd:      rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15)),
		orders:   make(map[string]*order),
		stats:    make(map[string]*ProviderStats),
		byRef:    make(map[string]string),

		byProviderOrder: make(map[string]string),
	}
	for _, a := range cfg.Accounts {
		s.accounts[a.Provider+"/"+a.ID] = a
	}
	for _, p := range registry.All().Names() {
		s.stats[p] = &ProviderStats{}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Close stops every pending delay, retry and hanging query and waits for
// the simulator's goroutines. Orders stay readable.
func (s *Sim) Close() {
	s.mu.Lock()
	s.closed = true // no goroutine starts after this, so Wait cannot race an Add
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// goLocked runs f in a goroutine Close waits for, unless closed. Called with s.mu held.
func (s *Sim) goLocked(f func()) {
	if s.closed {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// spawn is goLocked for callers not holding s.mu.
func (s *Sim) spawn(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.goLocked(f)
}

// BaseURL is the base_url to configure for acct when the simulator's
// handler is served at root (e.g. http://127.0.0.1:8090):
// root/{provider}/{account-id}.
func BaseURL(root string, acct providers.Account) string {
	return strings.TrimRight(root, "/") + "/" + acct.Provider + "/" + acct.ID
}

// Stats returns a copy of the counters, keyed by provider name (every provider present).
func (s *Sim) Stats() map[string]ProviderStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]ProviderStats, len(s.stats))
	for k, v := range s.stats {
		out[k] = *v
	}
	return out
}

// Orders returns snapshots of every order, in creation order.
func (s *Sim) Orders() []Order {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Order, 0, len(s.seq))
	for _, id := range s.seq {
		out = append(out, s.orders[id].o.clone())
	}
	return out
}

// Order returns a snapshot of the order with id (see OrderID).
func (s *Sim) Order(id string) (Order, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	if !ok {
		return Order{}, false
	}
	return o.o.clone(), true
}

// order is the simulator's state for one order; guarded by Sim.mu.
type order struct {
	o      Order
	acct   providers.Account
	amount events.Money // requested
	paid   events.Money // actually paid
	notify string

	providerStamp time.Time // when it completed, for completionTime/timestamp
	payType       string    // providers.SimOrder.PayType
	appealed      bool      // pay-in: an appeal about it exists
	cause         string    // cause of the final callback (CauseCallback, CauseReplenish, CauseAppeal)
	payloads      map[string]payload
}

// currencyOf is the account's currency, or when it configures none the
// provider's usual one.
func currencyOf(acct providers.Account) string {
	if acct.Currency != "" {
		return acct.Currency
	}
	if sp, ok := simulated[acct.Provider]; ok {
		return sp.SimAccount("x").Currency
	}
	return ""
}

// kindsOf is what the provider's simulated side creates as orders (none
// for a provider without one).
func kindsOf(provider string) []events.Kind {
	if sp, ok := simulated[provider]; ok {
		return sp.SimKinds()
	}
	return nil
}
