package reliability_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/e2e"
	"github.com/payhook/payhook/internal/natsbus"
)

// The cluster scenarios run on a 3-node JetStream cluster (e2e.Options
// NATSCluster: every stream, bucket and consumer at R3, as deploy/k8s
// configures them) under the same steady traffic and books as the others.
// Each measures its refusal window: the span from the first to the last
// callback attempt answered 503 (or refused at the socket) after the fault
// began. The claim checked is that refusals happen only while the fault is
// in progress: none in the steady phase before it, none once every node is
// healthy again.

// refusals are the books' callback attempts started in [from, to) that
// were refused for a transient reason (503 or a connection error), with
// the first and last attempt's start.
type refusals struct {
	n           int
	first, last time.Time
}

func refusedBetween(r *run, from, to time.Time) refusals {
	var out refusals
	for _, o := range r.tr.b.Orders() {
		for _, d := range o.Deliveries {
			for _, a := range d.Attempts {
				if a.At.Before(from) || !a.At.Before(to) {
					continue
				}
				if a.HTTPStatus != http.StatusServiceUnavailable && a.HTTPStatus != 0 {
					continue
				}
				out.n++
				if out.first.IsZero() || a.At.Before(out.first) {
					out.first = a.At
				}
				if a.At.After(out.last) {
					out.last = a.At
				}
			}
		}
	}
	return out
}

// window describes refusals relative to t0 for the report.
func (rf refusals) window(t0 time.Time) string {
	if rf.n == 0 {
		return "no refusal"
	}
	return fmt.Sprintf("%d refused, from +%.1f s to +%.1f s (window %.1f s)", rf.n,
		rf.first.Sub(t0).Seconds(), rf.last.Sub(t0).Seconds(), rf.last.Sub(rf.first).Seconds())
}

// leader is the node leading PAYHOOK_EVENTS, waited for up to 20 s.
func (r *run) leader() int {
	r.t.Helper()
	var (
		i   int
		err error
	)
	eventually(r.t, 20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		i, err = r.c.StreamLeader(ctx, natsbus.StreamEvents)
		return err == nil
	}, "a leader of %s", natsbus.StreamEvents)
	return i
}

// newLeader waits until PAYHOOK_EVENTS is led by a node other than old and
// returns when that was first seen.
func (r *run) newLeader(old int) time.Time {
	r.t.Helper()
	eventually(r.t, 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		i, err := r.c.StreamLeader(ctx, natsbus.StreamEvents)
		return err == nil && i != old
	}, "a new leader of %s", natsbus.StreamEvents)
	return time.Now()
}

// beginCluster starts a scenario on a 3-node cluster and lets the traffic
// settle; it fails the scenario when anything was refused before the fault.
func beginCluster(t *testing.T, res *result) (*run, time.Time) {
	t.Helper()
	r := begin(t, res, e2e.Options{NATSCluster: true}, defaultMix)
	started := time.Now()
	time.Sleep(5 * time.Second)
	return r, started
}

// settled checks the steady phases around a fault: nothing refused between
// start (plus a 2 s warm-up, in which the services create their R3 streams,
// buckets and consumers and the cluster places them) and 1 s before the
// fault (an attempt started just before it may be refused by it: attempts
// are timed from their start), nor from healthy (every node healthy again,
// plus the 1 s a provider's attempt may take to start) until the traffic
// stopped.
func (r *run) settled(start, fault, healthy time.Time) {
	r.t.Helper()
	if rf := refusedBetween(r, start.Add(2*time.Second), fault.Add(-time.Second)); rf.n > 0 {
		r.t.Errorf("%d callback attempts refused before the fault: %s after the cluster started; ingress log:\n%s", rf.n, rf.window(start), tailString(r.c.Logs(e2e.Ingress), 4000))
	}
	if rf := refusedBetween(r, healthy.Add(time.Second), time.Now()); rf.n > 0 {
		r.t.Errorf("%d callback attempts refused with every node healthy again: %s", rf.n, rf.window(healthy))
	}
}

// testClusterLeaderKilled kills -9 the PAYHOOK_EVENTS leader, 5 s down, restarted.
func testClusterLeaderKilled(t *testing.T, res *result) {
	r, start := beginCluster(t, res)
	leader := r.leader()
	killed := time.Now()
	r.c.KillNATSNode(leader)
	elected := r.newLeader(leader)
	time.Sleep(time.Until(killed.Add(5 * time.Second)))
	if err := r.c.StartNATSNode(leader); err != nil {
		t.Fatal(err)
	}
	healthy := time.Now()
	time.Sleep(3 * time.Second)
	r.finish()
	r.settled(start, killed, healthy)
	rf := refusedBetween(r, killed, healthy.Add(time.Second))
	res.note("leader %s killed; new leader seen after %.1f s; %s; node healthy again %.1f s after the kill",
		r.c.NATSNodeName(leader), elected.Sub(killed).Seconds(), rf.window(killed), healthy.Sub(killed).Seconds())
}

// testClusterRolling restarts the three nodes one after the other as a
// StatefulSet rolling update does: lame duck (the preStop hook), exit,
// start on the same store, healthy, next.
func testClusterRolling(t *testing.T, res *result) {
	r, start := beginCluster(t, res)
	began := time.Now()
	for i := range r.c.NATSNodes() {
		if err := r.c.LameDuckNATSNode(i); err != nil {
			t.Fatal(err)
		}
		if err := r.c.StartNATSNode(i); err != nil {
			t.Fatal(err)
		}
	}
	healthy := time.Now()
	time.Sleep(3 * time.Second)
	r.finish()
	r.settled(start, began, healthy)
	rf := refusedBetween(r, began, healthy.Add(time.Second))
	res.note("three nodes restarted in turn in %.1f s; %s", healthy.Sub(began).Seconds(), rf.window(began))
}

// testClusterFrozen stops a node (SIGSTOP) for 20 s, then resumes it. The
// node is the worst one to lose: the one ingress is connected to, made the
// PAYHOOK_EVENTS leader first. The other two elect a leader, and every
// client attached to the frozen node leaves it when its pings go
// unanswered (natsbus.Connect: 2 s apart, 2 outstanding).
func testClusterFrozen(t *testing.T, res *result) {
	r, start := beginCluster(t, res)
	node, err := r.c.ClientNode(e2e.Ingress)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A leader stepdown is a short election of its own: its refusals are
	// counted apart from the freeze's.
	moved := time.Now()
	if err := r.c.MoveStreamLeader(ctx, natsbus.StreamEvents, node); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	frozen := time.Now()
	if err := r.c.FreezeNATSNode(node); err != nil {
		t.Fatal(err)
	}
	thawed := false
	t.Cleanup(func() {
		if !thawed {
			_ = r.c.ThawNATSNode(node)
		}
	})
	elected := r.newLeader(node)
	time.Sleep(time.Until(frozen.Add(20 * time.Second)))
	if err := r.c.ThawNATSNode(node); err != nil {
		t.Fatal(err)
	}
	thawed = true
	resumed := time.Now()
	if err := r.c.StartNATSNode(node); err != nil { // running: waits until healthy
		t.Fatal(err)
	}
	healthy := time.Now()
	time.Sleep(3 * time.Second)
	r.finish()
	r.settled(start, moved, healthy)
	// Ingress left the frozen node long before it came back: no attempt
	// that started in the last 5 s of the freeze was refused.
	if rf := refusedBetween(r, frozen.Add(15*time.Second), resumed); rf.n > 0 {
		t.Errorf("ingress still refusing callbacks 15 s into the freeze: %s", rf.window(frozen))
	}
	during := refusedBetween(r, frozen, resumed)
	after := refusedBetween(r, resumed, healthy.Add(time.Second))
	res.note("leader moved to %s (ingress's node) by stepdown: %d refused; %s frozen 20 s; new leader seen after %.1f s; during the freeze %s; after SIGCONT %s; healthy %.1f s after SIGCONT",
		r.c.NATSNodeName(node), refusedBetween(r, moved, frozen).n, r.c.NATSNodeName(node),
		elected.Sub(frozen).Seconds(), during.window(frozen), after.window(resumed), healthy.Sub(resumed).Seconds())
}

func tailString(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
