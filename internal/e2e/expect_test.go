package e2e_test

import (
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/e2e"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers/cashypro"
	"github.com/payhook/payhook/pkg/providers/fantian"
	"github.com/payhook/payhook/pkg/providers/jpglo"
	"github.com/payhook/payhook/pkg/providers/mpurse"
	"github.com/payhook/payhook/pkg/providers/mrnpay"
	"github.com/payhook/payhook/pkg/providers/stripe"
	"github.com/payhook/payhook/pkg/providersim"
)

func TestExpect(t *testing.T) {
	mk := func(provider string, kind events.Kind, outcome providersim.Outcome, f providersim.Faults) providersim.Order {
		return providersim.Order{ID: provider + "/x/" + string(kind) + "/1", Provider: provider, Account: "x", Kind: kind,
			MerchantOrderID: "1", AppealNo: "9", Reference: "77", Outcome: outcome, Faults: f}
	}
	s, f := providersim.Succeeded, providersim.Failed
	drop := providersim.Faults{DropCallback: true}
	corrupt := providersim.Faults{CorruptSignature: true}
	reorder := providersim.Faults{ReorderFailSuccess: true}
	watched := e2e.ExpectOptions{Watched: true}
	type want struct {
		status events.Status // subject token
		id     events.Status // status whose EventID it carries
		via    string
	}
	tests := []struct {
		name  string
		order providersim.Order
		opts  e2e.ExpectOptions
		want  []want
	}{
		{"fantian never", mk(fantian.Name, events.KindPayin, s, providersim.Faults{}), watched, nil},
		{"pending outcome", mk(jpglo.Name, events.KindPayin, providersim.Pending, providersim.Faults{}), watched, nil},
		{"jpglo success by callback", mk(jpglo.Name, events.KindPayin, s, providersim.Faults{}), e2e.ExpectOptions{}, []want{{"succeeded", "succeeded", "callback"}}},
		{"jpglo failure not called back", mk(jpglo.Name, events.KindPayin, f, providersim.Faults{}), e2e.ExpectOptions{}, nil},
		{"jpglo failure called back when configured", mk(jpglo.Name, events.KindPayin, f, providersim.Faults{}), e2e.ExpectOptions{CallbackFailures: true}, []want{{"failed", "failed", "callback"}}},
		{"jpglo failure by poll", mk(jpglo.Name, events.KindPayin, f, providersim.Faults{}), watched, []want{{"failed", "failed", "poll"}}},
		{"jpglo appeal failure called back", mk(jpglo.Name, events.KindAppeal, f, providersim.Faults{}), e2e.ExpectOptions{}, []want{{"failed", "failed", "callback"}}},
		{"jpglo appeal dropped, not pollable", mk(jpglo.Name, events.KindAppeal, s, drop), watched, nil},
		{"jpglo dropped unwatched", mk(jpglo.Name, events.KindPayin, s, drop), e2e.ExpectOptions{}, nil},
		{"jpglo corrupt watched: poll", mk(jpglo.Name, events.KindPayin, s, corrupt), watched, []want{{"succeeded", "succeeded", "poll"}}},
		{"cashypro dropped watched: poll", mk(cashypro.Name, events.KindPayin, f, drop), watched, []want{{"failed", "failed", "poll"}}},
		{"cashypro PAYING", mk(cashypro.Name, events.KindPayin, s, drop), e2e.ExpectOptions{Intermediate: true}, []want{{"pending", "pending", "callback"}}},
		{"cashypro PAYING corrupt", mk(cashypro.Name, events.KindPayin, s, corrupt), e2e.ExpectOptions{Intermediate: true}, nil},
		{"mrnpay failure never", mk(mrnpay.Name, events.KindPayin, f, providersim.Faults{}), watched, nil},
		{"mrnpay dropped: retrigger", mk(mrnpay.Name, events.KindPayout, s, drop), watched, []want{{"succeeded", "succeeded", "retrigger"}}},
		{"mrnpay corrupt: resend corrupt too", mk(mrnpay.Name, events.KindPayin, s, corrupt), watched, nil},
		{"mpurse dropped watched: nothing", mk(mpurse.Name, events.KindPayin, s, drop), watched, nil},
		{"mpurse failure by callback", mk(mpurse.Name, events.KindPayin, f, providersim.Faults{}), e2e.ExpectOptions{}, []want{{"failed", "failed", "callback"}}},
		{"stripe failure by callback", mk(stripe.Name, events.KindPayin, f, providersim.Faults{}), e2e.ExpectOptions{}, []want{{"failed", "failed", "callback"}}},
		{"stripe dropped watched: poll", mk(stripe.Name, events.KindPayin, s, drop), watched, []want{{"succeeded", "succeeded", "poll"}}},
		{"stripe corrupt watched: poll", mk(stripe.Name, events.KindPayin, f, corrupt), watched, []want{{"failed", "failed", "poll"}}},
		{"stripe payout dropped: not pollable", mk(stripe.Name, events.KindPayout, s, drop), watched, nil},
		{"reorder: opposite first, real is the conflict", mk(cashypro.Name, events.KindPayin, s, reorder), e2e.ExpectOptions{},
			[]want{{"failed", "failed", "callback"}, {"conflict", "succeeded", "callback"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := e2e.Expect(tt.order, tt.opts)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d expectations %+v, want %d", len(got), got, len(tt.want))
			}
			for i, w := range tt.want {
				g := got[i]
				if g.Status != w.status || g.ID != tt.order.EventID(w.id) || g.Via != w.via || g.OrderID != tt.order.ID {
					t.Errorf("[%d] = %+v, want status %s, id of %s, via %s", i, g, w.status, w.id, w.via)
				}
			}
		})
	}

	t.Run("reorder: real status acknowledged first stands", func(t *testing.T) {
		o := mk(jpglo.Name, events.KindPayin, s, reorder)
		now := time.Now()
		o.Deliveries = []providersim.Delivery{
			{Status: f, Attempts: []providersim.Attempt{{At: now, HTTPStatus: 503}, {At: now.Add(2 * time.Second), Acked: true}}},
			{Status: s, Attempts: []providersim.Attempt{{At: now.Add(time.Second), Acked: true}}},
		}
		got := e2e.Expect(o, e2e.ExpectOptions{})
		if len(got) != 2 || got[0].Status != events.StatusSucceeded || got[1].Status != events.StatusConflict || got[1].ID != o.EventID(events.StatusFailed) {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("PAYING refused at first is optional", func(t *testing.T) {
		o := mk(cashypro.Name, events.KindPayin, s, providersim.Faults{})
		o.Deliveries = []providersim.Delivery{{Cause: providersim.CauseProgress, Status: providersim.Pending,
			Attempts: []providersim.Attempt{{HTTPStatus: 503}}}}
		got := e2e.Expect(o, e2e.ExpectOptions{Intermediate: true})
		if len(got) != 2 || !got[0].Optional || got[1].Optional {
			t.Fatalf("got %+v", got)
		}
	})
}

// TestReportExactlyOnce: a redelivery unbalances ExactlyOnce books only.
func TestReportExactlyOnce(t *testing.T) {
	redelivered := e2e.Report{Redeliveries: map[string]int{"ledger": 1}, Redelivered: map[string][]string{"ledger": {"ev-1 (2 times)"}}}
	if !redelivered.OK() {
		t.Errorf("at-least-once books refuse a redelivery: %s", redelivered)
	}
	redelivered.ExactlyOnce = true
	if redelivered.OK() {
		t.Errorf("ExactlyOnce books balance with a redelivery: %s", redelivered)
	}
	if s := redelivered.String(); !strings.Contains(s, "redelivered to ledger (1): ev-1 (2 times)") {
		t.Errorf("report does not list the redelivery: %s", s)
	}
	clean := e2e.Report{ExactlyOnce: true, Redeliveries: map[string]int{"ledger": 0}}
	if !clean.OK() {
		t.Errorf("ExactlyOnce books without redeliveries do not balance: %s", clean)
	}
}
