package jpglo_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/jpglo"
)

// benchParse measures the verify+decode path ingress runs per callback, on
// a body shaped like payhook-bench's (internal/bench) and signed with Sign.
// It uses only this package, so a broken sibling can't break this test.
func benchParse(b *testing.B, kind events.Kind, f map[string]any) {
	acct := providers.Account{ID: "glo-in", Provider: "jpglo", Keys: providers.Keys{"merchant_id": "1", "secret": "bench-jpglo-key"}, Currency: "INR"}
	f["sign"] = jpglo.Sign(f, acct.Key("secret"))
	body, err := json.Marshal(f)
	if err != nil {
		b.Fatal(err)
	}
	req := providers.Request{Kind: kind, Body: body, RemoteAddr: "127.0.0.1:5000", ReceivedAt: time.Now()}
	p := jpglo.New()
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
	benchParse(b, events.KindPayin, map[string]any{
		"order_no": "2202171238500042", "mch_order_no": "bench-42", "status": "success",
		"apply_amount": 123456, "real_amount": 123456, "pay_type": "upi", "sub_pay_type": nil,
		"remark": "", "user_ext": `{"user_id":"100042"}`, "timestamp": 1763892000,
	})
}

func BenchmarkParseAppeal(b *testing.B) {
	benchParse(b, events.KindAppeal, map[string]any{
		"mch_order_no": "bench-43", "order_no": "2203240014030043", "mch_inquiry_no": "INQbench-43",
		"inquiry_order_no": "2205041133420043", "status": "success", "inquiry_amount": 123456,
		"user_remark": "I've paid!", "reason": "已完成充值", "timestamp": 1763892000,
	})
}
