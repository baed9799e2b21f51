package strictjson

import (
	"reflect"
	"testing"
)

// The fast path must agree with the token reader whenever it answers.
func FuzzFastMatchesSlow(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":{"b":[1,{"c":"x:y"}]}}`, `{"a":1,"\u0061":2}`, `{"k":"\"}:"}`, `[1]`, `{"a":1} x`, `{"a":[{"b":1,"b":2}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := fastDecode(b, 8)
		slow, err := slowDecode(b, 8)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("fast path accepted what the reader refuses (%v): %q", err, b)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast %v != slow %v for %q", fast, slow, b)
		}
	})
}

func BenchmarkDecodeObject(b *testing.B) {
	doc := []byte(`{"order_no":"2202171238501159","mch_order_no":"111123456789","status":"success","apply_amount":10000000,"real_amount":10000000,"pay_type":"pix","sub_pay_type":null,"remark":null,"timestamp":1656945134,"sign":"DCB154D0C14F1B8803B1224A8DCC82D1"}`)
	b.Run("fast", func(b *testing.B) {
		for range b.N {
			_, _ = DecodeObject(doc, 8)
		}
	})
	b.Run("slow", func(b *testing.B) {
		for range b.N {
			_, _ = slowDecode(doc, 8)
		}
	})
}
