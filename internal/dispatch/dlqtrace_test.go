package dispatch

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/events"
)

// TestDeadLetterKeepsTraceContext: a dead letter keeps the event message's
// traceparent beside its signature headers, and its replay carries both, so
// the replayed delivery continues the producer's trace and still verifies.
func TestDeadLetterKeepsTraceContext(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	if err := EnsureReplayStream(ctx, h.js, h.cfg.NATS); err != nil {
		t.Fatal(err)
	}
	ev := event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "traced-dl")
	body := mustMarshal(t, ev)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	orig := nats.Header{}
	testenv.EventSigner(t).Sign(orig, ev.ID(), time.Now(), body)
	orig.Set("traceparent", tp)
	orig.Set("Unrelated", "not kept")
	if err := PublishDeadLetter(ctx, h.js, DeadLetter{Event: body, EventID: ev.ID(), Subscriber: "ledger", Attempts: 1, LastError: "x"}, orig); err != nil {
		t.Fatal(err)
	}
	dls, err := ListDLQ(ctx, h.js, "ledger")
	if err != nil || len(dls) != 1 {
		t.Fatalf("ListDLQ = %v, %v", dls, err)
	}
	if got := dls[0].Signed.Get("traceparent"); got != tp {
		t.Errorf("dead letter traceparent = %q, want %q", got, tp)
	}
	if res, err := Replay(ctx, h.js, "ledger", nil); err != nil || res.Replayed != 1 {
		t.Fatalf("Replay = %+v, %v", res, err)
	}
	st, err := h.js.Stream(ctx, StreamReplay)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, ReplaySubject("ledger"))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Header.Get("traceparent"); got != tp {
		t.Errorf("replayed traceparent = %q, want %q", got, tp)
	}
	if m.Header.Get("Unrelated") != "" {
		t.Error("a header that is neither signature nor trace context was carried")
	}
	for _, k := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
		if m.Header.Get(k) != orig.Get(k) {
			t.Errorf("replayed %s = %q, want %q", k, m.Header.Get(k), orig.Get(k))
		}
	}
}
