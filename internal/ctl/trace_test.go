package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/reconcile"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/providers/jpglo"
)

const jpgloKey = "9ce23be4-a31b-498f-b951-ad7e771c3d73"

// jpgloCallback is a signed, fresh jpglo pay-in success for order.
func jpgloCallback(t *testing.T, order string) []byte {
	f := map[string]any{
		"order_no": "J" + order, "mch_order_no": order, "status": "success",
		"apply_amount": json.Number("1000000"), "real_amount": json.Number("1000000"),
		"pay_type": "upi", "sub_pay_type": nil, "remark": "",
		"timestamp": json.Number(strconv.FormatInt(time.Now().Unix(), 10)),
	}
	f["sign"] = jpglo.Sign(f, jpgloKey)
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// flaky answers an event's first delivery 500 and later ones 200.
type flaky struct {
	mu   sync.Mutex
	seen map[string]int
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.seen[r.Header.Get("webhook-id")]++
	n := f.seen[r.Header.Get("webhook-id")]
	f.mu.Unlock()
	if n == 1 {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// TestTrace: one order through the whole stack — announced, its callback
// received twice, its event delivered on the second attempt — is traced in
// one command: the raw requests, the event, each attempt and the watch,
// closed by the callback.
func TestTrace(t *testing.T) {
	sub := newReceiverHandler(t, &flaky{seen: map[string]int{}})
	s := newStack(t, fmt.Sprintf(`reconciler: {schedule: [1h]}
accounts:
  - {id: glo-in, provider: jpglo, merchant_id: "1", secret: %q, base_url: "http://127.0.0.1:1", currency: INR}
subscribers:
`, jpgloKey)+subscriberYAML(t, "ledger", sub, 5))
	s.startReconciler()
	var ingLog, disLog testenv.LogBuffer
	s.startDispatcher(&disLog)
	ingressURL := startIngress(t, s.cfg, &ingLog)

	if _, err := s.js.Publish(context.Background(), "payhook.watch.jpglo", []byte(`{"account":"glo-in","kind":"payin","merchant_order_id":"T-1"}`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool {
		_, err := s.ctl("watches", "get", "jpglo", "glo-in", "T-1")
		return err == nil
	}, "watch not opened")
	body := jpgloCallback(t, "T-1")
	for range 2 { // the provider's retry is a duplicate
		resp, err := http.Post(ingressURL+"/v1/callbacks/jpglo/glo-in/payin", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"status":0`) {
			t.Fatalf("callback: %d %s", resp.StatusCode, b)
		}
	}

	var tr TraceResult
	eventually(t, func() bool {
		s.ctlJSON(&tr, "trace", "jpglo", "glo-in", "T-1")
		return len(tr.Raw) == 2 && len(tr.Events) == 1 && len(tr.Deliveries) == 1 && tr.Deliveries[0].Delivered &&
			tr.Watch != nil && tr.Watch.State == reconcile.StateClosed
	}, "trace incomplete")
	if tr.Raw[0].Verdict != "accepted" || tr.Raw[1].Verdict != "duplicate" || tr.Raw[0].EventID != tr.Events[0].ID {
		t.Errorf("raw: %+v", tr.Raw)
	}
	if e := tr.Events[0]; e.Status != "succeeded" || e.Origin != "callback" || e.Kind != "payin" {
		t.Errorf("event: %+v", e)
	}
	// The decoded callback, as the event keeps it: no signature.
	if e := tr.Events[0]; e.Amount == nil || e.Amount.Value != "10000.00" || e.ProviderFields["mch_order_no"] != "T-1" || e.ProviderFields["sign"] != nil {
		t.Errorf("event body: amount %v, fields %v", e.Amount, e.ProviderFields)
	}
	d := tr.Deliveries[0]
	if d.Subscriber != "ledger" || d.EventID != tr.Events[0].ID || len(d.Attempts) != 2 || d.DeadLettered {
		t.Fatalf("delivery: %+v", d)
	}
	if a := d.Attempts[0]; a.HTTPStatus != 500 || a.Outcome != "retry" || a.Error == "" || a.Attempt != 1 {
		t.Errorf("first attempt: %+v", a)
	}
	if a := d.Attempts[1]; a.HTTPStatus != 204 || a.Outcome != "delivered" || a.Attempt != 2 {
		t.Errorf("second attempt: %+v", a)
	}
	// The log lines about this order carry its ids.
	if l := ingLog.String(); !strings.Contains(l, `"msg":"callback stored","provider":"jpglo","account":"glo-in","kind":"payin","verdict":"accepted","order_id":"T-1","event_id":"`+tr.Events[0].ID) {
		t.Errorf("ingress log:\n%s", l)
	}
	if l := disLog.String(); !strings.Contains(l, `"msg":"delivery failed; will retry","subscriber":"ledger","event_id":"`+tr.Events[0].ID+`","provider":"jpglo","account":"glo-in","kind":"payin","order_id":"T-1"`) {
		t.Errorf("dispatcher log:\n%s", l)
	}
	if tr.Watch.Outcome != "callback" {
		t.Errorf("watch: %+v", tr.Watch)
	}
	out, err := s.ctl("trace", "jpglo", "glo-in", "T-1")
	if err != nil || !strings.Contains(out, "duplicate") || !strings.Contains(out, "delivered") || !strings.Contains(out, "closed") {
		t.Errorf("table: %v\n%s", err, out)
	}

	// An order payhook never saw: every list empty, no watch.
	var none TraceResult
	s.ctlJSON(&none, "trace", "jpglo", "glo-in", "NEVER")
	if len(none.Raw)+len(none.Events)+len(none.Deliveries) != 0 || none.Watch != nil {
		t.Errorf("unknown order: %+v", none)
	}
	if _, err := s.ctl("trace", "jpglo", "nope", "T-1"); err == nil {
		t.Error("trace of an unknown account succeeded")
	}
}
