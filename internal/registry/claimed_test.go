package registry_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

// TestClaimedOrder: every registered provider that calls back can name the
// order a refused request claims (providers.ClaimedOrder); the claim of a
// genuine callback is the merchant order id Parse decodes from it, and a
// corrupted copy (a wrong key, a tampered signature) still claims it,
// except where the body is encrypted (SimOpaque), whose corrupted copy
// claims that order or nothing.
func TestClaimedOrder(t *testing.T) {
	provs := registry.All()
	claimers := providers.With[providers.ClaimedOrder](provs)
	for name, in := range providers.With[providers.Inbound](provs) {
		t.Run(name, func(t *testing.T) {
			co, ok := claimers[name]
			if !ok {
				t.Fatalf("%s calls back but has no ClaimedOrder role", name)
			}
			sp, ok := providers.Role[providers.Simulated](provs, name)
			if !ok {
				t.Skip("no simulated side to render callbacks with")
			}
			_, opaque := sp.(providers.SimOpaque)
			acct := sp.SimAccount(name + "-demo")
			now := time.Now().Truncate(time.Second)
			checked := 0
			for _, kind := range sp.SimKinds() {
				if !slices.Contains(in.Kinds(), kind) {
					continue
				}
				for _, st := range []events.Status{events.StatusSucceeded, events.StatusFailed} {
					o := simOrder(t, sp, acct, kind, st, now)
					if sel, ok := sp.(providers.SimSelective); ok && !sel.SimCallsBack(o, true) {
						continue
					}
					h, body, err := sp.SimCallback(acct, o, now, false)
					if err != nil {
						t.Fatalf("%s %s: SimCallback: %v", kind, st, err)
					}
					req := providers.Request{Kind: kind, Header: h, Body: body, ReceivedAt: now}
					ev, err := in.Parse(acct, req)
					if err != nil {
						t.Fatalf("%s %s: Parse: %v", kind, st, err)
					}
					if got, ok := co.ClaimedOrder(acct, req); !ok || got != ev.MerchantOrderID {
						t.Errorf("%s %s: genuine callback claims %q, %v; Parse decodes %q", kind, st, got, ok, ev.MerchantOrderID)
					}
					h, bad, err := sp.SimCallback(acct, o, now, true)
					if err != nil {
						t.Fatalf("%s %s: corrupted SimCallback: %v", kind, st, err)
					}
					req = providers.Request{Kind: kind, Header: h, Body: bad, ReceivedAt: now}
					if _, err := in.Parse(acct, req); err == nil {
						t.Fatalf("%s %s: corrupted callback verified", kind, st)
					}
					got, ok := co.ClaimedOrder(acct, req)
					if (ok || !opaque) && got != o.MerchantOrderID {
						t.Errorf("%s %s: corrupted callback claims %q, %v; want %q", kind, st, got, ok, o.MerchantOrderID)
					}
					checked++
				}
			}
			if checked == 0 {
				t.Fatal("no callback checked")
			}
			for _, junk := range [][]byte{nil, {}, []byte("{"), []byte("\xff\xfe"), make([]byte, 4<<20)} {
				if got, ok := co.ClaimedOrder(acct, providers.Request{Kind: in.Kinds()[0], Body: junk}); ok {
					t.Errorf("junk of %d bytes claims %q", len(junk), got)
				}
			}
		})
	}
}

// FuzzClaimedOrder: whatever a request holds, no provider's ClaimedOrder
// panics, and a claim is a non-empty id no longer than the body it came
// from. which picks the provider (the providers with the role, by name);
// the corpus in testdata/fuzz/FuzzClaimedOrder and the seeds below start
// from callbacks each provider's simulated side renders, genuine and
// corrupted.
func FuzzClaimedOrder(f *testing.F) {
	provs := registry.All()
	claimers := providers.With[providers.ClaimedOrder](provs)
	var names []string
	for n := range claimers {
		names = append(names, n)
	}
	slices.Sort(names)
	accts := map[string]providers.Account{}
	now := time.Now().Truncate(time.Second)
	for i, name := range names {
		accts[name] = providers.Account{ID: name + "-fuzz", Provider: name}
		sp, ok := providers.Role[providers.Simulated](provs, name)
		if !ok {
			continue
		}
		acct := sp.SimAccount(name + "-fuzz")
		accts[name] = acct
		for _, kind := range sp.SimKinds() {
			o := simOrder(f, sp, acct, kind, events.StatusSucceeded, now)
			for _, corrupt := range []bool{false, true} {
				if _, body, err := sp.SimCallback(acct, o, now, corrupt); err == nil {
					f.Add(uint8(i), string(kind), body)
				}
			}
		}
	}
	f.Add(uint8(0), "payin", []byte(`{"mch_order_no":"O-1","mchOrderNo":"O-1","data":{"object":{"id":"pi_1"}}}`))
	f.Add(uint8(1), "payin", []byte("mrn=O-1&mrn=O-2"))
	f.Fuzz(func(t *testing.T, which uint8, kind string, body []byte) {
		if len(names) == 0 {
			t.Skip("no provider with the role")
		}
		name := names[int(which)%len(names)]
		req := providers.Request{Kind: events.Kind(kind), Header: http.Header{}, Body: body, ReceivedAt: now}
		got, ok := claimers[name].ClaimedOrder(accts[name], req)
		if ok && (got == "" || len(got) > len(body)) {
			t.Fatalf("%s claims %q (%d bytes) from a %d-byte body", name, got, len(got), len(body))
		}
		if !ok && got != "" {
			t.Fatalf("%s: %q with ok false", name, got)
		}
	})
}
