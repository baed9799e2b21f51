package ingress

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/payhook/payhook/internal/natsbus"
)

// TestRefusalOrderIDBounded: a request that verified and was then refused
// names its order in its raw record (for the trace index), one that did
// not verify never does, and one verified refusal sent again and again is
// named only at the pace of one event's repeats, so it cannot flood the
// index; every copy is still recorded.
func TestRefusalOrderIDBounded(t *testing.T) {
	const copies = 60
	cfg := testConfig()
	cfg.Ingress.RejectionsPerSecond, cfg.Ingress.RejectionsBurst = 1000, 1000
	h := start(t, cfg, nil)
	refused := []byte(body("ORD-BAD", "weird", "1")) // verifies; invalid_event
	for i := 0; i < copies; i++ {
		if code := h.send(http.MethodPost, cbPath, refused, fmt.Sprintf("198.51.100.%d", i%4+1)); code != http.StatusBadRequest {
			t.Fatalf("copy %d: %d", i, code)
		}
	}
	forged := []byte(`{"order":"ORD-FORGED","status":"succeeded","amount":"1","sign":"nope"}`)
	if code := h.send(http.MethodPost, cbPath, forged, "203.0.113.10"); code != http.StatusUnauthorized {
		t.Fatalf("forged: %d", code)
	}
	h.srv.Flush(context.Background())

	named, all := 0, 0
	for _, r := range h.rawRecords(natsbus.StreamRawRejected, "payhook.raw.>") {
		switch {
		case r.Reason == "invalid_event":
			all++
			if r.OrderID == "ORD-BAD" && r.EventID != "" {
				named++
			} else if r.OrderID != "" {
				t.Errorf("order id %q", r.OrderID)
			}
		case r.OrderID != "":
			t.Errorf("%s refusal names order %q: its bytes did not verify", r.Reason, r.OrderID)
		}
	}
	if all != copies {
		t.Errorf("%d invalid_event records, want %d: every refusal is recorded", all, copies)
	}
	// A minute's refill may add one if the test is slow.
	if named < replayBurst || named > replayBurst+1 {
		t.Errorf("%d records name the order, want %d (its event's bucket)", named, replayBurst)
	}
}

// TestClaimedOrderBounded: a refusal of bytes that did not verify names the
// order they claim in Payhook-Claimed-Order-Id (never Payhook-Order-Id), at
// most claimBurst times for one (account, order) however many copies come
// from however many addresses, while every copy is recorded; nothing is
// claimed for an unknown account, a body the provider cannot read, an id
// that is not a valid order id, or when the provider's reader panics.
func TestClaimedOrderBounded(t *testing.T) {
	const copies = 60
	cfg := testConfig()
	cfg.Ingress.RejectionsPerSecond, cfg.Ingress.RejectionsBurst = 1000, 1000
	h := start(t, cfg, nil)
	forged := []byte(`{"order":"ORD-X","status":"succeeded","amount":"100.00","sign":"forged"}`)
	for i := 0; i < copies; i++ {
		if code := h.send(http.MethodPost, cbPath, forged, fmt.Sprintf("198.51.100.%d", i%4+1)); code != http.StatusUnauthorized {
			t.Fatalf("copy %d: %d", i, code)
		}
	}
	for path, b := range map[string]string{
		"/v1/callbacks/fakeprov/nope/payin": `{"order":"ORD-UNKNOWN-ACCT","sign":"x"}`,
		cbPath + "?bad-id":                  `{"order":"ORD\nNL","sign":"x"}`,
		cbPath + "?unreadable":              `not json "order":"ORD-JUNK"`,
		cbPath + "?reader-panics":           `{"order":"PANIC-CLAIM","sign":"x"}`,
	} {
		if code := h.send(http.MethodPost, path, []byte(b), "203.0.113.10"); code < 400 || code > 499 || code == http.StatusTooManyRequests {
			t.Fatalf("%s: %d", path, code)
		}
	}
	h.srv.Flush(context.Background())

	claimed, all := 0, 0
	for _, r := range h.rawRecords(natsbus.StreamRawRejected, "payhook.raw.>") {
		if r.OrderID != "" {
			t.Errorf("%s refusal names verified order %q", r.Reason, r.OrderID)
		}
		switch {
		case r.Reason == "bad_signature" && r.Account == "acc-1" && string(r.Body) == string(forged):
			all++
			if r.ClaimedOrderID == "ORD-X" {
				claimed++
			} else if r.ClaimedOrderID != "" {
				t.Errorf("claimed %q", r.ClaimedOrderID)
			}
		case r.ClaimedOrderID != "":
			t.Errorf("%s refusal of account %s claims %q", r.Reason, r.Account, r.ClaimedOrderID)
		}
	}
	if all != copies {
		t.Errorf("%d forged records, want %d: every refusal is recorded", all, copies)
	}
	// A minute's refill may add one if the test is slow.
	if claimed < claimBurst || claimed > claimBurst+1 {
		t.Errorf("%d records claim the order, want %d (its claim bucket)", claimed, claimBurst)
	}
	if dropped := testutil.ToFloat64(h.srv.m.claimsDropped.WithLabelValues("fakeprov")); int(dropped) != copies-claimed {
		t.Errorf("payhook_ingress_claims_dropped_total = %v, want %d (the copies recorded without their claim)", dropped, copies-claimed)
	}
}

// TestClaimLimiterPerAccount: forgeries claiming a new order each time are
// held by their account's bucket; another account's claims are not.
func TestClaimLimiterPerAccount(t *testing.T) {
	l := newClaimLimiter()
	now := time.Now()
	for i := 0; i < claimAccountBurst; i++ {
		if !l.allow("a", fmt.Sprint("O-", i), now) {
			t.Fatalf("claim %d refused within the account's burst", i)
		}
	}
	if l.allow("a", "O-new", now) {
		t.Error("claim past the account's burst allowed")
	}
	if !l.allow("b", "O-1", now) {
		t.Error("another account's claim refused")
	}
	if !l.allow("a", "O-later", now.Add(claimAccountEvery)) {
		t.Error("no claim allowed once the account's bucket refilled")
	}
}
