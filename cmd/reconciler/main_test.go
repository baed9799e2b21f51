package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/cli"
	"github.com/payhook/payhook/internal/testenv"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "payhook.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func env(args ...string) (cli.Env, *bytes.Buffer) {
	var stderr bytes.Buffer
	return cli.Env{Args: args, LookupEnv: func(k string) (string, bool) {
		if k == "PAYHOOK_ADMIN_TOKEN" {
			return "tok-reconciler-main-test-0123456789", true
		}
		return "", false
	}, Stdout: io.Discard, Stderr: &stderr}, &stderr
}

func TestBadConfigExitsWithStatus2(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"unknown key", "nats: {url: nats://127.0.0.1:4222}\nreconciler: {shedule: [1m]}\n", "shedule"},
		{"bad schedule", "nats: {url: nats://127.0.0.1:4222}\nreconciler: {schedule: [1m, -1m]}\n", "reconciler.schedule[1]"},
		{"no nats url", "reconciler: {listen: 127.0.0.1:0}\n", "nats.url"},
		{"missing env", "nats: {url: nats://127.0.0.1:4222}\nadmin_token: ${NOPE}\n", "NOPE"},
		{"no event key", "nats: {url: nats://127.0.0.1:4222}\nevent_signing: {public_keys: [\"" + testenv.EventPublicKey + "\"]}\n", "event_signing.private_key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, stderr := env("--config", writeConfig(t, c.yaml))
			code := cli.ExitCode(run(context.Background(), e), stderr)
			if code != 2 || !strings.Contains(stderr.String(), c.want) || strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want 2 and one line naming %s", code, stderr.String(), c.want)
			}
		})
	}
}

func TestRunServesAndDrainsOnCancel(t *testing.T) {
	n := testenv.StartNATS(t)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg := fmt.Sprintf(`
nats: {url: %q}
admin_token: ${PAYHOOK_ADMIN_TOKEN}
event_signing: {private_key: "`+testenv.EventPrivateKey+`", public_keys: ["`+testenv.EventPublicKey+`"]}
reconciler: {listen: %q, schedule: [1h]}
log: {level: warn}
accounts:
  - {id: glo-in, provider: jpglo, merchant_id: "1", secret: k, base_url: "http://127.0.0.1:1", currency: INR}
`, n.URL, addr)
	e, stderr := env("--config", writeConfig(t, cfg))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, e) }()
	base := "http://" + addr
	testenv.Eventually(t, 10*time.Second, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, "/readyz never 200; stderr: %s", stderr)

	req, _ := http.NewRequest(http.MethodPost, base+"/v1/watches", strings.NewReader(`{"provider":"jpglo","account":"glo-in","kind":"payin","merchant_order_id":"O-1"}`))
	req.Header.Set("Authorization", "Bearer tok-reconciler-main-test-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Errorf("POST /v1/watches = %d, want 202", resp.StatusCode)
	}
	testenv.Eventually(t, 5*time.Second, func() bool {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), "payhook_reconciler_watches_open 1")
	}, "watches_open never 1")

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not drain")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("still serving after shutdown")
	}
}
