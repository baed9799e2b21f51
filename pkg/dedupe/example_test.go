package dedupe_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/payhook/payhook/pkg/dedupe"
	"github.com/payhook/payhook/pkg/dedupe/memdedupe"
	"github.com/payhook/payhook/pkg/events"
)

// store is what ingress does with one verified event: Check, Decide,
// publish (here: print), RecordPrior.
func store(ctx context.Context, st dedupe.Store, e *events.Event) string {
	o := dedupe.OrderOf(e)
	c, err := st.Check(ctx, e.ID(), o)
	if errors.Is(err, dedupe.ErrUnavailable) {
		// Publish anyway with Nats-Msg-Id = e.ID(): JetStream's window dedupes.
		return "published (store down)"
	}
	v := dedupe.Decide(c, e.Status)
	switch v {
	case dedupe.Duplicate, dedupe.Stale:
		return v.String() // acknowledge the provider, count, publish nothing
	case dedupe.Conflict:
		// publish on events.Subject(e.Provider, e.Kind, events.StatusConflict) with both facts
	}
	// ... publish and wait for the JetStream ack; on failure return 503 and do not Record ...
	prior, err := st.RecordPrior(ctx, e.ID(), o, e.Status)
	if err != nil {
		return v.String() + " (not recorded)" // stored anyway: still acknowledge
	}
	if v == dedupe.New && dedupe.Decide(dedupe.Check{Order: prior}, e.Status) == dedupe.Conflict {
		// Another replica recorded the other terminal status while this one
		// was publishing: publish a follow-up conflict, id e.ID()+":conflict".
		return "new, then conflict"
	}
	return v.String()
}

func Example() {
	ctx, st := context.Background(), memdedupe.New(memdedupe.Config{})
	ev := func(s events.Status) *events.Event {
		return &events.Event{Provider: "jpglo", Account: "glo-in", Kind: events.KindPayin, Status: s, MerchantOrderID: "111123456789"}
	}
	fmt.Println("success:", store(ctx, st, ev(events.StatusSucceeded)))
	fmt.Println("provider retry:", store(ctx, st, ev(events.StatusSucceeded)))
	fmt.Println("late pending:", store(ctx, st, ev(events.StatusPending)))
	fmt.Println("failure after success:", store(ctx, st, ev(events.StatusFailed)))
	fmt.Println("its retry:", store(ctx, st, ev(events.StatusFailed)))
	st.SetUnavailable(true)
	fmt.Println("store down:", store(ctx, st, ev(events.StatusSucceeded)))
	// Output:
	// success: new
	// provider retry: duplicate
	// late pending: stale
	// failure after success: conflict
	// its retry: duplicate
	// store down: published (store down)
}
