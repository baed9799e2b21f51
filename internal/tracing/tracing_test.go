package tracing

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

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

// TestSetupExportsOTLP: Setup with an OTLP/HTTP endpoint sends the spans,
// named for the service, to it when stopped (the flush at shutdown).
func TestSetupExportsOTLP(t *testing.T) {
	got := make(chan *coltracepb.ExportTraceServiceRequest, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		got <- &req
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		_, _ = w.Write(b)
	}))
	defer srv.Close()
	stop, err := Setup(context.Background(), config.Tracing{Endpoint: srv.URL + "/v1/traces", Protocol: "http"}, "ingress")
	if err != nil {
		t.Fatal(err)
	}
	if !Enabled() {
		t.Fatal("not enabled")
	}
	_, span := Start(context.Background(), "payhook.callback", trace.SpanKindServer)
	span.End()
	if err := stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if Enabled() {
		t.Error("still enabled after shutdown")
	}
	select {
	case req := <-got:
		rs := req.GetResourceSpans()
		if len(rs) != 1 || len(rs[0].GetScopeSpans()) != 1 || rs[0].GetScopeSpans()[0].GetSpans()[0].GetName() != "payhook.callback" {
			t.Fatalf("export: %v", req)
		}
		service := ""
		for _, kv := range rs[0].GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		if service != "payhook-ingress" {
			t.Errorf("service.name %q", service)
		}
	default:
		t.Fatal("nothing exported")
	}
}
