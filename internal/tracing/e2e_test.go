package tracing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/dispatch"
	"github.com/payhook/payhook/internal/ingress"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/internal/tracing"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers/jpglo"
)

const jpgloKey = "9ce23be4-a31b-498f-b951-ad7e771c3d73"

// hook records the traceparent of every webhook request.
type hook struct {
	mu          sync.Mutex
	traceparent []string
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.traceparent = append(h.traceparent, r.Header.Get("traceparent"))
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (h *hook) got() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.traceparent...)
}

// serve runs f until the test ends and waits for /readyz.
func serve(t *testing.T, f func(ctx context.Context, ln net.Listener) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("service did not stop")
		}
	})
	url := "http://" + ln.Addr().String()
	testenv.Eventually(t, 20*time.Second, func() bool {
		r, err := http.Get(url + "/readyz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == http.StatusOK
	}, "not ready")
	return url
}

// TestOneCallbackOneTrace: with tracing on, one callback through a real
// NATS makes one trace — the ingress span (with the callback's provider,
// account, kind, order, event id and verdict), the publish span whose
// context the event message carries, and the dispatcher's delivery span —
// and the webhook request carries that delivery span as its traceparent.
// The traceparent on the event message leaves its signature valid, and the
// ingress log line names the trace.
func TestOneCallbackOneTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(tracing.Install(tp))

	n := testenv.StartNATS(t)
	sub := &hook{}
	srv := httptest.NewServer(sub)
	t.Cleanup(srv.Close)
	cfg, err := config.Parse(fmt.Appendf(nil, `nats: {url: %s}
event_signing: {private_key: %q, public_keys: [%q]}
tracing: {endpoint: "127.0.0.1:4317"}
accounts:
  - {id: glo-in, provider: jpglo, merchant_id: "1", secret: %q, currency: INR}
subscribers:
  - {id: ledger, url: %q, secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, start: all}
`, n.URL, testenv.EventPrivateKey, testenv.EventPublicKey, jpgloKey, srv.URL), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	var ingLog testenv.LogBuffer
	ingressURL := serve(t, func(ctx context.Context, ln net.Listener) error {
		return ingress.Run(ctx, cfg, ingress.RunOptions{Listener: ln, Log: slog.New(tracing.LogHandler(slog.NewJSONHandler(&ingLog, nil))), DrainTimeout: 5 * time.Second})
	})
	serve(t, func(ctx context.Context, ln net.Listener) error {
		return dispatch.Run(ctx, cfg, dispatch.RunOptions{Listener: ln, Log: slog.New(slog.DiscardHandler)})
	})

	f := map[string]any{
		"order_no": "JT-1", "mch_order_no": "T-1", "status": "success",
		"apply_amount": json.Number("1000000"), "real_amount": json.Number("1000000"),
		"pay_type": "upi", "sub_pay_type": nil, "remark": "",
		"timestamp": json.Number(strconv.FormatInt(time.Now().Unix(), 10)),
	}
	f["sign"] = jpglo.Sign(f, jpgloKey)
	body, _ := json.Marshal(f)
	resp, err := http.Post(ingressURL+"/v1/callbacks/jpglo/glo-in/payin", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("callback: %d", resp.StatusCode)
	}
	testenv.Eventually(t, 20*time.Second, func() bool { return len(sub.got()) == 1 }, "webhook not delivered")
	var spans map[string]sdktrace.ReadOnlySpan
	testenv.Eventually(t, 10*time.Second, func() bool {
		spans = map[string]sdktrace.ReadOnlySpan{}
		for _, s := range rec.Ended() {
			spans[s.Name()] = s
		}
		return spans["payhook.callback"] != nil && spans["payhook.publish"] != nil && spans["payhook.deliver"] != nil
	}, "spans missing: %v", spans)

	cb, pub, del := spans["payhook.callback"], spans["payhook.publish"], spans["payhook.deliver"]
	traceID := cb.SpanContext().TraceID()
	attrs := map[string]string{}
	for _, kv := range cb.Attributes() {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	for k, want := range map[string]string{"payhook.provider": "jpglo", "payhook.account": "glo-in", "payhook.kind": "payin",
		"payhook.merchant_order_id": "T-1", "payhook.verdict": "accepted"} {
		if attrs[k] != want {
			t.Errorf("callback span %s = %q, want %q (%v)", k, attrs[k], want, attrs)
		}
	}
	eventID := attrs["payhook.event_id"]
	if eventID == "" || cb.SpanKind() != trace.SpanKindServer {
		t.Errorf("callback span: event id %q, kind %v", eventID, cb.SpanKind())
	}
	if pub.Parent().SpanID() != cb.SpanContext().SpanID() || pub.SpanContext().TraceID() != traceID {
		t.Errorf("publish span not a child of the callback span")
	}
	if del.Parent().SpanID() != pub.SpanContext().SpanID() || del.SpanContext().TraceID() != traceID || !del.Parent().IsRemote() {
		t.Errorf("delivery span not a child of the producer's span carried on NATS: parent %v", del.Parent())
	}
	want := fmt.Sprintf("00-%s-%s-01", traceID, del.SpanContext().SpanID())
	if got := sub.got()[0]; got != want {
		t.Errorf("webhook traceparent %q, want %q", got, want)
	}

	// The stored message carries the traceparent and still verifies.
	js, err := jetstream.New(n.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(context.Background(), natsbus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(context.Background(), "payhook.events.jpglo.payin.succeeded")
	if err != nil {
		t.Fatal(err)
	}
	if tp := m.Header.Get("traceparent"); !strings.Contains(tp, traceID.String()) {
		t.Errorf("event message traceparent %q, want trace %s", tp, traceID)
	}
	key, _ := events.ParsePublicKey(testenv.EventPublicKey)
	if ce, err := events.VerifyMessage([]events.PublicKey{key}, m.Subject, m.Header, m.Data); err != nil || ce.ID != eventID {
		t.Errorf("event with traceparent: verify %v, id %q want %q", err, ce.ID, eventID)
	}
	if l := ingLog.String(); !strings.Contains(l, `"trace_id":"`+traceID.String()+`"`) {
		t.Errorf("ingress log has no trace_id %s:\n%s", traceID, l)
	}
}
