package ctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/providers/jpglo"
)

// TestTraceRejected: a refusal of a request that verified (too_old) is
// listed under its order with its verdict and reason; a refusal of bytes
// that did not verify (bad_signature) is not, whatever order they claim.
func TestTraceRejected(t *testing.T) {
	s := newStack(t, fmt.Sprintf(`reconciler: {schedule: [1h]}
accounts:
  - {id: glo-in, provider: jpglo, merchant_id: "1", secret: %q, base_url: "http://127.0.0.1:1", currency: INR, max_age: 1h}
`, jpgloKey))
	s.startReconciler()
	ingressURL := startIngress(t, s.cfg, io.Discard)

	old := map[string]any{
		"order_no": "JR-1", "mch_order_no": "R-1", "status": "success",
		"apply_amount": json.Number("1000000"), "real_amount": json.Number("1000000"),
		"pay_type": "upi", "sub_pay_type": nil, "remark": "",
		"timestamp": json.Number(strconv.FormatInt(time.Now().Add(-2*time.Hour).Unix(), 10)),
	}
	old["sign"] = jpglo.Sign(old, jpgloKey)
	tooOld, _ := json.Marshal(old)
	forged := bytes.Replace(jpgloCallback(t, "R-1"), []byte(`"status":"success"`), []byte(`"status":"failed"`), 1)
	for _, c := range []struct {
		body []byte
		want int
	}{{forged, http.StatusUnauthorized}, {tooOld, http.StatusBadRequest}} {
		resp, err := http.Post(ingressURL+"/v1/callbacks/jpglo/glo-in/payin", "application/json", bytes.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Fatalf("callback: %d, want %d", resp.StatusCode, c.want)
		}
	}
	var tr TraceResult
	eventually(t, func() bool {
		s.ctlJSON(&tr, "trace", "jpglo", "glo-in", "R-1")
		return len(tr.Raw) >= 1
	}, "refusal not indexed")
	// The forged request was recorded before the too_old one: had it been
	// indexed, it would be here by now.
	if len(tr.Raw) != 1 || tr.Raw[0].Verdict != "rejected" || tr.Raw[0].Reason != "too_old" || tr.Raw[0].Status != 400 ||
		tr.Raw[0].Stream != "PAYHOOK_RAW_REJECTED" || tr.Raw[0].EventID == "" {
		t.Fatalf("raw: %+v", tr.Raw)
	}
	if len(tr.Events) != 0 {
		t.Errorf("events: %+v", tr.Events)
	}
	out, err := s.ctl("trace", "jpglo", "glo-in", "R-1")
	if err != nil || !bytes.Contains([]byte(out), []byte("too_old")) {
		t.Errorf("table: %v\n%s", err, out)
	}
}
