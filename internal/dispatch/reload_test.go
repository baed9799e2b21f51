package dispatch

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/events"
)

// TestReloadAddsSubscribersWithoutDraining: a config with a new subscriber
// makes a serving dispatcher deliver to it at once (from its start: events
// stored after it appears), while a delivery in flight to an existing one
// goes on; a changed subscriber is reported as waiting for a restart.
func TestReloadAddsSubscribersWithoutDraining(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	slow := newReceiver(t, func(r *http.Request, id string, n int) int {
		<-release // in flight across the reload
		return 200
	})
	t.Cleanup(free) // after the server's Close is registered, so it runs first: a failed test must not leave the handler blocked
	fresh := newReceiver(t, nil)
	h := newHarness(t)
	cfg := &config.Config{AdminToken: adminToken, NATS: config.NATS{Replicas: 1}, Subscribers: []config.Subscriber{sub(t, "ledger", slow.srv.URL)}}
	cfg.EventSigning = h.cfg.EventSigning
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.NATS.URL = h.n.URL
	reloads := make(chan *config.Config)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg, RunOptions{Listener: ln, Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), Reloads: reloads})
	}()
	defer func() {
		cancel()
		<-done
	}()
	testenv.Eventually(t, 10*time.Second, func() bool {
		r, err := http.Get("http://" + ln.Addr().String() + "/readyz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == 200
	}, "not ready")
	first := h.publish(t, events.Event{Provider: "jpglo", Account: "glo-in", Kind: events.KindPayin, Status: events.StatusSucceeded, MerchantOrderID: "RL-1"})[0]
	testenv.Eventually(t, 10*time.Second, func() bool { return slow.seenN(first) == 1 }, "first delivery did not start")

	next := *cfg
	changed := cfg.Subscribers[0]
	changed.MaxAttempts = 3
	added := sub(t, "fresh", fresh.srv.URL)
	added.Start = config.StartNew
	next.Subscribers = []config.Subscriber{changed, added}
	reloads <- &next
	testenv.Eventually(t, 10*time.Second, func() bool {
		_, err := h.js.Consumer(context.Background(), natsbus.StreamEvents, ConsumerName("fresh"))
		return err == nil
	}, "added subscriber has no consumer")
	second := h.publish(t, events.Event{Provider: "jpglo", Account: "glo-in", Kind: events.KindPayin, Status: events.StatusSucceeded, MerchantOrderID: "RL-2"})[0]
	testenv.Eventually(t, 10*time.Second, func() bool { return fresh.doneN(second) == 1 }, "added subscriber got nothing")
	if fresh.seenN(first) != 0 {
		t.Error("added subscriber got an event stored before it appeared (start: new)")
	}
	free()
	testenv.Eventually(t, 10*time.Second, func() bool { return slow.doneN(first) == 1 && slow.doneN(second) == 1 }, "the in-flight delivery did not finish")
}

// seenN is how many requests for id reached the receiver (answered or not).
func (rc *receiver) seenN(id string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.seen[id]
}

// doneN is how many requests for id were answered 2xx.
func (rc *receiver) doneN(id string) int {
	n := 0
	for _, h := range rc.allHits() {
		if h.id == id && h.status < 300 {
			n++
		}
	}
	return n
}
