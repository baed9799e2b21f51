// Package tracing is payhook's OpenTelemetry tracing: one trace per callback
// (or reconciler poll) from ingress through NATS to every webhook request
// the dispatcher makes for its event.
//
// Off by default (config tracing.endpoint empty): then Start returns the
// context unchanged with a no-op span, the Inject functions write nothing
// and the log handler adds nothing, each after one atomic load, so the
// callback path pays nothing measurable (BenchmarkCallback in
// internal/ingress).
//
// On, the spans are:
//
//	payhook.callback   ingress, one per request (server), attributes below
//	payhook.publish    publisher, one per event stored (producer); its
//	                   context goes out as the message's traceparent header
//	payhook.poll       reconciler, one per provider query of a watch
//	payhook.resend     reconciler, a query that asks the provider to resend
//	payhook.deliver    dispatcher, one per delivery attempt (client), child
//	                   of the traceparent the event message carries; its
//	                   context goes out as the webhook's traceparent header
//
// The traceparent header is outside what an event's signature covers
// (pkg/events: the webhook-id, the webhook-timestamp and the message data),
// so adding or dropping it never breaks verification.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/payhook/payhook/internal/config"
)

// InstrumentationName names payhook's tracer.
const InstrumentationName = "github.com/payhook/payhook"

// Attribute keys of payhook's spans.
const (
	AttrProvider        = attribute.Key("payhook.provider")
	AttrAccount         = attribute.Key("payhook.account")
	AttrKind            = attribute.Key("payhook.kind")
	AttrMerchantOrderID = attribute.Key("payhook.merchant_order_id")
	AttrEventID         = attribute.Key("payhook.event_id")
	AttrVerdict         = attribute.Key("payhook.verdict")
	AttrReason          = attribute.Key("payhook.reason")
	AttrOrigin          = attribute.Key("payhook.origin")
	AttrSubscriber      = attribute.Key("payhook.subscriber")
	AttrAttempt         = attribute.Key("payhook.attempt")
	AttrOutcome         = attribute.Key("payhook.outcome")
)

// tracer is the installed tracer; nil while tracing is off.
var tracer atomic.Pointer[trace.Tracer]

// traceContext reads and writes W3C traceparent and tracestate.
var traceContext = propagation.TraceContext{}

// Enabled reports whether spans are being made.
func Enabled() bool { return tracer.Load() != nil }

// Install makes tp the source of payhook's spans until the returned
// function is called (Setup does it for the binaries; tests install a
// provider with a span recorder).
func Install(tp trace.TracerProvider) (uninstall func()) {
	t := tp.Tracer(InstrumentationName)
	tracer.Store(&t)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(traceContext)
	return func() {
		tracer.Store(nil)
		otel.SetTracerProvider(noop.NewTracerProvider())
	}
}

// Setup starts tracing as cfg says, for the binary named service
// ("ingress", "dispatcher", "reconciler"), and returns the function that
// flushes the spans still buffered and stops (call it last, with a
// bounded context). Off (no endpoint) it installs nothing and the
// returned function does nothing. The exporter connects lazily: a
// collector that is down costs dropped spans, never a start-up failure or
// a slower callback.
func Setup(ctx context.Context, cfg config.Tracing, service string) (shutdown func(context.Context) error, err error) {
	if !cfg.Enabled() {
		return func(context.Context) error { return nil }, nil
	}
	exp, err := exporter(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("tracing: exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "payhook-"+service), attribute.String("service.namespace", "payhook")),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.Ratio()))),
	)
	uninstall := Install(tp)
	return func(ctx context.Context) error {
		uninstall()
		return tp.Shutdown(ctx)
	}, nil
}

func exporter(ctx context.Context, cfg config.Tracing) (sdktrace.SpanExporter, error) {
	isURL := false
	if u, err := url.Parse(cfg.Endpoint); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		isURL = true
	}
	if cfg.Protocol == "http" {
		opts := []otlptracehttp.Option{}
		if isURL {
			opts = append(opts, otlptracehttp.WithEndpointURL(cfg.Endpoint))
		} else {
			opts = append(opts, otlptracehttp.WithEndpoint(cfg.Endpoint))
		}
		if cfg.Insecure {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		return otlptracehttp.New(ctx, opts...)
	}
	opts := []otlptracegrpc.Option{}
	if isURL {
		opts = append(opts, otlptracegrpc.WithEndpointURL(cfg.Endpoint))
	} else {
		opts = append(opts, otlptracegrpc.WithEndpoint(cfg.Endpoint))
	}
	if cfg.Insecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	return otlptracegrpc.New(ctx, opts...)
}

// Start begins a span named name as a child of ctx's span (or a new
// trace). Off, it returns ctx and a no-op span without allocating: set
// attributes only when span.IsRecording().
func Start(ctx context.Context, name string, kind trace.SpanKind, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	t := tracer.Load()
	if t == nil {
		return ctx, trace.SpanFromContext(ctx)
	}
	return (*t).Start(ctx, name, append(opts, trace.WithSpanKind(kind))...)
}

// natsCarrier adapts nats.Header, whose keys are case-sensitive, to the
// propagator: it writes "traceparent" and "tracestate" as the W3C spec
// spells them and reads either spelling.
type natsCarrier nats.Header

func (c natsCarrier) Get(key string) string {
	if v := nats.Header(c)[key]; len(v) > 0 {
		return v[0]
	}
	if v := http.Header(c)[http.CanonicalHeaderKey(key)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c natsCarrier) Set(key, value string) { nats.Header(c)[key] = []string{value} }

func (c natsCarrier) Keys() []string {
	out := make([]string, 0, len(c))
	for k := range c {
		out = append(out, k)
	}
	return out
}

// HeaderTraceparent is the header that carries a span's context on event
// messages and webhook requests (W3C Trace Context).
const HeaderTraceparent = "traceparent"

// InjectNATS writes ctx's span context to h as traceparent (and
// tracestate); nothing when tracing is off or ctx has no span.
func InjectNATS(ctx context.Context, h nats.Header) {
	if h == nil || !Enabled() {
		return
	}
	traceContext.Inject(ctx, natsCarrier(h))
}

// ExtractNATS returns ctx with the remote span context that h carries, if
// any; ctx unchanged when tracing is off.
func ExtractNATS(ctx context.Context, h nats.Header) context.Context {
	if h == nil || !Enabled() {
		return ctx
	}
	return traceContext.Extract(ctx, natsCarrier(h))
}

// InjectHTTP writes ctx's span context to an outgoing request's headers.
func InjectHTTP(ctx context.Context, h http.Header) {
	if !Enabled() {
		return
	}
	traceContext.Inject(ctx, propagation.HeaderCarrier(h))
}

// ExtractHTTP returns ctx with the span context an incoming request
// carries, if any.
func ExtractHTTP(ctx context.Context, h http.Header) context.Context {
	if !Enabled() {
		return ctx
	}
	return traceContext.Extract(ctx, propagation.HeaderCarrier(h))
}

// TraceID is the hex trace id of ctx's span, "" when there is none.
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	return sc.TraceID().String()
}

// LogHandler adds trace_id (and span_id) to every record logged with a
// context that carries a span (slog's *Context methods), so a log line
// leads to its trace. Wrap the handler only when tracing is on.
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ slog.Handler }

func (l logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return l.Handler.Handle(ctx, r)
}

func (l logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return logHandler{l.Handler.WithAttrs(as)}
}

func (l logHandler) WithGroup(name string) slog.Handler { return logHandler{l.Handler.WithGroup(name)} }
