package registry_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/providertest"
)

// Every registered provider is checked here without being named: what its
// roles promise must hold together.

func TestNamesAreUniqueTokens(t *testing.T) {
	names := registry.All().Names()
	if len(names) == 0 {
		t.Fatal("no provider registered")
	}
	for _, n := range names {
		if n == "" || strings.Trim(n, "abcdefghijklmnopqrstuvwxyz0123456789") != "" || len(n) > 32 {
			t.Errorf("provider name %q is not [a-z0-9]{1,32}", n)
		}
	}
}

// A provider with a simulated side: its demo account passes its own
// Credentials check; every callback it renders verifies and decodes into the
// order's event; a corrupted one is rejected; a body re-signed with SimSign
// verifies (where the signature travels beside the body); and, when it answers queries, its simulated API answers its
// own Querier.
func TestSimulatedSidesConform(t *testing.T) {
	provs := registry.All()
	for name, sp := range providers.With[providers.Simulated](provs) {
		t.Run(name, func(t *testing.T) {
			acct := sp.SimAccount(name + "-demo")
			if err := provs.CheckAccount(acct); err != nil {
				t.Fatalf("demo account: %v", err)
			}
			now := time.Now().Truncate(time.Second)
			in, calls := providers.Role[providers.Inbound](provs, name)
			for _, kind := range sp.SimKinds() {
				if !calls {
					break
				}
				for _, st := range []events.Status{events.StatusSucceeded, events.StatusFailed} {
					o := simOrder(t, sp, acct, kind, st, now)
					if sel, ok := sp.(providers.SimSelective); ok && !sel.SimCallsBack(o, true) {
						continue // never called back about
					}
					h, body, err := sp.SimCallback(acct, o, now, false)
					if err != nil {
						t.Fatalf("%s %s: SimCallback: %v", kind, st, err)
					}
					req := providers.Request{Kind: kind, Header: h, Body: body, ReceivedAt: now}
					ev, err := in.Parse(acct, req)
					if err != nil {
						t.Fatalf("%s %s: Parse of the simulated callback: %v", kind, st, err)
					}
					if ev.Status != st || ev.Kind != kind || ev.MerchantOrderID != o.MerchantOrderID || ev.Provider != name {
						t.Errorf("%s %s: decoded %+v", kind, st, ev)
					}
					if st == events.StatusSucceeded && !ev.Amount.Equal(o.Paid) {
						t.Errorf("%s: amount %v, want %v", kind, ev.Amount, o.Paid)
					}
					if in.Ack(kind).ContentType == "" || !sp.SimAcked(in.Ack(kind).Status, in.Ack(kind).Body) {
						t.Errorf("%s: the provider does not take payhook's ack as received", kind)
					}
					h2, bad, _ := sp.SimCallback(acct, o, now, true)
					if _, err := in.Parse(acct, providers.Request{Kind: kind, Header: h2, Body: bad, ReceivedAt: now}); err == nil || errors.Is(err, providers.ErrIgnored) {
						t.Errorf("%s %s: corrupted callback: %v", kind, st, err)
					}
					h3, err := sp.SimSign(acct, kind, body, now.Add(time.Second))
					if errors.Is(err, providers.ErrUnsupported) {
						continue // the signature travels in the body, or the body is encrypted
					}
					if err != nil {
						t.Fatalf("SimSign: %v", err)
					}
					if _, err := in.Parse(acct, providers.Request{Kind: kind, Header: h3, Body: body, ReceivedAt: now}); err != nil {
						t.Errorf("%s %s: re-signed callback: %v", kind, st, err)
					}
				}
			}
			if q, ok := providers.Role[providers.Querier](provs, name); ok {
				queryRoundTrip(t, sp, q, acct, now)
			}
		})
	}
}

func simOrder(t testing.TB, sp providers.Simulated, acct providers.Account, kind events.Kind, st events.Status, at time.Time) providers.SimOrder {
	t.Helper()
	exp := sp.SimExponent(kind, acct.Currency)
	v := "1234"
	if exp > 0 {
		v += "." + strings.Repeat("5", exp)
	}
	m := events.MustMoney(v, acct.Currency)
	o := providers.SimOrder{Kind: kind, Amount: m, Paid: m, Status: st, CompletedAt: at}
	n := 0
	sp.SimIDs(&o, func(k int) string { n++; return strings.Repeat(string(rune('0'+n%10)), k) })
	if o.MerchantOrderID == "" {
		t.Fatalf("SimIDs left the merchant order id empty: %+v", o)
	}
	return o
}

// queryRoundTrip serves the simulated API and queries it through the
// provider's Querier: a succeeded order is found succeeded, an unknown one
// is not found.
func queryRoundTrip(t *testing.T, sp providers.Simulated, q providers.Querier, acct providers.Account, now time.Time) {
	t.Helper()
	o := simOrder(t, sp, acct, events.KindPayin, events.StatusSucceeded, now)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		find := func(kind events.Kind, mid, pid string) (providers.SimOrder, bool) {
			if pid != "" && pid == o.ProviderOrderID || pid == "" && mid == o.MerchantOrderID {
				return o, true
			}
			return providers.SimOrder{}, false
		}
		if !sp.SimServe(w, r, acct, r.URL.Path, find) {
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	acct.BaseURL = srv.URL
	order := providers.Order{Kind: events.KindPayin, MerchantOrderID: o.MerchantOrderID, ProviderOrderID: o.ProviderOrderID}
	res, err := q.Query(context.Background(), acct, order, false)
	if err != nil || !res.Found || res.Status != events.StatusSucceeded {
		t.Fatalf("query of a succeeded simulated order: %+v, %v", res, err)
	}
	if res.Event != nil && (res.Event.MerchantOrderID != o.MerchantOrderID || res.Event.Origin != events.OriginPoll) {
		t.Errorf("polled event %+v", res.Event)
	}
	if se, ok := sp.(providers.SimServerError); ok {
		fail := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { se.SimServerError(w) }))
		a := acct
		a.BaseURL = fail.URL
		_, err := q.Query(context.Background(), a, order, false)
		fail.Close()
		var ae *providers.APIError
		if !errors.As(err, &ae) || !ae.Temporary {
			t.Errorf("query answered by SimServerError: %v, want a temporary *providers.APIError", err)
		}
	}
	order.MerchantOrderID = "UNKNOWN-1"
	if len(o.ProviderOrderID) >= 3 {
		order.ProviderOrderID = o.ProviderOrderID[:3] + "0unknown"
	}
	// Not found, or the provider's own permanent error where it answers
	// an unknown order with one (CashyPro's Payin_Order_Error).
	res, err = q.Query(context.Background(), acct, order, false)
	var ae *providers.APIError
	if !errors.Is(err, providers.ErrNotFound) && !(errors.As(err, &ae) && !ae.Temporary) && (err != nil || res.Found) {
		t.Errorf("query of an unknown order: %+v, %v", res, err)
	}
}

// TestConformanceOfSimulatedProviders runs the conformance suite
// (providertest) on every registered provider that calls back and has a
// simulated side, with callbacks that side renders: truncated, mutated and
// wrongly keyed copies must be rejected with a reason and never panic. The
// golden decode is each package's own test (the expected events come from
// the callbacks themselves here).
func TestConformanceOfSimulatedProviders(t *testing.T) {
	provs := registry.All()
	for name, sp := range providers.With[providers.Simulated](provs) {
		in, ok := providers.Role[providers.Inbound](provs, name)
		if !ok {
			continue
		}
		t.Run(name, func(t *testing.T) {
			acct := sp.SimAccount(name + "-demo")
			now := time.Now().Truncate(time.Second)
			var valid []providertest.Valid
			for _, kind := range sp.SimKinds() {
				for _, st := range []events.Status{events.StatusSucceeded, events.StatusFailed} {
					o := simOrder(t, sp, acct, kind, st, now)
					if sel, ok := sp.(providers.SimSelective); ok && !sel.SimCallsBack(o, true) {
						continue
					}
					h, body, err := sp.SimCallback(acct, o, now, false)
					if err != nil {
						t.Fatal(err)
					}
					req := providers.Request{Kind: kind, Header: h, Body: body, ReceivedAt: now}
					want, err := in.Parse(acct, req)
					if err != nil {
						t.Fatalf("%s %s: %v", kind, st, err)
					}
					// A provider that also takes base64 without its padding
					// gets the body unpadded, so that cutting its last byte
					// cuts data rather than optional padding.
					if unpadded := bytes.TrimRight(body, "="); len(unpadded) < len(body) {
						r := req
						r.Body = unpadded
						if ev, err := in.Parse(acct, r); err == nil && reflect.DeepEqual(ev, want) {
							req = r
						}
					}
					valid = append(valid, providertest.Valid{Name: string(kind) + "-" + string(st), Account: acct, Request: req, Want: want})
				}
			}
			providertest.Run(t, in, valid, nil)
		})
	}
}
