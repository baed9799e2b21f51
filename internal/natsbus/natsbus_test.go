package natsbus_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/testenv"
)

// connected reports whether Connect with cfg gets a connection within a
// second (Connect itself retries in the background, as a service does).
func connected(t *testing.T, cfg config.NATS) bool {
	t.Helper()
	nc, err := natsbus.Connect(cfg, "natsbus-test", nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer nc.Close()
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if nc.IsConnected() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// TestConnectAuthMethods: each of nats.user+password, token and nkey_seed
// logs in to a server that requires it, and a wrong credential does not.
func TestConnectAuthMethods(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	pub, _ := kp.PublicKey()
	other, _ := nkeys.CreateUser()
	otherSeed, _ := other.Seed()

	users := testenv.StartNATSWith(t, server.Options{Users: []*server.User{{Username: "ingress", Password: "pw-right"}},
		Nkeys: []*server.NkeyUser{{Nkey: pub}}})
	token := testenv.StartNATSWith(t, server.Options{Authorization: "tok-right"})
	// Two seed URLs, the first of which nothing listens on.
	seeds := "nats://127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)) + "," + users.URL

	cases := []struct {
		name string
		cfg  config.NATS
		want bool
	}{
		{"user and password", config.NATS{URL: seeds, User: "ingress", Password: "pw-right"}, true},
		{"wrong password", config.NATS{URL: users.URL, User: "ingress", Password: "pw-wrong"}, false},
		{"no credentials", config.NATS{URL: users.URL}, false},
		{"nkey seed", config.NATS{URL: users.URL, NkeySeed: string(seed)}, true},
		{"unknown nkey", config.NATS{URL: users.URL, NkeySeed: string(otherSeed)}, false},
		{"token", config.NATS{URL: token.URL, Token: "tok-right"}, true},
		{"wrong token", config.NATS{URL: token.URL, Token: "tok-wrong"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := connected(t, c.cfg); got != c.want {
				t.Errorf("connected = %v, want %v", got, c.want)
			}
		})
	}
}
