package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/cli"
	"github.com/payhook/payhook/internal/testenv"
)

func env(args ...string) (cli.Env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return cli.Env{Args: args, LookupEnv: func(k string) (string, bool) {
		if k == "GLO_KEY" {
			return "k", true
		}
		return "", false
	}, Stdout: &out, Stderr: &errb}, &out, &errb
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "payhook.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBadConfigExits2WithOneLine(t *testing.T) {
	cases := map[string]string{
		"unknown key":        "nats:\n  url: nats://127.0.0.1:1\nbogus: 1\n",
		"missing env":        "nats:\n  url: nats://127.0.0.1:1\naccounts:\n  - {id: a, provider: jpglo, merchant_id: '1', secret: '${NOPE}', currency: INR}\n",
		"no nats url":        "ingress:\n  listen: 127.0.0.1:0\n",
		"bad provider":       "nats:\n  url: nats://127.0.0.1:1\naccounts:\n  - {id: a, provider: paypal, merchant_id: '1', secret: x, currency: INR}\n",
		"proxy header alone": "nats:\n  url: nats://127.0.0.1:1\ningress:\n  trusted_proxy_header: X-Forwarded-For\n",
		"no event key":       "nats:\n  url: nats://127.0.0.1:1\n",
		"bad event key":      "nats:\n  url: nats://127.0.0.1:1\nevent_signing: {private_key: whsk_AAAA}\n",
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			e, _, errb := env("--config", writeConfig(t, body))
			err := run(context.Background(), e)
			var stderr bytes.Buffer
			if code := cli.ExitCode(err, &stderr); code != 2 {
				t.Fatalf("exit %d (%v), want 2", code, err)
			}
			line := strings.TrimRight(stderr.String(), "\n")
			if strings.Count(line, "\n") != 0 || !strings.HasPrefix(line, "config: ") {
				t.Errorf("stderr %q is not one config line", line)
			}
			if strings.Contains(name, "event key") && !strings.HasPrefix(line, "config: event_signing.private_key: ") {
				t.Errorf("stderr %q does not name event_signing.private_key", line)
			}
			_ = errb
		})
	}
	e, _, _ := env()
	if code := cli.ExitCode(run(context.Background(), e), &bytes.Buffer{}); code != 2 {
		t.Errorf("no --config: exit %d, want 2", code)
	}
}

func TestVersion(t *testing.T) {
	e, out, _ := env("--version")
	if code := cli.ExitCode(run(context.Background(), e), &bytes.Buffer{}); code != 0 || !strings.HasPrefix(out.String(), "ingress ") {
		t.Fatalf("exit %d, stdout %q", code, out.String())
	}
}

func TestRunServesAndDrainsOnCancel(t *testing.T) {
	n := testenv.StartNATS(t)
	port := testenv.FreePort(t)
	cfg := fmt.Sprintf("nats:\n  url: %s\nevent_signing: {private_key: "+testenv.EventPrivateKey+"}\ningress:\n  listen: 127.0.0.1:%d\naccounts:\n  - {id: glo-in, provider: jpglo, merchant_id: '1', secret: '${GLO_KEY}', currency: INR}\n", n.URL, port)
	e, _, _ := env("--config", writeConfig(t, cfg))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, e) }()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	testenv.Eventually(t, 10*time.Second, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, "readyz")
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"payhook_publish_duration_seconds", "payhook_ingress_raw_publish_errors_total", "go_goroutines"} {
		if !strings.Contains(b.String(), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after cancel: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

// A setting found unusable only at start (go-redis refuses the URL's
// database) is still exit 2 with one line naming the key.
func TestBadRedisURLAtStartExits2(t *testing.T) {
	n := testenv.StartNATS(t)
	cfg := fmt.Sprintf("nats:\n  url: %s\nevent_signing: {private_key: "+testenv.EventPrivateKey+"}\nredis:\n  url: redis://127.0.0.1:6379/notadb\ningress:\n  listen: 127.0.0.1:%d\n", n.URL, testenv.FreePort(t))
	e, _, _ := env("--config", writeConfig(t, cfg))
	var stderr bytes.Buffer
	err := run(context.Background(), e)
	if code := cli.ExitCode(err, &stderr); code != 2 || !strings.HasPrefix(stderr.String(), "config: redis.url: ") {
		t.Fatalf("exit %d, stderr %q; want 2 naming redis.url", code, stderr.String())
	}
}
