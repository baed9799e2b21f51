package ingress

import (
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/testenv"
)

// A refusal is only answered once it is recorded on PAYHOOK_RAW_REJECTED
// (docs/interfaces.md "Callbacks in": the request recorded as rejected). Found by
// the reliability suite's NATS outage: bad-signature callbacks answered 401
// while NATS was down had no rejected record, ever — the provider does not
// retry a 401. Now such a refusal is a 503, and the provider's retry after
// the outage is refused and recorded.
func TestRefusalWhileNATSDownIs503ThenRecorded(t *testing.T) {
	h := start(t, testConfig(), nil)
	bad := strings.Replace(body("ORD-BAD", "succeeded", "7.00"), `"sign":"`, `"sign":"0`, 1)
	unknown := "/v1/callbacks/nosuch/acc-1/payin"

	h.nats.Stop()
	for _, path := range []string{cbPath, unknown} {
		if code, reply := h.post(path, bad); code != 503 {
			t.Errorf("%s with NATS down: got %d %s, want 503 (the refusal cannot be recorded)", path, code, reply)
		}
	}
	h.nats.Start()
	testenv.Eventually(t, 10*time.Second, func() bool { return h.js.Conn().IsConnected() }, "reconnect")

	for path, want := range map[string]int{cbPath: 401, unknown: 404} {
		if code, reply := h.post(path, bad); code != want {
			t.Errorf("%s retried after the outage: got %d %s, want %d", path, code, reply, want)
		}
	}
	// Each refusal answered 4xx has its rejected record, with its reason.
	testenv.Eventually(t, 5*time.Second, func() bool {
		return h.count(natsbus.StreamRawRejected, "payhook.raw.fakeprov.rejected") == 1 &&
			h.count(natsbus.StreamRawRejected, "payhook.raw.unknown.rejected") == 1
	}, "one rejected record per 4xx answer")
	if n := h.count(natsbus.StreamEvents, "payhook.events.>"); n != 0 {
		t.Fatalf("%d events from a bad signature", n)
	}
}
