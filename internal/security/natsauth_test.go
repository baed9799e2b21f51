package security_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
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

	"github.com/payhook/payhook/internal/cli"
	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/ctl"
	"github.com/payhook/payhook/internal/dispatch"
	"github.com/payhook/payhook/internal/ingress"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/reconcile"
	"github.com/payhook/payhook/internal/testenv"
)

// authConf is the repository's NATS authorization, the file deploy/k8s
// and docker-compose run NATS with.
var authConf = filepath.Join("..", "..", "deploy", "nats", "auth.conf")

// natsPasswords are the users' passwords, given to nats-server through the
// environment as auth.conf expects.
var natsPasswords = map[string]string{
	"ingress":    "SECnats-ingress-pw-1f2e",
	"dispatcher": "SECnats-dispatcher-pw-3d4c",
	"reconciler": "SECnats-reconciler-pw-5b6a",
	"consumer":   "SECnats-consumer-pw-7988",
	"operator":   "SECnats-operator-pw-9a0b",
}

// startAuthNATS starts a real nats-server from deploy/nats/auth.conf.
func startAuthNATS(t *testing.T) *testenv.NATS {
	t.Helper()
	for user, pw := range natsPasswords {
		t.Setenv("PAYHOOK_NATS_"+strings.ToUpper(user)+"_PASSWORD", pw)
	}
	return testenv.StartNATSConfig(t, authConf)
}

// connectAs connects as user with the service's own connection code and
// records the asynchronous errors (permissions violations) it gets.
func connectAs(t *testing.T, url, user string) (jetstream.JetStream, <-chan error) {
	t.Helper()
	errs := make(chan error, 16)
	nc, err := nats.Connect(url, nats.UserInfo(user, natsPasswords[user]),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case errs <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js, errs
}

// refusedPublish asserts that user's publish of an event is refused: no
// PubAck, a permissions violation from the server, and nothing stored.
func refusedPublish(t *testing.T, js jetstream.JetStream, errs <-chan error, stored func() uint64, user string) {
	t.Helper()
	before := stored()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, "payhook.events.jpglo.payin.succeeded", []byte(`{"forged":true}`), jetstream.WithMsgID("forged-"+user)); err == nil {
		t.Errorf("%s published an event and got a PubAck", user)
	}
	// Other violations may come first.
	deadline := time.After(5 * time.Second)
	for found := false; !found; {
		select {
		case err := <-errs:
			found = errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), `"payhook.events.jpglo.payin.succeeded"`)
		case <-deadline:
			t.Errorf("%s: no permissions violation reported for the event subject", user)
			found = true
		}
	}
	if after := stored(); after != before {
		t.Errorf("%s: PAYHOOK_EVENTS went from %d to %d messages", user, before, after)
	}
}

// TestNATSAuthorizationFile runs ingress, dispatcher and reconciler, each
// as its own user, on a nats-server started from deploy/nats/auth.conf: a
// callback is accepted, its event reaches the subscriber, a watch is polled,
// and no service meets a permissions violation. Then an internal consumer
// reads the event through its durable but cannot publish one, and neither can the dispatcher,
// nor may it change PAYHOOK_EVENTS.
func TestNATSAuthorizationFile(t *testing.T) {
	ns := startAuthNATS(t)

	var delivered atomic.Int64
	sub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if bytes.Contains(b, []byte("NA-ORD-1")) {
			delivered.Add(1)
		}
	}))
	defer sub.Close()
	var polls atomic.Int64
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		polls.Add(1)
		http.Error(w, "no such order", http.StatusNotFound)
	}))
	defer provider.Close()

	env := map[string]string{"ADMIN": secAdmin, "SUB_SECRET": subscriberSecret, "JPGLO_KEY": secJpglo}
	for user, pw := range natsPasswords {
		env["NATS_PASSWORD_"+strings.ToUpper(user)] = pw
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	// One config per service, each with only what it needs (as deploy/k8s).
	parse := func(user, rest string) *config.Config {
		t.Helper()
		y := fmt.Sprintf("nats:\n  url: %q\n  user: %s\n  password: ${NATS_PASSWORD_%s}\nlog: {level: debug, format: json}\n", ns.URL, user, strings.ToUpper(user)) + rest
		cfg, err := config.Parse([]byte(y), lookup)
		if err != nil {
			t.Fatalf("%s config: %v", user, err)
		}
		return cfg
	}
	account := fmt.Sprintf("accounts:\n  - {id: glo-in, provider: jpglo, merchant_id: \"1\", secret: \"${JPGLO_KEY}\", currency: INR, base_url: %q}\n", provider.URL)
	signing := "event_signing: {private_key: \"" + testenv.EventPrivateKey + "\"}\n"
	ingCfg := parse("ingress", "admin_token: ${ADMIN}\n"+signing+account)
	recCfg := parse("reconciler", signing+"admin_token: ${ADMIN}\nreconciler: {schedule: [1s, 1s, 1s]}\n"+account)
	disCfg := parse("dispatcher", fmt.Sprintf("event_signing: {public_keys: [%q]}\nadmin_token: ${ADMIN}\nsubscribers:\n  - {id: ledger, url: %q, secret: \"${SUB_SECRET}\", max_attempts: 3, timeout: 2s, backoff_initial: 1s, backoff_max: 1s}\n", testenv.EventPublicKey, sub.URL))

	logs := &testenv.LogBuffer{}
	log := cli.Logger(ingCfg, logs)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	lnI, lnD, lnR := listen(), listen(), listen()
	run := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("%s: %v", name, err)
			}
		}()
	}
	run("ingress", func(ctx context.Context) error {
		return ingress.Run(ctx, ingCfg, ingress.RunOptions{Log: log.With("component", "ingress"), Listener: lnI, Registry: prometheus.NewRegistry(), DrainTimeout: 5 * time.Second})
	})
	run("dispatcher", func(ctx context.Context) error {
		return dispatch.Run(ctx, disCfg, dispatch.RunOptions{Log: log.With("component", "dispatcher"), Listener: lnD, Registry: prometheus.NewRegistry()})
	})
	run("reconciler", func(ctx context.Context) error {
		return reconcile.Run(ctx, recCfg, reconcile.RunOptions{Log: log.With("component", "reconciler"), Listener: lnR, Registry: prometheus.NewRegistry(), DrainTimeout: 5 * time.Second})
	})
	var stopOnce sync.Once
	stop := func() { stopOnce.Do(func() { cancel(); wg.Wait() }) }
	defer func() {
		stop()
		if t.Failed() {
			t.Logf("service logs:\n%s", logs)
		}
	}()
	ingURL, disURL, recURL := "http://"+lnI.Addr().String(), "http://"+lnD.Addr().String(), "http://"+lnR.Addr().String()
	for _, u := range []string{ingURL, disURL, recURL} {
		testenv.Eventually(t, 40*time.Second, func() bool {
			r, err := http.Get(u + "/readyz")
			if err != nil {
				return false
			}
			r.Body.Close()
			return r.StatusCode == 200
		}, "ready: "+u)
	}

	// Ingress (user ingress) stores a callback; the dispatcher (user
	// dispatcher) delivers its event.
	body, _ := jpgloPayin(t, secJpglo, "NA-ORD-1", `{"user_id":"1"}`)
	r := do(t, http.MethodPost, ingURL+"/v1/callbacks/jpglo/glo-in/payin", body, "Content-Type", "application/json")
	if r.status != 200 || !strings.Contains(r.body, `"status":0`) {
		t.Fatalf("callback: %d %s", r.status, r.body)
	}
	testenv.Eventually(t, 20*time.Second, func() bool { return delivered.Load() > 0 }, "event delivered to the subscriber")

	// The reconciler (user reconciler) opens a watch and polls the provider.
	r = do(t, http.MethodPost, recURL+"/v1/watches", []byte(`{"provider":"jpglo","account":"glo-in","kind":"payin","merchant_order_id":"NA-WATCH-1"}`), "Authorization", "Bearer "+secAdmin)
	if r.status/100 != 2 {
		t.Fatalf("POST /v1/watches: %d %s", r.status, r.body)
	}
	testenv.Eventually(t, 20*time.Second, func() bool { return polls.Load() > 0 }, "watch polled")

	// An internal consumer reads the event through the durable its role
	// names (TestNATSConsumerRoleOnlyItsOwnConsumers: and no other)...
	cjs, cerrs := connectAs(t, ns.URL, "consumer")
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	cons, err := cjs.CreateOrUpdateConsumer(rctx, natsbus.StreamEvents, jetstream.ConsumerConfig{Durable: eventsReader, AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("consumer: durable %s on %s: %v", eventsReader, natsbus.StreamEvents, err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil || !bytes.Contains(msg.Data(), []byte("NA-ORD-1")) {
		t.Fatalf("consumer: reading the event: %v", err)
	}
	if err := msg.DoubleAck(rctx); err != nil {
		t.Fatalf("consumer: ack: %v", err)
	}
	stored := func() uint64 {
		st, err := cjs.Stream(rctx, natsbus.StreamEvents)
		if err != nil {
			t.Fatalf("consumer: stream info: %v", err)
		}
		return st.CachedInfo().State.Msgs
	}
	// ...but cannot publish one.
	refusedPublish(t, cjs, cerrs, stored, "consumer")
	// It may announce an order it opened, which the reconciler picks up.
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	if _, err := cjs.Publish(wctx, "payhook.watch.jpglo", []byte(`{"account":"glo-in","kind":"payin","merchant_order_id":"NA-WATCH-2"}`)); err != nil {
		t.Errorf("consumer: announcing a watch: %v", err)
	}

	// Nor can the dispatcher's user, nor may it redefine PAYHOOK_EVENTS
	// (new subjects or sources could import what it may publish).
	djs, derrs := connectAs(t, ns.URL, "dispatcher")
	refusedPublish(t, djs, derrs, stored, "dispatcher")
	uctx, ucancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer ucancel()
	sc := natsbus.StreamConfigs(disCfg.NATS)[0]
	sc.Subjects = append(sc.Subjects, "payhook.forged.>")
	if _, err := djs.UpdateStream(uctx, sc); err == nil {
		t.Error("dispatcher updated PAYHOOK_EVENTS")
	}

	// The operator (payhookctl, user operator) reads and acts on
	// subscribers, dead letters and watches without a permissions
	// violation, and cannot publish an event either.
	opPath := filepath.Join(t.TempDir(), "operator.yaml")
	opYAML := fmt.Sprintf("nats:\n  url: %q\n  user: operator\n  password: ${NATS_PASSWORD_OPERATOR}\nadmin_token: ${ADMIN}\n", ns.URL) +
		fmt.Sprintf("subscribers:\n  - {id: ledger, url: %q, secret: \"${SUB_SECRET}\"}\n", sub.URL) + account
	if err := os.WriteFile(opPath, []byte(opYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	r = do(t, http.MethodPost, recURL+"/v1/watches", []byte(`{"provider":"jpglo","account":"glo-in","kind":"payin","merchant_order_id":"NA-WATCH-2"}`), "Authorization", "Bearer "+secAdmin)
	if r.status/100 != 2 {
		t.Fatalf("POST /v1/watches: %d %s", r.status, r.body)
	}
	ctlErr := &testenv.LogBuffer{}
	for _, args := range [][]string{
		// NA-WATCH-2 is open for a few seconds (its polls fail): first.
		{"watches", "poll-now", "jpglo", "glo-in", "NA-WATCH-2"}, {"watches", "cancel", "jpglo", "glo-in", "NA-WATCH-2"},
		{"watches", "ls"}, {"watches", "get", "jpglo", "glo-in", "NA-WATCH-1"},
		{"subscribers", "ls"}, {"subscribers", "pause", "ledger", "--reason", "auth test"}, {"subscribers", "resume", "ledger"},
		{"dlq", "ls", "ledger"}, {"dlq", "replay", "ledger"},
		{"replay", "--subscriber", "ledger", "--since", "1h", "--dry-run"}, {"replay", "--subscriber", "ledger", "--since", "1h"},
		{"trace", "jpglo", "glo-in", "NA-ORD-1"},
		{"reprocess", "--provider", "jpglo", "--since", "1h", "--ingress", ingURL, "--dry-run"},
		{"reprocess", "--provider", "jpglo", "--since", "1h", "--ingress", ingURL},
	} {
		cctx, ccancel := context.WithTimeout(context.Background(), 20*time.Second)
		var out bytes.Buffer
		err := ctl.Run(cctx, cli.Env{Args: append([]string{"--config", opPath, "--json"}, args...), LookupEnv: lookup, Stdout: &out, Stderr: ctlErr})
		ccancel()
		if err != nil {
			t.Errorf("payhookctl %v as operator: %v", args, err)
		}
	}
	if strings.Contains(strings.ToLower(ctlErr.String()), "permissions violation") {
		t.Errorf("payhookctl met a permissions violation:\n%s", grepLines(ctlErr.String(), "ermissions"))
	}
	ojs, oerrs := connectAs(t, ns.URL, "operator")
	refusedPublish(t, ojs, oerrs, func() uint64 {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		st, err := ojs.Stream(sctx, natsbus.StreamEvents)
		if err != nil {
			t.Fatalf("operator: stream info: %v", err)
		}
		return st.CachedInfo().State.Msgs
	}, "operator")

	// Every call the services made, through their shutdown (unpinning,
	// draining), was allowed, and no password was logged.
	stop()
	out := logs.String()
	if strings.Contains(strings.ToLower(out), "permissions violation") {
		t.Errorf("a service met a permissions violation:\n%s", grepLines(out, "ermissions"))
	}
	for user, pw := range natsPasswords {
		if strings.Contains(out, pw) {
			t.Errorf("the %s password is in the logs", user)
		}
	}
}
