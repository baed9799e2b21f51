package providersim

import (
	"context"
	"errors"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

// FaultMix gives each fault an independent probability (0..1) per order.
// A fault a provider cannot have is not drawn (reorder where its callbacks
// cannot say "failed" (Reorders); callback faults where it sends no
// callbacks).
type FaultMix struct {
	Drop         float64
	Duplicate    float64
	Reorder      float64
	Corrupt      float64
	Delay        float64
	QueryFails   float64
	QueryTimeout float64
	// DuplicateN is how many extra copies a duplicated callback gets (default 1).
	DuplicateN int
	// MaxDelay bounds a drawn delay, uniform in (0, MaxDelay] (default 2 s).
	MaxDelay time.Duration
}

func (m FaultMix) zero() bool {
	return m.Drop <= 0 && m.Duplicate <= 0 && m.Reorder <= 0 && m.Corrupt <= 0 && m.Delay <= 0 && m.QueryFails <= 0 && m.QueryTimeout <= 0
}

// draw picks faults for one order of provider. Called with the rand's lock held.
func (m FaultMix) draw(r *rand.Rand, provider string, kind events.Kind, outcome Outcome) Faults {
	var f Faults
	if m.zero() {
		return f
	}
	hit := func(p float64) bool { return p > 0 && r.Float64() < p }
	if sendsCallbacks(provider) {
		f.DropCallback = hit(m.Drop)
		if hit(m.Duplicate) {
			f.Duplicate = max(m.DuplicateN, 1)
		}
		f.ReorderFailSuccess = Reorders(provider, kind) && outcome != Pending && hit(m.Reorder)
		f.CorruptSignature = hit(m.Corrupt)
	}
	if hit(m.Delay) {
		maxD := m.MaxDelay
		if maxD <= 0 {
			maxD = 2 * time.Second
		}
		f.Delay = time.Duration(1 + r.Int64N(int64(maxD)))
	}
	f.QueryFails = hit(m.QueryFails)
	f.QueryTimeout = hit(m.QueryTimeout)
	return f
}

// TrafficSpec shapes the steady traffic Run generates. Weights are
// relative; an empty map means equal weights over everything possible.
type TrafficSpec struct {
	// Rate is orders per second (default 1).
	Rate float64
	// Providers weighs providers; only providers with an account are drawn.
	Providers map[string]float64
	// Kinds weighs kinds; a provider draws among the kinds it supports.
	// Empty: payin and payout 1, appeal 0.1.
	Kinds map[events.Kind]float64
	// Outcomes weighs outcomes. Empty: succeeded 8, failed 1, pending 1.
	Outcomes map[Outcome]float64
	// Faults is the fault mix for generated orders (on top of Config.Faults).
	Faults FaultMix
	// SettleAfter, when positive, settles pending orders this long (real
	// time) after creation, succeeded or failed by the Outcomes weights.
	SettleAfter time.Duration
}

// Run creates orders at spec.Rate until ctx is done, then returns nil.
// Orders that cannot be created are logged and skipped.
func (s *Sim) Run(ctx context.Context, spec TrafficSpec) error {
	rate := spec.Rate
	if rate <= 0 {
		rate = 1
	}
	if len(s.cfg.Accounts) == 0 {
		return errors.New("providersim: no accounts to make traffic for")
	}
	interval := time.Duration(float64(time.Second) / rate)
	if interval <= 0 {
		interval = time.Nanosecond
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.ctx.Done():
			return nil
		case <-t.C:
		}
		o, err := s.CreateOrder(ctx, s.drawSpec(spec))
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, ErrClosed) {
				return nil
			}
			s.log.Warn("providersim: traffic order not created", "err", err)
			continue
		}
		if o.Outcome == Pending && spec.SettleAfter > 0 {
			id := o.ID
			outcome := s.drawSettle(spec)
			s.spawn(func() {
				if sleep(s.ctx, spec.SettleAfter) && ctx.Err() == nil {
					_ = s.Settle(s.ctx, id, outcome)
				}
			})
		}
	}
}

func (s *Sim) drawSettle(spec TrafficSpec) Outcome {
	w := spec.Outcomes
	if len(w) == 0 {
		w = map[Outcome]float64{Succeeded: 8, Failed: 1}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return weighted(s.rnd, map[Outcome]float64{Succeeded: w[Succeeded], Failed: w[Failed]}, Succeeded)
}

// drawSpec picks one order: an account by provider weight, a kind, an outcome, faults.
func (s *Sim) drawSpec(spec TrafficSpec) OrderSpec {
	s.mu.Lock()
	defer s.mu.Unlock()
	byProvider := map[string][]providers.Account{}
	for _, a := range s.cfg.Accounts {
		byProvider[a.Provider] = append(byProvider[a.Provider], a)
	}
	pw := map[string]float64{}
	for p := range byProvider {
		if len(spec.Providers) == 0 {
			pw[p] = 1
		} else {
			pw[p] = spec.Providers[p]
		}
	}
	provider := weighted(s.rnd, pw, "")
	if provider == "" {
		provider = s.cfg.Accounts[0].Provider
	}
	acct := pick(s.rnd, byProvider[provider])
	kw := map[events.Kind]float64{}
	for _, k := range kindsOf(provider) {
		switch {
		case len(spec.Kinds) > 0:
			kw[k] = spec.Kinds[k]
		case k == events.KindAppeal:
			kw[k] = 0.1
		default:
			kw[k] = 1
		}
	}
	kind := weighted(s.rnd, kw, events.KindPayin)
	ow := spec.Outcomes
	if len(ow) == 0 {
		ow = map[Outcome]float64{Succeeded: 8, Failed: 1, Pending: 1}
	}
	outcome := weighted(s.rnd, ow, Succeeded)
	if kind == events.KindAppeal && outcome == Pending {
		outcome = Succeeded
	}
	return OrderSpec{
		Provider: provider,
		Account:  acct.ID,
		Kind:     kind,
		Outcome:  outcome,
		Faults:   spec.Faults.draw(s.rnd, provider, kind, outcome),
	}
}

// weighted draws a key with probability proportional to its weight, in a
// stable key order so a seed reproduces the same draws; def when all weights are 0.
func weighted[K ~string](r *rand.Rand, w map[K]float64, def K) K {
	keys := make([]K, 0, len(w))
	total := 0.0
	for k, v := range w {
		if v > 0 {
			keys = append(keys, k)
			total += v
		}
	}
	if total == 0 {
		return def
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	x := r.Float64() * total
	for _, k := range keys {
		x -= w[k]
		if x < 0 {
			return k
		}
	}
	return keys[len(keys)-1]
}
