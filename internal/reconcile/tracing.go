package reconcile

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/payhook/payhook/internal/tracing"
)

// attrs are the log attributes that tie a line to its order: the watch id,
// provider, account, kind and merchant order id (as ingress and the
// dispatcher name them).
func (w *Watch) attrs() []any {
	return []any{"watch_id", w.ID, "provider", w.Provider, "account", w.Account, "kind", string(w.Kind), "order_id", w.MerchantOrderID}
}

// startPoll begins the span of one provider query for w: a new trace,
// payhook.resend when the query asks the provider to send the callback
// again, else payhook.poll.
func startPoll(ctx context.Context, w *Watch, resend bool) (context.Context, trace.Span) {
	if !tracing.Enabled() {
		return ctx, trace.SpanFromContext(ctx)
	}
	name := "payhook.poll"
	if resend {
		name = "payhook.resend"
	}
	return tracing.Start(ctx, name, trace.SpanKindClient, trace.WithNewRoot(), trace.WithAttributes(
		tracing.AttrProvider.String(w.Provider), tracing.AttrAccount.String(w.Account), tracing.AttrKind.String(string(w.Kind)),
		tracing.AttrMerchantOrderID.String(w.MerchantOrderID), attribute.String("payhook.watch_id", w.ID), attribute.Int("payhook.poll", w.Polls+1)))
}

// outcomeNames name an outcome's kind on a span.
var outcomeNames = [...]string{outSave: "open", outClose: "closed", outExpire: "expired", outDefer: "deferred"}

// endPoll records what the query came to and ends the span.
func endPoll(span trace.Span, w *Watch, out outcome) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(tracing.AttrOutcome.String(outcomeNames[out.kind]))
	if out.by != "" {
		span.SetAttributes(attribute.String("payhook.closed_by", out.by))
	}
	if out.reason != "" {
		span.SetAttributes(tracing.AttrReason.String(out.reason))
	}
	if w.LastError != "" && w.LastErrorAt.Equal(w.LastPollAt) { // this poll's error
		span.SetStatus(codes.Error, w.LastError)
	}
	span.End()
}
