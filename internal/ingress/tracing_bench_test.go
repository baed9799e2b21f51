package ingress_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/internal/tracing"
)

// BenchmarkCallbackTraced is BenchmarkCallback with tracing on, every
// trace sampled (sample_ratio 1) and exported through the SDK's batch
// processor to an exporter that drops them: the price of tracing a
// callback (its two spans and the traceparent header), as opposed to
// BenchmarkCallback, where tracing is off.
func BenchmarkCallbackTraced(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	uninstall := tracing.Install(tp)
	defer func() {
		uninstall()
		_ = tp.Shutdown(context.Background())
	}()
	benchCallback(b, testenv.EventSigner(b), nil)
}
