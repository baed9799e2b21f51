package redisdedupe_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/payhook/payhook/pkg/dedupe"
	"github.com/payhook/payhook/pkg/dedupe/dedupetest"
	"github.com/payhook/payhook/pkg/dedupe/internal/codec"
	"github.com/payhook/payhook/pkg/dedupe/redisdedupe"
	"github.com/payhook/payhook/pkg/events"
)

// orderKeys lists the store's order keys (the only keys Record writes).
func keys(t *testing.T, rdb redis.UniversalClient, pattern string) []string {
	t.Helper()
	ks, err := rdb.Keys(context.Background(), pattern).Result()
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// TestScriptMatchesCodec replays random Record sequences through the Lua
// script and through codec.Entry.Record and requires the same bytes and the
// same prior state reported at every step, so the Redis and NATS stores can
// never drift apart.
func TestScriptMatchesCodec(t *testing.T) {
	s := MustStore(t, redisdedupe.Config{})
	rdb := s.Client()
	rng := rand.New(rand.NewPCG(4, 4))
	statuses := []events.Status{events.StatusPending, events.StatusSucceeded, events.StatusFailed}
	for round := range 200 {
		o := dedupetest.Order("diff-" + string(rune('a'+round%26)) + strings.Repeat("x", round))
		var want codec.Entry
		for range 1 + rng.IntN(12) {
			st := statuses[rng.IntN(3)]
			id := dedupetest.ID(o, st)
			if rng.IntN(4) == 0 { // a verbatim id, from some other producer
				id = "ext-" + string(st) + "-" + string(rune('0'+rng.IntN(10)))
			}
			got := dedupetest.MustRecordPrior(t, s, id, o, st)
			prior, err := want.Record(id, st)
			if err != nil {
				t.Fatal(err)
			}
			if got != prior {
				t.Fatalf("round %d: script found %+v, codec %+v", round, got, prior)
			}
		}
		got := keys(t, rdb, redisdedupe.DefaultPrefix+"o*")
		if len(got) != 1 {
			t.Fatalf("round %d: %d order keys, want 1", round, len(got))
		}
		b, err := rdb.Get(context.Background(), got[0]).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, want.Bytes()) {
			t.Fatalf("round %d: script wrote %x, codec %x", round, b, want.Bytes())
		}
		rdb.Del(context.Background(), got[0])
	}
}

// TestKeysNamespacedWithTTL: every key carries the prefix and a TTL no
// longer than its window (order state) or reference TTL (claims).
func TestKeysNamespacedWithTTL(t *testing.T) {
	s := MustStore(t, redisdedupe.Config{Prefix: "ph-test:", Window: time.Hour, ReferenceTTL: 2 * time.Hour})
	rdb, ctx := s.Client(), context.Background()
	o := dedupetest.Order("ttl")
	dedupetest.MustRecord(t, s, dedupetest.ID(o, events.StatusPending), o, events.StatusPending)
	dedupetest.MustRecord(t, s, dedupetest.ID(o, events.StatusSucceeded), o, events.StatusSucceeded)
	if _, _, err := s.ClaimReference(ctx, "fan-in", "UTR1", "A"); err != nil {
		t.Fatal(err)
	}
	all := keys(t, rdb, "*")
	if len(all) != 2 {
		t.Fatalf("%d keys, want 2 (one order, one reference): %q", len(all), all)
	}
	for _, k := range all {
		if !strings.HasPrefix(k, "ph-test:") {
			t.Errorf("key %q outside the namespace", k)
		}
		if len(k) != len("ph-test:")+1+codec.Size {
			t.Errorf("key %q is %d bytes, want prefix + 17", k, len(k))
		}
		ttl, err := rdb.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		limit := time.Hour
		if k[len("ph-test:")] == 'r' {
			limit = 2 * time.Hour
		}
		if ttl <= 0 || ttl > limit || ttl < limit-time.Minute {
			t.Errorf("key %q has TTL %s, want about %s", k, ttl, limit)
		}
	}
}

// TestCorruptValueIsUnavailable: a value payhook did not write (another
// program in the same namespace) fails the call as unavailable, so ingress
// falls back instead of trusting it.
func TestCorruptValueIsUnavailable(t *testing.T) {
	s := MustStore(t, redisdedupe.Config{})
	rdb, ctx := s.Client(), context.Background()
	o := dedupetest.Order("corrupt")
	id := dedupetest.ID(o, events.StatusPending)
	dedupetest.MustRecord(t, s, id, o, events.StatusPending)
	k := keys(t, rdb, redisdedupe.DefaultPrefix+"o*")[0]
	if err := rdb.Set(ctx, k, "\x05abc", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(ctx, id, o); !errors.Is(err, dedupe.ErrUnavailable) {
		t.Fatalf("Check on a corrupt value: %v, want ErrUnavailable", err)
	}
}

// TestBatchedUnderLoad: 64 concurrent ingress-like callers through a
// batching store, every answer right.
func TestBatchedUnderLoad(t *testing.T) {
	s := MustStore(t, redisdedupe.Config{Batch: 32, Pipelines: 2, BatchDelay: 100 * time.Microsecond})
	ingressLoad(t, s, 64, 2000, "load-")
	for i := range 50 {
		o := dedupetest.Order("load-" + string(rune('1'+i%9)))
		id := dedupetest.ID(o, events.StatusSucceeded)
		if c := dedupetest.MustCheck(t, s, id, o); !c.Published || c.Order.EventID != id {
			t.Fatalf("order %s after load: %+v", o, c)
		}
	}
}

func TestCloseIsIdempotentAndFailsLaterCalls(t *testing.T) {
	s := MustStore(t, redisdedupe.Config{Batch: 8})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	o := dedupetest.Order("closed")
	if _, err := s.Check(context.Background(), dedupetest.ID(o, events.StatusPending), o); !errors.Is(err, dedupe.ErrUnavailable) {
		t.Fatalf("Check after Close: %v, want ErrUnavailable", err)
	}
}

func TestConfigRejected(t *testing.T) {
	for name, cfg := range map[string]redisdedupe.Config{
		"tiny window":     {Window: time.Microsecond},
		"negative batch":  {Batch: -1},
		"long batch wait": {Batch: 8, BatchDelay: time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := redisdedupe.New("redis://127.0.0.1:1/0", cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	_, err := redisdedupe.New("redis://:hunter2@%zz", redisdedupe.Config{})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("bad URL: %v (must fail without echoing the password)", err)
	}
}
