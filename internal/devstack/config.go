package devstack

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

// Ports devstack listens on by default (docs/interfaces.md "Processes": ingress 8080,
// dispatcher 8081, reconciler 8082), plus the demo subscriber and the
// provider simulator; a default port already in use moves to a free one
// (Options.Addrs).
const (
	IngressAddr    = "127.0.0.1:8080"
	DispatcherAddr = "127.0.0.1:8081"
	ReconcilerAddr = "127.0.0.1:8082"
	SubscriberAddr = "127.0.0.1:8083"
	SimAddr        = "127.0.0.1:8090"
	// DefaultNATSPort is the embedded NATS server's port unless taken.
	DefaultNATSPort = 4222
	// AdminToken is devstack's bearer token for the admin APIs.
	AdminToken = "devstack-admin-token-not-a-secret-0001"
	// SubscriberSecret is the demo subscriber's Standard Webhooks secret (the spec's example).
	SubscriberSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

// configTemplate is devstack's built-in config: one account per registered
// provider, its demo account ({{ACCOUNTS}}, demoAccounts); a demo
// subscriber; a reconciler schedule compressed so that a lost callback is
// recovered within a minute. It goes through the same parser and
// validation as any config file.
const configTemplate = `
nats:
  url: {{NATS}}
redis:
  url: {{REDIS}}
ingress:
  listen: {{INGRESS}}
dispatcher:
  listen: {{DISPATCHER}}
reconciler:
  listen: {{RECONCILER}}
  schedule: [5s, 10s, 20s, 40s, 1m, 2m, 5m]
  retrigger_grace: 5s
  rate_per_second: 20
  rate_burst: 20
admin_token: ` + AdminToken + `
event_signing:
  private_key: {{EVENT_KEY}}
  public_keys: ["{{EVENT_PUBLIC_KEY}}"]
log:
  level: warn
  format: text
accounts:
{{ACCOUNTS}}subscribers:
  - id: demo
    url: http://{{SUBSCRIBER}}/hooks
    secret: ` + SubscriberSecret + `
    max_attempts: 10
    timeout: 5s
    backoff_initial: 1s
    backoff_max: 30s
    start: all          # also the events stored before the dispatcher first started
`

// Addrs are where each part listens.
type Addrs struct {
	Ingress, Dispatcher, Reconciler, Subscriber, Sim string
}

// DefaultAddrs are the documented ports.
func DefaultAddrs() Addrs {
	return Addrs{IngressAddr, DispatcherAddr, ReconcilerAddr, SubscriberAddr, SimAddr}
}

// BuildConfig renders and validates the built-in config, with eventKey as
// the event signing key of every part (see EventKey).
func BuildConfig(natsURL, redisURL string, a Addrs, eventKey events.PrivateKey) (*config.Config, string, error) {
	accts, err := demoAccounts("http://" + a.Sim)
	if err != nil {
		return nil, "", fmt.Errorf("devstack's built-in config: %w", err)
	}
	r := strings.NewReplacer(
		"{{ACCOUNTS}}", accts,
		"{{EVENT_KEY}}", eventKey.Encode(), "{{EVENT_PUBLIC_KEY}}", eventKey.Public().Encode(),
		"{{NATS}}", natsURL, "{{REDIS}}", quoteEmpty(redisURL),
		"{{INGRESS}}", a.Ingress, "{{DISPATCHER}}", a.Dispatcher, "{{RECONCILER}}", a.Reconciler,
		"{{SUBSCRIBER}}", a.Subscriber, "{{SIM}}", "http://"+a.Sim,
	)
	text := r.Replace(configTemplate)
	cfg, err := config.Parse([]byte(text), func(string) (string, bool) { return "", false })
	if err == nil {
		err = cfg.CheckProviders(registry.All())
	}
	if err != nil {
		return nil, text, fmt.Errorf("devstack's built-in config: %w", err)
	}
	return cfg, text, nil
}

// demoAccounts renders, as YAML list items under accounts, the demo
// account of every registered provider (providers.Demo), in registration
// order; base_url is the simulator's for a provider payhook calls (a
// Querier or a ReferenceSubmitter).
func demoAccounts(simURL string) (string, error) {
	provs := registry.All()
	var accts []providers.Account
	for name, d := range providers.With[providers.Demo](provs) {
		a := d.DemoAccount()
		a.Provider = name
		_, queries := providers.Role[providers.Querier](provs, name)
		_, submits := providers.Role[providers.ReferenceSubmitter](provs, name)
		if queries || submits {
			a.BaseURL = simURL + "/" + name + "/" + a.ID
		}
		accts = append(accts, a)
	}
	order := provs.Names()
	slices.SortFunc(accts, func(x, y providers.Account) int {
		return slices.Index(order, x.Provider) - slices.Index(order, y.Provider)
	})
	b, err := yaml.Marshal(accts)
	if err != nil {
		return "", err
	}
	var out strings.Builder
	for _, line := range strings.SplitAfter(strings.TrimRight(string(b), "\n"), "\n") {
		out.WriteString("  " + strings.TrimRight(line, "\n") + "\n")
	}
	return out.String(), nil
}

func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// EventKeyFile is devstack's event signing key, in its data dir: "whsk_..."
// and a newline, mode 0600. A dev key only, made on the first start.
const EventKeyFile = "event-signing.key"

// EventKey returns the event signing key kept in dataDir, making it on the
// first start. It is kept rather than made per run because the events
// stored in the data dir's JetStream stay there across restarts and are
// still delivered and replayed afterwards: they verify only under the key
// that signed them.
func EventKey(dataDir string) (events.PrivateKey, error) {
	path := filepath.Join(dataDir, EventKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := events.ParsePrivateKey(strings.TrimSpace(string(b)))
		if err != nil {
			return events.PrivateKey{}, fmt.Errorf("devstack: %s: %w (delete it to make a new one)", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return events.PrivateKey{}, fmt.Errorf("devstack: %w", err)
	}
	k, err := events.GenerateKey(rand.Reader)
	if err != nil {
		return events.PrivateKey{}, err
	}
	if err := os.WriteFile(path, []byte(k.Encode()+"\n"), 0o600); err != nil {
		return events.PrivateKey{}, fmt.Errorf("devstack: %w", err)
	}
	return k, nil
}
