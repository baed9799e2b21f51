package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/pkg/events"
)

// The event signing key pair of tests (ed25519 seed 0x01 0x02 .. 0x20):
// public, so for tests only. Tests configure event_signing with them and
// sign the events they publish by hand with SignEvent.
const (
	EventPrivateKey = "whsk_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
	EventPublicKey  = "whpk_ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ="
)

// EventSigner signs with EventPrivateKey.
func EventSigner(tb testing.TB) *events.Signer {
	tb.Helper()
	k, err := events.ParsePrivateKey(EventPrivateKey)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := events.NewSigner(k)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// PublishEvent stores a CloudEvent on subject as a producer does: signed
// with EventPrivateKey, Nats-Msg-Id = id, acknowledged by JetStream.
func PublishEvent(tb testing.TB, js jetstream.JetStream, subject, id string, body []byte) {
	tb.Helper()
	h := nats.Header{}
	EventSigner(tb).Sign(h, id, time.Now(), body)
	h.Set(jetstream.MsgIDHeader, id)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: body, Header: h}); err != nil {
		tb.Fatalf("publish %s: %v", subject, err)
	}
}
