package mrnpay_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/internal/strictjson"
	"github.com/payhook/payhook/pkg/providers/mrnpay"
)

type replyTransport struct {
	status int
	body   []byte
}

func (rt replyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: rt.status, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(rt.body)), Request: r}, nil
}

// FuzzMrnpayQueryReply feeds an arbitrary HTTP status and body, as
// mrnpay's answer, to Query for both kinds over an in-memory transport:
// through (*Client).do, decodeAnswer and, for a terminal answer with
// amounts, pollEvent. No panic; every error is a *providers.APIError of
// mrnpay's query; a nil error needs a 2xx answer that is one strict JSON
// object whose error is "success", and a result that holds together. The
// corpus in testdata/fuzz/FuzzMrnpayQueryReply holds the seed's answers.
func FuzzMrnpayQueryReply(f *testing.F) {
	f.Add(200, []byte(`{"error":"success","result":{"Mrn":"M-1","status":1}}`))
	f.Add(200, []byte(`{"error":"success","result":{"Mrn":"M-1","status":1,"amount":"99.50","originAmount":100.00,"channel":2}}`))
	f.Add(200, []byte(`{"error":"success","result":null}`))
	f.Add(200, []byte(`{"error":"sign_error","errorMessage":"签名错误"}`))
	f.Add(200, []byte(`{"error":"sign_error","error":"success","result":{"Mrn":"M-1","status":1}}`))
	f.Add(500, []byte(`Internal Server Error`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 999 {
			status = 200
		}
		c := mrnpay.NewClient(&http.Client{Transport: replyTransport{status, body}})
		for _, kind := range []events.Kind{events.KindPayin, events.KindPayout} {
			res, err := c.Query(context.Background(), acct, providers.Order{Kind: kind, MerchantOrderID: "M-1"}, true)
			if err != nil {
				var ae *providers.APIError
				if !errors.As(err, &ae) || ae.Provider != mrnpay.Name || ae.Op != "query" || ae.Code == "" || ae.Code == "success" {
					t.Fatalf("%s: untyped error %#v", kind, err)
				}
				continue
			}
			obj, decErr := strictjson.DecodeObject(body, 64)
			if status < 200 || status > 299 || decErr != nil || errorString(obj) != "success" {
				t.Fatalf("%s: accepted http %d, decode error %v, body %q", kind, status, decErr, body)
			}
			if res.Found != res.Status.Valid() {
				t.Fatalf("%s: incoherent result %+v", kind, res)
			}
			ev := res.Event
			if ev == nil {
				continue
			}
			if !res.Status.Terminal() || ev.Validate() != nil || ev.Status != res.Status || ev.Kind != kind ||
				ev.Origin != events.OriginPoll || ev.MerchantOrderID != "M-1" || ev.Amount.Currency != acct.Currency {
				t.Fatalf("%s: bad event %+v", kind, ev)
			}
			if _, err := events.ParseMoney(ev.Amount.Value, acct.Currency); err != nil {
				t.Fatalf("%s: amount %q", kind, ev.Amount.Value)
			}
			if r := ev.RequestedAmount; r != nil && (kind != events.KindPayin || ev.AmountMismatch != (ev.Amount.Cmp(*r) != 0)) {
				t.Fatalf("%s: requested %+v, mismatch %v", kind, r, ev.AmountMismatch)
			}
		}
	})
}

// errorString is the "error" member, matched ignoring case as Query does.
func errorString(obj map[string]any) string {
	for k, v := range obj {
		if strings.EqualFold(k, "error") {
			s, _ := v.(string)
			return s
		}
	}
	return ""
}
