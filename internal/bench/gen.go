package bench

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

// Accounts are the merchant accounts the benchmark configures: the
// simulated side's account (providers.Simulated.SimAccount, its test keys)
// of every registered provider that sends callbacks, in registration order.
// The keys are test values for the benchmark's own NATS and Redis.
func Accounts() []providers.Account {
	var out []providers.Account
	for _, name := range registry.All().Names() {
		if sp, ok := simulated[name]; ok {
			a := sp.SimAccount(name + "-bench")
			a.Provider = name
			out = append(out, a)
		}
	}
	return out
}

// simulated are the registered providers that send callbacks and have a
// simulated side: the generator renders their callbacks through it.
var simulated = func() map[string]providers.Simulated {
	provs := registry.All()
	out := map[string]providers.Simulated{}
	for name, sp := range providers.With[providers.Simulated](provs) {
		if _, ok := providers.Role[providers.Inbound](provs, name); ok {
			out[name] = sp
		}
	}
	return out
}()

// Target is one kind of callback in the mix.
type Target struct {
	Provider string
	Kind     events.Kind
	Weight   int
}

// Weights of DefaultMix: pay-ins dominate, as at a busy merchant; the
// other kinds (payouts, appeals) are rarer.
const (
	PayinWeight = 20
	OtherWeight = 5
)

// DefaultMix is the share of each callback: every kind each provider's
// simulated side calls back about, pay-ins at PayinWeight and the rest at
// OtherWeight, providers in registration order.
var DefaultMix = func() []Target {
	var mix []Target
	for _, name := range registry.All().Names() {
		sp, ok := simulated[name]
		if !ok {
			continue
		}
		for _, k := range sp.SimKinds() {
			w := OtherWeight
			if k == events.KindPayin {
				w = PayinWeight
			}
			mix = append(mix, Target{name, k, w})
		}
	}
	return mix
}()

// Callback is one provider callback ready to send.
type Callback struct {
	Provider string
	Account  string
	Kind     events.Kind
	// Path is /v1/callbacks/{provider}/{account}/{kind}.
	Path   string
	Header http.Header
	Body   []byte
	// OrderID is the merchant order id the event will carry (data.merchant_order_id).
	OrderID string
}

// Generator makes correctly signed or encrypted callbacks with unique order
// ids. It is safe for concurrent use.
type Generator struct {
	accts  map[string]providers.Account
	table  []Target // one entry per weight unit
	prefix string
	seq    atomic.Uint64
	now    func() time.Time
}

// NewGenerator builds a generator over accts (one per provider) drawing
// from mix; targets whose provider has no account are dropped. runID makes
// order ids unique across runs sharing a store.
func NewGenerator(accts []providers.Account, mix []Target, runID string) (*Generator, error) {
	g := &Generator{accts: map[string]providers.Account{}, prefix: runID, now: time.Now}
	for _, a := range accts {
		g.accts[a.Provider] = a
	}
	for _, t := range mix {
		if _, ok := g.accts[t.Provider]; !ok {
			continue
		}
		for range t.Weight {
			g.table = append(g.table, t)
		}
	}
	if len(g.table) == 0 {
		return nil, fmt.Errorf("bench: empty callback mix")
	}
	return g, nil
}

// Targets lists the distinct targets in the mix with their weights.
func (g *Generator) Targets() []Target {
	var out []Target
	for _, t := range g.table {
		if n := len(out); n > 0 && out[n-1].Provider == t.Provider && out[n-1].Kind == t.Kind {
			out[n-1].Weight++
			continue
		}
		out = append(out, Target{t.Provider, t.Kind, 1})
	}
	return out
}

// Next returns the next callback of the mix. The choice is a hash of a
// sequence number, so a run's mix is reproducible and evenly spread.
func (g *Generator) Next() (Callback, error) {
	n := g.seq.Add(1)
	t := g.table[splitmix(n)%uint64(len(g.table))]
	return g.Make(t.Provider, t.Kind, n)
}

// Make builds callback number n for provider and kind.
func (g *Generator) Make(provider string, kind events.Kind, n uint64) (Callback, error) {
	a, ok := g.accts[provider]
	if !ok {
		return Callback{}, fmt.Errorf("bench: no %s account", provider)
	}
	id := g.prefix + strconv.FormatUint(n, 10)
	cb := Callback{Provider: provider, Account: a.ID, Kind: kind, OrderID: id,
		Path: "/v1/callbacks/" + provider + "/" + a.ID + "/" + string(kind), Header: http.Header{}}
	amt := 10000 + splitmix(n^0x5bd1e995)%990000 // minor units, 100.00 .. 9999.99
	sp, ok := simulated[provider]
	if !ok || !slices.Contains(sp.SimKinds(), kind) {
		return Callback{}, fmt.Errorf("bench: %s sends no %s callbacks", provider, kind)
	}
	var err error
	cb.Header, cb.Body, err = simulatedCallback(sp, a, kind, id, n, amt, g.now())
	return cb, err
}

// splitmix is SplitMix64's finalizer: a cheap, well-spread hash.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// simulatedCallback is a succeeded callback rendered by the provider's
// simulated side: amt units of the currency's smallest fraction the
// provider's wire carries (SimExponent), of which the payer paid one
// hundred fewer in every 50th (an amount mismatch), signed at now.
func simulatedCallback(sp providers.Simulated, a providers.Account, kind events.Kind, id string, n, amt uint64, now time.Time) (http.Header, []byte, error) {
	exp := sp.SimExponent(kind, a.Currency)
	m, err := events.MoneyFromMinor(strconv.FormatUint(amt, 10), exp, a.Currency)
	if err != nil {
		return nil, nil, err
	}
	paid := m
	if n%50 == 0 {
		if paid, err = events.MoneyFromMinor(strconv.FormatUint(amt-100, 10), exp, a.Currency); err != nil {
			return nil, nil, err
		}
	}
	o := providers.SimOrder{Kind: kind, MerchantOrderID: id, Amount: m, Paid: paid, Status: events.StatusSucceeded, CompletedAt: now}
	if d, ok := sp.(providers.SimDrawer); ok {
		o.PayType = d.SimPayType(kind, func(k int) int { return int(splitmix(n^0x2545f491) % uint64(k)) })
	}
	sp.SimIDs(&o, func(k int) string { return fmt.Sprintf("%0*d", k, splitmix(n)%1e15)[:k] })
	return sp.SimCallback(a, o, now, false)
}
