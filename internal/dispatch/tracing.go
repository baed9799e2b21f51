package dispatch

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/payhook/payhook/internal/tracing"
)

// startAttempt begins the payhook.deliver span of one delivery attempt: a
// child of the producer's span whose traceparent the event message carries
// (outside what its signature covers), so that every attempt, hours apart
// or not, is in the trace of the callback or poll that stored the event.
// The span's context goes out on the webhook request (Post).
func (w *worker) startAttempt(ctx context.Context, it *item) (context.Context, trace.Span) {
	if !tracing.Enabled() {
		return ctx, trace.SpanFromContext(ctx)
	}
	ctx = tracing.ExtractNATS(ctx, it.signed)
	ctx, span := tracing.Start(ctx, "payhook.deliver", trace.SpanKindClient)
	if span.IsRecording() {
		span.SetAttributes(tracing.AttrSubscriber.String(w.id), tracing.AttrEventID.String(it.id),
			tracing.AttrAttempt.Int(max(it.attempt, 1)), attribute.Bool("payhook.replay", it.replay))
		ce := &it.head.ce
		span.SetAttributes(tracing.AttrProvider.String(ce.Data.Provider), tracing.AttrAccount.String(ce.Data.Account),
			tracing.AttrKind.String(string(ce.Data.Kind)), tracing.AttrMerchantOrderID.String(it.head.order))
	}
	return ctx, span
}

// endAttempt records the attempt's HTTP status and disposition and ends its span.
func endAttempt(span trace.Span, res Result, d Disposition) {
	if !span.IsRecording() {
		return
	}
	if res.Status != 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", res.Status))
	}
	span.SetAttributes(tracing.AttrOutcome.String(attemptOutcome[d]))
	if res.Err != nil {
		span.SetStatus(codes.Error, res.Err.Error())
	}
	span.End()
}
