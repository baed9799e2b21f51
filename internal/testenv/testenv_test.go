package testenv

import (
	"net"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/events"
)

func TestNATSRestartKeepsPort(t *testing.T) {
	n := StartNATS(t)
	nc := n.Connect(t)
	if !nc.IsConnected() {
		t.Fatal("not connected")
	}
	n.Stop()
	if _, err := net.DialTimeout("tcp", n.URL[len("nats://"):], 200*time.Millisecond); err == nil {
		t.Fatal("port still open after Stop")
	}
	n.Start()
	Eventually(t, 5*time.Second, nc.IsConnected, "client did not reconnect")
}

func TestRedisRestart(t *testing.T) {
	r := StartRedis(t)
	if err := pingRedis(r.Addr); err != nil {
		t.Fatal(err)
	}
	r.Stop()
	if err := pingRedis(r.Addr); err == nil {
		t.Fatal("redis still answering after Stop")
	}
	r.Start()
	if err := pingRedis(r.Addr); err != nil {
		t.Fatal(err)
	}
}

func TestEventKeysArePair(t *testing.T) {
	k, err := events.ParsePrivateKey(EventPrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if got := k.Public().Encode(); got != EventPublicKey {
		t.Fatalf("EventPublicKey is not EventPrivateKey's public key: %s", got)
	}
}
