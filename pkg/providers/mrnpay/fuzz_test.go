package mrnpay_test

import (
	"testing"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/internal/parsetest"
	"github.com/payhook/payhook/pkg/providers/internal/vectorstest"
	"github.com/payhook/payhook/pkg/providers/mrnpay"
)

// FuzzMrnpayParse feeds arbitrary bodies to every kind: Parse must never
// panic, must reject only with a reasoned *providers.RejectError, and what
// it accepts must be a valid event whose signed fields verify again.
// The corpus in testdata/fuzz/FuzzMrnpayParse starts from signed callbacks.
func FuzzMrnpayParse(f *testing.F) {
	f.Add([]byte(payinBody))
	f.Add([]byte(payoutBody))
	f.Add([]byte(payinBody + "&amount=1"))
	f.Add([]byte("a=%zz;b"))
	f.Add([]byte{})
	p := mrnpay.New()
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, kind := range []events.Kind{events.KindPayin, events.KindPayout, events.KindAppeal} {
			ev, err := p.Parse(acct, providers.Request{Kind: kind, Body: body, ReceivedAt: received})
			if !parsetest.Outcome(t, string(kind), ev, err) {
				continue
			}
			if kind == events.KindAppeal {
				t.Fatal("appeal accepted")
			}
			pf := ev.ProviderFields
			if pf["appKey"] != acct.Key("merchant_id") || ev.Status != events.StatusSucceeded {
				t.Fatalf("%s: accepted %+v", kind, ev)
			}
		}
	})
}

func TestFuzzCorpusVerifies(t *testing.T) {
	vectorstest.CheckCorpus(t, mrnpay.New(), acct, "FuzzMrnpayParse", received, []vectorstest.Verdict{
		{File: "payin", Kind: events.KindPayin, Want: ""},
		{File: "payout", Kind: events.KindPayout, Want: ""},
		{File: "payin-unicode-escaped", Kind: events.KindPayin, Want: ""},
		{File: "duplicate", Kind: events.KindPayout, Want: "malformed"},
		{File: "bad-escape", Kind: events.KindPayin, Want: "malformed"},
		{File: "huge", Kind: events.KindPayout, Want: "bad_amount"},
	})
}
