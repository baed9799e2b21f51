package jpglo_test

import (
	"testing"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/internal/parsetest"
	"github.com/payhook/payhook/pkg/providers/internal/vectorstest"
	"github.com/payhook/payhook/pkg/providers/jpglo"
)

// FuzzJpgloParse feeds arbitrary bodies to both callback kinds: Parse must
// never panic, must reject only with a *providers.RejectError carrying a
// reason, and whatever it accepts must be a valid, publishable event.
// The corpus in testdata/fuzz/FuzzJpgloParse holds signed seed callbacks,
// so mutations start from bodies that verify.
func FuzzJpgloParse(f *testing.F) {
	f.Add([]byte(seedPayment))
	f.Add([]byte(seedAppeal))
	f.Add(signed(shortBody, shortPlain, seedKey))
	f.Add([]byte(`{"a":1,"a":2}`))
	f.Add([]byte(`[]`))
	f.Add([]byte{})
	p := jpglo.New()
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, kind := range []events.Kind{events.KindPayin, events.KindAppeal, events.KindPayout} {
			ev, err := p.Parse(acct, providers.Request{Kind: kind, Body: body, ReceivedAt: received})
			if !parsetest.Outcome(t, string(kind), ev, err) {
				continue
			}
			if kind == events.KindPayout {
				t.Fatal("payout callback accepted")
			}
			if _, err := events.ParseMoney(ev.Amount.Value, ev.Amount.Currency); err != nil {
				t.Fatalf("%s: amount %q", kind, ev.Amount.Value)
			}
		}
	})
}

// TestFuzzCorpusVerifies keeps the signed corpus entries meaningful: they
// must be accepted, so fuzzing starts from bodies past the signature check.
func TestFuzzCorpusVerifies(t *testing.T) {
	vectorstest.CheckCorpus(t, jpglo.New(), acct, "FuzzJpgloParse", received, []vectorstest.Verdict{ // Want: reject reason, "" for accepted
		{File: "seed-payment", Kind: events.KindPayin, Want: ""},
		{File: "seed-appeal", Kind: events.KindAppeal, Want: ""},
		{File: "paid-less-unicode", Kind: events.KindPayin, Want: ""},
		{File: "huge-amount", Kind: events.KindPayin, Want: "bad_amount"},
		{File: "duplicate-key", Kind: events.KindPayin, Want: "malformed"},
		{File: "array", Kind: events.KindPayin, Want: "malformed"},
		{File: "list-value", Kind: events.KindPayin, Want: "bad_signature"},
	})
}
