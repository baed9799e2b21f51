package mpurse_test

import (
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/mpurse"
)

// BenchmarkParsePayin measures decrypt+decode of the callback payhook-bench
// sends (AES-256-ECB, built with Encrypt).
func BenchmarkParsePayin(b *testing.B) {
	acct := providers.Account{ID: "mp-in", Provider: "mpurse", Keys: providers.Keys{"merchant_id": "BENCHPARTNER", "aes_key": "bench-mpurse-aes-key-32-bytes!!!", "aes_mode": "ecb"}, Currency: "INR"}
	plain := `{"mpQueryId":"bench-42","payerVA":"payer42@paytm","bankRRN":"400000000042","payerAmount":"1234.56",` +
		`"payChannel":"UPI","txnStatus":"TRANSACTION_SUCCESS","txnCompletionDate":"20261123153000",` +
		`"partnerId":"BENCHPARTNER","receiverVA":"mpu.cpdf.bench@icici","errorMsg":"transaction success"}`
	ct, err := mpurse.Encrypt(acct, []byte(plain))
	if err != nil {
		b.Fatal(err)
	}
	req := providers.Request{Kind: events.KindPayin, Body: []byte(ct), RemoteAddr: "127.0.0.1:5000", ReceivedAt: time.Now()}
	p := mpurse.New()
	if _, err := p.Parse(acct, req); err != nil {
		b.Fatalf("callback does not verify: %v", err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(req.Body)))
	for b.Loop() {
		if _, err := p.Parse(acct, req); err != nil {
			b.Fatal(err)
		}
	}
}
