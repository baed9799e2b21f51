package dispatch

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// PinGroup is the priority group of every subscriber consumer. The
// consumers use JetStream's pinned-client priority policy: of the replicas
// fetching from a subscriber's consumer, the server hands messages to one,
// the pinned one, and the others' fetches come back empty. So one replica at
// a time delivers a subscriber's events, and every redelivery of a retry
// comes back to the replica that holds the later events of its order: the
// per-order ordering of one replica holds with any number of replicas
// (docs/dispatcher.md "Ordering guarantee"). Replicas still share the work
// across subscribers (each consumer is pinned to whichever replica asked
// first) and stand by for each other.
//
// The pin moves when the pinned replica has not asked for messages for
// PinnedTTL (= AckWait: it died, or it stopped fetching for that long, with
// its breaker open or every slot busy), or at once when it stops (Run unpins
// it). A replica that lost its pin learns it from its next fetch (the
// server answers 423, jetstream.ErrPinIDMismatch), and gives back the held
// events whose earlier event waits in JetStream for its retry, due after
// that retry, as on a pause.
const PinGroup = "dispatch"

// pinState is what a replica knows of its pin on one consumer.
type pinState struct {
	standby atomic.Bool // the last fetch said another replica is pinned
	mu      sync.Mutex
	id      string // the pin id on the last message this replica got
}

// got records that a fetch brought m: this replica is pinned, by m's pin id.
func (p *pinState) got(m jetstream.Msg) {
	p.standby.Store(false)
	if h := m.Headers(); h != nil {
		if id := h.Get("Nats-Pin-Id"); id != "" {
			p.mu.Lock()
			p.id = id
			p.mu.Unlock()
		}
	}
}

func (w *worker) pin(replay bool) *pinState {
	if replay {
		return &w.pins[1]
	}
	return &w.pins[0]
}

// unpin hands over, at shutdown, the consumers this replica is pinned to,
// so that a standing-by replica takes over at once rather than after
// PinnedTTL. A consumer pinned to another replica is left alone.
func (d *Dispatcher) unpin() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, w := range d.roster().workers {
		w.unpin(ctx)
	}
}

// unpin hands over the worker's consumers if this replica is pinned to
// them: at shutdown, or when a reload removed the subscriber here.
func (w *worker) unpin(ctx context.Context) {
	for i, c := range []jetstream.Consumer{w.consumer(false), w.consumer(true)} { // as w.pins
		p := &w.pins[i]
		p.mu.Lock()
		id := p.id
		p.mu.Unlock()
		if id == "" || p.standby.Load() {
			continue
		}
		info, err := c.Info(ctx)
		if err != nil {
			continue
		}
		for _, g := range info.PriorityGroups {
			if g.Group != PinGroup || g.PinnedClientID != id {
				continue
			}
			if s, err := w.d.js.Stream(ctx, info.Stream); err == nil {
				if err := s.UnpinConsumer(ctx, info.Name, PinGroup); err != nil {
					w.log.Debug("unpin", "consumer", info.Name, "err", err)
				}
			}
		}
	}
}
