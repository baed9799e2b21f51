package redisdedupe_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/dedupe"
	"github.com/payhook/payhook/pkg/dedupe/dedupetest"
	"github.com/payhook/payhook/pkg/dedupe/redisdedupe"
	"github.com/payhook/payhook/pkg/events"
)

// TestBatchedLateAnswers: batched calls that time out while Redis is
// paused fail with dedupe.ErrUnavailable, and the worker's late results
// for them reach no later call (the store recycles the calls it batches,
// so a timed-out one must never be reused): every later call succeeds
// with its own answer.
func TestBatchedLateAnswers(t *testing.T) {
	s := MustStore(t, redisdedupe.Config{Batch: 8, Pipelines: 2, Timeout: 100 * time.Millisecond})
	ctx := context.Background()
	known := dedupetest.Order("known")
	knownID := dedupetest.ID(known, events.StatusSucceeded)
	dedupetest.MustRecord(t, s, knownID, known, events.StatusSucceeded)
	for round := range 3 {
		if err := s.Client().ClientPause(ctx, 300*time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				if _, err := s.Check(ctx, knownID, known); !errors.Is(err, dedupe.ErrUnavailable) {
					t.Errorf("round %d: Check during a pause: err %v, want ErrUnavailable", round, err)
				}
			})
		}
		wg.Wait()
		time.Sleep(300 * time.Millisecond) // the pause ends; the late answers arrive
		for i := range 16 {
			o := dedupetest.Order("fresh-" + string(rune('a'+round)) + string(rune('a'+i)))
			c := dedupetest.MustCheck(t, s, dedupetest.ID(o, events.StatusSucceeded), o)
			if c.Published || c.Order != (dedupe.OrderState{}) {
				t.Fatalf("round %d: unknown order checked as %+v: a late answer leaked", round, c)
			}
		}
		if c := dedupetest.MustCheck(t, s, knownID, known); !c.Published {
			t.Fatalf("round %d: recorded order checked as %+v", round, c)
		}
	}
}

// TestBatchedScriptFlushed: a batched Record after Redis lost its script
// cache (a restart, SCRIPT FLUSH) loads the script again and is recorded.
func TestBatchedScriptFlushed(t *testing.T) {
	s := MustStore(t, redisdedupe.Config{Batch: 8})
	o := dedupetest.Order("flushed")
	id := dedupetest.ID(o, events.StatusSucceeded)
	if err := s.Client().ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	dedupetest.MustRecord(t, s, id, o, events.StatusSucceeded)
	if c := dedupetest.MustCheck(t, s, id, o); !c.Published || c.Order.Status != events.StatusSucceeded {
		t.Fatalf("after a flushed script cache, Record then Check = %+v", c)
	}
}
