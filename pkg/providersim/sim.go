package providersim

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
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

// CreateOrder creates an order and starts its life: after Faults.Delay it
// completes with spec.Outcome and its callbacks are sent (unless the
// provider does not call back about that outcome, or the callback is
// dropped). It returns the order as created. ctx only bounds the call itself.
func (s *Sim) CreateOrder(ctx context.Context, spec OrderSpec) (*Order, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.create(spec, createOpts{cause: CauseCallback})
}

// createOpts are what the provider APIs set beyond an OrderSpec.
type createOpts struct {
	cause   string // cause of the final callback's delivery
	payType string // the pay type the merchant's request named
	// check runs under the lock before the order is stored; an error aborts.
	check func() error
}

func (s *Sim) create(spec OrderSpec, opts createOpts) (*Order, error) {
	if s.ctx.Err() != nil {
		return nil, ErrClosed
	}
	acct, ok := s.accounts[spec.Provider+"/"+spec.Account]
	if !ok {
		return nil, fmt.Errorf("%w: %s/%s", ErrUnknownAccount, spec.Provider, spec.Account)
	}
	if spec.Kind == "" {
		spec.Kind = events.KindPayin
	}
	if !slices.Contains(kindsOf(spec.Provider), spec.Kind) {
		return nil, fmt.Errorf("%w: %s %s orders", ErrUnsupported, spec.Provider, spec.Kind)
	}
	if spec.Outcome == "" {
		spec.Outcome = Succeeded
	}
	if !spec.Outcome.valid() {
		return nil, fmt.Errorf("%w: outcome %q", ErrBadSpec, spec.Outcome)
	}
	if spec.Intermediate && !sendsIntermediate(spec.Provider, spec.Kind) {
		return nil, fmt.Errorf("%w: %s sends no intermediate %s callback", ErrUnsupported, spec.Provider, spec.Kind)
	}
	if spec.Faults.ReorderFailSuccess && !Reorders(spec.Provider, spec.Kind) {
		return nil, fmt.Errorf("%w: %s %s callbacks carry no status to reorder", ErrUnsupported, spec.Provider, spec.Kind)
	}
	if spec.Faults.Duplicate < 0 || spec.Faults.Delay < 0 {
		return nil, fmt.Errorf("%w: negative fault", ErrBadSpec)
	}
	cur := currencyOf(acct)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	faults := spec.Faults.merge(s.cfg.Faults.draw(s.rnd, spec.Provider, spec.Kind, spec.Outcome))
	if spec.Amount == "" {
		spec.Amount = s.randomAmount(spec.Provider, spec.Kind, cur)
	}
	amount, err := events.ParseMoney(spec.Amount, cur)
	if err != nil || strings.HasPrefix(spec.Amount, "-") {
		return nil, fmt.Errorf("%w: amount %q", ErrBadSpec, spec.Amount)
	}
	paid := amount
	if spec.PaidAmount != "" {
		if paid, err = events.ParseMoney(spec.PaidAmount, cur); err != nil || strings.HasPrefix(spec.PaidAmount, "-") {
			return nil, fmt.Errorf("%w: paid amount %q", ErrBadSpec, spec.PaidAmount)
		}
	}
	if err := checkPrecision(spec.Provider, spec.Kind, cur, amount, paid); err != nil {
		return nil, err
	}
	ord := &order{acct: acct, amount: amount, paid: paid, payType: spec.Service, payloads: map[string]payload{}}
	if opts.payType != "" {
		ord.payType = opts.payType
	}
	ord.o = Order{
		Provider:        spec.Provider,
		Account:         spec.Account,
		Kind:            spec.Kind,
		MerchantOrderID: spec.MerchantOrderID,
		Reference:       spec.Reference,
		AppealNo:        spec.AppealNo,
		Amount:          amount.Value,
		PaidAmount:      paid.Value,
		Currency:        cur,
		Outcome:         spec.Outcome,
		Status:          Pending,
		Faults:          faults,
		CreatedAt:       time.Now(),
	}
	s.fillIDs(ord, spec)
	key := ord.o.MerchantOrderID
	if spec.Kind == events.KindAppeal {
		key = ord.o.AppealNo
	}
	ord.o.ID = OrderID(spec.Provider, spec.Account, spec.Kind, key)
	if _, dup := s.orders[ord.o.ID]; dup {
		return nil, fmt.Errorf("%w: %s", ErrDuplicateOrder, ord.o.ID)
	}
	if opts.check != nil {
		if err := opts.check(); err != nil {
			return nil, err
		}
	}
	ord.cause = opts.cause
	if ord.o.ProviderOrderID != "" && spec.Kind == events.KindPayin {
		s.byProviderOrder[providerOrderKey(ord.o.Provider, ord.o.Account, ord.o.ProviderOrderID)] = ord.o.ID
	}
	ord.notify = spec.NotifyURL
	if ord.notify == "" {
		ord.notify = s.callbackURL(spec.Provider, spec.Account, spec.Kind)
	}
	s.orders[ord.o.ID] = ord
	s.seq = append(s.seq, ord.o.ID)
	s.stats[spec.Provider].OrdersCreated++
	snap := ord.o.clone()

	s.goLife(ord, spec.Intermediate)
	return &snap, nil
}

func (s *Sim) callbackURL(provider, account string, kind events.Kind) string {
	return strings.TrimRight(s.cfg.IngressURL, "/") + "/v1/callbacks/" + provider + "/" + account + "/" + string(kind)
}

// checkPrecision refuses amounts a provider's wire format cannot carry:
// more fraction digits than its SimExponent.
func checkPrecision(provider string, kind events.Kind, currency string, ms ...events.Money) error {
	exp := simulated[provider].SimExponent(kind, currency)
	for _, m := range ms {
		if _, err := m.Minor(exp); err != nil {
			return fmt.Errorf("%w: %s %s amounts have %d fraction digits", ErrBadSpec, provider, kind, exp)
		}
	}
	return nil
}

// fillIDs generates what spec left empty. Called with s.mu held.
func (s *Sim) fillIDs(ord *order, spec OrderSpec) {
	o := &ord.o
	sp := simulated[spec.Provider]
	so := simOrder(ord, Pending)
	sp.SimIDs(&so, s.randomDigits)
	o.MerchantOrderID, o.ProviderOrderID, o.Reference, o.AppealNo = so.MerchantOrderID, so.ProviderOrderID, so.Reference, so.AppealNo
	if d, ok := sp.(providers.SimDrawer); ok && ord.payType == "" {
		ord.payType = d.SimPayType(spec.Kind, s.rnd.IntN)
	}
	if spec.Kind == events.KindAppeal {
		// An appeal is about the pay-in with its merchant order id: it
		// carries that pay-in's provider order id.
		if pay, ok := s.orders[OrderID(spec.Provider, spec.Account, events.KindPayin, o.MerchantOrderID)]; ok {
			o.ProviderOrderID = pay.o.ProviderOrderID
		}
	}
}

func (s *Sim) digits(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + s.rnd.IntN(10))
	}
	if b[0] == '0' {
		b[0] = '1'
	}
	return string(b)
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// randomAmount draws a plausible amount for the provider. Called with s.mu held.
func (s *Sim) randomAmount(provider string, kind events.Kind, cur string) string {
	sp := simulated[provider]
	if d, ok := sp.(providers.SimDrawer); ok {
		if a := d.SimAmount(kind, cur, s.rnd.IntN); a != "" {
			return a
		}
	}
	return s.simAmount(sp.SimExponent(kind, cur))
}

// Settle completes a pending order with outcome (succeeded or failed) and
// sends its callbacks, faults included, as CreateOrder would have.
func (s *Sim) Settle(ctx context.Context, id string, outcome Outcome) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if outcome != Succeeded && outcome != Failed {
		return fmt.Errorf("%w: settle with %q", ErrBadSpec, outcome)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ord, ok := s.orders[id]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoOrder, id)
	}
	if ord.o.Status != Pending || ord.o.Outcome != Pending {
		return fmt.Errorf("%w: %s is not pending", ErrBadSpec, id)
	}
	ord.o.Outcome = outcome
	if ord.cause == "" {
		ord.cause = CauseCallback
	}
	s.goLife(ord, false)
	return nil
}

// goLife starts the order's life in a goroutine. Called with s.mu held.
func (s *Sim) goLife(ord *order, intermediate bool) {
	s.goLocked(func() { s.life(ord, intermediate) })
}

// life sends the pending callback when asked, waits out the delay,
// completes the order and sends its callbacks.
// The first attempt of each callback is made before the next callback
// starts, so receivers see them in the documented order; retries run on
// their own.
func (s *Sim) life(ord *order, intermediate bool) {
	if intermediate {
		s.send(ord, CauseProgress, Pending, false)
	}
	s.mu.Lock()
	delay := ord.o.Faults.Delay
	s.mu.Unlock()
	if !sleep(s.ctx, delay) {
		return
	}
	s.mu.Lock()
	outcome := ord.o.Outcome
	if outcome == Pending {
		s.mu.Unlock()
		return
	}
	if _, matches := providers.Role[providers.ReferenceSubmitter](provs, ord.o.Provider); matches && outcome == Succeeded {
		// The payer paid, but a provider that takes references credits the
		// order only once its reference is submitted and matched
		// (providers.SimDesk.Match).
		s.mu.Unlock()
		return
	}
	ord.o.Status = outcome
	ord.providerStamp = time.Now()
	cause := ord.cause
	s.mu.Unlock()
	s.sendFinal(ord, cause, false)
}

// sendFinal sends the final callback with the order's faults. force
// ignores DropCallback (a resend the merchant asked for).
func (s *Sim) sendFinal(ord *order, cause string, force bool) {
	s.mu.Lock()
	f := ord.o.Faults
	status := ord.o.Status
	provider := ord.o.Provider
	callsBack := s.callsBack(ord, status)
	if callsBack && f.DropCallback && !force {
		s.stats[provider].Dropped++
		callsBack = false
	}
	s.mu.Unlock()
	if !callsBack {
		return
	}
	// Reordering forces the opposite status out even where the provider
	// usually sends no failures, as long as its callbacks can say them.
	if f.ReorderFailSuccess && cause != CauseRetrigger && Reorders(provider, ord.o.Kind) {
		s.send(ord, CauseReorder, status.opposite(), false)
	}
	s.send(ord, cause, status, false)
	if cause != CauseRetrigger {
		for range f.Duplicate {
			s.send(ord, CauseDuplicate, status, true)
		}
	}
}

// callsBack reports whether the provider sends a callback for an order in
// status. Called with s.mu held.
func (s *Sim) callsBack(ord *order, status Outcome) bool {
	return CallsBack(ord.o, events.Status(status), s.cfg.CallbackFailures)
}

// sleep waits d or until ctx is done; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
