package devstack

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/providers"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestBuiltInConfigIsValid(t *testing.T) {
	cfg, text, err := BuildConfig("nats://127.0.0.1:4222", "", DefaultAddrs())
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	seen := map[string]bool{}
	for _, a := range cfg.Accounts {
		seen[a.Provider] = true
	}
	for _, p := range providers.Names {
		if !seen[p] {
			t.Errorf("no %s account", p)
		}
	}
}

// Devstack end to end: traffic from all five providers flows, lost callbacks
// are recovered by the reconciler, and the demo subscriber gets every event
// once with a valid signature.
func TestDevstackFlowsAndRecovers(t *testing.T) {
	any := "127.0.0.1:0"
	var out syncBuffer
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
	testenv.Eventually(t, 90*time.Second, func() bool {
		tot := st.Totals()
		recovered := 0
		for _, p := range []string{providers.Jpglo, providers.Mrnpay, providers.Mpurse, providers.Cashypro} {
			if tot[p].Delivered < 5 {
				return false
			}
			recovered += tot[p].Recovered
		}
		return recovered > 0 && tot[providers.Fantian].Orders > 0
	}, "traffic from every provider delivered and some recovered: %+v", st.Totals())
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
	for _, want := range []string{"payhook devstack is up", "ingress", "recovered by reconciler"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
