package security_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/dispatch"
	"github.com/payhook/payhook/internal/natsbus"
)

// eventsReader is the durable consumer deploy/nats/auth.conf names for the
// consumer role.
const eventsReader = "events-reader"

// permissionViolation waits for the server's permissions violation on a
// subject starting with prefix among errs (other violations may come first).
func permissionViolation(t *testing.T, errs <-chan error, prefix string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case err := <-errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), `"`+prefix) {
				return
			}
		case <-deadline:
			t.Errorf("no permissions violation reported for %s", prefix)
			return
		}
	}
}

// TestNATSConsumerRoleOnlyItsOwnConsumers runs the consumer role against
// a server started from deploy/nats/auth.conf, beside a dispatcher's
// consumer: it reads events through its own durable, by sequence and as a
// live tail, but may not create a consumer of another name, look up, fetch
// from, ack for or rewrite the dispatcher's dispatch-<subscriber>, whose
// configuration and progress stay as they were.
func TestNATSConsumerRoleOnlyItsOwnConsumers(t *testing.T) {
	ns := startAuthNATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ingJS, _ := connectAs(t, ns.URL, "ingress")
	if err := natsbus.EnsureStreams(ctx, ingJS, config.NATS{Replicas: 1, EventsMaxAge: config.Duration(time.Hour), RawMaxAge: config.Duration(time.Hour), DuplicateWindow: config.Duration(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	disJS, _ := connectAs(t, ns.URL, "dispatcher")
	dispatchLedger := dispatch.ConsumerName("ledger")
	dcc := jetstream.ConsumerConfig{
		Durable: dispatchLedger, AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: natsbus.SubjectEvents,
		AckWait: 30 * time.Second, MaxDeliver: -1,
	}
	dcons, err := disJS.CreateOrUpdateConsumer(ctx, natsbus.StreamEvents, dcc)
	if err != nil {
		t.Fatalf("dispatcher: creating %s: %v", dispatchLedger, err)
	}

	cjs, cerrs := connectAs(t, ns.URL, "consumer")
	cnc := cjs.Conn()
	tail, err := cnc.SubscribeSync(natsbus.SubjectEvents)
	if err != nil {
		t.Fatal(err)
	}
	if err := cnc.Flush(); err != nil {
		t.Fatal(err)
	}

	const n = 4
	for i := 1; i <= n; i++ {
		if _, err := natsbus.Publish(ctx, ingJS, "payhook.events.jpglo.payin.succeeded", fmt.Sprintf("ev-%d", i), []byte(fmt.Sprintf(`{"n":%d}`, i)), nil); err != nil {
			t.Fatalf("ingress: publish: %v", err)
		}
	}

	// The live tail sees every event.
	for i := 1; i <= n; i++ {
		m, err := tail.NextMsg(5 * time.Second)
		if err != nil || string(m.Data) != fmt.Sprintf(`{"n":%d}`, i) {
			t.Fatalf("consumer: live tail, event %d: %v", i, err)
		}
	}

	// Its own durable: created, fetched from, acked.
	own, err := cjs.CreateOrUpdateConsumer(ctx, natsbus.StreamEvents, jetstream.ConsumerConfig{
		Durable: eventsReader, AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: natsbus.SubjectEvents,
	})
	if err != nil {
		t.Fatalf("consumer: creating its durable %s: %v", eventsReader, err)
	}
	batch, err := own.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatalf("consumer: fetch from %s: %v", eventsReader, err)
	}
	got := 0
	for m := range batch.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatalf("consumer: ack on %s: %v", eventsReader, err)
		}
		got++
	}
	if got != n {
		t.Fatalf("consumer: fetched %d events from %s, want %d", got, eventsReader, n)
	}
	if info, err := own.Info(ctx); err != nil || info.AckFloor.Stream != n {
		t.Fatalf("consumer: %s ack floor after acking %d: %+v, %v", eventsReader, n, info, err)
	}
	// And reads that name no consumer: stream info, a message by sequence.
	st, err := cjs.Stream(ctx, natsbus.StreamEvents)
	if err != nil {
		t.Fatalf("consumer: stream info: %v", err)
	}
	if m, err := st.GetMsg(ctx, 2); err != nil || string(m.Data) != `{"n":2}` {
		t.Fatalf("consumer: message 2 by sequence: %v", err)
	}

	// The dispatcher holds one event unacknowledged.
	dbatch, err := dcons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var held jetstream.Msg
	for m := range dbatch.Messages() {
		held = m
	}
	if held == nil {
		t.Fatalf("dispatcher: nothing fetched from %s", dispatchLedger)
	}
	before, err := dcons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}

	short := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 2*time.Second)
	}
	apiPrefix := "$JS.API.CONSUMER."
	// A consumer of another name (also what an ordered or ephemeral one
	// would need) is refused.
	c1, cancel1 := short()
	defer cancel1()
	if _, err := cjs.CreateOrUpdateConsumer(c1, natsbus.StreamEvents, jetstream.ConsumerConfig{Durable: "other-reader", AckPolicy: jetstream.AckExplicitPolicy}); err == nil {
		t.Error("consumer: created a durable not named in its role")
	}
	permissionViolation(t, cerrs, apiPrefix+"CREATE."+natsbus.StreamEvents+".other-reader")

	// The dispatcher's consumer: no lookup...
	c2, cancel2 := short()
	defer cancel2()
	if _, err := cjs.Consumer(c2, natsbus.StreamEvents, dispatchLedger); err == nil {
		t.Errorf("consumer: looked up %s", dispatchLedger)
	}
	permissionViolation(t, cerrs, apiPrefix+"INFO."+natsbus.StreamEvents+"."+dispatchLedger)

	// ...no fetch (the request a pull consumer makes, sent by hand since
	// the lookup above is refused)...
	inbox := cnc.NewRespInbox()
	replies, err := cnc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	next := apiPrefix + "MSG.NEXT." + natsbus.StreamEvents + "." + dispatchLedger
	if err := cnc.PublishRequest(next, inbox, []byte(`{"batch":3,"expires":1000000000}`)); err != nil {
		t.Fatal(err)
	}
	permissionViolation(t, cerrs, next)
	if m, err := replies.NextMsg(2 * time.Second); err == nil {
		t.Errorf("consumer: fetch from %s answered: %q %v", dispatchLedger, m.Data, m.Header)
	}

	// ...no ack of what the dispatcher holds...
	if err := cnc.Publish(held.Reply(), []byte("+ACK")); err != nil {
		t.Fatal(err)
	}
	if err := cnc.Flush(); err != nil {
		t.Fatal(err)
	}
	permissionViolation(t, cerrs, "$JS.ACK."+natsbus.StreamEvents+"."+dispatchLedger)

	// ...and no update (a filter matching nothing would mute the subscriber).
	muted := dcc
	muted.FilterSubject = "payhook.events.nothing.>"
	c3, cancel3 := short()
	defer cancel3()
	if _, err := cjs.CreateOrUpdateConsumer(c3, natsbus.StreamEvents, muted); err == nil {
		t.Errorf("consumer: updated %s", dispatchLedger)
	}
	permissionViolation(t, cerrs, apiPrefix+"CREATE."+natsbus.StreamEvents+"."+dispatchLedger)

	after, err := dcons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(after.Config, before.Config) {
		t.Errorf("%s config changed:\nbefore %+v\nafter  %+v", dispatchLedger, before.Config, after.Config)
	}
	if after.Delivered.Stream != before.Delivered.Stream || after.AckFloor.Stream != before.AckFloor.Stream || after.NumAckPending != 1 {
		t.Errorf("%s progress changed: delivered %d→%d, ack floor %d→%d, pending acks %d (want 1)",
			dispatchLedger, before.Delivered.Stream, after.Delivered.Stream, before.AckFloor.Stream, after.AckFloor.Stream, after.NumAckPending)
	}
	// The dispatcher still gets the rest.
	rest, err := dcons.Fetch(n, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	left := 0
	for range rest.Messages() {
		left++
	}
	if left != n-1 {
		t.Errorf("dispatcher: %d events left on %s, want %d", left, dispatchLedger, n-1)
	}
}
