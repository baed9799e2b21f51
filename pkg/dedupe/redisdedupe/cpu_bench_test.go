package redisdedupe_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/dedupe/redisdedupe"
)

// BenchmarkIngressConfig: Check+Record pairs from 64 concurrent callers with
// the configuration ingress uses (internal/dedupestore); ns/op is per pair.
func BenchmarkIngressConfig(b *testing.B) {
	s := MustStore(b, redisdedupe.Config{Batch: 64, Pipelines: 1, BatchDelay: 200 * time.Microsecond})
	b.ResetTimer()
	ingressLoad(b, s, 64, b.N, fmt.Sprintf("ic%d-", b.N))
}
