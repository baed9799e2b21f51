package jpglo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/internal/strictjson"
	"github.com/payhook/payhook/pkg/providers/jpglo"
)

type replyTransport struct {
	status int
	body   []byte
}

func (rt replyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: rt.status, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(rt.body)), Request: r}, nil
}

// FuzzJpgloReply feeds an arbitrary HTTP status and body, as jpglo's answer,
// to every call that reads one (Query, SubmitAppeal and Replenish, all
// through (*Client).do) over an in-memory transport. None may panic; every
// error is a *providers.APIError of jpglo and that operation (5001 may
// also wrap providers.ErrNotFound); a nil error needs a 2xx answer that is
// one strict JSON object with status 0 (or, for Query only, jpglo's 5001
// under any HTTP status: not found), and a result that holds together. The corpus in
// testdata/fuzz/FuzzJpgloReply holds the seed's answers.
func FuzzJpgloReply(f *testing.F) {
	f.Add(200, []byte(`{"status":0,"msg":"OK","data":{"mch_id":1,"mch_order_no":"111123456789","order_no":"2202171238501159","status":"success","pay_type":"pix","sub_pay_type":null,"apply_amount":10000000,"real_amount":10000000,"remark":null,"user_ext":"{}"}}`))
	f.Add(200, []byte(`{"status":0,"msg":"OK","data":{"order_no":"2205040906401871","mch_order_no":"111123456789","status":"new","apply_amount":10000000,"inquiry_order_no":"2205041133420031","inquiry_amount":1000000}}`))
	f.Add(200, []byte(`{"status": 5001, "msg": "订单不存在"}`))
	f.Add(502, []byte(`<html>502 Bad Gateway</html>`))
	f.Add(200, []byte(`{"status":0,"status":5001}`))
	f.Add(200, []byte{})
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 999 {
			status = 200
		}
		c := jpglo.NewClient(&http.Client{Transport: replyTransport{status, body}})
		ctx := context.Background()

		res, err := c.Query(ctx, acct, providers.Order{Kind: events.KindPayin, MerchantOrderID: "111123456789"}, false)
		if checkReplyError(t, "query", status, body, err, err == nil && !res.Found) {
			switch {
			case !res.Found:
				if res.Status != "" || res.Event != nil {
					t.Fatalf("not found, yet %+v", res)
				}
			case !res.Status.Valid():
				t.Fatalf("found with status %q", res.Status)
			case res.Status.Terminal():
				ev := res.Event
				if ev == nil || ev.Validate() != nil || ev.Status != res.Status || ev.Origin != events.OriginPoll ||
					ev.MerchantOrderID != "111123456789" || ev.Account != acct.ID || ev.Amount.Currency != acct.Currency {
					t.Fatalf("terminal answer with event %+v", ev)
				}
				if _, err := events.ParseMoney(ev.Amount.Value, ev.Amount.Currency); err != nil {
					t.Fatalf("amount %q", ev.Amount.Value)
				}
			case res.Event != nil:
				t.Fatalf("pending answer with an event %+v", res.Event)
			}
		}

		ar, err := c.SubmitAppeal(ctx, acct, seedAppealRequest())
		if checkReplyError(t, "appeal", status, body, err, false) {
			if ar.InquiryOrderNo == "" || !validMoney(ar.InquiryAmount, acct.Currency) {
				t.Fatalf("appeal accepted as %+v", ar)
			}
		}

		rr, err := c.Replenish(ctx, acct, jpglo.ReplenishRequest{MerchantOrderID: "111123456789", ApplyAmount: 10000000, UserID: "123456"})
		if checkReplyError(t, "replenish", status, body, err, false) {
			if rr.OrderNo == "" || !validMoney(rr.ApplyAmount, acct.Currency) {
				t.Fatalf("replenish accepted as %+v", rr)
			}
		}
	})
}

// checkReplyError fails t unless err is nil or a typed jpglo error for op,
// and reports whether the call succeeded. Success needs an answer that is
// a strict JSON object and either 2xx with status 0, or, when the call
// answered not found, status 5001 (under any HTTP status: jpglo's own
// code says so, and do keeps it).
func checkReplyError(t *testing.T, op string, status int, body []byte, err error, notFound bool) bool {
	t.Helper()
	if err != nil {
		var ae *providers.APIError
		if !errors.As(err, &ae) || ae.Provider != jpglo.Name || ae.Op != op || ae.Code == "" {
			t.Fatalf("%s: untyped error %#v", op, err)
		}
		if errors.Is(err, providers.ErrNotFound) && ae.Code != "5001" {
			t.Fatalf("%s: not found with code %s", op, ae.Code)
		}
		return false
	}
	env, decErr := strictjson.DecodeObject(body, 64)
	code, _ := env["status"].(json.Number)
	ok := status >= 200 && status <= 299 && code == "0"
	if notFound {
		ok = code == "5001"
	}
	if decErr != nil || !ok {
		t.Fatalf("%s: accepted http %d, status %q, decode error %v", op, status, code, decErr)
	}
	return true
}

func validMoney(m events.Money, currency string) bool {
	_, err := events.ParseMoney(m.Value, currency)
	return err == nil && m.Currency == currency
}
