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

// Ports devstack listens on by default (CONTRACT.md: ingress 8080,
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

// configTemplate is devstack's built-in config: one account per provider,
// with the providers' test keys, each base_url pointing at the simulator; a
// demo subscriber; a reconciler schedule compressed so that a lost callback
// is recovered within a minute. Every other registered provider with a
// simulated side (providers.Simulated) gets its demo account appended
// ({{MORE_ACCOUNTS}}). It goes through the same parser and validation as
// any config file.
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
  - id: fantian-in
    provider: fantian
    merchant_id: PF0002
    secret: fantian-secret
    base_url: {{SIM}}/fantian/fantian-in
    currency: INR
  - id: mpurse-in
    provider: mpurse
    merchant_id: Mct_test_10001_PartnerId
    aes_key: mpurseKey16bytes
    aes_mode: ecb
    currency: INR
  - id: cashy-id
    provider: cashypro
    merchant_id: "1002001"
    secret: cashy-secret
    base_url: {{SIM}}/cashypro/cashy-id
    currency: IDR
  - id: mrn-cn
    provider: mrnpay
    merchant_id: app-1
    secret: s3cr3t-mrn
    base_url: {{SIM}}/mrnpay/mrn-cn
    currency: CNY
  - id: glo-in
    provider: jpglo
    merchant_id: "1"
    secret: 9ce23be4-a31b-498f-b951-ad7e771c3d73
    base_url: {{SIM}}/jpglo/glo-in
    currency: INR
{{MORE_ACCOUNTS}}subscribers:
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
	more, err := simulatedAccounts("http://" + a.Sim)
	if err != nil {
		return nil, "", fmt.Errorf("devstack's built-in config: %w", err)
	}
	r := strings.NewReplacer(
		"{{MORE_ACCOUNTS}}", more,
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

// simulatedAccounts renders, as YAML list items under accounts, the demo
// account of every registered provider with a simulated side whose
// provider the template has no account for: id "{provider}-demo", base_url
// the simulator's.
func simulatedAccounts(simURL string) (string, error) {
	var accts []providers.Account
	for name, sp := range providers.With[providers.Simulated](registry.All()) {
		if strings.Contains(configTemplate, "provider: "+name+"\n") {
			continue
		}
		a := sp.SimAccount(name + "-demo")
		a.Provider, a.BaseURL = name, simURL+"/"+name+"/"+a.ID
		accts = append(accts, a)
	}
	if len(accts) == 0 {
		return "", nil
	}
	slices.SortFunc(accts, func(x, y providers.Account) int { return strings.Compare(x.ID, y.ID) })
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
