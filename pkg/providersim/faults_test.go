package providersim

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/cashypro"
	"github.com/payhook/payhook/pkg/providers/jpglo"
	"github.com/payhook/payhook/pkg/providers/mrnpay"
)

func TestDropCallback(t *testing.T) {
	for _, spec := range []OrderSpec{
		{Provider: "jpglo", Account: "glo-in"},
		{Provider: "mpurse", Account: "mp-in"},
		{Provider: "cashypro", Account: "cashy-id"},
	} {
		t.Run(spec.Provider, func(t *testing.T) {
			in := newIngress(t, allAccounts...)
			sim, _, accts := newSim(t, in, Config{})
			spec.Faults.DropCallback = true
			o, err := sim.CreateOrder(context.Background(), spec)
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, "dropped", func() bool { return sim.Stats()[spec.Provider].Dropped == 1 })
			g, _ := sim.Order(o.ID)
			if g.Status != Succeeded || len(g.Deliveries) != 0 || len(in.received()) != 0 {
				t.Fatalf("status %s, deliveries %d, ingress %d", g.Status, len(g.Deliveries), len(in.received()))
			}
			// Still queryable: the reconciler can find it.
			var q providers.Querier
			switch spec.Provider {
			case "jpglo":
				q = jpglo.NewClient(nil)
			case "cashypro":
				q = cashypro.NewClient(nil)
			default:
				return // mpurse has no query endpoint
			}
			res, err := q.Query(context.Background(), accts[spec.Account], providers.Order{Kind: events.KindPayin, MerchantOrderID: o.MerchantOrderID}, false)
			if err != nil || res.Status != events.StatusSucceeded || res.Event == nil {
				t.Fatalf("query %+v %v", res, err)
			}
		})
	}
}

// TestReorderFailSuccess: the opposite terminal status arrives first.
func TestReorderFailSuccess(t *testing.T) {
	cases := []struct {
		name string
		spec OrderSpec
		want []events.Status
	}{
		{"jpglo fail then success", OrderSpec{Provider: "jpglo", Account: "glo-in"}, []events.Status{"failed", "succeeded"}},
		{"mpurse success then fail", OrderSpec{Provider: "mpurse", Account: "mp-in", Outcome: Failed}, []events.Status{"succeeded", "failed"}},
		{"cashypro fail then success", OrderSpec{Provider: "cashypro", Account: "cashy-id"}, []events.Status{"failed", "succeeded"}},
		{"jpglo appeal success then fail", OrderSpec{Provider: "jpglo", Account: "glo-in", Kind: events.KindAppeal, Outcome: Failed}, []events.Status{"succeeded", "failed"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := newIngress(t, allAccounts...)
			sim, _, _ := newSim(t, in, Config{})
			c.spec.Faults.ReorderFailSuccess = true
			o, err := sim.CreateOrder(context.Background(), c.spec)
			if err != nil {
				t.Fatal(err)
			}
			g := settled(t, sim, o.ID, 2)
			recs := in.received()
			if len(recs) != 2 {
				t.Fatalf("ingress got %d", len(recs))
			}
			for i, r := range recs {
				if r.Err != nil || r.Event.Status != c.want[i] || r.Event.MerchantOrderID != o.MerchantOrderID {
					t.Errorf("callback %d: %s %v, want %s", i, r.Event.Status, r.Err, c.want[i])
				}
			}
			if g.Deliveries[0].Cause != CauseReorder || g.Deliveries[1].Cause != CauseCallback || g.Status != o.Outcome {
				t.Errorf("deliveries %+v, status %s", g.Deliveries, g.Status)
			}
		})
	}
}

// TestCorruptSignature: every attempt is refused by payhook's parser, the
// provider retries the same bad bytes and gives up.
func TestCorruptSignature(t *testing.T) {
	for _, spec := range []OrderSpec{
		{Provider: "jpglo", Account: "glo-in"},
		{Provider: "jpglo", Account: "glo-in", Kind: events.KindAppeal},
		{Provider: "mrnpay", Account: "mrn-cn"},
		{Provider: "mrnpay", Account: "mrn-cn", Kind: events.KindPayout},
		{Provider: "mpurse", Account: "mp-in"},
		{Provider: "mpurse", Account: "mp-cbc"},
		{Provider: "cashypro", Account: "cashy-id"},
	} {
		t.Run(spec.Provider+"/"+spec.Account+"/"+string(spec.Kind), func(t *testing.T) {
			in := newIngress(t, allAccounts...)
			sim, _, _ := newSim(t, in, Config{TimeScale: 1e-7})
			spec.Faults.CorruptSignature = true
			o, err := sim.CreateOrder(context.Background(), spec)
			if err != nil {
				t.Fatal(err)
			}
			g := settled(t, sim, o.ID, 1)
			want := len(ScheduleFor(spec.Provider)) + 1
			if !g.Deliveries[0].GaveUp || !g.Deliveries[0].Corrupt || g.Attempts() != want {
				t.Fatalf("delivery %+v", g.Deliveries[0])
			}
			for i, r := range in.received() {
				if r.Err == nil {
					t.Fatalf("attempt %d verified", i)
				}
				if reason := providers.ReasonOf(r.Err); reason != "bad_signature" && reason != "undecryptable" && reason != "malformed" {
					t.Errorf("attempt %d refused for %q", i, reason)
				}
				if g.Deliveries[0].Attempts[i].HTTPStatus != http.StatusBadRequest {
					t.Errorf("attempt %d: http %d", i, g.Deliveries[0].Attempts[i].HTTPStatus)
				}
			}
		})
	}
}

// TestDelay: the order stays pending (and queryable as such) during the delay.
func TestDelay(t *testing.T) {
	in := newIngress(t, allAccounts...)
	sim, _, accts := newSim(t, in, Config{})
	ctx := context.Background()
	start := time.Now()
	o, err := sim.CreateOrder(ctx, OrderSpec{Provider: "mrnpay", Account: "mrn-cn", Faults: Faults{Delay: 150 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := mrnpay.NewClient(nil).Query(ctx, accts["mrn-cn"], providers.Order{Kind: events.KindPayin, MerchantOrderID: o.MerchantOrderID}, false)
	if err != nil || res.Status != events.StatusPending {
		t.Fatalf("during delay: %+v %v", res, err)
	}
	g := settled(t, sim, o.ID, 1)
	if at := g.Deliveries[0].Attempts[0].At; at.Sub(start) < 150*time.Millisecond {
		t.Fatalf("callback after %v, want ≥ 150ms", at.Sub(start))
	}
}

// TestDelayWithProgress: cashypro's PAYING goes out at once, the final
// callback after the delay.
func TestDelayWithProgress(t *testing.T) {
	in := newIngress(t, allAccounts...)
	sim, _, _ := newSim(t, in, Config{})
	start := time.Now()
	o, err := sim.CreateOrder(context.Background(), OrderSpec{Provider: "cashypro", Account: "cashy-id", Intermediate: true, Faults: Faults{Delay: 150 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	g := settled(t, sim, o.ID, 2)
	paying, final := g.Deliveries[0], g.Deliveries[1]
	if paying.Cause != CauseProgress || paying.Status != Pending || paying.Attempts[0].At.Sub(start) >= 150*time.Millisecond {
		t.Errorf("PAYING %+v", paying)
	}
	if final.Status != Succeeded || final.Attempts[0].At.Sub(start) < 150*time.Millisecond {
		t.Errorf("final %+v", final)
	}
}

// TestQueryFaults: QueryFails answers 500 with the provider's error;
// QueryTimeout never answers.
func TestQueryFaults(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		provider, account string
		q                 providers.Querier
	}{
		{"jpglo", "glo-in", jpglo.NewClient(&http.Client{Timeout: 200 * time.Millisecond})},
		{"cashypro", "cashy-id", cashypro.NewClient(&http.Client{Timeout: 200 * time.Millisecond})},
		{"mrnpay", "mrn-cn", mrnpay.NewClient(&http.Client{Timeout: 200 * time.Millisecond})},
	}
	for _, c := range cases {
		t.Run(c.provider+" fails", func(t *testing.T) {
			in := newIngress(t, allAccounts...)
			sim, _, accts := newSim(t, in, Config{})
			o, err := sim.CreateOrder(ctx, OrderSpec{Provider: c.provider, Account: c.account, Faults: Faults{QueryFails: true}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.q.Query(ctx, accts[c.account], providers.Order{Kind: events.KindPayin, MerchantOrderID: o.MerchantOrderID}, false)
			var ae *providers.APIError
			if !errors.As(err, &ae) || ae.HTTP != 500 || !ae.Temporary {
				t.Fatalf("err %v, want a temporary APIError with HTTP 500", err)
			}
		})
		t.Run(c.provider+" times out", func(t *testing.T) {
			in := newIngress(t, allAccounts...)
			sim, _, accts := newSim(t, in, Config{})
			o, err := sim.CreateOrder(ctx, OrderSpec{Provider: c.provider, Account: c.account, Faults: Faults{QueryTimeout: true}})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = c.q.Query(ctx, accts[c.account], providers.Order{Kind: events.KindPayin, MerchantOrderID: o.MerchantOrderID}, false)
			if err == nil || time.Since(start) < 200*time.Millisecond {
				t.Fatalf("err %v after %v, want a timeout", err, time.Since(start))
			}
			if g, _ := sim.Order(o.ID); g.Queries != 0 {
				t.Errorf("a hung query was counted as answered")
			}
		})
	}
}

func TestFaultMixDraw(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name     string
		mix      FaultMix
		provider string
		outcome  Outcome
		check    func(Faults) bool
	}{
		{"zero mix draws nothing", FaultMix{}, "jpglo", Succeeded, func(f Faults) bool { return !f.any() }},
		{"certain drop", FaultMix{Drop: 1}, "jpglo", Succeeded, func(f Faults) bool { return f.DropCallback && !f.CorruptSignature }},
		{"certain duplicate, default n", FaultMix{Duplicate: 1}, "cashypro", Succeeded, func(f Faults) bool { return f.Duplicate == 1 }},
		{"duplicate n", FaultMix{Duplicate: 1, DuplicateN: 3}, "cashypro", Succeeded, func(f Faults) bool { return f.Duplicate == 3 }},
		{"no reorder for mrnpay", FaultMix{Reorder: 1}, "mrnpay", Succeeded, func(f Faults) bool { return !f.ReorderFailSuccess }},
		{"no reorder for pending", FaultMix{Reorder: 1}, "jpglo", Pending, func(f Faults) bool { return !f.ReorderFailSuccess }},
		{"no callback faults for fantian", FaultMix{Drop: 1, Corrupt: 1, QueryFails: 1}, "fantian", Succeeded, func(f Faults) bool {
			return !f.DropCallback && !f.CorruptSignature && f.QueryFails
		}},
		{"bounded delay", FaultMix{Delay: 1, MaxDelay: time.Millisecond}, "mpurse", Succeeded, func(f Faults) bool { return f.Delay > 0 && f.Delay <= time.Millisecond }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if f := c.mix.draw(r, c.provider, events.KindPayin, c.outcome); !c.check(f) {
				t.Fatalf("drew %+v", f)
			}
		})
	}
}

// TestGlobalFaultMix: Config.Faults applies to orders made by CreateOrder.
func TestGlobalFaultMix(t *testing.T) {
	in := newIngress(t, allAccounts...)
	sim, _, _ := newSim(t, in, Config{Faults: FaultMix{Duplicate: 1, DuplicateN: 2}})
	o, err := sim.CreateOrder(context.Background(), OrderSpec{Provider: "mpurse", Account: "mp-in"})
	if err != nil {
		t.Fatal(err)
	}
	if o.Faults.Duplicate != 2 {
		t.Fatalf("faults %+v", o.Faults)
	}
	settled(t, sim, o.ID, 3)
	if n := len(in.received()); n != 3 {
		t.Fatalf("ingress got %d, want 3", n)
	}
}
