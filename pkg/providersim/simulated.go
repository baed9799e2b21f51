package providersim

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

// simulated are the registered providers that bring their own side of the
// wire (providers.Simulated). The simulator drives them through that role
// and the optional ones (providers.SimSelective, SimDeskServer, ...)
// alone: their callbacks, acknowledgements, retry schedules, ids, amounts
// and API endpoints all come from their package. A provider without the
// role cannot be simulated.
var simulated = providers.With[providers.Simulated](provs)

// provs are the registered providers.
var provs = registry.All()

// senders are the registered providers that send callbacks at all.
var senders = providers.With[providers.Inbound](provs)

// sendsCallbacks reports whether provider calls back about its orders.
func sendsCallbacks(provider string) bool {
	_, ok := senders[provider]
	return ok
}

// simOrder is ord as its provider's simulated side sees it. Called with s.mu held.
func simOrder(ord *order, status Outcome) providers.SimOrder {
	return providers.SimOrder{
		Kind: ord.o.Kind, MerchantOrderID: ord.o.MerchantOrderID, ProviderOrderID: ord.o.ProviderOrderID,
		Reference: ord.o.Reference, AppealNo: ord.o.AppealNo, PayType: ord.payType,
		Amount: ord.amount, Paid: ord.paid, Status: events.Status(status), CompletedAt: ord.providerStamp,
	}
}

// buildSimulated renders ord's callback through its provider's Simulated role.
func buildSimulated(sp providers.Simulated, ord *order, status Outcome, corrupt bool) (payload, error) {
	at := ord.providerStamp
	if at.IsZero() {
		at = time.Now()
	}
	h, body, err := sp.SimCallback(ord.acct, simOrder(ord, status), at, corrupt)
	if err != nil {
		return payload{}, fmt.Errorf("providersim: %s account %q: %w", sp.Name(), ord.acct.ID, err)
	}
	return payload{header: h, body: body}, nil
}

// serveSimulated answers an API request of a Simulated provider, applying
// the order's query faults (an HTTP 500, in the provider's own format when
// it is a providers.SimServerError, or no answer) around the provider's own
// lookup. A providers.SimDeskServer gets the whole desk.
func (s *Sim) serveSimulated(sp providers.Simulated, w http.ResponseWriter, r *http.Request, acct providers.Account, path string) bool {
	d := &desk{s: s, sp: sp, w: w, r: r, acct: acct}
	rec := &faultAware{ResponseWriter: w, failed: &d.failed}
	if ds, ok := sp.(providers.SimDeskServer); ok {
		return ds.SimServeDesk(rec, r, acct, path, d)
	}
	return sp.SimServe(rec, r, acct, path, d.Find)
}

// desk is the simulator's side of one API request (providers.SimDesk).
type desk struct {
	s      *Sim
	sp     providers.Simulated
	w      http.ResponseWriter
	r      *http.Request
	acct   providers.Account
	failed bool // a fault answered (or hung up on) the request
}

// Find looks the order up by its provider order id or by kind and merchant
// order id (given both, they must name one order) and applies its query
// faults.
func (d *desk) Find(kind events.Kind, merchantOrderID, providerOrderID string) (providers.SimOrder, bool) {
	s, acct := d.s, d.acct
	var ord *order
	switch {
	case providerOrderID != "":
		ord = s.findByProviderOrder(acct.Provider, acct.ID, providerOrderID)
		if ord != nil && merchantOrderID != "" && ord.o.MerchantOrderID != merchantOrderID {
			ord = nil
		}
	case merchantOrderID != "":
		ord = s.find(OrderID(acct.Provider, acct.ID, kind, merchantOrderID))
	}
	if ord == nil {
		return providers.SimOrder{}, false
	}
	if !s.queryFaults(d.w, d.r, ord, func() {
		if se, ok := d.sp.(providers.SimServerError); ok {
			se.SimServerError(d.w)
			return
		}
		http.Error(d.w, "simulated failure", http.StatusInternalServerError)
	}) {
		d.failed = true
		return providers.SimOrder{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return simOrder(ord, ord.o.Status), true
}

// BadSignature counts a request refused for its signature.
func (d *desk) BadSignature() { d.s.badSignature(d.acct.Provider) }

// Resend sends o's final callback again in the background.
func (d *desk) Resend(o providers.SimOrder) {
	ord := d.s.find(OrderID(d.acct.Provider, d.acct.ID, o.Kind, orderKey(o.Kind, o.MerchantOrderID, o.AppealNo)))
	if ord == nil {
		return
	}
	d.s.count(d.acct.Provider, func(st *ProviderStats) { st.Resends++ })
	d.s.goResend(ord)
}

// Open creates a replenishment (payin) or an appeal, completed after the
// configured delay (scaled).
func (d *desk) Open(req providers.SimOpen) (providers.SimOrder, error) {
	s, acct := d.s, d.acct
	spec := OrderSpec{Provider: acct.Provider, Account: acct.ID, Kind: req.Kind, MerchantOrderID: req.MerchantOrderID,
		Amount: req.Amount, AppealNo: req.AppealNo, NotifyURL: req.NotifyURL}
	opts := createOpts{payType: req.PayType}
	switch req.Kind {
	case events.KindPayin:
		spec.Outcome = Succeeded
		spec.Faults.Delay = scale(s.cfg.ReplenishDelay, s.cfg.TimeScale)
		opts.cause = CauseReplenish
	case events.KindAppeal:
		pay := s.findByProviderOrder(acct.Provider, acct.ID, req.ProviderOrderID)
		if pay == nil || pay.o.Kind != events.KindPayin {
			return providers.SimOrder{}, providers.ErrNotFound
		}
		spec.MerchantOrderID = pay.o.MerchantOrderID
		spec.Outcome = s.cfg.AppealOutcome
		spec.Faults.Delay = scale(s.cfg.AppealDelay, s.cfg.TimeScale)
		opts.cause = CauseAppeal
		opts.check = func() error {
			if pay.appealed {
				return ErrDuplicateOrder
			}
			pay.appealed = true
			return nil
		}
	default:
		return providers.SimOrder{}, fmt.Errorf("%w: %s orders opened through the API", ErrUnsupported, req.Kind)
	}
	o, err := s.create(spec, opts)
	if errors.Is(err, ErrDuplicateOrder) {
		return providers.SimOrder{}, fmt.Errorf("%w: %v", providers.ErrSimExists, err)
	}
	if err != nil {
		return providers.SimOrder{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ord := s.orders[o.ID]
	return simOrder(ord, ord.o.Status), nil
}

// Match matches reference to o: when the payer paid o with it (outcome
// succeeded) and no other order has it, o succeeds. Matching o's own
// reference again is a match.
func (d *desk) Match(o providers.SimOrder, reference string) providers.SimMatch {
	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	ord := s.orders[OrderID(d.acct.Provider, d.acct.ID, o.Kind, orderKey(o.Kind, o.MerchantOrderID, o.AppealNo))]
	switch {
	case ord == nil:
		return providers.SimNotMatched
	case s.byRef[reference] != "" && s.byRef[reference] != ord.o.ID:
		return providers.SimReferenceUsed
	case ord.o.Matched == reference:
		return providers.SimMatched
	case ord.o.Matched != "" || ord.o.Outcome != Succeeded || ord.o.Reference != reference:
		return providers.SimNotMatched
	}
	ord.o.Matched = reference
	ord.o.Status = Succeeded
	ord.providerStamp = time.Now()
	s.byRef[reference] = ord.o.ID
	return providers.SimMatched
}

// faultAware drops the provider's answer once a fault has answered (or
// hung up on) the request.
type faultAware struct {
	http.ResponseWriter
	failed *bool
}

// WriteHeader passes code on unless a fault has answered.
func (f *faultAware) WriteHeader(code int) {
	if !*f.failed {
		f.ResponseWriter.WriteHeader(code)
	}
}

// Write passes b on unless a fault has answered (then it is dropped).
func (f *faultAware) Write(b []byte) (int, error) {
	if *f.failed {
		return len(b), nil
	}
	return f.ResponseWriter.Write(b)
}

// randomDigits is what SimIDs draws with. Called with s.mu held.
func (s *Sim) randomDigits(n int) string { return s.digits(n) }

// simAmount draws an amount with exp fraction digits. Called with s.mu held.
func (s *Sim) simAmount(exp int) string {
	whole := fmt.Sprint(100 + s.rnd.IntN(49900))
	if exp == 0 {
		return whole
	}
	frac := fmt.Sprintf("%0*d", exp, s.rnd.IntN(pow10(exp)))
	if exp == 3 {
		frac = frac[:2] + "0" // three-decimal currencies settle in tens of the minor unit
	}
	return whole + "." + strings.TrimSpace(frac)
}

func pow10(n int) int {
	p := 1
	for range n {
		p *= 10
	}
	return p
}

// Kinds lists the order kinds the simulator creates for provider.
func Kinds(provider string) []events.Kind { return kindsOf(provider) }

// SendsIntermediate reports whether provider sends a pending callback
// before the final one of some kind of order when the order asks for it
// (OrderSpec.Intermediate; providers.SimIntermediate).
func SendsIntermediate(provider string) bool {
	return slices.ContainsFunc(kindsOf(provider), func(k events.Kind) bool { return sendsIntermediate(provider, k) })
}

func sendsIntermediate(provider string, kind events.Kind) bool {
	si, ok := simulated[provider].(providers.SimIntermediate)
	return ok && si.SimIntermediate(kind)
}

// CallsBack reports whether o's provider sends a callback about o in
// status: never for a provider that sends no callbacks, otherwise as its
// simulated side says (providers.SimSelective; every status without it).
// failures is Config.CallbackFailures.
func CallsBack(o Order, status events.Status, failures bool) bool {
	if !sendsCallbacks(o.Provider) {
		return false
	}
	sel, ok := simulated[o.Provider].(providers.SimSelective)
	return !ok || sel.SimCallsBack(o.sim(status), failures)
}

// Reorders reports whether provider can send a callback in the opposite
// status before the real one (Faults.ReorderFailSuccess): its callbacks
// about kind say their status, so it can call back both.
func Reorders(provider string, kind events.Kind) bool {
	sel, ok := simulated[provider].(providers.SimSelective)
	return !ok || sel.SimCallsBack(providers.SimOrder{Kind: kind, Status: events.StatusSucceeded}, true) &&
		sel.SimCallsBack(providers.SimOrder{Kind: kind, Status: events.StatusFailed}, true)
}

// sim is the snapshot as its provider's simulated side sees it, in status.
func (o Order) sim(status events.Status) providers.SimOrder {
	amount, _ := events.ParseMoney(o.Amount, o.Currency)
	paid, _ := events.ParseMoney(o.PaidAmount, o.Currency)
	return providers.SimOrder{Kind: o.Kind, MerchantOrderID: o.MerchantOrderID, ProviderOrderID: o.ProviderOrderID,
		Reference: o.Reference, AppealNo: o.AppealNo, Amount: amount, Paid: paid, Status: status}
}

// orderKey is the last part of an order's id: the merchant order id, or
// for an appeal the merchant's appeal number.
func orderKey(kind events.Kind, merchantOrderID, appealNo string) string {
	if kind == events.KindAppeal {
		return appealNo
	}
	return merchantOrderID
}
