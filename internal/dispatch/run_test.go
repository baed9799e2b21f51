package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/cli"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/events"
)

func writeConfig(t *testing.T, natsURL, recvURL string) string {
	t.Helper()
	y := `nats:
  url: ` + natsURL + `
dispatcher:
  listen: 127.0.0.1:0
admin_token: ${TOKEN}
event_signing:
  public_keys: ["` + testenv.EventPublicKey + `"]
subscribers:
  - id: ledger
    url: ` + recvURL + `
    secret: ` + newSecret(t) + `
    max_attempts: 2
    timeout: 1s
    backoff_initial: 10ms
    backoff_max: 20ms
`
	p := filepath.Join(t.TempDir(), "payhook.yaml")
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMainServesDrainsAndCLIReplays(t *testing.T) {
	rc := newReceiver(t, func(*http.Request, string, int) int { return 500 })
	h := newHarness(t)
	cfgPath := writeConfig(t, h.n.URL, rc.srv.URL)
	lookup := func(k string) (string, bool) {
		if k == "TOKEN" {
			return adminToken, true
		}
		return "", false
	}
	env := func(args ...string) (cli.Env, *bytes.Buffer) {
		var out bytes.Buffer
		return cli.Env{Args: args, LookupEnv: lookup, Stdout: &out, Stderr: io.Discard}, &out
	}

	addr := make(chan string, 1)
	Listening = func(a string) { addr <- a }
	defer func() { Listening = nil }()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	e, _ := env("--config", cfgPath)
	go func() { done <- Main(ctx, e) }()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("Main returned early: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Main did not listen")
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(base + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", p, err, resp)
		}
		resp.Body.Close()
	}
	ev := event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "o1")
	ids := h.publish(t, ev)
	testenv.Eventually(t, 10*time.Second, func() bool {
		dls, err := ListDLQ(context.Background(), h.js, "ledger")
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
	case <-time.After(10 * time.Second):
		t.Fatal("Main did not drain")
	}

	// CLI: list, then replay; a dispatcher started afterwards delivers it.
	e, out := env("dlq", "list", "--subscriber", "ledger", "--config", cfgPath)
	if err := Main(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	var dl DeadLetter
	if err := json.Unmarshal(out.Bytes(), &dl); err != nil || dl.EventID != ids[0] {
		t.Fatalf("dlq list printed %q: %v", out.String(), err)
	}
	e, out = env("dlq", "replay", "--subscriber", "ledger", "--event-id", ids[0], "--config", cfgPath)
	if err := Main(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"replayed":1`) {
		t.Fatalf("dlq replay printed %q", out.String())
	}
	rc.setRespond(nil)
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	e, _ = env("--config", cfgPath)
	go func() { done <- Main(ctx2, e) }()
	<-addr
	testenv.Eventually(t, 10*time.Second, func() bool { return len(rc.delivered()) == 1 }, "replay not delivered")
	if rc.delivered()[0] != ids[0] {
		t.Fatalf("replayed with webhook-id %s, want %s", rc.delivered()[0], ids[0])
	}
	cancel2()
	<-done
}

func TestMainUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no config", nil},
		{"dlq without verb", []string{"dlq"}},
		{"dlq unknown verb", []string{"dlq", "purge", "--subscriber", "x"}},
		{"dlq without subscriber", []string{"dlq", "list", "--config", "/nonexistent"}},
		{"missing config file", []string{"--config", "/nonexistent/payhook.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := cli.Env{Args: tt.args, LookupEnv: func(string) (string, bool) { return "", false }, Stdout: io.Discard, Stderr: io.Discard}
			var stderr bytes.Buffer
			if code := cli.ExitCode(Main(context.Background(), env), &stderr); code != cli.ExitConfig {
				t.Fatalf("exit %d, want 2", code)
			}
			if n := strings.Count(stderr.String(), "\n"); n != 1 {
				t.Fatalf("want one line on stderr, got %q", stderr.String())
			}
		})
	}
}
