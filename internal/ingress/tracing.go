package ingress

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/payhook/payhook/internal/tracing"
)

// startSpan begins the payhook.callback span of one request: the root of
// the trace its event carries to the dispatcher. A provider is not a
// party to payhook's traces, so a traceparent it (or anyone on the
// internet) sends does not parent the span — it would choose the trace id
// and the sampling — but is kept as a link, for a proxy of our own that
// traces. Off, this is one atomic load, and the span is a no-op one: no
// span records without a tracer, so there is none in ctx to look up.
func startSpan(ctx context.Context, req *http.Request) (context.Context, trace.Span) {
	if !tracing.Enabled() {
		return ctx, noSpan
	}
	var opts []trace.SpanStartOption
	if sc := trace.SpanContextFromContext(tracing.ExtractHTTP(context.Background(), req.Header)); sc.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	return tracing.Start(ctx, "payhook.callback", trace.SpanKindServer, append(opts, trace.WithNewRoot())...)
}

// noSpan is the span of a callback while tracing is off.
var noSpan = trace.SpanFromContext(context.Background())

// endSpan records what was decided about the request on its span and ends it.
func endSpan(span trace.Span, o outcome) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(tracing.AttrProvider.String(o.provider), tracing.AttrAccount.String(o.account),
		tracing.AttrKind.String(o.kind), tracing.AttrVerdict.String(o.verdict))
	if o.orderID != "" {
		span.SetAttributes(tracing.AttrMerchantOrderID.String(o.orderID))
	}
	if o.eventID != "" {
		span.SetAttributes(tracing.AttrEventID.String(o.eventID))
	}
	if o.reason != "" {
		span.SetAttributes(tracing.AttrReason.String(string(o.reason)))
	}
	status := o.status
	if status == 0 {
		status = http.StatusOK
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if o.verdict == VerdictUnavailable {
		span.SetStatus(codes.Error, string(o.reason))
	}
	span.End()
}
