package providersim

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/cashypro"
)

// simulated are the registered providers that bring their own side of the
// wire (providers.Simulated). The simulator drives them through that role
// alone: their callbacks, acknowledgements, retry schedules, ids, amounts
// and API endpoints all come from their package. The providers without the
// role are simulated by this package's own code (wire.go, handler.go).
var simulated = providers.With[providers.Simulated](registry.All())

// simOrder is ord as its provider's simulated side sees it. Called with s.mu held.
func simOrder(ord *order, status Outcome) providers.SimOrder {
	return providers.SimOrder{
		Kind: ord.o.Kind, MerchantOrderID: ord.o.MerchantOrderID, ProviderOrderID: ord.o.ProviderOrderID,
		Reference: ord.o.Reference, Amount: ord.amount, Paid: ord.paid,
		Status: events.Status(status), CompletedAt: ord.providerStamp,
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
// lookup.
func (s *Sim) serveSimulated(sp providers.Simulated, w http.ResponseWriter, r *http.Request, acct providers.Account, path string) bool {
	failed := false
	find := func(kind events.Kind, merchantOrderID, providerOrderID string) (providers.SimOrder, bool) {
		var ord *order
		if providerOrderID != "" {
			ord = s.findByProviderOrder(acct.Provider, acct.ID, providerOrderID)
		} else {
			ord = s.find(OrderID(acct.Provider, acct.ID, kind, merchantOrderID))
		}
		if ord == nil {
			return providers.SimOrder{}, false
		}
		if !s.queryFaults(w, r, ord, func() {
			if se, ok := sp.(providers.SimServerError); ok {
				se.SimServerError(w)
				return
			}
			http.Error(w, "simulated failure", http.StatusInternalServerError)
		}) {
			failed = true
			return providers.SimOrder{}, false
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return simOrder(ord, ord.o.Status), true
	}
	rec := &faultAware{ResponseWriter: w, failed: &failed}
	return sp.SimServe(rec, r, acct, path, find)
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
// before the final one when an order asks for it (OrderSpec.Intermediate).
func SendsIntermediate(provider string) bool { return provider == cashypro.Name }
