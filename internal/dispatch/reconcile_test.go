package dispatch

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/events"
)

// A subscriber changed in the config gets its consumers updated at the next
// start: filter subjects (filter), AckWait (timeout) and MaxAckPending
// (concurrency). The consumer keeps its position and its pending messages:
// an event it passed under the old filter is not looked at again; one
// waiting for a retry is still redelivered, and the new filter applies to
// it in code (acked as filtered); later events follow the new filter.
func TestChangedSubscriberConsumersAreUpdated(t *testing.T) {
	passed := event("mpurse", "mp-in", events.KindPayout, events.StatusPending, "o1")     // only the new filter
	delivered := event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "o2") // the old filter
	retrying := event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "o3")  // old filter, fails once
	rc := newReceiver(t, func(_ *http.Request, id string, n int) int {
		if id == retrying.ID() && n == 0 {
			return 500
		}
		return 200
	})
	s := sub(t, "chg", rc.srv.URL)
	s.Filter = config.Filter{Statuses: []string{"succeeded"}}
	s.BackoffInitial, s.BackoffMax = config.Duration(time.Second), config.Duration(time.Second)
	h := newHarness(t, s)
	r1 := h.start(t)
	h.publish(t, passed, delivered, retrying)
	testenv.Eventually(t, 10*time.Second, func() bool { return rc.count() == 2 }, "attempts %d, want 2", rc.count())
	r1.stop()
	checkConsumer(t, h, ConsumerName("chg"), []string{"payhook.events.*.*.conflict", "payhook.events.*.*.succeeded"}, 12*time.Second, 256)

	s = h.cfg.Subscribers[0]
	s.Filter = config.Filter{Providers: []string{"mpurse"}, Statuses: []string{"pending"}}
	s.Timeout = config.Duration(3 * time.Second)
	s.Concurrency = 2
	h.cfg.Subscribers[0] = s
	r2 := h.start(t)
	checkConsumer(t, h, ConsumerName("chg"), []string{"payhook.events.mpurse.*.pending"}, 16*time.Second, 128)
	checkConsumer(t, h, "replay-chg", []string{ReplaySubject("chg")}, 16*time.Second, 128)

	ids := h.publish(t,
		event("mpurse", "mp-in", events.KindPayout, events.StatusPending, "o4"),  // the new filter
		event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "o5"), // only the old one
	)
	testenv.Eventually(t, 10*time.Second, func() bool {
		return counter(r2, "payhook_dispatch_deliveries_total", "subscriber", "chg", "outcome", OutcomeFiltered) == 1
	}, "the retry pending under the old filter was not redelivered and filtered")
	testenv.Eventually(t, 10*time.Second, func() bool { return len(rc.delivered()) == 2 }, "delivered %v", rc.delivered())
	time.Sleep(300 * time.Millisecond)
	if got, want := rc.delivered(), []string{delivered.ID(), ids[0]}; !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v (nothing passed over re-read, no retry under the new filter, nothing the new filter excludes)", got, want)
	}
}

func checkConsumer(t *testing.T, h *harness, name string, subjects []string, ackWait time.Duration, maxAckPending int) {
	t.Helper()
	stream := natsbus.StreamEvents
	if strings.HasPrefix(name, "replay-") {
		stream = StreamReplay
	}
	c, err := h.js.Consumer(context.Background(), stream, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := slices.Clone(info.Config.FilterSubjects)
	if info.Config.FilterSubject != "" {
		got = append(got, info.Config.FilterSubject)
	}
	slices.Sort(got)
	if !slices.Equal(got, subjects) || info.Config.AckWait != ackWait || info.Config.MaxAckPending != maxAckPending {
		t.Fatalf("%s: filter %v AckWait %s MaxAckPending %d, want %v %s %d", name, got, info.Config.AckWait, info.Config.MaxAckPending, subjects, ackWait, maxAckPending)
	}
}
