package providersim

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/events"
)

// TestRunTraffic: steady traffic over every provider; every callback
// verifies at the fake ingress, and the counters add up.
func TestRunTraffic(t *testing.T) {
	in := newIngress(t, allAccounts...)
	sim, _, _ := newSim(t, in, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	if err := sim.Run(ctx, TrafficSpec{
		Rate:        300,
		Outcomes:    map[Outcome]float64{Succeeded: 1, Pending: 1},
		Faults:      FaultMix{Duplicate: 0.3},
		SettleAfter: 10 * time.Millisecond,
	}); err != nil {
		t.Fatal(err)
	}
	orders := sim.Orders()
	if len(orders) < 20 {
		t.Fatalf("only %d orders in 400ms at 300/s", len(orders))
	}
	seen := map[string]bool{}
	kinds := map[events.Kind]bool{}
	dups := 0
	for _, o := range orders {
		seen[o.Provider] = true
		kinds[o.Kind] = true
		if o.Faults.Duplicate > 0 {
			dups++
		}
	}
	for _, p := range []string{"jpglo", "mrnpay", "mpurse", "cashypro", "fantian"} {
		if !seen[p] {
			t.Errorf("no %s orders", p)
		}
	}
	if !kinds[events.KindPayin] || !kinds[events.KindPayout] {
		t.Errorf("kinds drawn: %v", kinds)
	}
	if dups == 0 {
		t.Errorf("fault mix drew no duplicates")
	}
	// Let settles begun before Run returned finish, then wait for quiet.
	time.Sleep(50 * time.Millisecond)
	eventually(t, "every callback acknowledged", func() bool {
		sent := 0
		for _, st := range sim.Stats() {
			sent += st.CallbacksSent
		}
		for _, o := range sim.Orders() {
			for _, d := range o.Deliveries {
				if !d.Acked {
					return false
				}
			}
		}
		return sent == len(in.received())
	})
	sim.Close()
	total := 0
	for _, st := range sim.Stats() {
		total += st.CallbacksSent
		if st.Acked+st.Rejected != st.CallbacksSent || st.Rejected != 0 {
			t.Errorf("stats do not add up: %+v", st)
		}
	}
	recs := in.received()
	if total == 0 || len(recs) != total {
		t.Fatalf("ingress got %d, sim sent %d", len(recs), total)
	}
	for _, r := range recs {
		if r.Err != nil {
			t.Fatalf("%s callback rejected: %v", r.Provider, r.Err)
		}
	}
	settledCount := 0
	for _, o := range sim.Orders() {
		if o.Outcome != Pending && o.Status == o.Outcome && o.Provider != "fantian" {
			settledCount++
		}
	}
	if settledCount == 0 {
		t.Error("no order completed")
	}
}

func TestRunRespectsWeights(t *testing.T) {
	in := newIngress(t, allAccounts...)
	sim, _, _ := newSim(t, in, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	_ = sim.Run(ctx, TrafficSpec{Rate: 500, Providers: map[string]float64{"mrnpay": 1}, Kinds: map[events.Kind]float64{events.KindPayout: 1}, Outcomes: map[Outcome]float64{Failed: 1}})
	orders := sim.Orders()
	if len(orders) == 0 {
		t.Fatal("no orders")
	}
	for _, o := range orders {
		if o.Provider != "mrnpay" || o.Kind != events.KindPayout || o.Outcome != Failed {
			t.Fatalf("order outside the weights: %s %s %s", o.Provider, o.Kind, o.Outcome)
		}
	}
}

func TestSeedReproducible(t *testing.T) {
	ids := func() []string {
		in := newIngress(t, allAccounts...)
		sim, _, _ := newSim(t, in, Config{Seed: 7})
		var out []string
		for range 5 {
			o, err := sim.CreateOrder(context.Background(), sim.drawSpec(TrafficSpec{}))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, o.ID+"="+o.Amount)
		}
		return out
	}
	a, b := ids(), ids()
	if strings.Join(a, ",") != strings.Join(b, ",") {
		t.Fatalf("same seed, different orders:\n%v\n%v", a, b)
	}
}

// FuzzHandler: any request to any endpoint gets an answer, never a panic,
// and never creates an order unless correctly signed.
func FuzzHandler(f *testing.F) {
	f.Add("/cashypro/cashy-id/api/payInQuery", "POST", "", []byte(`{"mchOrderNo":"1","nonceStr":"2"}`))
	f.Add("/mrnpay/mrn-cn/api/Payments/Query", "GET", "appKey=app-1&mrn=M1&sign=00&callback=true", []byte{})
	f.Add("/jpglo/glo-in/api/order/query/111/", "GET", "mch_id=1&timestamp=1&sign=AA", []byte{})
	f.Add("/jpglo/glo-in/api/order/inquiry/", "POST", "", []byte(`{"mch_id":1,"order_no":"x","receipt":["a"],"sign":"B"}`))
	f.Add("/jpglo/glo-in/api/order/replenish/", "POST", "", []byte(`{"mch_id":1,"mch_order_no":"x","apply_amount":1e400,"sign":"B"}`))
	f.Add("/fantian/ft-in/gateway/api/v1/payments/reference", "POST", "", []byte(`{"platform_id":"PF0002","payment_cl_id":"x","payment_reference":"y","sign":"c81634c1769044eac9e9628a2292f557"}`))
	in := newIngress(f, allAccounts...)
	sim, _, _ := newSim(f, in, Config{})
	h := sim.Handler()
	f.Fuzz(func(t *testing.T, path, method, query string, body []byte) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req := httptest.NewRequest(http.MethodGet, "/", strings.NewReader(string(body)))
		req.Method = method
		req.URL.Path = path
		req.URL.RawQuery = query
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == 0 {
			t.Fatal("no answer")
		}
		if n := len(sim.Orders()); n != 0 {
			t.Fatalf("unsigned request created %d orders", n)
		}
	})
}
