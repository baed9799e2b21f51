package dispatch

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/payhook/payhook/internal/natsbus"
)

// A subscriber removed from the config loses its consumers at the next
// start; the others keep theirs.
func TestRemovedSubscriberConsumersAreDeleted(t *testing.T) {
	h := newHarness(t, sub(t, "keep", "http://127.0.0.1:1/"), sub(t, "gone", "http://127.0.0.1:1/"))
	if _, err := New(h.cfg, h.js, prometheus.NewRegistry(), nil); err != nil {
		t.Fatal(err)
	}
	h.cfg.Subscribers = h.cfg.Subscribers[:1]
	if _, err := New(h.cfg, h.js, prometheus.NewRegistry(), nil); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for stream, want := range map[string][]string{
		natsbus.StreamEvents: {ConsumerName("keep")},
		StreamReplay:         {"replay-keep"},
	} {
		st, err := h.js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		names := st.ConsumerNames(ctx)
		for n := range names.Name() {
			got = append(got, n)
		}
		if !sameSet(got, want) {
			t.Errorf("%s consumers = %v, want %v", stream, got, want)
		}
	}
}
