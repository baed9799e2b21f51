package providersim

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers/cashypro"
	"github.com/payhook/payhook/pkg/providers/jpglo"
	"github.com/payhook/payhook/pkg/providers/mpurse"
	"github.com/payhook/payhook/pkg/providers/mrnpay"
)

// TestCallbacksVerify: every callback the simulator sends verifies and
// decodes with payhook's own provider package, to the event the order implies.
func TestCallbacksVerify(t *testing.T) {
	cases := []struct {
		name         string
		spec         OrderSpec
		wantStatuses []events.Status // events in arrival order
		wantAmount   string
		wantMismatch bool
	}{
		{"jpglo payin succeeded", OrderSpec{Provider: "jpglo", Account: "glo-in", Amount: "100000.00"}, []events.Status{"succeeded"}, "100000.00", false},
		{"jpglo payin underpaid", OrderSpec{Provider: "jpglo", Account: "glo-in", Amount: "500.00", PaidAmount: "499.99"}, []events.Status{"succeeded"}, "499.99", true},
		{"jpglo appeal succeeded", OrderSpec{Provider: "jpglo", Account: "glo-in", Kind: events.KindAppeal, Amount: "10000.00"}, []events.Status{"succeeded"}, "10000.00", false},
		{"jpglo appeal failed", OrderSpec{Provider: "jpglo", Account: "glo-in", Kind: events.KindAppeal, Amount: "10.00", Outcome: Failed}, []events.Status{"failed"}, "10.00", false},
		{"mrnpay payin with mismatch", OrderSpec{Provider: "mrnpay", Account: "mrn-cn", Amount: "100.00", PaidAmount: "99.50"}, []events.Status{"succeeded"}, "99.50", true},
		{"mrnpay payout", OrderSpec{Provider: "mrnpay", Account: "mrn-cn", Kind: events.KindPayout, Amount: "500"}, []events.Status{"succeeded"}, "500", false},
		{"mpurse ecb succeeded", OrderSpec{Provider: "mpurse", Account: "mp-in", Amount: "120.00"}, []events.Status{"succeeded"}, "120.00", false},
		{"mpurse ecb failed", OrderSpec{Provider: "mpurse", Account: "mp-in", Amount: "120.00", Outcome: Failed}, []events.Status{"failed"}, "120.00", false},
		{"mpurse cbc succeeded", OrderSpec{Provider: "mpurse", Account: "mp-cbc", Amount: "1.50"}, []events.Status{"succeeded"}, "1.50", false},
		{"cashypro succeeded", OrderSpec{Provider: "cashypro", Account: "cashy-id", Amount: "20000"}, []events.Status{"succeeded"}, "20000.00", false},
		{"cashypro failed", OrderSpec{Provider: "cashypro", Account: "cashy-id", Amount: "20000", Outcome: Failed}, []events.Status{"failed"}, "20000.00", false},
		{"cashypro PAYING then SUCCESS", OrderSpec{Provider: "cashypro", Account: "cashy-id", Amount: "50000.00", Intermediate: true}, []events.Status{"pending", "succeeded"}, "50000.00", false},
		{"cashypro PAYING only", OrderSpec{Provider: "cashypro", Account: "cashy-id", Amount: "50000.00", Intermediate: true, Outcome: Pending}, []events.Status{"pending"}, "50000.00", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := newIngress(t, allAccounts...)
			sim, _, _ := newSim(t, in, Config{})
			o, err := sim.CreateOrder(context.Background(), c.spec)
			if err != nil {
				t.Fatal(err)
			}
			got := settled(t, sim, o.ID, len(c.wantStatuses))
			recs := in.received()
			if len(recs) != len(c.wantStatuses) {
				t.Fatalf("ingress got %d callbacks, want %d", len(recs), len(c.wantStatuses))
			}
			for i, r := range recs {
				if r.Err != nil {
					t.Fatalf("callback %d rejected by payhook's parser: %v", i, r.Err)
				}
				ev := r.Event
				if ev.Status != c.wantStatuses[i] {
					t.Errorf("callback %d: status %s, want %s", i, ev.Status, c.wantStatuses[i])
				}
				if ev.Provider != c.spec.Provider || ev.Account != c.spec.Account || ev.Kind != got.Kind {
					t.Errorf("callback %d: %s/%s/%s, want %s/%s/%s", i, ev.Provider, ev.Account, ev.Kind, c.spec.Provider, c.spec.Account, got.Kind)
				}
				if ev.MerchantOrderID != got.MerchantOrderID {
					t.Errorf("merchant order %q, want %q", ev.MerchantOrderID, got.MerchantOrderID)
				}
				if got.ProviderOrderID != "" && ev.ProviderOrderID != got.ProviderOrderID {
					t.Errorf("provider order %q, want %q", ev.ProviderOrderID, got.ProviderOrderID)
				}
				if ev.Amount.Value != c.wantAmount {
					t.Errorf("amount %q, want %q", ev.Amount.Value, c.wantAmount)
				}
				if ev.AmountMismatch != c.wantMismatch {
					t.Errorf("mismatch %v, want %v", ev.AmountMismatch, c.wantMismatch)
				}
				if id := got.EventID(ev.Status); ev.ID() != id {
					t.Errorf("event id %s, Order.EventID says %s", ev.ID(), id)
				}
				if err := ev.Validate(); err != nil {
					t.Errorf("event invalid: %v", err)
				}
			}
			if !got.Deliveries[len(got.Deliveries)-1].Acked || got.Attempts() != len(c.wantStatuses) {
				t.Errorf("deliveries %+v: want each acked on the first attempt", got.Deliveries)
			}
			st := sim.Stats()[c.spec.Provider]
			if st.OrdersCreated != 1 || st.CallbacksSent != len(c.wantStatuses) || st.Acked != len(c.wantStatuses) || st.Retried != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestWhoCallsBack: mrnpay and (by default) jpglo send no failure
// callbacks; fantian sends none at all.
func TestWhoCallsBack(t *testing.T) {
	cases := []struct {
		name      string
		cfg       Config
		spec      OrderSpec
		wantCalls int
	}{
		{"jpglo failure not called back", Config{}, OrderSpec{Provider: "jpglo", Account: "glo-in", Outcome: Failed}, 0},
		{"jpglo failure called back when configured", Config{CallbackFailures: true}, OrderSpec{Provider: "jpglo", Account: "glo-in", Outcome: Failed}, 1},
		{"mrnpay failure", Config{}, OrderSpec{Provider: "mrnpay", Account: "mrn-cn", Outcome: Failed}, 0},
		{"mrnpay pending", Config{}, OrderSpec{Provider: "mrnpay", Account: "mrn-cn", Outcome: Pending}, 0},
		{"fantian success", Config{}, OrderSpec{Provider: "fantian", Account: "ft-in"}, 0},
		{"mpurse failure", Config{}, OrderSpec{Provider: "mpurse", Account: "mp-in", Outcome: Failed}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := newIngress(t, allAccounts...)
			sim, _, _ := newSim(t, in, c.cfg)
			o, err := sim.CreateOrder(context.Background(), c.spec)
			if err != nil {
				t.Fatal(err)
			}
			if c.wantCalls > 0 {
				settled(t, sim, o.ID, c.wantCalls)
			}
			sim.Close() // waits for the order's life to end
			got, _ := sim.Order(o.ID)
			if len(got.Deliveries) != c.wantCalls || len(in.received()) != c.wantCalls {
				t.Fatalf("deliveries %d, ingress got %d, want %d", len(got.Deliveries), len(in.received()), c.wantCalls)
			}
			for _, r := range in.received() {
				if r.Err != nil || r.Event.Status != events.StatusFailed {
					t.Errorf("callback: %v, status %s", r.Err, r.Event.Status)
				}
			}
		})
	}
}

func TestCreateOrderErrors(t *testing.T) {
	in := newIngress(t)
	sim, _, _ := newSim(t, in, Config{})
	ctx := context.Background()
	if _, err := sim.CreateOrder(ctx, OrderSpec{Provider: "jpglo", Account: "glo-in", MerchantOrderID: "dup-1"}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		spec OrderSpec
		want error
	}{
		{"unknown account", OrderSpec{Provider: "jpglo", Account: "nope"}, ErrUnknownAccount},
		{"account of another provider", OrderSpec{Provider: "mrnpay", Account: "glo-in"}, ErrUnknownAccount},
		{"cashypro payout", OrderSpec{Provider: "cashypro", Account: "cashy-id", Kind: events.KindPayout}, ErrUnsupported},
		{"mpurse appeal", OrderSpec{Provider: "mpurse", Account: "mp-in", Kind: events.KindAppeal}, ErrUnsupported},
		{"intermediate not cashypro", OrderSpec{Provider: "jpglo", Account: "glo-in", Intermediate: true}, ErrUnsupported},
		{"mrnpay reorder", OrderSpec{Provider: "mrnpay", Account: "mrn-cn", Faults: Faults{ReorderFailSuccess: true}}, ErrUnsupported},
		{"bad amount", OrderSpec{Provider: "jpglo", Account: "glo-in", Amount: "1e5"}, ErrBadSpec},
		{"negative amount", OrderSpec{Provider: "jpglo", Account: "glo-in", Amount: "-1.00"}, ErrBadSpec},
		{"too precise for jpglo", OrderSpec{Provider: "jpglo", Account: "glo-in", Amount: "1.001"}, ErrBadSpec},
		{"fractional mrnpay payout", OrderSpec{Provider: "mrnpay", Account: "mrn-cn", Kind: events.KindPayout, Amount: "1.50"}, ErrBadSpec},
		{"fractional rupiah", OrderSpec{Provider: "cashypro", Account: "cashy-id", Amount: "20000.50"}, ErrBadSpec},
		{"bad outcome", OrderSpec{Provider: "jpglo", Account: "glo-in", Outcome: "maybe"}, ErrBadSpec},
		{"duplicate order", OrderSpec{Provider: "jpglo", Account: "glo-in", MerchantOrderID: "dup-1"}, ErrDuplicateOrder},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := sim.CreateOrder(ctx, c.spec); !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
		})
	}
	sim.Close()
	if _, err := sim.CreateOrder(ctx, OrderSpec{Provider: "jpglo", Account: "glo-in"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v, want ErrClosed", err)
	}
}

// TestSettle: a pending order completes later and is called back then.
func TestSettle(t *testing.T) {
	in := newIngress(t, allAccounts...)
	sim, _, _ := newSim(t, in, Config{})
	ctx := context.Background()
	o, err := sim.CreateOrder(ctx, OrderSpec{Provider: "mpurse", Account: "mp-in", Outcome: Pending})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Settle(ctx, o.ID, Pending); !errors.Is(err, ErrBadSpec) {
		t.Fatalf("settle pending: %v", err)
	}
	eventually(t, "order life", func() bool { g, _ := sim.Order(o.ID); return g.Status == Pending })
	if err := sim.Settle(ctx, o.ID, Succeeded); err != nil {
		t.Fatal(err)
	}
	got := settled(t, sim, o.ID, 1)
	if got.Status != Succeeded || in.received()[0].Event.Status != events.StatusSucceeded {
		t.Fatalf("status %s, event %+v", got.Status, in.received()[0].Event)
	}
	if err := sim.Settle(ctx, o.ID, Failed); !errors.Is(err, ErrBadSpec) {
		t.Fatalf("settling twice: %v", err)
	}
	if err := sim.Settle(ctx, "nope", Failed); !errors.Is(err, ErrNoOrder) {
		t.Fatalf("unknown order: %v", err)
	}
}

// TestAckRules: what each provider takes as "received".
func TestAckRules(t *testing.T) {
	cases := []struct {
		name     string
		provider string
		status   int
		body     string
		want     bool
	}{
		{"jpglo ack", jpglo.Name, 200, `{"status":0,"msg":"处理成功"}`, true},
		{"jpglo other status", jpglo.Name, 200, `{"status":1,"msg":"x"}`, false},
		{"jpglo status as string", jpglo.Name, 200, `{"status":"0"}`, false},
		{"jpglo not json", jpglo.Name, 200, `success`, false},
		{"jpglo 500 with ack body", jpglo.Name, 500, `{"status":0}`, false},
		{"mrnpay success", mrnpay.Name, 200, "success", true},
		{"mrnpay upper case", mrnpay.Name, 200, "SUCCESS", false},
		{"mrnpay 201", mrnpay.Name, 201, "success", false},
		{"mpurse SUCCESS", mpurse.Name, 200, "SUCCESS\n", true},
		{"mpurse lower case", mpurse.Name, 200, "success", false},
		{"cashypro 200", cashypro.Name, 200, "", true},
		{"cashypro 301", cashypro.Name, 301, "", true},
		{"cashypro 302", cashypro.Name, 302, "", true},
		{"cashypro 204", cashypro.Name, 204, "", false},
		{"cashypro 503", cashypro.Name, 503, "success", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := ackOf(c.provider, c.status, []byte(c.body)); got != c.want {
				t.Fatalf("ackOf = %v, want %v", got, c.want)
			}
		})
	}
}

// TestCashyproRedirectIsAck: a 302 is received, and the simulator does not follow it.
func TestCashyproRedirectIsAck(t *testing.T) {
	in := newIngress(t, allAccounts...)
	in.set(func(in *fakeIngress) {
		in.reply = func(w http.ResponseWriter) {
			w.Header().Set("Location", "/elsewhere")
			w.WriteHeader(http.StatusFound)
		}
	})
	sim, _, _ := newSim(t, in, Config{})
	o, err := sim.CreateOrder(context.Background(), OrderSpec{Provider: "cashypro", Account: "cashy-id"})
	if err != nil {
		t.Fatal(err)
	}
	got := settled(t, sim, o.ID, 1)
	if !got.Acked() || got.Attempts() != 1 || got.Deliveries[0].Attempts[0].HTTPStatus != http.StatusFound {
		t.Fatalf("deliveries %+v", got.Deliveries)
	}
	if n := len(in.received()); n != 1 {
		t.Fatalf("ingress got %d requests, want 1 (redirect not followed)", n)
	}
}

// TestDuplicateBytesIdentical: a duplicate is the same bytes.
func TestDuplicateBytesIdentical(t *testing.T) {
	for _, p := range []OrderSpec{
		{Provider: "jpglo", Account: "glo-in"},
		{Provider: "mrnpay", Account: "mrn-cn"},
		{Provider: "mpurse", Account: "mp-in"},
		{Provider: "cashypro", Account: "cashy-id"},
	} {
		t.Run(p.Provider, func(t *testing.T) {
			in := newIngress(t, allAccounts...)
			sim, _, _ := newSim(t, in, Config{})
			p.Faults.Duplicate = 2
			o, err := sim.CreateOrder(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			got := settled(t, sim, o.ID, 3)
			recs := in.received()
			if len(recs) != 3 {
				t.Fatalf("ingress got %d, want 3", len(recs))
			}
			for i, r := range recs {
				if r.Err != nil || !bytes.Equal(r.Body, recs[0].Body) || r.Event.ID() != recs[0].Event.ID() {
					t.Errorf("copy %d differs or rejected: %v", i, r.Err)
				}
			}
			causes := []string{got.Deliveries[0].Cause, got.Deliveries[1].Cause, got.Deliveries[2].Cause}
			if causes[0] != CauseCallback || causes[1] != CauseDuplicate || causes[2] != CauseDuplicate {
				t.Errorf("causes %v", causes)
			}
		})
	}
}
