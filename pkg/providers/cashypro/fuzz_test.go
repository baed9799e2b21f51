package cashypro_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/cashypro"
	"github.com/payhook/payhook/pkg/providers/internal/parsetest"
)

// FuzzCashyproParse signs each input with the test's own signer when it
// can, so the fuzzer reaches decoding and not only the signature check.
// Every outcome is a reasoned *providers.RejectError or a valid event, and
// whatever verifies agrees with the package's Sign.
func FuzzCashyproParse(f *testing.F) {
	f.Add([]byte(seedBody))
	f.Fuzz(func(t *testing.T, body []byte) {
		sign := "00000000000000000000000000000000"
		if s, ok := testSigningString(string(body), secret, false); ok {
			sign = hexMD5(s, true)
		}
		r := providers.Request{Kind: events.KindPayin, Header: hdr("MerchantId", "1002001", "Sign", sign), Body: body, ReceivedAt: receivedAt}
		ev, err := cashypro.New().Parse(acct, r)
		if !parsetest.Outcome(t, "", ev, err) {
			return
		}
		if got, err := cashypro.Sign(body, secret, ""); err != nil || got != sign {
			t.Fatalf("verified, but Sign = %s, %v; header %s", got, err, sign)
		}
	})
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzCashyproQueryReply feeds arbitrary reply bodies to Query through an
// in-memory transport: no panic, and a nil error only with a coherent result.
func FuzzCashyproQueryReply(f *testing.F) {
	f.Add([]byte(replyPaying))
	f.Fuzz(func(t *testing.T, reply []byte) {
		hc := &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(reply)), Request: r}, nil
		})}
		a := acct
		a.BaseURL = "http://cashypro.invalid"
		res, err := cashypro.NewClient(hc).Query(context.Background(), a, providers.Order{Kind: events.KindPayin, MerchantOrderID: "1386556575370063873"}, false)
		if err != nil {
			return
		}
		if res.Found != res.Status.Valid() {
			t.Fatalf("incoherent result %+v", res)
		}
		if res.Event != nil {
			if err := res.Event.Validate(); err != nil || res.Event.Status != res.Status || res.Event.Origin != events.OriginPoll {
				t.Fatalf("bad event %+v: %v", res.Event, err)
			}
		}
	})
}
