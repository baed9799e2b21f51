package ingress_test

import (
	"context"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/ingress"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/publisher"
	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/internal/retrigger"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/dedupe/memdedupe"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/mrnpay"
)

// TestRetriggerMarkSetsOrigin: a callback for an order the reconciler asked
// the provider to resend is stored with origin "retrigger", any other with
// "callback"; the mark's lookup runs beside the dedupe check, and a resend
// of a stored event is still answered as a duplicate without a second event.
func TestRetriggerMarkSetsOrigin(t *testing.T) {
	n := testenv.StartNATS(t)
	js, _ := jetstream.New(n.Connect(t))
	ctx := context.Background()
	acct := providers.Account{ID: "mrn-cn", Provider: "mrnpay", Keys: providers.Keys{"merchant_id": "app-1", "secret": "s3cr3t-mrn"}, Currency: "CNY"}
	cfg := &config.Config{Accounts: []providers.Account{acct}}
	cfg.Ingress.BodyLimit = 64 << 10
	cfg.Ingress.PublishTimeout = config.Duration(2 * time.Second)
	if err := natsbus.EnsureStreams(ctx, js, cfg.NATS); err != nil {
		t.Fatal(err)
	}
	marks, err := retrigger.Open(ctx, js, time.Hour, 1, registry.All())
	if err != nil {
		t.Fatal(err)
	}
	if err := marks.Mark(ctx, "mrnpay", "mrn-cn", "payin", "M-MARKED"); err != nil {
		t.Fatal(err)
	}
	srv, err := ingress.New(ingress.Deps{Config: cfg, JS: js, Providers: registry.Inbound(), Retrigger: marks,
		Dedupe: publisher.StoreDeduper{Store: memdedupe.New(memdedupe.Config{})}, Now: func() time.Time { return receivedAt }})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	sctx, cancel := context.WithCancel(ctx)
	go func() { _ = srv.Serve(sctx, ln, time.Second) }()
	t.Cleanup(cancel)
	base := "http://" + ln.Addr().String()

	payin := func(order string) string {
		v := url.Values{"amount": {"100.00"}, "appKey": {"app-1"}, "channel": {"2"}, "mrn": {order}, "originAmount": {"100.00"},
			"sign": {mrnpay.SignPayin("100.00", "app-1", "2", order, "100.00", "s3cr3t-mrn")}}
		return v.Encode()
	}
	const subject = "payhook.events.mrnpay.payin.succeeded"
	for _, tc := range []struct{ order, origin string }{{"M-MARKED", "retrigger"}, {"M-PLAIN", "callback"}} {
		for range 2 { // the second is the provider's resend: a duplicate
			if code, reply := post(t, base+"/v1/callbacks/mrnpay/mrn-cn/payin", "application/x-www-form-urlencoded", payin(tc.order)); code != 200 || reply != "success" {
				t.Fatalf("%s: %d %q", tc.order, code, reply)
			}
		}
		ce, _ := lastEvent(t, js, subject)
		d := ce["data"].(map[string]any)
		if d["merchant_order_id"] != tc.order || d["origin"] != tc.origin {
			t.Errorf("%s: stored order %v with origin %v, want origin %s", tc.order, d["merchant_order_id"], d["origin"], tc.origin)
		}
	}
	s, err := js.Stream(ctx, natsbus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Errorf("%d events stored, want 2 (one per order; resends are duplicates)", info.State.Msgs)
	}
}
