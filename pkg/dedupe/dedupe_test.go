package dedupe_test

import (
	"errors"
	"testing"

	"github.com/payhook/payhook/pkg/dedupe"
	"github.com/payhook/payhook/pkg/events"
)

func TestDecide(t *testing.T) {
	const (
		pend = events.StatusPending
		succ = events.StatusSucceeded
		fail = events.StatusFailed
	)
	state := func(s events.Status) dedupe.OrderState { return dedupe.OrderState{Status: s, EventID: "evt_x"} }
	tests := []struct {
		name   string
		check  dedupe.Check
		status events.Status
		want   dedupe.Verdict
	}{
		{"first pending", dedupe.Check{}, pend, dedupe.New},
		{"first success", dedupe.Check{}, succ, dedupe.New},
		{"first failure", dedupe.Check{}, fail, dedupe.New},
		{"pending retried", dedupe.Check{Published: true, Order: state(pend)}, pend, dedupe.Duplicate},
		{"pending then success", dedupe.Check{Order: state(pend)}, succ, dedupe.New},
		{"pending then failure", dedupe.Check{Order: state(pend)}, fail, dedupe.New},
		{"pending id expired, pending again", dedupe.Check{Order: state(pend)}, pend, dedupe.New},
		{"success retried", dedupe.Check{Published: true, Order: state(succ)}, succ, dedupe.Duplicate},
		{"success known, mark expired", dedupe.Check{Order: state(succ)}, succ, dedupe.Duplicate},
		{"pending after success", dedupe.Check{Order: state(succ)}, pend, dedupe.Stale},
		{"pending after failure", dedupe.Check{Order: state(fail)}, pend, dedupe.Stale},
		{"pending after success, published before", dedupe.Check{Published: true, Order: state(succ)}, pend, dedupe.Duplicate},
		{"failure after success", dedupe.Check{Order: state(succ)}, fail, dedupe.Conflict},
		{"success after failure", dedupe.Check{Order: state(fail)}, succ, dedupe.Conflict},
		{"conflict retried", dedupe.Check{Published: true, Order: state(succ)}, fail, dedupe.Duplicate},
		{"not a status after terminal", dedupe.Check{Order: state(succ)}, "bogus", dedupe.Stale},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := dedupe.Decide(tc.check, tc.status); got != tc.want {
				t.Fatalf("Decide(%+v, %s) = %s, want %s", tc.check, tc.status, got, tc.want)
			}
		})
	}
}

func TestVerdictString(t *testing.T) {
	for v, want := range map[dedupe.Verdict]string{
		dedupe.New: "new", dedupe.Duplicate: "duplicate", dedupe.Stale: "stale", dedupe.Conflict: "conflict", 9: "verdict(9)",
	} {
		if got := v.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(v), got, want)
		}
	}
}

func TestOrderOfAndValidate(t *testing.T) {
	e := &events.Event{Provider: "mpurse", Account: "mp-in", Kind: events.KindPayin, MerchantOrderID: "m1", IdempotencyKey: "q1+rrn"}
	o := dedupe.OrderOf(e)
	if want := (dedupe.Order{Provider: "mpurse", Account: "mp-in", Kind: events.KindPayin, Key: "q1+rrn"}); o != want {
		t.Fatalf("OrderOf = %+v, want %+v", o, want)
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := o.String(); got != "mpurse/mp-in/payin/q1+rrn" {
		t.Fatalf("String = %q", got)
	}
	bad := []dedupe.Order{
		{Account: "a", Kind: events.KindPayin, Key: "k"},
		{Provider: "p", Kind: events.KindPayin, Key: "k"},
		{Provider: "p", Account: "a", Kind: "x", Key: "k"},
		{Provider: "p", Account: "a", Kind: events.KindPayin},
	}
	for i, b := range bad {
		if err := b.Validate(); !errors.Is(err, dedupe.ErrInvalid) {
			t.Errorf("bad[%d] %+v: %v, want ErrInvalid", i, b, err)
		}
	}
}

func TestIsEventID(t *testing.T) {
	e := &events.Event{Provider: "jpglo", Account: "a", Kind: events.KindPayin, Status: events.StatusPending, MerchantOrderID: "1"}
	for id, want := range map[string]bool{
		e.ID():                                  true,
		"evt_0123456789abcdef0123456789abcdef":  true,
		"evt_0123456789ABCDEF0123456789abcdef":  false,
		"evt_0123456789abcdef0123456789abcde":   false,
		"evt_0123456789abcdef0123456789abcdef0": false,
		"evt_0123456789abcdeg0123456789abcdef":  false,
		"evt-0123456789abcdef0123456789abcdef":  false,
		"evt_0123456789abcdef0123456789abcd/f":  false,
		"":                                      false,
	} {
		if got := dedupe.IsEventID(id); got != want {
			t.Errorf("IsEventID(%q) = %v, want %v", id, got, want)
		}
	}
}
