package dispatch

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/config"
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
