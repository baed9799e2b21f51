package stripe_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/internal/querytest"
	"github.com/payhook/payhook/pkg/providers/stripe"
)

// fakeStripe is GET /v1/payment_intents/{id} as Stripe documents it: it
// checks the bearer key and answers status with body.
type fakeStripe struct {
	t      *testing.T
	status int
	body   string
	delay  time.Duration
	paths  []string
}

func (f *fakeStripe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.paths = append(f.paths, r.URL.Path)
	if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/v1/payment_intents/") {
		f.t.Errorf("fake stripe: unexpected %s %s", r.Method, r.URL.Path)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer sk_test_payhook" {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":{"message":"Invalid API Key provided","type":"invalid_request_error"}}`)
		return
	}
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(f.status)
	_, _ = io.WriteString(w, f.body)
}

func serve(t *testing.T, f *fakeStripe) providers.Account {
	t.Helper()
	f.t = t
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	a := acct
	a.BaseURL = srv.URL
	return a
}

const piID = "pi_3QsucceededUSD0001"

func pi(status, extra string) string {
	return `{"id":"` + piID + `","object":"payment_intent","amount":1234,"amount_received":` +
		map[bool]string{true: "1234", false: "0"}[status == "succeeded"] +
		`,"currency":"usd","metadata":{"order_id":"ORD-1001"},"status":"` + status + `"` + extra + `}`
}

var order = providers.Order{Kind: events.KindPayin, MerchantOrderID: "ORD-1001", ProviderOrderID: piID}

func TestQueryStatuses(t *testing.T) {
	for _, c := range []struct {
		name, body string
		want       events.Status
		event      bool
	}{
		{"succeeded", pi("succeeded", `,"latest_charge":"ch_1"`), events.StatusSucceeded, true},
		{"processing", pi("processing", ""), events.StatusPending, false},
		{"fresh, awaiting a payment method", pi("requires_payment_method", `,"last_payment_error":null`), events.StatusPending, false},
		{"failed attempt", pi("requires_payment_method", `,"last_payment_error":{"code":"card_declined"}`), events.StatusFailed, true},
		{"requires_action (3-D Secure)", pi("requires_action", ""), events.StatusPending, false},
		{"canceled", pi("canceled", ""), events.StatusFailed, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeStripe{status: 200, body: c.body}
			res, err := stripe.NewClient(nil).Query(context.Background(), serve(t, f), order, true)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Found || res.Status != c.want || (res.Event != nil) != c.event {
				t.Fatalf("got %+v, want found %s (event %v)", res, c.want, c.event)
			}
			if f.paths[0] != "/v1/payment_intents/"+piID {
				t.Errorf("path %s", f.paths[0])
			}
			if res.Event == nil {
				return
			}
			ev := res.Event
			if ev.Origin != events.OriginPoll || ev.MerchantOrderID != "ORD-1001" || ev.ProviderOrderID != piID || ev.Status != c.want || ev.Provider != "stripe" {
				t.Errorf("event %+v", ev)
			}
			// The poll's event has the webhook's id: one fact, one event.
			want := events.Event{Provider: "stripe", Account: "stripe-us", Kind: events.KindPayin, Status: c.want, MerchantOrderID: "ORD-1001"}
			if ev.ID() != want.ID() {
				t.Errorf("id %s, want the webhook's %s", ev.ID(), want.ID())
			}
			if c.want == events.StatusSucceeded && ev.Amount != events.MustMoney("12.34", "USD") {
				t.Errorf("amount %v", ev.Amount)
			}
		})
	}
}

func TestQueryErrors(t *testing.T) {
	t.Run("not found", func(t *testing.T) {
		f := &fakeStripe{status: 404, body: `{"error":{"code":"resource_missing","message":"No such payment_intent: 'pi_x'","type":"invalid_request_error"}}`}
		_, err := stripe.NewClient(nil).Query(context.Background(), serve(t, f), order, false)
		var ae *providers.APIError
		if !errors.Is(err, providers.ErrNotFound) || !errors.As(err, &ae) || ae.Code != "resource_missing" {
			t.Fatalf("err = %v, want ErrNotFound with code resource_missing", err)
		}
	})
	t.Run("server error is temporary", func(t *testing.T) {
		f := &fakeStripe{status: 500, body: `{"error":{"type":"api_error","message":"Something went wrong"}}`}
		_, err := stripe.NewClient(nil).Query(context.Background(), serve(t, f), order, false)
		var ae *providers.APIError
		if !errors.As(err, &ae) || !ae.Temporary || ae.Code != "api_error" || ae.Provider != "stripe" {
			t.Fatalf("err = %v, want a temporary APIError api_error", err)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		a := serve(t, &fakeStripe{status: 200, body: pi("succeeded", "")}).With("api_key", "sk_test_other")
		_, err := stripe.NewClient(nil).Query(context.Background(), a, order, false)
		var ae *providers.APIError
		if !errors.As(err, &ae) || ae.HTTP != 401 || ae.Temporary || strings.Contains(err.Error(), "sk_test") {
			t.Fatalf("err = %v, want a permanent 401 APIError without the key", err)
		}
	})
	for _, c := range []struct{ name, body string }{
		{"not JSON", `<html>`},
		{"another object", `{"id":"` + piID + `","object":"charge","status":"succeeded"}`},
		{"another PaymentIntent", strings.Replace(pi("succeeded", ""), piID, "pi_other", 1)},
		{"unknown status", pi("exploded", "")},
		{"duplicate key", `{"id":"` + piID + `","id":"pi_x","object":"payment_intent","status":"succeeded"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := stripe.NewClient(nil).Query(context.Background(), serve(t, &fakeStripe{status: 200, body: c.body}), order, false)
			if !errors.Is(err, stripe.ErrReply) {
				t.Fatalf("err = %v, want ErrReply", err)
			}
		})
	}
	t.Run("payout not queried", func(t *testing.T) {
		f := &fakeStripe{status: 200, body: pi("succeeded", "")}
		_, err := stripe.NewClient(nil).Query(context.Background(), serve(t, f), providers.Order{Kind: events.KindPayout, MerchantOrderID: "WD-5", ProviderOrderID: "po_1"}, false)
		if !errors.Is(err, providers.ErrUnsupported) || len(f.paths) != 0 {
			t.Fatalf("err = %v (%d calls), want ErrUnsupported and no call", err, len(f.paths))
		}
	})
	t.Run("watch without the pi_ id", func(t *testing.T) {
		f := &fakeStripe{status: 200, body: pi("succeeded", "")}
		_, err := stripe.NewClient(nil).Query(context.Background(), serve(t, f), providers.Order{Kind: events.KindPayin, MerchantOrderID: "ORD-1001"}, false)
		if err == nil || len(f.paths) != 0 {
			t.Fatalf("err = %v (%d calls), want an error and no call", err, len(f.paths))
		}
	})
}

func TestQueryContext(t *testing.T) {
	slow := &fakeStripe{status: 200, body: pi("succeeded", ""), delay: 5 * time.Second}
	a := serve(t, slow)
	querytest.Cancelled(t, stripe.NewClient(nil), a, order, false)
	querytest.Deadline(t, stripe.NewClient(nil), a, order, false)
	querytest.TransportTimeout(t, stripe.NewClient(&http.Client{Timeout: 50 * time.Millisecond}), a, order)
}
