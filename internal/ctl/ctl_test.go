package ctl

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/cli"
	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/dispatch"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/reconcile"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/events"
)

// stack is a real NATS server with payhook's streams, a config file for it,
// and payhookctl run in-process on that file.
type stack struct {
	t       testing.TB
	n       *testenv.NATS
	js      jetstream.JetStream
	cfgPath string
	cfg     *config.Config
}

func newSecret(t testing.TB) string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// newStack starts NATS and writes a config whose body follows the nats key.
func newStack(t testing.TB, body string) *stack {
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
	p := filepath.Join(t.TempDir(), "payhook.yaml")
	y := "nats: {url: " + n.URL + "}\nadmin_token: " + strings.Repeat("a", 32) + "\n" +
		"event_signing: {private_key: \"" + testenv.EventPrivateKey + "\", public_keys: [\"" + testenv.EventPublicKey + "\"]}\n" + body
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(p, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return &stack{t: t, n: n, js: js, cfgPath: p, cfg: cfg}
}

// ctl runs payhookctl with args (and --config); it returns stdout and the error.
func (s *stack) ctl(args ...string) (string, error) {
	s.t.Helper()
	var out bytes.Buffer
	env := s.env()
	env.Args = append(env.Args, args...)
	env.Stdout = &out
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := Run(ctx, env)
	return out.String(), err
}

// env is payhookctl's environment on the stack's config.
func (s *stack) env() cli.Env {
	return cli.Env{Args: []string{"--config", s.cfgPath}, LookupEnv: func(string) (string, bool) { return "", false }, Stdout: io.Discard, Stderr: io.Discard}
}

// ctlJSON runs payhookctl --json and decodes its one document into v.
func (s *stack) ctlJSON(v any, args ...string) {
	s.t.Helper()
	out, err := s.ctl(append([]string{"--json"}, args...)...)
	if err != nil {
		s.t.Fatalf("payhookctl %v: %v", args, err)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		s.t.Fatalf("payhookctl %v: not one JSON document: %v\n%s", args, err, out)
	}
}

// serve runs f (a service's Run) until the test ends, waits until it is
// ready (its consumers exist: a subscriber starts with the events stored
// after that), and returns its address.
func serve(t testing.TB, f func(ctx context.Context, ln net.Listener) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("service did not stop")
		}
	})
	testenv.Eventually(t, 20*time.Second, func() bool {
		r, err := http.Get("http://" + ln.Addr().String() + "/readyz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == http.StatusOK
	}, "service not ready")
	return ln.Addr().String()
}

func (s *stack) startDispatcher(log io.Writer) string {
	s.t.Helper()
	return serve(s.t, func(ctx context.Context, ln net.Listener) error {
		return dispatch.Run(ctx, s.cfg, dispatch.RunOptions{Listener: ln, Log: slog.New(slog.NewJSONHandler(log, nil))})
	})
}

func (s *stack) startReconciler() {
	s.t.Helper()
	serve(s.t, func(ctx context.Context, ln net.Listener) error {
		return reconcile.Run(ctx, s.cfg, reconcile.RunOptions{Listener: ln, Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), DrainTimeout: 5 * time.Second})
	})
}

func (s *stack) publishEvent(order string) string {
	s.t.Helper()
	amt, _ := events.ParseMoney("100.00", "INR")
	e := events.Event{Provider: "jpglo", Account: "glo-in", Kind: events.KindPayin, Status: events.StatusSucceeded,
		MerchantOrderID: order, Amount: amt, OccurredAt: time.Now().UTC(), ReceivedAt: time.Now().UTC(), Origin: events.OriginCallback}
	b, err := e.MarshalCloudEvent()
	if err != nil {
		s.t.Fatal(err)
	}
	testenv.PublishEvent(s.t, s.js, e.Subject(), e.ID(), b)
	return e.ID()
}

// receiver is a subscriber endpoint answering status() and counting by webhook-id.
type receiver struct {
	mu     sync.Mutex
	seen   map[string]int
	status int
	srv    *httptest.Server
}

func newReceiver(t *testing.T, status int) *receiver {
	rc := &receiver{seen: map[string]int{}, status: status}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.mu.Lock()
		rc.seen[r.Header.Get("webhook-id")]++
		st := rc.status
		rc.mu.Unlock()
		w.WriteHeader(st)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// newReceiverHandler serves h as a subscriber endpoint and returns its URL.
func newReceiverHandler(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func (rc *receiver) count(id string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.seen[id]
}

func (rc *receiver) set(status int) {
	rc.mu.Lock()
	rc.status = status
	rc.mu.Unlock()
}

func subscriberYAML(t *testing.T, id, url string, maxAttempts int) string {
	return fmt.Sprintf(`  - {id: %s, url: %q, secret: %q, max_attempts: %d, timeout: 1s, backoff_initial: 10ms, backoff_max: 20ms}
`, id, url, newSecret(t), maxAttempts)
}

type subscribersDoc struct {
	Subscribers []SubscriberState `json:"subscribers"`
}

func (d subscribersDoc) get(id string) SubscriberState {
	for _, s := range d.Subscribers {
		if s.ID == id {
			return s
		}
	}
	return SubscriberState{}
}

// TestSubscribersPauseResume: a pause from payhookctl (or a key written by
// hand) stops deliveries on every replica and says why, in subscribers ls
// and in the log, without claiming a 410; resume delivers what was kept.
func TestSubscribersPauseResume(t *testing.T) {
	rc := newReceiver(t, 200)
	s := newStack(t, "subscribers:\n"+subscriberYAML(t, "ledger", rc.srv.URL, 5))
	var log1, log2 testenv.LogBuffer
	s.startDispatcher(&log1)
	s.startDispatcher(&log2) // a second replica

	first := s.publishEvent("o-1")
	testenv.Eventually(t, 10*time.Second, func() bool { return rc.count(first) == 1 }, "first event not delivered")

	if _, err := s.ctl("subscribers", "pause", "ledger", "--reason", "ledger maintenance", "--dry-run"); err != nil {
		t.Fatal(err)
	}
	var doc subscribersDoc
	s.ctlJSON(&doc, "subscribers", "ls")
	if doc.get("ledger").Paused {
		t.Fatal("--dry-run paused the subscriber")
	}
	out, err := s.ctl("subscribers", "pause", "ledger", "--reason", "ledger maintenance")
	if err != nil || !strings.Contains(out, "paused ledger") {
		t.Fatalf("pause: %v %q", err, out)
	}
	for _, l := range []*testenv.LogBuffer{&log1, &log2} {
		testenv.Eventually(t, 5*time.Second, func() bool { return strings.Contains(l.String(), "ledger maintenance") }, "a replica did not log the pause with its reason")
	}
	held := s.publishEvent("o-2")
	time.Sleep(2 * time.Second) // several fetch waits of both replicas
	if n := rc.count(held); n != 0 {
		t.Fatalf("paused subscriber called %d times", n)
	}
	s.ctlJSON(&doc, "subscribers", "ls")
	st := doc.get("ledger")
	if !st.Paused || st.Pause == nil || st.Pause.Reason != "ledger maintenance" || st.Pause.By != "operator" {
		t.Fatalf("ls after pause: %+v", st)
	}
	if st.Lag == nil || *st.Lag != 1 {
		t.Fatalf("lag %v, want 1 (the held event)", st.Lag)
	}
	table, err := s.ctl("subscribers", "ls")
	if err != nil || !strings.Contains(table, "ledger maintenance") || !strings.Contains(table, "SUBSCRIBER") {
		t.Fatalf("table: %v\n%s", err, table)
	}

	if _, err := s.ctl("subscribers", "resume", "ledger"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return rc.count(held) == 1 }, "held event not delivered after resume")

	// A key written by hand with plain text pauses too, and the log gives
	// that text, not a 410.
	kv, err := s.js.KeyValue(context.Background(), dispatch.PauseBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.PutString(context.Background(), "ledger", "db migration"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return strings.Contains(log1.String(), "db migration") }, "hand-written pause not logged with its text")
	s.ctlJSON(&doc, "subscribers", "ls")
	if st := doc.get("ledger"); !st.Paused || st.Pause.Reason != "db migration" {
		t.Fatalf("hand-written pause: %+v", st)
	}
	for _, l := range []string{log1.String(), log2.String()} {
		if strings.Contains(l, "410 Gone") || strings.Contains(l, "answered 410") {
			t.Fatalf("a pause that was no 410 was logged as one:\n%s", l)
		}
	}

	if _, err := s.ctl("subscribers", "pause", "nobody"); err == nil || cli.ExitCode(err, io.Discard) != cli.ExitConfig {
		t.Fatalf("unknown subscriber: %v", err)
	}
}

// TestDLQAndSubscriberErrors: a failing subscriber shows its last error and
// dead letters; dlq replay --dry-run changes nothing, dlq replay
// re-delivers with the same webhook-id.
func TestDLQAndSubscriberErrors(t *testing.T) {
	rc := newReceiver(t, 503)
	s := newStack(t, "subscribers:\n"+subscriberYAML(t, "ledger", rc.srv.URL, 2))
	s.startDispatcher(io.Discard)
	id := s.publishEvent("o-9")

	var dl struct {
		Subscriber  string                `json:"subscriber"`
		DeadLetters []dispatch.DeadLetter `json:"dead_letters"`
	}
	testenv.Eventually(t, 10*time.Second, func() bool {
		s.ctlJSON(&dl, "dlq", "ls", "ledger")
		return len(dl.DeadLetters) == 1
	}, "no dead letter")
	if d := dl.DeadLetters[0]; d.EventID != id || d.Attempts != 2 || d.LastStatus != 503 {
		t.Fatalf("dead letter %+v", d)
	}
	var doc subscribersDoc
	testenv.Eventually(t, 10*time.Second, func() bool {
		s.ctlJSON(&doc, "subscribers", "ls")
		st := doc.get("ledger")
		return st.LastStatus == 503 && strings.Contains(st.LastError, "503") && st.DeadLetters == 1
	}, "subscribers ls does not show the last error and the dead letter: %+v", doc)

	var rep struct {
		Replayed int  `json:"replayed"`
		DryRun   bool `json:"dry_run"`
	}
	s.ctlJSON(&rep, "dlq", "replay", "--subscriber", "ledger", "--dry-run")
	if rep.Replayed != 1 || !rep.DryRun {
		t.Fatalf("dry run: %+v", rep)
	}
	s.ctlJSON(&dl, "dlq", "ls", "ledger")
	if len(dl.DeadLetters) != 1 {
		t.Fatal("--dry-run removed the dead letter")
	}
	rc.set(200)
	before := rc.count(id)
	s.ctlJSON(&rep, "dlq", "replay", "ledger")
	if rep.Replayed != 1 {
		t.Fatalf("replay: %+v", rep)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return rc.count(id) == before+1 }, "replayed event not delivered with its webhook-id")
	s.ctlJSON(&dl, "dlq", "ls", "ledger")
	if len(dl.DeadLetters) != 0 {
		t.Fatalf("dead letters after replay: %+v", dl.DeadLetters)
	}
}
