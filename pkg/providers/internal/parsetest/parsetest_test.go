package parsetest_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/internal/parsetest"
)

type recorder struct {
	testing.TB
	fatal string
}

type stop struct{}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(f string, args ...any) {
	r.fatal = fmt.Sprintf(f, args...)
	panic(stop{})
}

func TestOutcome(t *testing.T) {
	valid := events.Event{
		Provider: "mrnpay", Account: "a", Kind: events.KindPayin, Status: events.StatusSucceeded,
		MerchantOrderID: "m1", Amount: events.MustMoney("1.00", "CNY"), Origin: events.OriginCallback,
		OccurredAt: time.Unix(1, 0).UTC(), ReceivedAt: time.Unix(1, 0).UTC(),
	}
	if err := valid.Validate(); err != nil {
		t.Fatalf("test event invalid: %v", err)
	}
	tests := []struct {
		name     string
		ev       events.Event
		err      error
		accepted bool
		fatal    string
	}{
		{name: "reasoned rejection", err: providers.Reject("malformed", providers.ErrMalformed, "x")},
		{name: "ignored type", err: fmt.Errorf("%w: customer.created", providers.ErrIgnored)},
		{name: "plain error", err: errors.New("boom"), fatal: "payin: error is not a reasoned *providers.RejectError: boom"},
		{name: "no reason", err: &providers.RejectError{Err: errors.New("x")}, fatal: "payin: error is not a reasoned *providers.RejectError: : x"},
		{name: "valid event", ev: valid, accepted: true},
		{name: "invalid event", ev: events.Event{}, fatal: "payin: accepted an invalid event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{TB: t}
			var got bool
			func() {
				defer func() {
					if p := recover(); p != nil && p != (stop{}) {
						panic(p)
					}
				}()
				got = parsetest.Outcome(r, "payin", tt.ev, tt.err)
			}()
			if tt.fatal == "" {
				if r.fatal != "" || got != tt.accepted {
					t.Errorf("accepted %v, fatal %q", got, r.fatal)
				}
				return
			}
			if len(r.fatal) < len(tt.fatal) || r.fatal[:len(tt.fatal)] != tt.fatal {
				t.Errorf("fatal %q, want prefix %q", r.fatal, tt.fatal)
			}
		})
	}
}
