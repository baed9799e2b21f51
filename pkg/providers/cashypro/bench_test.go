package cashypro_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/cashypro"
)

// BenchmarkParsePayin measures verify+decode of the notification
// payhook-bench sends, signed with Sign under the default rule.
func BenchmarkParsePayin(b *testing.B) {
	acct := providers.Account{ID: "cashy-in", Provider: "cashypro", Keys: providers.Keys{"merchant_id": "M2024BENCH", "secret": "bench-cashypro-secret"}, Currency: "IDR"}
	body := []byte(`{"amount":12345.00,"channelOrderNo":"QR42","completionTime":"2026-11-23 17:00:00","fee":1049.0000,` +
		`"mchOrderNo":"bench-42","merchantId":"M2024BENCH","nonceStr":"k3j5h2g1","orderNo":"CP1000000042",` +
		`"orderStatus":"SUCCESS","payCode":"OR.GPNQR.BENCH","payType":"QRIS","payUrl":"https://pay.example/CP1000000042"}`)
	sign, err := cashypro.Sign(body, acct.Key("secret"), "")
	if err != nil {
		b.Fatal(err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(cashypro.HeaderMerchantID, acct.Key("merchant_id"))
	h.Set(cashypro.HeaderSign, sign)
	req := providers.Request{Kind: events.KindPayin, Header: h, Body: body, RemoteAddr: "127.0.0.1:5000", ReceivedAt: time.Now()}
	p := cashypro.New()
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
