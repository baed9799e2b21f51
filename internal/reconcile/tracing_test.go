package reconcile

import (
	"context"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/internal/tracing"
)

// TestPollSpans: with tracing on, each query of a watch is a payhook.poll
// span naming the order, and the event a poll recovers goes out with that
// trace's traceparent (through payhook.publish, its child).
func TestPollSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	t.Cleanup(tracing.Install(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sdktrace.AlwaysSample()))))
	h := newHarness(t, harnessOpts{})
	h.jpglo.set("TR-1", "commit", "success")
	h.start()
	h.announce("jpglo", `{"account":"glo-in","kind":"payin","merchant_order_id":"TR-1"}`)
	testenv.Eventually(t, 5*time.Second, func() bool { return h.count(jpgloSucceeded) == 1 }, "no event recovered by poll")

	var polls []sdktrace.ReadOnlySpan
	var publish sdktrace.ReadOnlySpan
	testenv.Eventually(t, 5*time.Second, func() bool {
		polls, publish = nil, nil
		for _, s := range rec.Ended() {
			switch s.Name() {
			case "payhook.poll":
				polls = append(polls, s)
			case "payhook.publish":
				publish = s
			}
		}
		return len(polls) == 2 && publish != nil
	}, "spans: %d polls, publish %v", len(polls), publish != nil)
	last := polls[1]
	attrs := map[string]string{}
	for _, kv := range last.Attributes() {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	if attrs["payhook.merchant_order_id"] != "TR-1" || attrs["payhook.provider"] != "jpglo" || attrs["payhook.outcome"] != "closed" {
		t.Errorf("poll span attributes %v", attrs)
	}
	if publish.Parent().SpanID() != last.SpanContext().SpanID() {
		t.Error("publish span is not the recovering poll's child")
	}
	s, _ := h.js.Stream(context.Background(), natsbus.StreamEvents)
	m, err := s.GetLastMsgForSubject(context.Background(), jpgloSucceeded)
	if err != nil {
		t.Fatal(err)
	}
	if tp := m.Header.Get("traceparent"); !strings.Contains(tp, last.SpanContext().TraceID().String()) {
		t.Errorf("event traceparent %q, want the poll's trace %s", tp, last.SpanContext().TraceID())
	}
}
