package ctl

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/dispatch"
	"github.com/payhook/payhook/internal/testenv"
)

// TestRetryNow: an event that failed once waits an hour in backoff;
// payhookctl retry --dry-run lists it and attempts nothing, retry --event
// makes the dispatcher attempt it now, and it is delivered.
func TestRetryNow(t *testing.T) {
	rc := newReceiver(t, 500)
	s := newStack(t, "subscribers:\n"+fmt.Sprintf("  - {id: ledger, url: %q, secret: %q, max_attempts: 5, timeout: 1s, backoff_initial: 1h, backoff_max: 1h}\n", rc.srv.URL, newSecret(t)))
	addr := s.startDispatcher(io.Discard)
	id := s.publishEvent("o-retry")
	testenv.Eventually(t, 10*time.Second, func() bool { return rc.count(id) == 1 }, "first attempt not made")
	rc.set(200)

	var res dispatch.RetryResult
	s.ctlJSON(&res, "retry", "--subscriber", "ledger", "--all", "--dry-run", "--dispatcher", "http://"+addr)
	if !res.DryRun || !slices.Equal(res.Retried, []string{id}) || res.Replicas != 1 {
		t.Fatalf("dry run: %+v, want %s from 1 replica", res, id)
	}
	if n := rc.count(id); n != 1 {
		t.Fatalf("dry run attempted the event (%d attempts)", n)
	}
	out, err := s.ctl("retry", "--subscriber", "ledger", "--event", id, "--dispatcher", "http://"+addr)
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, "1 events attempting now") {
		t.Fatalf("retry: %v\n%s", err, out)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return rc.count(id) == 2 }, "event not attempted again")

	for _, args := range [][]string{
		{"retry", "--subscriber", "ledger"},                         // neither --event nor --all
		{"retry", "--all"},                                          // no subscriber
		{"retry", "--subscriber", "nobody", "--all"},                // not configured
		{"retry", "--subscriber", "ledger", "--all", "--event", id}, // both
	} {
		if _, err := s.ctl(args...); err == nil {
			t.Errorf("payhookctl %v: no error", args)
		}
	}
}
