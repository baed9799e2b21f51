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
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/trace"
	"github.com/payhook/payhook/pkg/providers/jpglo"
)

// postCallback posts body to ingress's callback URL of account and checks the status answered.
func postCallback(t *testing.T, ingressURL, account string, body []byte, want int) {
	t.Helper()
	resp, err := http.Post(ingressURL+"/v1/callbacks/jpglo/"+account+"/payin", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("callback to %s: %d, want %d", account, resp.StatusCode, want)
	}
}

// forgedCallback is a jpglo pay-in for order whose sign does not match:
// what a provider sends with a key the account does not have.
func forgedCallback(t *testing.T, order string) []byte {
	return bytes.Replace(jpgloCallback(t, order), []byte(`"status":"success"`), []byte(`"status":"failed"`), 1)
}

// TestTraceRejected: a refusal of a request that verified (too_old) is
// listed under its order as verified; a refusal of bytes that did not
// verify (bad_signature) is listed under the order they claim, marked
// "verified": false in --json and "claimed, unverified" in the table; a
// forgery sent to an account that is not configured is recorded but never
// indexed.
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
	// First the unknown account's: the indexer reads the stream in order, so
	// it has been seen once the later ones are indexed.
	postCallback(t, ingressURL, "ghost", forgedCallback(t, "R-1"), http.StatusNotFound)
	postCallback(t, ingressURL, "glo-in", forgedCallback(t, "R-1"), http.StatusUnauthorized)
	postCallback(t, ingressURL, "glo-in", tooOld, http.StatusBadRequest)

	var tr TraceResult
	eventually(t, func() bool {
		s.ctlJSON(&tr, "trace", "jpglo", "glo-in", "R-1")
		return len(tr.Raw) >= 2
	}, "refusals not indexed")
	if len(tr.Raw) != 2 {
		t.Fatalf("raw: %+v", tr.Raw)
	}
	forged, verified := tr.Raw[0], tr.Raw[1]
	if forged.Verified || forged.Verdict != "rejected" || forged.Reason != "bad_signature" || forged.Status != 401 ||
		forged.Stream != "PAYHOOK_RAW_REJECTED" || forged.EventID != "" {
		t.Errorf("forged: %+v", forged)
	}
	if !verified.Verified || verified.Verdict != "rejected" || verified.Reason != "too_old" || verified.Status != 400 ||
		verified.Stream != "PAYHOOK_RAW_REJECTED" || verified.EventID == "" {
		t.Errorf("too_old: %+v", verified)
	}
	out, _ := s.ctl("--json", "trace", "jpglo", "glo-in", "R-1")
	if !strings.Contains(out, `"verified": false`) && !strings.Contains(out, `"verified":false`) {
		t.Errorf("--json does not say verified false:\n%s", out)
	}
	if len(tr.Events) != 0 {
		t.Errorf("events: %+v", tr.Events)
	}
	out, err := s.ctl("trace", "jpglo", "glo-in", "R-1")
	if err != nil || !strings.Contains(out, "too_old") || !strings.Contains(out, "bad_signature") || !strings.Contains(out, "claimed, unverified") {
		t.Errorf("table: %v\n%s", err, out)
	}
	for _, account := range []string{"ghost", "unknown"} {
		if entries, err := trace.Lookup(context.Background(), s.js, trace.OrderIndexKey("jpglo", account, "R-1")); err != nil || len(entries) != 0 {
			t.Errorf("account %s: indexed %+v, %v", account, entries, err)
		}
	}
	if n := subjectCount(t, s.js, natsbus.StreamRawRejected, "payhook.raw.jpglo.rejected"); n != 3 {
		t.Errorf("%d rejected records, want 3: every refusal is recorded", n)
	}
}

// TestTraceClaimedFloodBounded: forged callbacks claiming one order, from
// one address past nothing but the claim bucket, are all recorded on
// PAYHOOK_RAW_REJECTED, and only the bucket's 20 are in that order's trace.
func TestTraceClaimedFloodBounded(t *testing.T) {
	const copies, bucket = 50, 20 // bucket: ingress's claimBurst
	s := newStack(t, fmt.Sprintf(`reconciler: {schedule: [1h]}
ingress: {rejections_per_second: 1000, rejections_burst: 1000}
accounts:
  - {id: glo-in, provider: jpglo, merchant_id: "1", secret: %q, base_url: "http://127.0.0.1:1", currency: INR}
`, jpgloKey))
	s.startReconciler()
	ingressURL := startIngress(t, s.cfg, io.Discard)
	forged := forgedCallback(t, "R-FLOOD")
	for i := 0; i < copies; i++ {
		postCallback(t, ingressURL, "glo-in", forged, http.StatusUnauthorized)
	}
	// A later claim of another order: once it is indexed, so is the flood.
	postCallback(t, ingressURL, "glo-in", forgedCallback(t, "R-AFTER"), http.StatusUnauthorized)
	var after TraceResult
	eventually(t, func() bool {
		s.ctlJSON(&after, "trace", "jpglo", "glo-in", "R-AFTER")
		return len(after.Raw) == 1
	}, "the later claim not indexed")
	var tr TraceResult
	s.ctlJSON(&tr, "trace", "jpglo", "glo-in", "R-FLOOD")
	// A minute's refill may add one if the test is slow.
	if len(tr.Raw) < bucket || len(tr.Raw) > bucket+1 {
		t.Errorf("%d entries for the flooded order, want %d", len(tr.Raw), bucket)
	}
	for _, r := range tr.Raw {
		if r.Verified || r.Reason != "bad_signature" {
			t.Errorf("entry %+v", r)
		}
	}
	if n := subjectCount(t, s.js, natsbus.StreamRawRejected, "payhook.raw.jpglo.rejected"); n != copies+1 {
		t.Errorf("%d rejected records, want %d: every forgery is recorded", n, copies+1)
	}
}

// subjectCount is the number of messages of stream on subject.
func subjectCount(t *testing.T, js jetstream.JetStream, stream, subject string) int {
	t.Helper()
	st, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return int(info.State.Subjects[subject])
}
