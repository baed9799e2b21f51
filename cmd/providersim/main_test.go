package main

import (
	"bufio"
	"context"
	"encoding/json"
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
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/providersim"
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
	out := &testenv.LogBuffer{}
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
		{"drop above 1", []string{"--config", good, "--drop", "1.5"}},
		{"negative query timeout", []string{"--config", good, "--query-timeout", "-0.1"}},
		{"negative duplicate-n", []string{"--config", good, "--duplicate", "1", "--duplicate-n", "-1"}},
		{"negative max-delay", []string{"--config", good, "--delay", "1", "--max-delay", "-1s"}},
		{"probability not a number", []string{"--config", good, "--corrupt", "often"}},
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
		out := &testenv.LogBuffer{}
		err := run(context.Background(), cli.Env{Args: []string{"--version"}, LookupEnv: func(string) (string, bool) { return "", false }, Stdout: out, Stderr: io.Discard})
		if !errors.Is(err, cli.ErrVersion) || !strings.HasPrefix(out.String(), "providersim ") {
			t.Fatalf("err %v out %q", err, out.String())
		}
	})
}

// startRun runs the binary in-process with args (plus the test config and
// --listen on a free port) against ingress, and returns the simulator's root
// URL, its stdout and a stop function that asserts a clean exit.
func startRun(t *testing.T, ingress string, args ...string) (root string, out *testenv.LogBuffer, stop func()) {
	t.Helper()
	out = &testenv.LogBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	env := cli.Env{
		Args:      append([]string{"--config", writeConfig(t, testConfig), "--listen", "127.0.0.1:0", "--ingress", ingress}, args...),
		LookupEnv: func(string) (string, bool) { return "", false },
		Stdout:    out,
		Stderr:    io.Discard,
	}
	done := make(chan error, 1)
	go func() { done <- run(ctx, env) }()
	deadline := time.Now().Add(5 * time.Second)
	for root == "" {
		if _, after, ok := strings.Cut(out.String(), "providersim listening on "); ok {
			root, _, _ = strings.Cut(after, ",")
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no listening line; stdout:\n%s", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	stopped := false
	stop = func() {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("run did not stop")
		}
	}
	t.Cleanup(stop)
	return root, out, stop
}

func getFaults(t *testing.T, method, url, body string) (int, providersim.FaultMixJSON) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var j providersim.FaultMixJSON
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&j); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, j
}

// TestRunFaultFlags: every fault flag reaches the simulator's mix, as the
// control endpoint and the start-up line show.
func TestRunFaultFlags(t *testing.T) {
	ingress := httptest.NewServer(http.NotFoundHandler())
	defer ingress.Close()
	root, out, _ := startRun(t, ingress.URL, "--rate", "0",
		"--drop", "0.1", "--duplicate", "0.2", "--duplicate-n", "3", "--reorder", "0.3", "--corrupt", "0.4",
		"--delay", "0.5", "--max-delay", "250ms", "--query-fail", "0.6", "--query-timeout", "0.7")
	code, got := getFaults(t, http.MethodGet, root+"/faults", "")
	want := providersim.FaultMixJSON{Drop: 0.1, Duplicate: 0.2, DuplicateN: 3, Reorder: 0.3, Corrupt: 0.4,
		Delay: 0.5, MaxDelay: "250ms", QueryFail: 0.6, QueryTimeout: 0.7}
	if code != http.StatusOK || got != want {
		t.Fatalf("GET /faults: %d %+v, want %+v", code, got, want)
	}
	if !strings.Contains(out.String(), "faults: drop=0.1 duplicate=0.2 duplicate-n=3 reorder=0.3 corrupt=0.4 delay=0.5 max-delay=250ms query-fail=0.6 query-timeout=0.7 (GET or POST "+root+"/faults") {
		t.Errorf("start-up output does not show the mix:\n%s", out.String())
	}
	// The providers' APIs are still served beside /faults.
	resp, err := http.Get(root + "/mrnpay/mrn-cn/api/Payments/Query?appKey=app-1&mrn=x&sign=0")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"sign_error"`) {
		t.Fatalf("API answer %q", b)
	}
}

// TestRunFaultsOnRequest: --drop 1 withholds every callback; a POST to
// /faults replaces it in the running simulator (no drop, two extra copies
// of every callback) and callbacks flow, in threes.
func TestRunFaultsOnRequest(t *testing.T) {
	var got atomic.Int64
	var mu sync.Mutex
	copies := map[string]int{} // body → times received
	ingress := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		copies[string(b)]++
		mu.Unlock()
		got.Add(1)
		if strings.HasPrefix(r.URL.Path, "/v1/callbacks/jpglo/") {
			_, _ = io.WriteString(w, `{"status":0,"msg":"处理成功"}`)
		} else {
			_, _ = io.WriteString(w, "success")
		}
	}))
	defer ingress.Close()
	root, out, stop := startRun(t, ingress.URL, "--rate", "200", "--timescale", "0.000001", "--seed", "5", "--drop", "1")
	time.Sleep(300 * time.Millisecond) // ~60 orders, every one dropped
	if n := got.Load(); n != 0 {
		t.Fatalf("ingress got %d callbacks under --drop 1", n)
	}
	code, mix := getFaults(t, http.MethodPost, root+"/faults", `{"duplicate": 1, "duplicate_n": 2}`)
	if code != http.StatusOK || mix.Drop != 0 || mix.Duplicate != 1 {
		t.Fatalf("POST /faults: %d %+v", code, mix)
	}
	tripled := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range copies {
			if n == 3 {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(5 * time.Second)
	for got.Load() < 9 || !tripled() {
		if time.Now().After(deadline) {
			t.Fatalf("ingress got %d callbacks after the drop fault was turned off (tripled: %v)", got.Load(), tripled())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if code, _ := getFaults(t, http.MethodPost, root+"/faults", `{"drop": 7}`); code != http.StatusBadRequest {
		t.Errorf("POST drop=7: %d, want 400", code)
	}
	stop()
	// The printed stats count the dropped callbacks and the extra copies.
	stats := map[string]providersim.ProviderStats{}
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "stats "); ok {
			name, js, _ := strings.Cut(rest, " ")
			var st providersim.ProviderStats
			if err := json.Unmarshal([]byte(js), &st); err != nil {
				t.Fatalf("stats line %q: %v", sc.Text(), err)
			}
			stats[name] = st
		}
	}
	if d := stats["jpglo"].Dropped + stats["mrnpay"].Dropped; d < 10 {
		t.Errorf("stats count %d dropped callbacks, want the orders before the POST withheld:\n%s", d, out.String())
	}
}
