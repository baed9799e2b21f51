package reconcile

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func TestReferenceSubmissions(t *testing.T) {
	h := newHarness(t, harnessOpts{}) // claims in the harness's real Redis
	rd, store := h.redis, h.refs
	rep := h.start()
	url := rep.url + "/v1/references"
	body := func(acct, order, ref string) string {
		b, _ := json.Marshal(ReferenceRequest{Account: acct, MerchantOrderID: order, Reference: ref})
		return string(b)
	}
	// Steps run in order: each depends on the claims the previous left.
	steps := []struct {
		name, token, body string
		code              int
		want              string
		calls             int // provider calls for the reference after the step
		ref               string
	}{
		{"no token", "", body("ft-in", "F-1", "UTR111"), 401, "bearer", 0, "UTR111"},
		{"not a fantian account", adminToken, body("glo-in", "F-1", "UTR111"), 400, "fantian only", 0, "UTR111"},
		{"unknown account", adminToken, body("nope", "F-1", "UTR111"), 400, "unknown account", 0, "UTR111"},
		{"missing reference", adminToken, body("ft-in", "F-1", " "), 400, "reference is required", 0, ""},
		{"bad reference", adminToken, body("ft-in", "F-1", "UTR 1&1"), 400, "reference must be", 0, ""},
		{"order id too long", adminToken, body("ft-in", strings.Repeat("9", 33), "UTR111"), 400, "merchant_order_id", 0, "UTR111"},
		{"matched", adminToken, body("ft-in", "F-1", " utr111 "), 200, `"status":"matched"`, 1, "UTR111"},
		{"same order again calls the provider again", adminToken, body("ft-in", "F-1", "UTR111"), 200, `"reference":"UTR111"`, 2, "UTR111"},
		{"reuse for another order", adminToken, body("ft-in", "F-2", "UTR111"), 409, `"error":"reference_in_use"`, 2, "UTR111"},
		{"not matched releases", adminToken, body("ft-in", "F-3", "NOMATCH1"), 502, `"error":"not_matched","code":"0101","message":"UTR not matched","released":true`, 1, "NOMATCH1"},
		{"released reference is free for another order", adminToken, body("ft-in", "F-4", "NOMATCH1"), 502, `"released":true`, 2, "NOMATCH1"},
		{"transport error keeps the claim", adminToken, body("ft-in", "F-5", "DOWN1"), 502, `"error":"provider_unreachable"`, 1, "DOWN1"},
		{"kept claim refuses another order", adminToken, body("ft-in", "F-6", "DOWN1"), 409, "reference_in_use", 1, "DOWN1"},
		// A 5xx is no answer, even when its body reads "not matched": the
		// provider may have matched it. The claim is kept.
		{"provider 5xx keeps the claim", adminToken, body("ft-in", "F-8", "FAIL5XX1"), 502, `"error":"provider_error","code":"0101","message":"UTR not matched","released":false`, 1, "FAIL5XX1"},
		{"same order retried after a 5xx reaches the provider again", adminToken, body("ft-in", "F-8", "FAIL5XX1"), 502, `"released":false`, 2, "FAIL5XX1"},
		{"claim kept after a 5xx refuses another order", adminToken, body("ft-in", "F-9", "FAIL5XX1"), 409, "reference_in_use", 2, "FAIL5XX1"},
	}
	for _, s := range steps {
		code, got := post(t, url, s.token, s.body)
		if code != s.code || !strings.Contains(got, s.want) {
			t.Errorf("%s: got %d %s, want %d containing %s", s.name, code, got, s.code, s.want)
		}
		if s.ref != "" {
			if n := h.fantian.count(s.ref); n != s.calls {
				t.Errorf("%s: provider called %d times for %s, want %d", s.name, n, s.ref, s.calls)
			}
		}
	}
	// The claims that survived the transport error and the 5xx are F-5's and F-8's, in Redis.
	for ref, order := range map[string]string{"DOWN1": "F-5", "FAIL5XX1": "F-8"} {
		owner, claimed, err := store.ClaimReference(context.Background(), "ft-in", ref, order)
		if err != nil || !claimed || owner != order {
			t.Errorf("claim of %s: owner %q claimed %v err %v, want %s's", ref, owner, claimed, err, order)
		}
	}
	for result, want := range map[string]float64{UTRMatched: 2, UTRInUse: 3, UTRNotMatched: 2, UTRTransportError: 1, UTRProviderError: 2, UTRInvalid: 5} {
		if got := counter(rep.r.m.utr.WithLabelValues(result)); got != want {
			t.Errorf("utr_submissions_total{%s} = %v, want %v", result, got, want)
		}
	}

	// Redis down: no claim can be made, so nothing is sent.
	before := h.fantian.total()
	rd.Stop()
	code, got := post(t, url, adminToken, body("ft-in", "F-7", "UTR777"))
	if code != 503 || h.fantian.total() != before {
		t.Errorf("store down: got %d %s with %d provider calls, want 503 and none", code, got, h.fantian.total()-before)
	}
}

func TestNormalizeReference(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"digits", "123456789012", "123456789012"},
		{"trimmed and upper-cased", "  ab12cd \t", "AB12CD"},
		{"allowed punctuation", "ab-12_3/4", "AB-12_3/4"},
		{"empty", "   ", ""},
		{"inner space", "12 34", ""},
		{"ampersand", "12&34", ""},
		{"too long", strings.Repeat("1", 65), ""},
		{"unicode", "１２３", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := NormalizeReference(c.in); got != c.want {
				t.Errorf("NormalizeReference(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}
