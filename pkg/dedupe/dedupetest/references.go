package dedupetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/dedupe"
)

func claim(t *testing.T, r dedupe.References, account, ref, order string) (string, bool) {
	t.Helper()
	owner, ok, err := r.ClaimReference(ctxT(t), account, ref, order)
	if err != nil {
		t.Fatalf("ClaimReference(%s, %s, %s): %v", account, ref, order, err)
	}
	return owner, ok
}

func testReferences(t *testing.T, s Subject) {
	r, ctx := s.Refs, ctxT(t)
	steps := []struct {
		name, account, ref, order string
		release                   bool
		wantOwner                 string
		wantClaimed               bool
	}{
		{name: "first claim", account: "fan-in", ref: "412345678901", order: "A", wantOwner: "A", wantClaimed: true},
		{name: "same order again is idempotent", account: "fan-in", ref: "412345678901", order: "A", wantOwner: "A", wantClaimed: true},
		{name: "other order refused", account: "fan-in", ref: "412345678901", order: "B", wantOwner: "A", wantClaimed: false},
		{name: "other account is separate", account: "fan-in2", ref: "412345678901", order: "B", wantOwner: "B", wantClaimed: true},
		{name: "other reference is separate", account: "fan-in", ref: "412345678902", order: "B", wantOwner: "B", wantClaimed: true},
		{name: "release by non-owner does nothing", account: "fan-in", ref: "412345678901", order: "B", release: true},
		{name: "still held by A", account: "fan-in", ref: "412345678901", order: "B", wantOwner: "A", wantClaimed: false},
		{name: "release by owner", account: "fan-in", ref: "412345678901", order: "A", release: true},
		{name: "release twice is fine", account: "fan-in", ref: "412345678901", order: "A", release: true},
		{name: "free for B now", account: "fan-in", ref: "412345678901", order: "B", wantOwner: "B", wantClaimed: true},
		{name: "and refused to A", account: "fan-in", ref: "412345678901", order: "A", wantOwner: "B", wantClaimed: false},
	}
	for _, st := range steps {
		if st.release {
			if err := r.ReleaseReference(ctx, st.account, st.ref, st.order); err != nil {
				t.Fatalf("%s: ReleaseReference: %v", st.name, err)
			}
			continue
		}
		owner, ok := claim(t, r, st.account, st.ref, st.order)
		if owner != st.wantOwner || ok != st.wantClaimed {
			t.Fatalf("%s: claim = (%q, %v), want (%q, %v)", st.name, owner, ok, st.wantOwner, st.wantClaimed)
		}
	}

	// Ten orders race for one reference: exactly one wins, all agree on it.
	var wg sync.WaitGroup
	var mu sync.Mutex
	winners, owners := 0, map[string]bool{}
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner, ok, err := r.ClaimReference(ctx, "fan-in", "raced", fmt.Sprintf("order-%d", i))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("racing claim: %v", err)
				return
			}
			owners[owner] = true
			if ok {
				winners++
			}
		}()
	}
	wg.Wait()
	if winners != 1 || len(owners) != 1 {
		t.Fatalf("racing claims: %d winners, owners %v; want exactly one", winners, owners)
	}
}

func testReferenceExpiry(t *testing.T, s Subject) {
	if _, ok := claim(t, s.Refs, "fan-in", "utr-1", "A"); !ok {
		t.Fatal("first claim refused")
	}
	if _, ok := claim(t, s.Refs, "fan-in", "utr-1", "B"); ok {
		t.Fatal("second order got a held reference")
	}
	start := time.Now()
	deadline := start.Add(10 * time.Second)
	for {
		owner, ok := claim(t, s.Refs, "fan-in", "utr-1", "B")
		if ok {
			if time.Since(start) < 900*time.Millisecond {
				t.Fatalf("claim expired after %s, before its 1s TTL", time.Since(start))
			}
			return
		}
		if owner != "A" {
			t.Fatalf("owner %q, want A", owner)
		}
		if time.Now().After(deadline) {
			t.Fatal("claim still held 10s after a 1s TTL")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
