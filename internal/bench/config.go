package bench

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"maps"
	"slices"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

// ConfigYAML is the payhook config the benchmark runs ingress and the
// dispatcher with: real NATS and Redis, one account per provider, n
// subscribers at subBase/s/subN with the product's default delivery settings,
// and a fresh event signing key pair.
func ConfigYAML(natsURL, redisURL string, ingressPort, dispPort int, accts []providers.Account, subBase string, n int) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "nats:\n  url: %s\nredis:\n  url: %s\n", natsURL, redisURL)
	fmt.Fprintf(&b, "ingress:\n  listen: 127.0.0.1:%d\ndispatcher:\n  listen: 127.0.0.1:%d\n", ingressPort, dispPort)
	// A key pair per run: ingress signs every event and the dispatcher
	// verifies every copy, as in production, so both costs are measured.
	key, err := events.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(&b, "event_signing:\n  private_key: %s\n  public_keys: [%q]\n", key.Encode(), key.Public().Encode())
	b.WriteString("log:\n  level: warn\naccounts:\n")
	for _, a := range accts {
		fmt.Fprintf(&b, "  - id: %s\n    provider: %s\n    currency: %s\n", a.ID, a.Provider, a.Currency)
		// Each provider's own keys, whatever they are: a provider refuses
		// keys it does not know (stripe has no merchant_id), so only the
		// ones the account sets are written.
		for _, k := range slices.Sorted(maps.Keys(a.Keys)) {
			if v := a.Keys[k]; v != "" {
				fmt.Fprintf(&b, "    %s: %q\n", k, v)
			}
		}
	}
	if n > 0 {
		b.WriteString("subscribers:\n")
		for i := 1; i <= n; i++ {
			fmt.Fprintf(&b, "  - id: %s\n    url: %s/s/%s\n    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n    timeout: 10s\n",
				subID(i), subBase, subID(i))
		}
	}
	return b.Bytes(), nil
}
