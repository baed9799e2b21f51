package dispatch

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/internal/trace"
	"github.com/payhook/payhook/pkg/events"
)

// An attempt-log entry that cannot be stored (here PAYHOOK_TRACE does not
// exist: the reconciler creates it) is counted, and the delivery goes on;
// with the stream, every attempt is logged and nothing is counted.
func TestAttemptLogErrorsCounted(t *testing.T) {
	for _, withTrace := range []bool{false, true} {
		t.Run(map[bool]string{false: "no stream", true: "stream"}[withTrace], func(t *testing.T) {
			rc := newReceiver(t, nil)
			h := newHarness(t, sub(t, "log", rc.srv.URL))
			if withTrace {
				if err := trace.Ensure(context.Background(), h.js, h.cfg.NATS); err != nil {
					t.Fatal(err)
				}
			}
			r := h.start(t)
			h.publish(t,
				event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "log-1"),
				event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "log-2"))
			testenv.Eventually(t, 10*time.Second, func() bool { return len(rc.delivered()) == 2 }, "delivered %v", rc.delivered())
			select {
			case <-r.d.attemptJS.PublishAsyncComplete():
			case <-time.After(5 * time.Second):
				t.Fatal("attempt-log entries still unacknowledged after 5 s")
			}
			errs := testutil.ToFloat64(r.d.m.attemptLogErrors)
			if !withTrace {
				if errs != 2 {
					t.Fatalf("payhook_dispatch_attempt_log_errors_total %v, want 2 (one per attempt, no stream)", errs)
				}
				return
			}
			s, err := h.js.Stream(context.Background(), trace.Stream)
			if err != nil {
				t.Fatal(err)
			}
			info, err := s.Info(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if errs != 0 || info.State.Msgs != 2 {
				t.Fatalf("errors %v and %d entries stored, want 0 and 2", errs, info.State.Msgs)
			}
		})
	}
}
