package ctl

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/events"
)

func (s *stack) publishStatus(order string, st events.Status) string {
	s.t.Helper()
	amt, _ := events.ParseMoney("100.00", "INR")
	e := events.Event{Provider: "jpglo", Account: "glo-in", Kind: events.KindPayin, Status: st,
		MerchantOrderID: order, Amount: amt, OccurredAt: time.Now().UTC(), ReceivedAt: time.Now().UTC(), Origin: events.OriginCallback}
	b, err := e.MarshalCloudEvent()
	if err != nil {
		s.t.Fatal(err)
	}
	testenv.PublishEvent(s.t, s.js, e.Subject(), e.ID(), b)
	return e.ID()
}

// TestReplayWindow: replay re-sends the events stored in a window that
// pass the subscriber's filter and the flags, with their webhook-id; a dry
// run counts them by status and sends nothing.
func TestReplayWindow(t *testing.T) {
	rc := newReceiver(t, 200)
	s := newStack(t, "accounts:\n  - {id: glo-in, provider: jpglo, merchant_id: \"1\", secret: \"k\", currency: INR}\nsubscribers:\n"+subscriberYAML(t, "ledger", rc.srv.URL, 5))
	s.startDispatcher(io.Discard)
	before := s.publishStatus("R-0", events.StatusSucceeded)
	testenv.Eventually(t, 10*time.Second, func() bool { return rc.count(before) == 1 }, "not delivered")
	time.Sleep(1100 * time.Millisecond) // a window boundary in whole seconds
	since := time.Now().UTC().Truncate(time.Second)
	ok1 := s.publishStatus("R-1", events.StatusSucceeded)
	ok2 := s.publishStatus("R-2", events.StatusSucceeded)
	failed := s.publishStatus("R-3", events.StatusFailed)
	for _, id := range []string{ok1, ok2, failed} {
		testenv.Eventually(t, 10*time.Second, func() bool { return rc.count(id) == 1 }, "not delivered")
	}

	var res ReplayWindowResult
	s.ctlJSON(&res, "replay", "--subscriber", "ledger", "--since", since.Format(time.RFC3339), "--dry-run")
	if res.Scanned != 3 || res.Matched != 3 || res.Replayed != 0 || res.ByStatus["succeeded"] != 2 || res.ByStatus["failed"] != 1 || !res.DryRun {
		t.Fatalf("dry run: %+v", res)
	}
	time.Sleep(500 * time.Millisecond)
	if rc.count(ok1) != 1 {
		t.Fatal("dry run re-sent")
	}
	s.ctlJSON(&res, "replay", "--subscriber", "ledger", "--since", since.Format(time.RFC3339), "--until", "0s", "--status", "succeeded")
	if res.Replayed != 2 {
		t.Fatalf("replay: %+v", res)
	}
	for _, id := range []string{ok1, ok2} {
		testenv.Eventually(t, 10*time.Second, func() bool { return rc.count(id) == 2 }, "not re-sent with the same webhook-id")
	}
	time.Sleep(500 * time.Millisecond)
	if rc.count(failed) != 1 || rc.count(before) != 1 {
		t.Errorf("re-sent outside the filter or window: failed %d, before %d", rc.count(failed), rc.count(before))
	}
	out, err := s.ctl("replay", "--subscriber", "ledger", "--since", "1h", "--provider", "jpglo", "--dry-run")
	if err != nil || !strings.Contains(out, "would re-send 4 of 4") {
		t.Errorf("table: %v %q", err, out)
	}
	for _, bad := range [][]string{
		{"replay", "--subscriber", "ledger"},
		{"replay", "--subscriber", "nobody", "--since", "1h"},
		{"replay", "--subscriber", "ledger", "--since", "yesterday"},
		{"replay", "--subscriber", "ledger", "--since", "1h", "--status", "paid"},
		{"replay", "--subscriber", "ledger", "--since", "1h", "--provider", "stripe"},
	} {
		if _, err := s.ctl(bad...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
