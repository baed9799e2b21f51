package publisher_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/publisher"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/dedupe"
	"github.com/payhook/payhook/pkg/dedupe/memdedupe"
	"github.com/payhook/payhook/pkg/dedupe/redisdedupe"
	"github.com/payhook/payhook/pkg/events"
)

// gated forces the race that two replicas can run into: every replica's
// Check answers before any of them publishes (all see New), and the Records
// then happen in a chosen order.
type gated struct {
	publisher.Deduper
	checked *sync.WaitGroup
	wait    <-chan struct{} // Record waits for it; nil: no wait
	done    chan struct{}   // closed after Record; nil: nobody waits
}

func (g gated) Check(ctx context.Context, e *events.Event) (publisher.Decision, error) {
	d, err := g.Deduper.Check(ctx, e)
	g.checked.Done()
	g.checked.Wait()
	return d, err
}

func (g gated) Record(ctx context.Context, e *events.Event) (publisher.Decision, error) {
	if g.wait != nil {
		<-g.wait
	}
	d, err := g.Deduper.Record(ctx, e)
	if g.done != nil {
		close(g.done)
	}
	return d, err
}

type message struct {
	subject, msgID, id string
	status             events.Status // data.status
	previous           events.Status // data.previous_status (conflicts)
}

// testKey signs every event the tests store; stored checks each message's
// signature, normal events, conflicts and follow-ups alike.
var testKey = func() events.PrivateKey {
	k, err := events.PrivateKeyFromSeed(make([]byte, 32))
	if err != nil {
		panic(err)
	}
	return k
}()

func testSigner(t *testing.T) publisher.Option {
	t.Helper()
	s, err := events.NewSigner(testKey)
	if err != nil {
		t.Fatal(err)
	}
	return publisher.WithSigner(s)
}

func stored(t *testing.T, js jetstream.JetStream) []message {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, natsbus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []message
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		if _, err := events.VerifyMessage([]events.PublicKey{testKey.Public()}, m.Subject, m.Header, m.Data); err != nil {
			t.Errorf("message %d on %s: %v", seq, m.Subject, err)
		}
		var ce struct {
			ID   string `json:"id"`
			Data struct {
				Status   events.Status `json:"status"`
				Previous events.Status `json:"previous_status"`
			} `json:"data"`
		}
		if err := json.Unmarshal(m.Data, &ce); err != nil {
			t.Fatal(err)
		}
		out = append(out, message{m.Subject, m.Header.Get(jetstream.MsgIDHeader), ce.ID, ce.Data.Status, ce.Data.Previous})
	}
	return out
}

// sum adds up counter name over every replica's registry, for the series
// carrying all the given label pairs.
func sum(regs []*prometheus.Registry, name string, labels ...string) float64 {
	total := 0.0
	for _, r := range regs {
		mfs, _ := r.Gather()
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				if hasLabels(m.GetLabel(), labels) {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}

func hasLabels(have []*dto.LabelPair, want []string) bool {
	for i := 0; i+1 < len(want); i += 2 {
		if !slices.ContainsFunc(have, func(l *dto.LabelPair) bool { return l.GetName() == want[i] && l.GetValue() == want[i+1] }) {
			return false
		}
	}
	return true
}

// TestRacedContradictionsGetOneConflict: replicas that all passed Check
// before any published (the race) store contradicting statuses of one
// order. Whatever the number of replicas, the status recorded first stands,
// each contradicting event goes out once normally, and exactly one conflict
// follow-up names both facts; a pending that raced is published and counted.
func TestRacedContradictionsGetOneConflict(t *testing.T) {
	const (
		pend = events.StatusPending
		succ = events.StatusSucceeded
		fail = events.StatusFailed
	)
	stores := map[string]func(t *testing.T) dedupe.Store{
		"memdedupe": func(*testing.T) dedupe.Store { return memdedupe.New(memdedupe.Config{}) },
		"redisdedupe": func(t *testing.T) dedupe.Store {
			s, err := redisdedupe.New(testenv.StartRedis(t).URL, redisdedupe.Config{Window: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
	}
	tests := []struct {
		name     string
		statuses []events.Status // one replica each; the first one records first
		verdicts []string        // Store's answer, per replica
		// subjects: messages per status token on payhook.events.fakeprov.payin.*
		subjects               map[string]int
		conflicts, racedStales float64
	}{
		{"success recorded first, failure raced", []events.Status{succ, fail},
			[]string{publisher.Accepted, publisher.Conflict},
			map[string]int{"succeeded": 1, "failed": 1, "conflict": 1}, 1, 0},
		{"failure recorded first, success raced", []events.Status{fail, succ},
			[]string{publisher.Accepted, publisher.Conflict},
			map[string]int{"succeeded": 1, "failed": 1, "conflict": 1}, 1, 0},
		{"one success, the same failure on two replicas", []events.Status{succ, fail, fail},
			nil, // the two failures: one Conflict, one Duplicate (checked below)
			map[string]int{"succeeded": 1, "failed": 1, "conflict": 1}, 1, 0},
		{"success recorded first, pending raced", []events.Status{succ, pend},
			[]string{publisher.Accepted, publisher.Accepted},
			map[string]int{"succeeded": 1, "pending": 1}, 0, 1},
	}
	for storeName, newStore := range stores {
		for _, tc := range tests {
			t.Run(storeName+"/"+tc.name, func(t *testing.T) {
				n := testenv.StartNATS(t)
				js, _ := jetstream.New(n.Connect(t))
				if err := natsbus.EnsureStreams(context.Background(), js, config.NATS{Replicas: 1}); err != nil {
					t.Fatal(err)
				}
				store := newStore(t)
				var checked sync.WaitGroup
				checked.Add(len(tc.statuses))
				firstDone := make(chan struct{})
				regs := make([]*prometheus.Registry, len(tc.statuses))
				pubs := make([]*publisher.Publisher, len(tc.statuses))
				for i := range tc.statuses {
					g := gated{Deduper: publisher.StoreDeduper{Store: store}, checked: &checked, wait: firstDone}
					if i == 0 {
						g.wait, g.done = nil, firstDone
					}
					regs[i] = prometheus.NewRegistry()
					var err error
					if pubs[i], err = publisher.New(js, g, time.Second, regs[i], nil, testSigner(t)); err != nil {
						t.Fatal(err)
					}
				}
				verdicts := make([]string, len(tc.statuses))
				var wg sync.WaitGroup
				for i, st := range tc.statuses {
					wg.Add(1)
					go func() {
						defer wg.Done()
						now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
						ev := &events.Event{Provider: "fakeprov", Account: "acc-1", Kind: events.KindPayin, Status: st,
							MerchantOrderID: "ORD-RACE", Amount: events.MustMoney("10.00", "INR"),
							OccurredAt: now, ReceivedAt: now, Origin: events.OriginCallback}
						v, err := pubs[i].Store(context.Background(), ev)
						if err != nil {
							t.Errorf("replica %d (%s): %v", i, st, err)
						}
						verdicts[i] = v
					}()
				}
				wg.Wait()

				if tc.verdicts != nil && !slices.Equal(verdicts, tc.verdicts) {
					t.Errorf("verdicts %v, want %v", verdicts, tc.verdicts)
				}
				if tc.verdicts == nil {
					rest := slices.Sorted(slices.Values(verdicts[1:]))
					if verdicts[0] != publisher.Accepted || !slices.Equal(rest, []string{publisher.Conflict, publisher.Duplicate}) {
						t.Errorf("verdicts %v, want accepted, then conflict and duplicate in some order", verdicts)
					}
				}
				msgs := stored(t, js)
				got := map[string]int{}
				for _, m := range msgs {
					got[m.subject[len("payhook.events.fakeprov.payin."):]]++
					if m.msgID != m.id {
						t.Errorf("%s: Nats-Msg-Id %s, CloudEvent id %s", m.subject, m.msgID, m.id)
					}
				}
				if len(got) != len(tc.subjects) {
					t.Errorf("messages by status %v, want %v", got, tc.subjects)
				}
				for k, v := range tc.subjects {
					if got[k] != v {
						t.Errorf("messages by status %v, want %v", got, tc.subjects)
					}
				}
				standing, loser := tc.statuses[0], tc.statuses[len(tc.statuses)-1]
				for _, m := range msgs {
					if m.subject != "payhook.events.fakeprov.payin.conflict" {
						continue
					}
					ev := events.Event{Provider: "fakeprov", Account: "acc-1", Kind: events.KindPayin, Status: loser, MerchantOrderID: "ORD-RACE"}
					if m.id != ev.ConflictFollowUpID() || m.status != loser || m.previous != standing {
						t.Errorf("conflict %+v, want id %s, status %s, previous %s", m, ev.ConflictFollowUpID(), loser, standing)
					}
				}
				c, err := store.Check(context.Background(), "evt_00000000000000000000000000000000",
					dedupe.Order{Provider: "fakeprov", Account: "acc-1", Kind: events.KindPayin, Key: "ORD-RACE"})
				if err != nil || c.Order.Status != standing {
					t.Errorf("recorded state %+v (%v), want %s to stand", c.Order, err, standing)
				}
				if got := sum(regs, "payhook_conflicts_total"); got != tc.conflicts {
					t.Errorf("payhook_conflicts_total = %v, want %v", got, tc.conflicts)
				}
				if got := sum(regs, "payhook_dedupe_total", "result", "raced_stale"); got != tc.racedStales {
					t.Errorf(`payhook_dedupe_total{result="raced_stale"} = %v, want %v`, got, tc.racedStales)
				}
				if got := sum(regs, "payhook_dedupe_total", "result", "new"); got != float64(len(tc.statuses)) {
					t.Errorf(`payhook_dedupe_total{result="new"} = %v, want %d (every Check saw nothing)`, got, len(tc.statuses))
				}
			})
		}
	}
}
