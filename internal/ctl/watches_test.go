package ctl

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/reconcile"
	"github.com/payhook/payhook/pkg/events"
)

// queryServer is a jpglo query endpoint that fails an order's first query
// (HTTP 500) and then does not know the order.
func queryServer(t *testing.T) *httptest.Server {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path]++
		n := seen[r.URL.Path]
		mu.Unlock()
		if n == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `{"status":-1,"msg":"internal error"}`)
			return
		}
		fmt.Fprint(w, `{"status":5001,"msg":"order does not exist","timestamp":"2022-04-08 16:33:16"}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

type watchesDoc struct {
	Watches []reconcile.WatchRecord `json:"watches"`
	Counts  map[string]int          `json:"counts"`
}

// TestWatches: watches are listed from one scan with their state, polled
// now, cancelled, and kept after they end with their last error.
func TestWatches(t *testing.T) {
	qs := queryServer(t)
	s := newStack(t, fmt.Sprintf(`reconciler: {schedule: [1h]}
accounts:
  - {id: glo-in, provider: jpglo, merchant_id: "1", secret: "k", base_url: %q, currency: INR}
  - {id: mp-in, provider: mpurse, merchant_id: "7", aes_key: "0123456789abcdef", currency: INR}
`, qs.URL))
	s.startReconciler()
	announce := func(provider, account, order string) {
		b := fmt.Sprintf(`{"account":%q,"kind":"payin","merchant_order_id":%q}`, account, order)
		if _, err := s.js.Publish(context.Background(), "payhook.watch."+provider, []byte(b)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		announce("jpglo", "glo-in", fmt.Sprintf("ord-%d", i))
	}
	announce("mpurse", "mp-in", "mp-1")
	var doc watchesDoc
	eventually(t, func() bool {
		s.ctlJSON(&doc, "watches", "ls")
		return len(doc.Watches) == 6
	}, "watches ls")
	s.ctlJSON(&doc, "watches", "ls", "--provider", "mpurse")
	if len(doc.Watches) != 1 || doc.Watches[0].MerchantOrderID != "mp-1" || doc.Watches[0].State != reconcile.StateOpen {
		t.Fatalf("ls --provider mpurse: %+v", doc.Watches)
	}

	// get by order, by id; poll now: the first query fails (last error).
	var rec reconcile.WatchRecord
	s.ctlJSON(&rec, "watches", "get", "jpglo", "glo-in", "ord-1")
	if rec.State != reconcile.StateOpen || rec.Polls != 0 || rec.NextPoll.Before(time.Now().Add(50*time.Minute)) {
		t.Fatalf("get: %+v", rec)
	}
	id := rec.ID
	if _, err := s.ctl("watches", "poll-now", id); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool {
		s.ctlJSON(&rec, "watches", "get", id)
		return rec.Polls == 1 && strings.Contains(rec.LastError, "500")
	}, "poll-now did not poll")
	// The second poll finds nothing and the one-step schedule is over: the
	// watch expires and stays listed, with its last error.
	if _, err := s.ctl("watches", "poll-now", "jpglo", "glo-in", "ord-1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool {
		s.ctlJSON(&rec, "watches", "get", id)
		return rec.State == reconcile.StateExpired
	}, "watch did not expire")
	if rec.Outcome != reconcile.ExpiredSchedule || !strings.Contains(rec.LastError, "500") || rec.Polls != 2 || rec.ClosedAt.IsZero() {
		t.Fatalf("expired record: %+v", rec)
	}
	if _, err := s.ctl("watches", "poll-now", id); err == nil {
		t.Fatal("poll-now of an expired watch succeeded")
	}

	// cancel: dry run changes nothing; then the watch is gone from the queue.
	if _, err := s.ctl("watches", "cancel", "jpglo", "glo-in", "ord-2", "--dry-run"); err != nil {
		t.Fatal(err)
	}
	s.ctlJSON(&rec, "watches", "get", "jpglo", "glo-in", "ord-2")
	if rec.State != reconcile.StateOpen {
		t.Fatalf("dry run cancelled: %+v", rec)
	}
	if _, err := s.ctl("watches", "cancel", "jpglo", "glo-in", "ord-2", "--reason", "order voided"); err != nil {
		t.Fatal(err)
	}
	s.ctlJSON(&rec, "watches", "get", "jpglo", "glo-in", "ord-2")
	if rec.State != reconcile.StateCancelled || rec.Outcome != "order voided" {
		t.Fatalf("cancelled: %+v", rec)
	}
	q, err := s.js.Stream(context.Background(), reconcile.StreamReconcile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.GetLastMsgForSubject(context.Background(), reconcile.WatchSubject("jpglo", "glo-in", events.KindPayin, "ord-2")); err == nil {
		t.Fatal("cancelled watch still in the queue")
	}

	s.ctlJSON(&doc, "watches", "ls", "--state", "open")
	if len(doc.Watches) != 4 {
		t.Fatalf("open watches: %d, want 4", len(doc.Watches))
	}
	s.ctlJSON(&doc, "watches", "ls")
	if doc.Counts["open"] != 4 || doc.Counts["expired"] != 1 || doc.Counts["cancelled"] != 1 {
		t.Fatalf("counts %v", doc.Counts)
	}
	table, err := s.ctl("watches", "ls")
	if err != nil || !strings.Contains(table, "6 watches, 4 open, 1 expired, 1 cancelled") {
		t.Fatalf("table: %v\n%s", err, table)
	}
	if _, err := s.ctl("watches", "ls", "--state", "bogus"); err == nil {
		t.Fatal("--state bogus accepted")
	}
	if _, err := s.ctl("watches", "get", "wch_00000000000000000000000000000000"); err == nil {
		t.Fatal("unknown watch id found")
	}
}

func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
