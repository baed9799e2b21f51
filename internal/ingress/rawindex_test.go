package ingress

import (
	"context"
	"fmt"
	"net/http"
	"testing"

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
