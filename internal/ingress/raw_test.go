package ingress

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func TestRawRecordEncoding(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC)
	for name, r := range map[string]RawRecord{
		"full": {ReceivedAt: at, Provider: "jpglo", Account: "glo-in", Kind: "payin", Method: "POST", Path: "/v1/callbacks/jpglo/glo-in/payin",
			RemoteAddr: "203.0.113.7:5000", Headers: map[string][]string{"Content-Type": {"application/json"}, "X-Odd": {"a\"b", "\x00é"}, "Empty": {}},
			Body: `{"a":"b\u2028"}` + "\n", Verdict: "rejected", Reason: "bad_signature", Status: 401, DurationMS: 1.234},
		"binary body, no reason": {ReceivedAt: at, Provider: "unknown", Account: "unknown", Kind: "unknown", Method: "GET", Path: "/v1/callbacks/x",
			Headers: map[string][]string{}, BodyBase64: []byte{0xff, 0x00, 0xfe}, Verdict: "accepted", Status: 200, EventID: "evt_1", DurationMS: 0},
	} {
		t.Run(name, func(t *testing.T) {
			got := r.appendJSON(nil)
			want, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			var g, w any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatalf("invalid JSON %s: %v", got, err)
			}
			_ = json.Unmarshal(want, &w)
			if !reflect.DeepEqual(g, w) {
				t.Errorf("differs from encoding/json:\n got  %s\n want %s", got, want)
			}
		})
	}
}
