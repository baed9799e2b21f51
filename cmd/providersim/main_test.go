package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/cli"
)

const testConfig = `
ingress:
  listen: 127.0.0.1:1
accounts:
  - id: glo-in
    provider: jpglo
    merchant_id: "1"
    secret: 9ce23be4-a31b-498f-b951-ad7e771c3d73
    currency: INR
  - id: mrn-cn
    provider: mrnpay
    merchant_id: app-1
    secret: s3cr3t-mrn
    currency: CNY
`

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "payhook.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// syncBuffer is an io.Writer safe to read while run writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunSendsTrafficAndStops: the binary posts callbacks to --ingress,
// serves the APIs under the printed base_urls, and exits 0 when cancelled.
func TestRunSendsTrafficAndStops(t *testing.T) {
	var got atomic.Int64
	ingress := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got.Add(1)
		switch {
		case strings.HasPrefix(r.URL.Path, "/v1/callbacks/jpglo/"):
			_, _ = io.WriteString(w, `{"status":0,"msg":"处理成功"}`)
		case strings.HasPrefix(r.URL.Path, "/v1/callbacks/mrnpay/"):
			_, _ = io.WriteString(w, "success")
		default:
			http.NotFound(w, r)
		}
	}))
	defer ingress.Close()
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := cli.Env{
		Args:      []string{"--config", writeConfig(t, testConfig), "--listen", "127.0.0.1:0", "--ingress", ingress.URL, "--rate", "100", "--timescale", "0.000001", "--seed", "3"},
		LookupEnv: func(string) (string, bool) { return "", false },
		Stdout:    out,
		Stderr:    io.Discard,
	}
	done := make(chan error, 1)
	go func() { done <- run(ctx, env) }()

	deadline := time.Now().Add(5 * time.Second)
	for got.Load() < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("ingress got %d callbacks; stdout:\n%s", got.Load(), out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The printed base_url serves the account's API.
	var base string
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		if _, after, ok := strings.Cut(sc.Text(), "account mrn-cn (mrnpay): base_url "); ok {
			base = after
		}
	}
	if !strings.HasSuffix(base, "/mrnpay/mrn-cn") {
		t.Fatalf("no base_url printed:\n%s", out.String())
	}
	resp, err := http.Get(base + "/api/Payments/Query?appKey=app-1&mrn=x&sign=0")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"sign_error"`) {
		t.Fatalf("API answer %q", b)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not stop")
	}
	if !strings.Contains(out.String(), "stats jpglo {") {
		t.Fatalf("no stats printed:\n%s", out.String())
	}
}

func TestRunUsageErrors(t *testing.T) {
	good := writeConfig(t, testConfig)
	cases := []struct {
		name string
		args []string
	}{
		{"no config", []string{}},
		{"bad config", []string{"--config", writeConfig(t, "accounts: [{id: BAD}]")}},
		{"no accounts", []string{"--config", writeConfig(t, "ingress: {listen: 127.0.0.1:1}")}},
		{"negative rate", []string{"--config", good, "--rate", "-1"}},
		{"zero timescale", []string{"--config", good, "--timescale", "0"}},
		{"unknown flag", []string{"--nope"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := cli.Env{Args: c.args, LookupEnv: func(string) (string, bool) { return "", false }, Stdout: io.Discard, Stderr: io.Discard}
			err := run(context.Background(), env)
			if code := cli.ExitCode(err, io.Discard); code != cli.ExitConfig {
				t.Fatalf("exit %d (%v), want %d", code, err, cli.ExitConfig)
			}
		})
	}
	t.Run("version", func(t *testing.T) {
		out := &syncBuffer{}
		err := run(context.Background(), cli.Env{Args: []string{"--version"}, LookupEnv: func(string) (string, bool) { return "", false }, Stdout: out, Stderr: io.Discard})
		if !errors.Is(err, cli.ErrVersion) || !strings.HasPrefix(out.String(), "providersim ") {
			t.Fatalf("err %v out %q", err, out.String())
		}
	})
}
