package dispatch

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/events"
)

// startLogged starts a Dispatcher on the harness config logging into a buffer.
func (h *harness) startLogged(t *testing.T) (*running, *testenv.LogBuffer) {
	t.Helper()
	var logs testenv.LogBuffer
	reg := prometheus.NewRegistry()
	d, err := New(h.cfg, h.js, reg, slog.New(slog.NewJSONHandler(&logs, nil)),
		WithFetchWait(100*time.Millisecond), WithStatsInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return &running{d: d, reg: reg, stop: stop}, &logs
}

// rawPublish stores body on subject with exactly the headers h, as any
// client that reaches NATS can.
func rawPublish(t *testing.T, js jetstream.JetStream, subject string, body []byte, h nats.Header) {
	t.Helper()
	if _, err := js.PublishMsg(context.Background(), &nats.Msg{Subject: subject, Data: body, Header: h}); err != nil {
		t.Fatal(err)
	}
}

func mustMarshal(t *testing.T, e events.Event) []byte {
	t.Helper()
	b, err := e.MarshalCloudEvent()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestForgedEventsAreNeverDelivered: a bare client publishes made-up events
// on payhook.events.jpglo.payin.succeeded, unsigned, signed by an unknown
// key, and carrying a genuine signature made for another event id. None
// reaches either subscriber; each is counted per subscriber, logged once
// with its subject and stream sequence, and terminated. A signed event
// published after them is delivered to both.
func TestForgedEventsAreNeverDelivered(t *testing.T) {
	a, b := newReceiver(t, nil), newReceiver(t, nil)
	h := newHarness(t, sub(t, "a", a.srv.URL), sub(t, "b", b.srv.URL))
	r, logs := h.startLogged(t)

	const subject = "payhook.events.jpglo.payin.succeeded"
	unsigned := event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "forged-1")
	rawPublish(t, h.js, subject, mustMarshal(t, unsigned), nil)

	stranger, _ := events.GenerateKey(rand.Reader)
	strangerSigner, _ := events.NewSigner(stranger)
	wrongKey := event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "forged-2")
	hdr := nats.Header{}
	strangerSigner.Sign(hdr, wrongKey.ID(), time.Now(), mustMarshal(t, wrongKey))
	rawPublish(t, h.js, subject, mustMarshal(t, wrongKey), hdr)

	// The genuine key signed "{genuine id}.{ts}.{this body}": the signature
	// verifies, but it names another event than the body is.
	genuine := event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "genuine-0")
	moved := event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "forged-3")
	hdr = nats.Header{}
	testenv.EventSigner(t).Sign(hdr, genuine.ID(), time.Now(), mustMarshal(t, moved))
	rawPublish(t, h.js, subject, mustMarshal(t, moved), hdr)

	good := h.publish(t, event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "real-1"))
	testenv.Eventually(t, 10*time.Second, func() bool { return len(a.delivered()) == 1 && len(b.delivered()) == 1 }, "signed event not delivered")
	testenv.Eventually(t, 5*time.Second, func() bool {
		return counter(r, "payhook_dispatch_forged_total", "subscriber", "a") == 3 && counter(r, "payhook_dispatch_forged_total", "subscriber", "b") == 3
	}, "forged events not counted 3 per subscriber")
	for _, rc := range []*receiver{a, b} {
		if got := rc.delivered(); len(got) != 1 || got[0] != good[0] {
			t.Fatalf("delivered %v, want only %s", got, good[0])
		}
	}

	// Logged once per message (not per subscriber), with subject and sequence.
	lines := forgedLogLines(logs.String())
	if len(lines) != 3 {
		t.Fatalf("%d forged log lines, want 3:\n%s", len(lines), logs.String())
	}
	reasons := map[string]bool{}
	for i, l := range lines {
		if l["subject"] != subject || l["stream"] != natsbus.StreamEvents || l["stream_seq"] == nil || l["level"] != "ERROR" {
			t.Errorf("log line %d: %v", i, l)
		}
		reasons[l["reason"].(string)] = true
	}
	if !reasons["unsigned"] || !reasons["bad_signature"] || !reasons["id_mismatch"] {
		t.Errorf("reasons %v", reasons)
	}

	// Terminated: nothing left to redeliver on either consumer.
	for _, id := range []string{"a", "b"} {
		testenv.Eventually(t, 5*time.Second, func() bool {
			c, err := h.js.Consumer(context.Background(), natsbus.StreamEvents, ConsumerName(id))
			if err != nil {
				return false
			}
			info, err := c.Info(context.Background())
			return err == nil && info.NumAckPending == 0 && info.NumPending == 0
		}, "consumer "+id+" still holds messages")
	}
}

// TestForgedReplayIsNeverDelivered: a dead letter whose event is not signed
// (made up and put on PAYHOOK_DLQ) is refused by the replay consumer when an
// operator replays it; a genuine dead letter's replay keeps its signature
// and is delivered.
func TestForgedReplayIsNeverDelivered(t *testing.T) {
	rc := newReceiver(t, nil)
	h := newHarness(t, sub(t, "ledger", rc.srv.URL))
	r, logs := h.startLogged(t)
	ctx := context.Background()

	forged := event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "forged-dl")
	if err := PublishDeadLetter(ctx, h.js, DeadLetter{Event: mustMarshal(t, forged), EventID: forged.ID(), Subscriber: "ledger", Attempts: 1, LastError: "x"}, nil); err != nil {
		t.Fatal(err)
	}
	// A genuine one, whose provider field needs HTML escaping in
	// json.Marshal: the dead letter must keep the signed bytes as they are.
	genuine := event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "real-dl")
	genuine.ProviderFields = map[string]any{"remark": "<b>&amp;</b>"}
	body := mustMarshal(t, genuine)
	signed := nats.Header{}
	testenv.EventSigner(t).Sign(signed, genuine.ID(), time.Now(), body)
	if err := PublishDeadLetter(ctx, h.js, DeadLetter{Event: body, EventID: genuine.ID(), Subscriber: "ledger", Attempts: 1, LastError: "x"}, signed); err != nil {
		t.Fatal(err)
	}
	res, err := Replay(ctx, h.js, "ledger", nil)
	if err != nil || res.Replayed != 2 {
		t.Fatalf("Replay = %+v, %v", res, err)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return len(rc.delivered()) == 1 }, "genuine replay not delivered")
	testenv.Eventually(t, 5*time.Second, func() bool { return counter(r, "payhook_dispatch_forged_total", "subscriber", "ledger") == 1 }, "forged replay not counted")
	if got := rc.delivered(); got[0] != genuine.ID() {
		t.Fatalf("delivered %v", got)
	}
	if !strings.Contains(logs.String(), `"stream":"`+StreamReplay+`"`) {
		t.Fatalf("no forged log line for the replay stream:\n%s", logs.String())
	}
}

// TestRotationAcceptsBothKeys: with the old and the new public key
// configured, events signed by either are delivered; one signed by a key
// not configured is not.
func TestRotationAcceptsBothKeys(t *testing.T) {
	rc := newReceiver(t, nil)
	h := newHarness(t, sub(t, "ledger", rc.srv.URL))
	next, _ := events.GenerateKey(rand.Reader)
	h.cfg.EventSigning.PublicKeys = []string{testenv.EventPublicKey, next.Public().Encode()}
	r, _ := h.startLogged(t)

	old := event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "by-old")
	h.publish(t, old) // testenv's key: the old one
	nextSigner, _ := events.NewSigner(next)
	byNew := event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "by-new")
	hdr := nats.Header{}
	nextSigner.Sign(hdr, byNew.ID(), time.Now(), mustMarshal(t, byNew))
	rawPublish(t, h.js, byNew.Subject(), mustMarshal(t, byNew), hdr)
	dropped, _ := events.GenerateKey(rand.Reader)
	droppedSigner, _ := events.NewSigner(dropped)
	byDropped := event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "by-dropped")
	hdr = nats.Header{}
	droppedSigner.Sign(hdr, byDropped.ID(), time.Now(), mustMarshal(t, byDropped))
	rawPublish(t, h.js, byDropped.Subject(), mustMarshal(t, byDropped), hdr)

	testenv.Eventually(t, 10*time.Second, func() bool { return len(rc.delivered()) == 2 }, "events signed by the old and the new key not both delivered")
	testenv.Eventually(t, 5*time.Second, func() bool { return counter(r, "payhook_dispatch_forged_total", "subscriber", "ledger") == 1 }, "unknown key not refused")
	if !sameSet(rc.delivered(), []string{old.ID(), byNew.ID()}) {
		t.Fatalf("delivered %v", rc.delivered())
	}
}

// TestRunEventSigning: Run refuses with a config error naming
// event_signing.public_keys when it has none; with disabled: true it says
// so at start and delivers an unsigned event.
func TestRunEventSigning(t *testing.T) {
	rc := newReceiver(t, nil)
	h := newHarness(t)
	cfg := func(signing string) *config.Config {
		y := "nats:\n  url: " + h.n.URL + "\ndispatcher:\n  listen: 127.0.0.1:0\n" + signing +
			"subscribers:\n  - id: ledger\n    url: " + rc.srv.URL + "\n    secret: " + newSecret(t) + "\n"
		p := filepath.Join(t.TempDir(), "payhook.yaml")
		if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := config.Load(p, func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	var ce *config.Error
	if err := Run(context.Background(), cfg(""), RunOptions{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}); !errors.As(err, &ce) || ce.Key != "event_signing.public_keys" {
		t.Fatalf("without keys: %v, want a config error naming event_signing.public_keys", err)
	}

	var logs testenv.LogBuffer
	addr := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg("event_signing:\n  disabled: true\n"), RunOptions{
			Log: slog.New(slog.NewJSONHandler(&logs, nil)), Listening: func(a string) { addr <- a },
		})
	}()
	select {
	case <-addr:
	case err := <-done:
		t.Fatalf("Run returned: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not start")
	}
	if !strings.Contains(logs.String(), "event_signing.disabled is true") {
		t.Fatalf("no warning at start:\n%s", logs.String())
	}
	ev := event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "unsigned-ok")
	if _, err := natsbus.Publish(ctx, h.js, ev.Subject(), ev.ID(), mustMarshal(t, ev), nil); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return len(rc.delivered()) == 1 }, "unsigned event not delivered with signing disabled")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
}

// TestVerifiedCache: a copy identical to a verified message is a hit; a
// copy differing in any signed part is verified afresh and refused.
func TestVerifiedCache(t *testing.T) {
	k, _ := events.ParsePublicKey(testenv.EventPublicKey)
	d := &Dispatcher{keys: []events.PublicKey{k}}
	e := event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "cache-1")
	body := mustMarshal(t, e)
	h := nats.Header{}
	testenv.EventSigner(t).Sign(h, e.ID(), time.Unix(1765000000, 0), body)
	for range 2 {
		if id, err := d.verify(h, body); err != nil || id != e.ID() {
			t.Fatalf("verify = %q, %v", id, err)
		}
	}
	if _, ok := d.verified.get(verifiedKey(h, body)); !ok {
		t.Fatal("verified message not cached")
	}
	tampered := bytes.Replace(body, []byte("100.00"), []byte("900.00"), 1)
	if _, err := d.verify(h, tampered); err == nil {
		t.Fatal("tampered body verified (cache hit on a different message?)")
	}
	for _, name := range signedHeaders {
		h2 := nats.Header{}
		copySigned(h2, h)
		h2.Set(name, h.Get(name)+"0")
		if _, err := d.verify(h2, body); err == nil {
			t.Fatalf("%s changed, still verified", name)
		}
	}
}

// TestVerifyConcurrentCopies: copies of one message verified at once (the
// subscribers' consumers getting a new event together) all get the same
// answer, a forged one included, whichever copy verifies and whichever wait.
func TestVerifyConcurrentCopies(t *testing.T) {
	k, _ := events.ParsePublicKey(testenv.EventPublicKey)
	d := &Dispatcher{keys: []events.PublicKey{k}}
	var verifications atomic.Int64
	verifyEvent = func(keys []events.PublicKey, h events.HeaderGetter, data []byte) (string, error) {
		verifications.Add(1)
		time.Sleep(20 * time.Millisecond) // long enough for the other copies to arrive and wait
		return events.Verify(keys, h, data)
	}
	t.Cleanup(func() { verifyEvent = events.Verify })
	for i := range 20 {
		e := event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, fmt.Sprintf("conc-%d", i))
		body := mustMarshal(t, e)
		h := nats.Header{}
		testenv.EventSigner(t).Sign(h, e.ID(), time.Unix(1765000000, 0), body)
		forged := bytes.Replace(body, []byte("100.00"), []byte("900.00"), 1)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				if g%2 == 0 {
					if id, err := d.verify(h, body); err != nil || id != e.ID() {
						t.Errorf("genuine copy: %q, %v", id, err)
					}
				} else if _, err := d.verify(h, forged); !errors.Is(err, events.ErrSignature) {
					t.Errorf("forged copy: %v, want ErrSignature", err)
				}
			})
		}
		wg.Wait()
	}
	if len(d.verified.busy) != 0 {
		t.Fatalf("%d verifications left claimed", len(d.verified.busy))
	}
	// Per message: the genuine copies share one verification; a forged
	// copy is never cached, so each of its 4 copies verifies (one
	// claimant, three after waiting for it).
	if n := verifications.Load(); n != 20*(1+4) {
		t.Fatalf("%d verifications for 20 messages, want %d (one per genuine message, every forged copy)", n, 20*5)
	}
}

// BenchmarkVerifyCacheHit is what each further subscriber's copy of an
// event costs the dispatcher once the first copy verified (the first costs
// pkg/events BenchmarkSignVerify/verify).
func BenchmarkVerifyCacheHit(b *testing.B) {
	k, _ := events.ParsePublicKey(testenv.EventPublicKey)
	d := &Dispatcher{keys: []events.PublicKey{k}}
	e := event("jpglo", "glo-in", events.KindPayin, events.StatusSucceeded, "bench")
	body, _ := e.MarshalCloudEvent()
	h := nats.Header{}
	testenv.EventSigner(b).Sign(h, e.ID(), time.Unix(1765000000, 0), body)
	if _, err := d.verify(h, body); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.verify(h, body); err != nil {
			b.Fatal(err)
		}
	}
}

// forgedLogLines are the JSON log lines of log that report a refused forged
// event.
func forgedLogLines(log string) []map[string]any {
	var lines []map[string]any
	for _, l := range strings.Split(log, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			if msg, _ := m["msg"].(string); strings.HasPrefix(msg, "forged event refused") {
				lines = append(lines, m)
			}
		}
	}
	return lines
}
