package mrnpay_test

import (
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/mrnpay"
)

// benchParse measures the verify+decode path ingress runs per callback, on
// the bodies payhook-bench sends (built with this package's helpers).
func benchParse(b *testing.B, kind events.Kind, body []byte) {
	acct := providers.Account{ID: "mrn-in", Provider: "mrnpay", Keys: providers.Keys{"merchant_id": "benchAppKey", "secret": "bench-mrnpay-key"}, Currency: "CNY"}
	req := providers.Request{Kind: kind, Body: body, RemoteAddr: "127.0.0.1:5000", ReceivedAt: time.Now(),
		Header: map[string][]string{"Content-Type": {"application/x-www-form-urlencoded"}}}
	p := mrnpay.New()
	if _, err := p.Parse(acct, req); err != nil {
		b.Fatalf("callback does not verify: %v", err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := p.Parse(acct, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsePayin(b *testing.B) {
	benchParse(b, events.KindPayin, mrnpay.BuildPayinCallback("benchAppKey", "bench-mrnpay-key", "bench-42", "3", "1234.56", "1234.56"))
}

func BenchmarkParsePayout(b *testing.B) {
	benchParse(b, events.KindPayout, mrnpay.BuildPayoutCallback("benchAppKey", "bench-mrnpay-key", "bench-43", "1234"))
}
