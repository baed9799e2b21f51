package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/events"
)

// postRetry calls POST /v1/subscribers/{sub}/retry on d's admin API.
func postRetry(t *testing.T, d *Dispatcher, sub string, req RetryRequest) (int, RetryResult) {
	t.Helper()
	b, _ := json.Marshal(req)
	r := httptest.NewRequest(http.MethodPost, "/v1/subscribers/"+sub+"/retry", bytes.NewReader(b))
	r.Header.Set("Authorization", "Bearer "+adminToken)
	rec := httptest.NewRecorder()
	d.Handler().ServeHTTP(rec, r)
	var res RetryResult
	if rec.Code == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
			t.Fatalf("retry answer %q: %v", rec.Body.String(), err)
		}
	}
	return rec.Code, res
}

// TestRetryNowReachesTheReplicaHoldingTheEvent: two events fail once and
// wait an hour in backoff on replica 1. A second replica, standing by,
// gets the admin request: a dry run names what waits and changes nothing;
// then retrying one event by id makes replica 1 attempt it now, not the
// other; --all brings the other too. Unknown subscribers and a request
// naming nothing are refused.
func TestRetryNowReachesTheReplicaHoldingTheEvent(t *testing.T) {
	rc := newReceiver(t, func(_ *http.Request, _ string, n int) int {
		if n == 0 {
			return 500
		}
		return 200
	})
	s := sub(t, "ledger", rc.srv.URL)
	s.BackoffInitial, s.BackoffMax = config.Duration(time.Hour), config.Duration(time.Hour)
	h := newHarness(t, s)
	r1 := h.start(t)
	ids := h.publish(t,
		event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "retry-1"),
		event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "retry-2"))
	testenv.Eventually(t, 10*time.Second, func() bool { return rc.count() == 2 }, "first attempts not made")
	r2 := h.startOn(t, h.connect(t))

	var (
		code int
		res  RetryResult
	)
	// Replica 2 listens once its Run has begun.
	testenv.Eventually(t, 10*time.Second, func() bool {
		code, res = postRetry(t, r2.d, "ledger", RetryRequest{All: true, DryRun: true})
		return res.Replicas == 2
	}, "dry run not answered by both replicas")
	if !res.DryRun || !slices.Equal(res.Retried, sortedCopy(ids)) {
		t.Fatalf("dry run: %+v, want both events of %v", res, ids)
	}
	code, res = postRetry(t, r2.d, "ledger", RetryRequest{EventIDs: []string{ids[0]}})
	if code != http.StatusOK || !slices.Equal(res.Retried, ids[:1]) {
		t.Fatalf("retry one: %d %+v", code, res)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return slices.Contains(rc.delivered(), ids[0]) }, "retried event not delivered")
	if slices.Contains(rc.delivered(), ids[1]) {
		t.Fatalf("event not asked for was attempted: %v", rc.delivered())
	}
	code, res = postRetry(t, r2.d, "ledger", RetryRequest{All: true})
	if code != http.StatusOK || !slices.Equal(res.Retried, ids[1:]) {
		t.Fatalf("retry all: %d %+v, want only the one still waiting", code, res)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return len(rc.delivered()) == 2 }, "second event not delivered")
	if got := counter(r1, "payhook_dispatch_deliveries_total", "subscriber", "ledger", "outcome", OutcomeDelivered); got != 2 {
		t.Fatalf("replica 1 delivered %v, want both", got)
	}

	if code, _ := postRetry(t, r2.d, "nobody", RetryRequest{All: true}); code != http.StatusNotFound {
		t.Fatalf("unknown subscriber: %d, want 404", code)
	}
	if code, _ := postRetry(t, r2.d, "ledger", RetryRequest{}); code != http.StatusBadRequest {
		t.Fatalf("neither ids nor all: %d, want 400", code)
	}
}

func sortedCopy(l []string) []string {
	c := slices.Clone(l)
	slices.Sort(c)
	return c
}

// TestRetryNowUnansweredIs503: a dispatcher whose NATS user may not use
// payhook.dispatch.> cannot reach even itself with a retry-now request
// (NATS reports the violation only asynchronously). The admin API answers
// 503 saying so, not 200 with no replicas and nothing retried.
func TestRetryNowUnansweredIs503(t *testing.T) {
	noDispatch := &server.SubjectPermission{Allow: []string{">"}, Deny: []string{"payhook.dispatch.>"}}
	n := testenv.StartNATSWith(t, server.Options{Users: []*server.User{{
		Username: "dispatcher", Password: "pw",
		Permissions: &server.Permissions{Publish: noDispatch, Subscribe: noDispatch},
	}}})
	// The server refuses Run's subscription to retry requests: wait for
	// that, so the request below goes unanswered for the permissions, not
	// because Run has not begun.
	var (
		mu      sync.Mutex
		refused bool
	)
	onErr := nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		mu.Lock()
		defer mu.Unlock()
		refused = refused || strings.Contains(err.Error(), "Subscription to \"payhook.dispatch.retry.*\"")
	})
	nc, err := nats.Connect(n.URL, nats.UserInfo("dispatcher", "pw"), onErr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{AdminToken: adminToken, NATS: config.NATS{Replicas: 1},
		Subscribers:  []config.Subscriber{sub(t, "ledger", newReceiver(t, nil).srv.URL)},
		EventSigning: config.EventSigning{PublicKeys: []string{testenv.EventPublicKey}}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := natsbus.EnsureStreams(ctx, js, cfg.NATS); err != nil {
		t.Fatal(err)
	}
	r := startWith(t, cfg, js, WithRetryGather(300*time.Millisecond))
	testenv.Eventually(t, 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return refused
	}, "retry subscription not refused")
	body, _ := json.Marshal(RetryRequest{All: true, DryRun: true})
	req := httptest.NewRequest(http.MethodPost, "/v1/subscribers/ledger/retry", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	rec := httptest.NewRecorder()
	r.d.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "payhook.dispatch.") {
		t.Fatalf("retry without the dispatch subjects: %d %s, want 503 naming payhook.dispatch.>", rec.Code, rec.Body.String())
	}
}
