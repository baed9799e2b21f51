package tracing

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/payhook/payhook/internal/config"
)

// TestOff: without Setup or Install nothing is traced, injected or logged.
func TestOff(t *testing.T) {
	stop, err := Setup(context.Background(), config.Tracing{}, "ingress")
	if err != nil {
		t.Fatal(err)
	}
	defer stop(context.Background())
	if Enabled() {
		t.Fatal("enabled without an endpoint")
	}
	ctx, span := Start(context.Background(), "x", trace.SpanKindServer)
	if span.IsRecording() || TraceID(ctx) != "" {
		t.Error("a span while off")
	}
	h := nats.Header{}
	InjectNATS(ctx, h)
	if len(h) != 0 {
		t.Errorf("headers while off: %v", h)
	}
}

// TestPropagation: a span's context goes into NATS headers as lower-case
// traceparent, comes back out (also from the canonical spelling), and onto
// HTTP headers; log lines with its context carry its trace id.
func TestPropagation(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	defer Install(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))()
	ctx, span := Start(context.Background(), "payhook.publish", trace.SpanKindProducer)
	defer span.End()
	h := nats.Header{}
	InjectNATS(ctx, h)
	tp := h["traceparent"]
	if len(tp) != 1 || !strings.Contains(tp[0], TraceID(ctx)) {
		t.Fatalf("nats header %v", h)
	}
	for _, hh := range []nats.Header{h, {"Traceparent": tp}} {
		got := trace.SpanContextFromContext(ExtractNATS(context.Background(), hh))
		if !got.IsRemote() || got.SpanID() != span.SpanContext().SpanID() {
			t.Errorf("extract from %v: %v", hh, got)
		}
	}
	hh := http.Header{}
	InjectHTTP(ctx, hh)
	if hh.Get("traceparent") != tp[0] {
		t.Errorf("http %v", hh)
	}
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "x")
	log.InfoContext(ctx, "with")
	log.Info("without")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if !strings.Contains(lines[0], `"trace_id":"`+TraceID(ctx)+`"`) || strings.Contains(lines[1], "trace_id") {
		t.Errorf("log:\n%s", buf.String())
	}
}

// BenchmarkOff is what a callback pays for tracing while it is off: a
// span started and ended, a header injected.
func BenchmarkOff(b *testing.B) {
	ctx := context.Background()
	h := nats.Header{}
	b.ReportAllocs()
	for b.Loop() {
		c, span := Start(ctx, "payhook.callback", trace.SpanKindServer)
		InjectNATS(c, h)
		if span.IsRecording() {
			span.End()
		}
	}
}
