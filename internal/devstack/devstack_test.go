package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/cli"
	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/cashypro"
	"github.com/payhook/payhook/pkg/providers/jpglo"
)

func TestBuiltInConfigIsValid(t *testing.T) {
	key, err := EventKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg, text, err := BuildConfig("nats://127.0.0.1:4222", "", DefaultAddrs(), key)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if _, err := cfg.EventSigning.Signer("ingress"); err != nil {
		t.Errorf("producers cannot sign: %v", err)
	}
	if keys, err := cfg.EventSigning.PublicKeyList("dispatcher"); err != nil || len(keys) != 1 || !keys[0].Equal(key.Public()) {
		t.Errorf("dispatcher keys %v, %v", keys, err)
	}
	seen := map[string]bool{}
	for _, a := range cfg.Accounts {
		seen[a.Provider] = true
	}
	for _, p := range registry.All().Names() {
		if !seen[p] {
			t.Errorf("no %s account", p)
		}
	}
}

// TestEventKeyIsKept: the dev key is made once per data dir, private to its
// owner, and read back on the next start (events stored under it stay
// deliverable); a damaged key file is an error naming it.
func TestEventKeyIsKept(t *testing.T) {
	dir := t.TempDir()
	first, err := EventKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := EventKey(dir)
	if err != nil || again.Encode() != first.Encode() {
		t.Fatalf("second start got another key (%v)", err)
	}
	fi, err := os.Stat(filepath.Join(dir, EventKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v, %v", fi, err)
	}
	if other, _ := EventKey(t.TempDir()); other.Encode() == first.Encode() {
		t.Fatal("two data dirs share a key")
	}
	if err := os.WriteFile(filepath.Join(dir, EventKeyFile), []byte("whsk_broken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := EventKey(dir); err == nil || !strings.Contains(err.Error(), EventKeyFile) {
		t.Fatalf("damaged key file: %v", err)
	}
}

// Devstack end to end (its promise: traffic from every provider flowing and
// being recovered within a minute of starting): callbacks of the four
// providers that send them are stored and delivered, fantian's UTRs are
// matched, lost callbacks of every provider with a query endpoint (jpglo,
// cashypro by poll; mrnpay by re-trigger) are recovered by the reconciler,
// and the demo subscriber gets every event once with a valid signature.
func TestDevstackFlowsAndRecovers(t *testing.T) {
	any := "127.0.0.1:0"
	var out testenv.LogBuffer
	ready := make(chan *Stack, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{
			DataDir: t.TempDir(), Rate: 25, TimeScale: 0.0005, Summary: time.Hour,
			Addrs: &Addrs{any, any, any, any, any}, Ready: func(s *Stack) { ready <- s },
		}, &out)
	}()
	var st *Stack
	select {
	case st = <-ready:
	case err := <-done:
		t.Fatalf("devstack stopped: %v\n%s", err, out.String())
	case <-time.After(60 * time.Second):
		t.Fatal("devstack not ready in 60s")
	}
	// The budget is a minute from start-up; a lost callback takes
	// the reconciler's first poll (5s) and, for mrnpay, retrigger_grace (5s).
	// What each provider must show follows from its roles, so a newly
	// registered provider is covered without being named here.
	provs := registry.All()
	testenv.Eventually(t, time.Minute, func() bool {
		tot := st.Totals()
		for _, p := range provs.Names() {
			_, calls := providers.Role[providers.Inbound](provs, p)
			_, queries := providers.Role[providers.Querier](provs, p)
			_, submits := providers.Role[providers.ReferenceSubmitter](provs, p)
			switch {
			case tot[p].Orders == 0:
				return false
			case calls && (tot[p].Accepted == 0 || tot[p].Delivered < 5):
				return false
			case queries && !submits && tot[p].Recovered == 0:
				return false
			case submits && tot[p].UTRMatched == 0:
				return false
			}
		}
		return true
	}, "every provider's callbacks stored and delivered, recoveries by the reconciler for every provider it can query, UTRs matched: %+v", st.Totals())
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("devstack returned %v", err)
	}
	repeats, bad := st.Subscriber.Counts()
	if bad != 0 {
		t.Errorf("%d webhooks with bad signatures", bad)
	}
	// Redeliveries can happen only when a delivery outlives its timeout; none should here.
	if repeats != 0 {
		t.Errorf("%d redeliveries of an already-received webhook-id", repeats)
	}
	s := out.String()
	for _, want := range []string{"payhook devstack is up", "ingress", "recovered by reconciler", "UTRs matched"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestListenFallsBack: a default address in use moves to a free port on the
// same host (and says so); an address asked for explicitly does not.
func TestListenFallsBack(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()

	ln, note, err := listen("ingress", "", addr)
	if err != nil {
		t.Fatalf("default in use: %v", err)
	}
	defer ln.Close()
	if got := ln.Addr().String(); got == addr || !strings.HasPrefix(got, "127.0.0.1:") {
		t.Errorf("fell back to %s (taken: %s)", got, addr)
	}
	if !strings.Contains(note, addr+" is in use") || !strings.Contains(note, ln.Addr().String()) {
		t.Errorf("note %q does not say where it moved", note)
	}

	if _, _, err := listen("ingress", addr, IngressAddr); err == nil || !strings.Contains(err.Error(), "ingress address "+addr) {
		t.Errorf("explicit address in use: err %v, want an error naming it", err)
	}

	free, note, err := listen("ingress", "", "127.0.0.1:0")
	if err != nil || note != "" {
		t.Fatalf("free default: %v, note %q", err, note)
	}
	free.Close()
}

// TestDataDirLocked: a second devstack on the same data dir refuses to
// start (its ports would move aside, but two servers must not share one
// JetStream store); the lock goes with the first.
func TestDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	release, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	any := "127.0.0.1:0"
	err = Run(context.Background(), Options{DataDir: dir, Addrs: &Addrs{any, any, any, any, any}}, io.Discard)
	if !errors.Is(err, errDataDirInUse) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Run on a locked data dir: %v, want %v naming %s", err, errDataDirInUse, dir)
	}
	release()
	again, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again()
}

// TestFloodOfOneAccountKeepsOthersRecovering: devstack's own conditions —
// simulator traffic, its compressed schedule, the NATS key-value dedupe
// store, everything in one process on a busy machine — with 20,000 watches
// announced at once for the jpglo account (at most reconciler.
// max_watches_per_account of them are opened, 10,000 by default). Lost
// cashypro callbacks must keep being recovered at their pace while the
// flood is due (docs/reconciler.md, "Fairness").
func TestFloodOfOneAccountKeepsOthersRecovering(t *testing.T) {
	any := "127.0.0.1:0"
	var out testenv.LogBuffer
	ready := make(chan *Stack, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{
			DataDir: t.TempDir(), Rate: 25, TimeScale: 0.0005, Summary: time.Hour,
			Addrs: &Addrs{any, any, any, any, any}, Ready: func(s *Stack) { ready <- s },
		}, &out)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("devstack returned %v", err)
		}
	}()
	var st *Stack
	select {
	case st = <-ready:
	case err := <-done:
		t.Fatalf("devstack stopped: %v\n%s", err, out.String())
	case <-time.After(60 * time.Second):
		t.Fatal("devstack not ready in 60s")
	}
	recovered := func() int { return st.Totals()[cashypro.Name].Recovered }
	testenv.Eventually(t, time.Minute, func() bool { return recovered() > 0 }, "no cashypro recovery before the flood")

	nc, err := nats.Connect(st.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	var account string
	for _, a := range st.Config.Accounts {
		if a.Provider == jpglo.Name {
			account = a.ID
		}
	}
	for i := range 20000 {
		body := fmt.Sprintf(`{"account":%q,"kind":"payin","merchant_order_id":"FLOOD%05d"}`, account, i)
		_, err := js.PublishAsync("payhook.watch.jpglo", []byte(body))
		if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			// A loaded machine acks slower than this loop publishes: let
			// the outstanding ones land, then go on.
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(30 * time.Second):
			}
			_, err = js.PublishAsync("payhook.watch.jpglo", []byte(body))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("flood not stored within 30 s")
	}
	// The flood's first polls fall due 5 s after it is opened (the schedule's
	// first step); from then on, for 30 s, cashypro's lost callbacks (about
	// one every 2 s in this traffic) must keep being recovered.
	time.Sleep(5 * time.Second)
	from := recovered()
	testenv.Eventually(t, 30*time.Second, func() bool { return recovered() >= from+5 }, "cashypro recoveries stalled while the jpglo flood was due: %d in the window", recovered()-from)
	t.Logf("cashypro recoveries while the flood was due: %d more after %d before; jpglo recoveries: %d", recovered()-from, from, st.Totals()[jpglo.Name].Recovered)
}

func TestRunRefusesABadLogLevel(t *testing.T) {
	err := Run(context.Background(), Options{LogLevel: "loud", DataDir: t.TempDir()}, io.Discard)
	var ue *cli.UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--log-level") {
		t.Fatalf("got %v, want a usage error naming --log-level", err)
	}
}

func TestRunRefusesABadOTLPEndpoint(t *testing.T) {
	err := Run(context.Background(), Options{TracingEndpoint: "jaeger", DataDir: t.TempDir()}, io.Discard)
	var ue *cli.UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--otlp-endpoint") {
		t.Fatalf("got %v, want a usage error naming --otlp-endpoint", err)
	}
}
