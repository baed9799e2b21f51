package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/cli"
	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/dispatch"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/events"
)

const adminToken = "test-admin-token-0123456789abcdef"

func lookup(k string) (string, bool) {
	if k == "TOKEN" {
		return adminToken, true
	}
	return "", false
}

func env(args ...string) (cli.Env, *bytes.Buffer) {
	var out bytes.Buffer
	return cli.Env{Args: args, LookupEnv: lookup, Stdout: &out, Stderr: io.Discard}, &out
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "payhook.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func newSecret(t *testing.T) string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// receiver answers webhooks with the status in code and records the
// webhook-ids it answered 2xx.
type receiver struct {
	code      atomic.Int32
	mu        sync.Mutex
	delivered []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	code := int(rc.code.Load())
	if code < 300 {
		rc.mu.Lock()
		rc.delivered = append(rc.delivered, r.Header.Get("webhook-id"))
		rc.mu.Unlock()
	}
	w.WriteHeader(code)
}

func (rc *receiver) ids() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.delivered...)
}

// startStreams starts a NATS server with payhook's streams and returns it
// with a JetStream context on it.
func startStreams(t *testing.T) (*testenv.NATS, jetstream.JetStream) {
	t.Helper()
	n := testenv.StartNATS(t)
	js, err := jetstream.New(n.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := natsbus.EnsureStreams(ctx, js, config.NATS{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	return n, js
}

// publishPayin stores a signed jpglo pay-in success of order for amount
// INR, as ingress would, and returns its event id.
func publishPayin(t *testing.T, js jetstream.JetStream, order, amount string) string {
	t.Helper()
	ev := events.Event{
		Provider: "jpglo", Account: "glo-in", Kind: events.KindPayin, Status: events.StatusSucceeded, MerchantOrderID: order,
		Amount: events.MustMoney(amount, "INR"), Origin: events.OriginCallback,
		OccurredAt: time.Unix(1700000000, 0).UTC(), ReceivedAt: time.Unix(1700000001, 0).UTC(),
	}
	body, err := ev.MarshalCloudEvent()
	if err != nil {
		t.Fatal(err)
	}
	testenv.PublishEvent(t, js, ev.Subject(), ev.ID(), body)
	return ev.ID()
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	testenv.Eventually(t, 15*time.Second, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, "dispatcher not ready")
}

// TestRunServesDrainsAndCLIReplays: the binary serves health and metrics,
// dead-letters an event its subscriber refuses, drains on cancel with exit
// 0; dlq list prints the dead letter and dlq replay re-delivers it (same
// webhook-id) once a dispatcher runs again.
func TestRunServesDrainsAndCLIReplays(t *testing.T) {
	rc := &receiver{}
	rc.code.Store(500)
	hook := httptest.NewServer(rc)
	defer hook.Close()
	n, js := startStreams(t)
	port := testenv.FreePort(t)
	cfgPath := writeConfig(t, fmt.Sprintf(`nats:
  url: %s
dispatcher:
  listen: 127.0.0.1:%d
admin_token: ${TOKEN}
event_signing:
  public_keys: ["%s"]
subscribers:
  - id: ledger
    url: %s
    secret: %s
    max_attempts: 2
    timeout: 1s
    backoff_initial: 10ms
    backoff_max: 20ms
`, n.URL, port, testenv.EventPublicKey, hook.URL, newSecret(t)))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	e, _ := env("--config", cfgPath)
	go func() { done <- run(ctx, e) }()
	waitReady(t, base)
	id := publishPayin(t, js, "o1", "100.00")
	testenv.Eventually(t, 10*time.Second, func() bool {
		dls, err := dispatch.ListDLQ(context.Background(), js, "ledger")
		return err == nil && len(dls) == 1
	}, "no dead letter")
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(m), `payhook_dispatch_dead_letters_total{subscriber="ledger"} 1`) {
		t.Fatalf("metrics lack the dead letter:\n%s", m)
	}
	cancel()
	select {
	case err := <-done:
		if code := cli.ExitCode(err, io.Discard); code != 0 {
			t.Fatalf("exit %d after SIGTERM: %v", code, err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not drain")
	}

	e, out := env("dlq", "list", "--subscriber", "ledger", "--config", cfgPath)
	if err := run(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	var dl dispatch.DeadLetter
	if err := json.Unmarshal(out.Bytes(), &dl); err != nil || dl.EventID != id {
		t.Fatalf("dlq list printed %q: %v", out.String(), err)
	}
	e, out = env("dlq", "replay", "--subscriber", "ledger", "--event-id", id, "--config", cfgPath)
	if err := run(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"replayed":1`) {
		t.Fatalf("dlq replay printed %q", out.String())
	}
	rc.code.Store(200)
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	e, _ = env("--config", cfgPath)
	go func() { done <- run(ctx2, e) }()
	testenv.Eventually(t, 15*time.Second, func() bool { return len(rc.ids()) == 1 }, "replay not delivered")
	if rc.ids()[0] != id {
		t.Fatalf("replayed with webhook-id %s, want %s", rc.ids()[0], id)
	}
	cancel2()
	if err := <-done; err != nil {
		t.Fatalf("second run: %v", err)
	}
}

// TestUsageErrors: bad invocations and configs exit 2 with one line.
func TestUsageErrors(t *testing.T) {
	noKeys := writeConfig(t, "nats:\n  url: nats://127.0.0.1:1\n")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no config", nil, ""},
		{"dlq without verb", []string{"dlq"}, ""},
		{"dlq unknown verb", []string{"dlq", "purge", "--subscriber", "x"}, ""},
		{"dlq without subscriber", []string{"dlq", "list", "--config", "/nonexistent"}, ""},
		{"missing config file", []string{"--config", "/nonexistent/payhook.yaml"}, ""},
		{"no nats url", []string{"--config", writeConfig(t, "dispatcher:\n  listen: 127.0.0.1:0\n")}, "nats.url"},
		{"no event keys", []string{"--config", noKeys}, "event_signing.public_keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := cli.Env{Args: tt.args, LookupEnv: lookup, Stdout: io.Discard, Stderr: io.Discard}
			var stderr bytes.Buffer
			if code := cli.ExitCode(run(context.Background(), e), &stderr); code != cli.ExitConfig {
				t.Fatalf("exit %d, want 2", code)
			}
			if n := strings.Count(stderr.String(), "\n"); n != 1 {
				t.Fatalf("want one line on stderr, got %q", stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("stderr %q does not name %s", stderr.String(), tt.want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	e, out := env("--version")
	if code := cli.ExitCode(run(context.Background(), e), &bytes.Buffer{}); code != 0 || !strings.HasPrefix(out.String(), "dispatcher ") {
		t.Fatalf("exit %d, stdout %q", code, out.String())
	}
}

// TestSIGHUPReloads: the binary reads its file again on SIGHUP; a moved
// subscriber URL applies to the next event, and a file changing the listen
// address is refused with a log line naming the key, the running config
// staying.
func TestSIGHUPReloads(t *testing.T) {
	a, b := &receiver{}, &receiver{}
	a.code.Store(200)
	b.code.Store(200)
	ha, hb := httptest.NewServer(a), httptest.NewServer(b)
	defer ha.Close()
	defer hb.Close()
	n, js := startStreams(t)
	port, secret := testenv.FreePort(t), newSecret(t)
	write := func(path string, port int, url string) string {
		y := fmt.Sprintf("nats:\n  url: %s\ndispatcher:\n  listen: 127.0.0.1:%d\nevent_signing:\n  public_keys: [%q]\nsubscribers:\n  - {id: ledger, url: %q, secret: %q}\n",
			n.URL, port, testenv.EventPublicKey, url, secret)
		if path == "" {
			return writeConfig(t, y)
		}
		if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cfgPath := write("", port, ha.URL)
	var logs testenv.LogBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, cli.Env{Args: []string{"--config", cfgPath}, LookupEnv: lookup, Stdout: io.Discard, Stderr: &logs})
	}()
	waitReady(t, fmt.Sprintf("http://127.0.0.1:%d", port))
	publish := func(order string) string { return publishPayin(t, js, order, "1.00") }
	hup := func() {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}

	write(cfgPath, port, hb.URL)
	hup()
	testenv.Eventually(t, 10*time.Second, func() bool { return strings.Contains(logs.String(), "config reloaded") }, "no reload logged:\n%s", &logs)
	moved := publish("hup-1")
	testenv.Eventually(t, 10*time.Second, func() bool { return slices.Contains(b.ids(), moved) }, "event after the reload not at the new URL")

	write(cfgPath, testenv.FreePort(t), ha.URL)
	hup()
	testenv.Eventually(t, 10*time.Second, func() bool { return strings.Contains(logs.String(), "config not reloaded") }, "refusal not logged")
	if !strings.Contains(logs.String(), `"keys":["dispatcher"]`) {
		t.Fatalf("refusal does not name the dispatcher key:\n%s", logs.String())
	}
	kept := publish("hup-2")
	testenv.Eventually(t, 10*time.Second, func() bool { return slices.Contains(b.ids(), kept) }, "refused reload changed the running config")
	if len(a.ids()) != 0 {
		t.Fatalf("old URL got %v", a.ids())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
