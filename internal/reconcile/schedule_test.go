package reconcile

import (
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/pkg/providers"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func TestScheduleAdvance(t *testing.T) {
	s := Schedule{Delays: []time.Duration{time.Minute, 3 * time.Minute, 10 * time.Minute}}
	cases := []struct {
		name      string
		watch     Watch
		now       time.Time
		wantStep  int
		wantDue   time.Time
		wantEnded string
	}{
		{"first poll done: next after 3m", Watch{OpenedAt: t0, Step: 0}, t0.Add(time.Minute), 1, t0.Add(4 * time.Minute), ""},
		{"late poll: next counts from the poll", Watch{OpenedAt: t0, Step: 1}, t0.Add(time.Hour), 2, t0.Add(time.Hour + 10*time.Minute), ""},
		{"last poll done: expired", Watch{OpenedAt: t0, Step: 2}, t0.Add(14 * time.Minute), 3, time.Time{}, ExpiredSchedule},
		{"capped by expires_at", Watch{OpenedAt: t0, Step: 0, ExpiresAt: t0.Add(2 * time.Minute)}, t0.Add(time.Minute), 1, t0.Add(2 * time.Minute), ""},
		{"past expires_at: expired", Watch{OpenedAt: t0, Step: 0, ExpiresAt: t0.Add(2 * time.Minute)}, t0.Add(2 * time.Minute), 1, time.Time{}, ExpiredExpiresAt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := c.watch
			w.Errors, w.AwaitingRetrigger = 3, true
			got := s.advance(&w, c.now, ExpiredSchedule)
			if got != c.wantEnded || w.Step != c.wantStep {
				t.Fatalf("advance: ended %q step %d, want %q %d", got, w.Step, c.wantEnded, c.wantStep)
			}
			if got == "" && !w.DueAt.Equal(c.wantDue) {
				t.Errorf("due %s, want %s", w.DueAt, c.wantDue)
			}
			if w.Errors != 0 || w.AwaitingRetrigger {
				t.Error("advance kept the error count or the retrigger wait")
			}
		})
	}
}

func TestScheduleRetryBacksOffWithinTheStep(t *testing.T) {
	s := Schedule{Delays: []time.Duration{time.Minute, 24 * time.Hour}, ErrorBase: 30 * time.Second}
	w := Watch{OpenedAt: t0, Step: 1}
	var got []time.Duration
	now := t0.Add(2 * time.Minute)
	for range 14 {
		if r := s.retry(&w, now); r != "" {
			t.Fatalf("expired early: %s", r)
		}
		got = append(got, w.DueAt.Sub(now))
	}
	// 30s doubling: 30s, 1m, 2m, 4m, …, capped at the step's 24h.
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute}
	for i, d := range want {
		if got[i] != d {
			t.Errorf("retry %d: %s, want %s", i+1, got[i], d)
		}
	}
	if last := got[len(got)-1]; last != 24*time.Hour {
		t.Errorf("backoff not capped at the step: %s", last)
	}
	if w.Step != 1 {
		t.Errorf("errors consumed a step: %d", w.Step)
	}
	// Past twice the schedule's span the watch gives up.
	if r := s.retry(&w, t0.Add(2*(time.Minute+24*time.Hour))); r != ExpiredProviderError {
		t.Errorf("after the error deadline: %q, want %s", r, ExpiredProviderError)
	}
}

func TestScheduleOpenAndGrace(t *testing.T) {
	s := Schedule{Delays: []time.Duration{time.Minute}, Grace: 2 * time.Minute}
	w := Watch{OpenedAt: t0}
	s.open(&w)
	if !w.DueAt.Equal(t0.Add(time.Minute)) || w.Step != 0 {
		t.Errorf("open: due %s step %d", w.DueAt, w.Step)
	}
	w = Watch{OpenedAt: t0, ExpiresAt: t0.Add(10 * time.Second)}
	s.open(&w)
	if !w.DueAt.Equal(t0.Add(10 * time.Second)) {
		t.Errorf("open with expires_at: due %s", w.DueAt)
	}
	s.awaitRetrigger(&w, t0.Add(time.Minute))
	if !w.AwaitingRetrigger || !w.RetriggeredAt.Equal(t0.Add(time.Minute)) || !w.DueAt.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("awaitRetrigger: %+v", w)
	}
	if got := (Schedule{Delays: []time.Duration{time.Minute, 3 * time.Minute}}).Total(); got != 4*time.Minute {
		t.Errorf("Total = %s", got)
	}
}

func TestRequestValidate(t *testing.T) {
	accts := map[string]providers.Account{"glo-in": {ID: "glo-in", Provider: "jpglo", Currency: "INR"}}
	ok := Request{Provider: "jpglo", Account: "glo-in", Kind: "payin", MerchantOrderID: "O-1"}
	cases := []struct {
		name   string
		mutate func(*Request)
		valid  bool
	}{
		{"valid", func(*Request) {}, true},
		{"provider order id", func(r *Request) { r.ProviderOrderID = "P-1" }, true},
		{"no provider", func(r *Request) { r.Provider = "" }, false},
		{"unknown provider", func(r *Request) { r.Provider = "x" }, false},
		{"no account", func(r *Request) { r.Account = "" }, false},
		{"wrong provider", func(r *Request) { r.Provider = "mrnpay" }, false},
		{"bad kind", func(r *Request) { r.Kind = "refund" }, false},
		{"no order", func(r *Request) { r.MerchantOrderID = "" }, false},
		{"control character", func(r *Request) { r.MerchantOrderID = "O\x00" }, false},
		{"long order", func(r *Request) { r.MerchantOrderID = string(make([]byte, 129)) }, false},
		{"bad provider order", func(r *Request) { r.ProviderOrderID = "a\tb" }, false},
		{"inner space", func(r *Request) { r.MerchantOrderID = "A 1" }, true},
		{"amount", func(r *Request) { r.Amount = "100.00" }, true},
		{"amount and the account's currency", func(r *Request) { r.Amount, r.Currency = "7", "INR" }, true},
		{"zero amount", func(r *Request) { r.Amount = "0.00" }, true},
		{"amount with an exponent", func(r *Request) { r.Amount = "1e2" }, false},
		{"amount with a sign", func(r *Request) { r.Amount = "+1" }, false},
		{"negative amount", func(r *Request) { r.Amount = "-1" }, false},
		{"amount too long", func(r *Request) { r.Amount = "1" + strings.Repeat("0", 40) }, false},
		{"currency of another account", func(r *Request) { r.Amount, r.Currency = "1", "IDR" }, false},
		{"currency alone", func(r *Request) { r.Currency = "INR" }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := ok
			c.mutate(&r)
			if err := r.Validate(accts, registry.All()); (err == nil) != c.valid {
				t.Errorf("Validate = %v, want valid %v", err, c.valid)
			}
		})
	}
}

func TestWatchIDIsDeterministicAndDistinct(t *testing.T) {
	a := WatchID("jpglo", "glo-in", "payin", "O-1")
	if a != WatchID("jpglo", "glo-in", "payin", "O-1") || len(a) != 36 {
		t.Errorf("id %q not stable or wrong length", a)
	}
	for _, b := range []string{
		WatchID("jpglo", "glo-in", "appeal", "O-1"),
		WatchID("jpglo", "glo-i", "npayin", "O-1"),
		WatchID("jpglo", "glo-in", "payin", "O-2"),
	} {
		if a == b {
			t.Errorf("collision: %s", b)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(`{"account":"glo-in","kind":"payin","merchant_order_id":"O-1"}`))
	f.Add([]byte(`{"provider":"jpglo","account":"glo-in","kind":"payin","merchant_order_id":"O-1","expires_at":"2026-11-23T10:00:00Z"}`))
	f.Add([]byte(`{"account":1}`))
	f.Add([]byte(`{"account":"glo-in","kind":"payout","merchant_order_id":"O-1","amount":"100.00","currency":"INR"}`))
	f.Add([]byte(`{"account":"glo-in","kind":"payin","merchant_order_id":"O-1","amount":100.10}`))
	accts := map[string]providers.Account{"glo-in": {ID: "glo-in", Provider: "jpglo", Currency: "INR"}}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRequest(b)
		if err != nil {
			return
		}
		if r.Provider == "" {
			r.Provider = "jpglo"
		}
		if r.Validate(accts, registry.All()) == nil {
			if !validOrderID(r.MerchantOrderID) || accts[r.Account].Provider != r.Provider || !r.Kind.Valid() {
				t.Fatalf("invalid request accepted: %+v", r)
			}
			_ = WatchID(r.Provider, r.Account, r.Kind, r.MerchantOrderID)
			if r.Amount != "" {
				if m, err := r.money(accts[r.Account]); err != nil || strings.HasPrefix(m.Value, "-") || m.Currency != "INR" {
					t.Fatalf("amount %q accepted as %+v, %v", r.Amount, m, err)
				}
			}
		}
	})
}

func FuzzNormalizeReference(f *testing.F) {
	f.Add(" utr123 ")
	f.Add("a&b")
	f.Fuzz(func(t *testing.T, s string) {
		n := NormalizeReference(s)
		if n != "" && (len(n) > maxReference || NormalizeReference(n) != n) {
			t.Fatalf("NormalizeReference(%q) = %q: not bounded or not idempotent", s, n)
		}
	})
}
