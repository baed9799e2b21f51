package providersim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

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

// create checks spec, stores the order it describes and starts its life
// (the callbacks), returning a snapshot of the order.
func (s *Sim) create(spec OrderSpec, opts createOpts) (*Order, error) {
	if s.ctx.Err() != nil {
		return nil, ErrClosed
	}
	acct, err := s.checkSpec(&spec)
	if err != nil {
		return nil, err
	}
	cur := currencyOf(acct)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	faults := spec.Faults.merge(s.cfg.Faults.draw(s.rnd, spec.Provider, spec.Kind, spec.Outcome))
	amount, paid, err := s.amounts(&spec, cur)
	if err != nil {
		return nil, err
	}
	ord := newOrder(acct, spec, opts, cur, amount, paid, faults)
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
	s.storeLocked(ord, spec)
	snap := ord.o.clone()

	s.goLife(ord, spec.Intermediate)
	return &snap, nil
}

// checkSpec fills spec's defaults (a pay-in, succeeding) and refuses what
// its provider cannot do; it returns the account the order is for.
func (s *Sim) checkSpec(spec *OrderSpec) (providers.Account, error) {
	acct, ok := s.accounts[spec.Provider+"/"+spec.Account]
	if !ok {
		return providers.Account{}, fmt.Errorf("%w: %s/%s", ErrUnknownAccount, spec.Provider, spec.Account)
	}
	if spec.Kind == "" {
		spec.Kind = events.KindPayin
	}
	if !slices.Contains(kindsOf(spec.Provider), spec.Kind) {
		return providers.Account{}, fmt.Errorf("%w: %s %s orders", ErrUnsupported, spec.Provider, spec.Kind)
	}
	if spec.Outcome == "" {
		spec.Outcome = Succeeded
	}
	if !spec.Outcome.valid() {
		return providers.Account{}, fmt.Errorf("%w: outcome %q", ErrBadSpec, spec.Outcome)
	}
	if spec.Intermediate && !sendsIntermediate(spec.Provider, spec.Kind) {
		return providers.Account{}, fmt.Errorf("%w: %s sends no intermediate %s callback", ErrUnsupported, spec.Provider, spec.Kind)
	}
	if spec.Faults.ReorderFailSuccess && !Reorders(spec.Provider, spec.Kind) {
		return providers.Account{}, fmt.Errorf("%w: %s %s callbacks carry no status to reorder", ErrUnsupported, spec.Provider, spec.Kind)
	}
	if spec.Faults.Duplicate < 0 || spec.Faults.Delay < 0 {
		return providers.Account{}, fmt.Errorf("%w: negative fault", ErrBadSpec)
	}
	return acct, nil
}

// amounts parses the order's amount (drawn at random when spec has none)
// and the amount paid (the same unless spec says otherwise), refusing
// negative amounts and precision the provider's wire cannot carry. It draws
// from s.rnd, so s.mu must be held.
func (s *Sim) amounts(spec *OrderSpec, cur string) (amount, paid events.Money, err error) {
	if spec.Amount == "" {
		spec.Amount = s.randomAmount(spec.Provider, spec.Kind, cur)
	}
	amount, err = events.ParseMoney(spec.Amount, cur)
	if err != nil || strings.HasPrefix(spec.Amount, "-") {
		return events.Money{}, events.Money{}, fmt.Errorf("%w: amount %q", ErrBadSpec, spec.Amount)
	}
	paid = amount
	if spec.PaidAmount != "" {
		if paid, err = events.ParseMoney(spec.PaidAmount, cur); err != nil || strings.HasPrefix(spec.PaidAmount, "-") {
			return events.Money{}, events.Money{}, fmt.Errorf("%w: paid amount %q", ErrBadSpec, spec.PaidAmount)
		}
	}
	if err := checkPrecision(spec.Provider, spec.Kind, cur, amount, paid); err != nil {
		return events.Money{}, events.Money{}, err
	}
	return amount, paid, nil
}

// newOrder is the pending order spec describes, before its ids.
func newOrder(acct providers.Account, spec OrderSpec, opts createOpts, cur string, amount, paid events.Money, faults Faults) *order {
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
	ord.cause = opts.cause
	ord.notify = spec.NotifyURL
	return ord
}

// storeLocked indexes the new order and counts it; s.mu must be held.
func (s *Sim) storeLocked(ord *order, spec OrderSpec) {
	if ord.o.ProviderOrderID != "" && spec.Kind == events.KindPayin {
		s.byProviderOrder[providerOrderKey(ord.o.Provider, ord.o.Account, ord.o.ProviderOrderID)] = ord.o.ID
	}
	if ord.notify == "" {
		ord.notify = s.callbackURL(spec.Provider, spec.Account, spec.Kind)
	}
	s.orders[ord.o.ID] = ord
	s.seq = append(s.seq, ord.o.ID)
	s.stats[spec.Provider].OrdersCreated++
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
