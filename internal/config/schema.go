package config

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/payhook/payhook/pkg/providers"
)

// Config is the whole file.
type Config struct {
	NATS        NATS                `yaml:"nats"`
	Redis       Redis               `yaml:"redis"`
	Ingress     Ingress             `yaml:"ingress"`
	Dispatcher  Dispatcher          `yaml:"dispatcher"`
	Reconciler  Reconciler          `yaml:"reconciler"`
	Dedupe      Dedupe              `yaml:"dedupe"`
	AdminToken  string              `yaml:"admin_token"`
	Accounts    []providers.Account `yaml:"accounts"`
	Subscribers []Subscriber        `yaml:"subscribers"`
	Log         Log                 `yaml:"log"`
	// EventSigning holds the keys of the signatures on event messages.
	EventSigning EventSigning `yaml:"event_signing"`
	// Tracing turns on OpenTelemetry tracing (tracing.go); off by default.
	Tracing Tracing `yaml:"tracing"`

	// lines maps each key's dotted path to its line in the file, for
	// errors found after decoding (CheckProviders).
	lines map[string]int
}

// NATS says where JetStream is, how a service proves who it is there, and
// how its streams are sized.
type NATS struct {
	// URL is one server or several seed URLs separated by commas
	// (nats://n1:4222,nats://n2:4222); the client learns the rest of the
	// cluster from whichever answers.
	URL string `yaml:"url"`
	// Creds, NkeySeed, User with Password, and Token are the four ways to
	// authenticate; at most one is set. Creds is the path of a decentralized-auth
	// .creds file (user JWT and nkey seed); NkeySeed the text of a user nkey
	// seed ("SU..."), best given as ${NAME}.
	Creds    string `yaml:"creds"`
	NkeySeed string `yaml:"nkey_seed"`
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	Token    string `yaml:"token"`
	// TLS, when any of its files is set, makes the connection TLS-only.
	TLS NATSTLS `yaml:"tls"`
	// Replicas for every stream (1 for a single server, 3 for a cluster).
	Replicas int `yaml:"replicas"`
	// RawMaxAge bounds how long PAYHOOK_RAW and PAYHOOK_RAW_REJECTED keep inbound requests (default 720h = 30 days).
	RawMaxAge Duration `yaml:"raw_max_age"`
	// RawMaxBytes caps PAYHOOK_RAW, the records of requests that verified
	// (default 10 GiB); RawRejectedMaxBytes caps PAYHOOK_RAW_REJECTED, the
	// records of rejected ones (default 1 GiB). Separate so that junk can
	// never discard the record of an accepted callback.
	RawMaxBytes         int64 `yaml:"raw_max_bytes"`
	RawRejectedMaxBytes int64 `yaml:"raw_rejected_max_bytes"`
	// TraceMaxAge and TraceMaxBytes bound PAYHOOK_TRACE, the per-order index
	// and delivery-attempt log (default 720h = 30 days and 2 GiB).
	TraceMaxAge   Duration `yaml:"trace_max_age"`
	TraceMaxBytes int64    `yaml:"trace_max_bytes"`
	// EventsMaxAge bounds PAYHOOK_EVENTS (default 2160h = 90 days).
	EventsMaxAge Duration `yaml:"events_max_age"`
	// DuplicateWindow is JetStream's Nats-Msg-Id window (default 5m); pkg/dedupe covers days.
	DuplicateWindow Duration `yaml:"duplicate_window"`
}

// NATSTLS names the PEM files of a TLS connection to NATS. CA verifies the
// server (default: the system roots); Cert and Key, always together, are the
// client certificate for servers that verify clients.
type NATSTLS struct {
	CA   string `yaml:"ca"`
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Enabled reports whether any TLS file is set.
func (t NATSTLS) Enabled() bool { return t.CA != "" || t.Cert != "" || t.Key != "" }

// Redis is the dedupe store; empty URL and no Sentinel falls back to a NATS
// key-value bucket.
type Redis struct {
	URL string `yaml:"url"`
	// Sentinel, when set, finds the master through Redis Sentinel and
	// follows its failovers; URL then only carries the data nodes'
	// credentials, database and TLS (its host is not used).
	Sentinel RedisSentinel `yaml:"sentinel"`
}

// RedisSentinel names the master a set of Sentinels monitors.
type RedisSentinel struct {
	// Master is the name the Sentinels monitor (sentinel monitor NAME …).
	Master string `yaml:"master"`
	// Addrs are the Sentinels, host:port (usually three).
	Addrs []string `yaml:"addrs"`
	// Password is the Sentinels' own password (requirepass on the
	// Sentinels), if any; the master's is URL's.
	Password string `yaml:"password"`
}

// Enabled reports whether a Sentinel is configured.
func (s RedisSentinel) Enabled() bool { return s.Master != "" || len(s.Addrs) > 0 }

// UsesRedis reports whether the dedupe store is Redis (a URL or a Sentinel).
func (r Redis) UsesRedis() bool { return r.URL != "" || r.Sentinel.Enabled() }

// Dedupe tunes event dedupe.
type Dedupe struct {
	// Window is how long an event id is remembered (default 168h = 7 days,
	// longer than any provider's retry schedule: cashypro's ~17 h is the longest).
	Window Duration `yaml:"window"`
}

// Ingress is the callback receiver.
type Ingress struct {
	Listen string `yaml:"listen"`
	// BodyLimit in bytes (default 65536).
	BodyLimit int64 `yaml:"body_limit"`
	// TrustedProxyHeader, when set (e.g. X-Forwarded-For), is the only place a
	// client IP is taken from besides the socket, and only when the socket
	// peer is one of TrustedProxies; the allowlist checks that IP.
	TrustedProxyHeader string `yaml:"trusted_proxy_header"`
	// TrustedProxies are the CIDRs (or IPs) of the proxies allowed to set
	// TrustedProxyHeader; required with it.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// PublishTimeout bounds the wait for the JetStream ack (default 5s); past it the provider gets 503.
	PublishTimeout Duration `yaml:"publish_timeout"`
	// RejectionsPerSecond and RejectionsBurst limit, per client address
	// (an IPv6 address counts by its /64), how many rejected requests are
	// answered 4xx and recorded; past the rate a rejection is answered 429
	// and only counted (payhook_ingress_rate_limited_total). Requests that
	// verify never spend from the bucket and are never limited.
	// Defaults 10/s, burst 100.
	RejectionsPerSecond float64 `yaml:"rejections_per_second"`
	RejectionsBurst     int     `yaml:"rejections_burst"`
}

// Dispatcher delivers events to subscribers.
type Dispatcher struct {
	Listen string `yaml:"listen"`
}

// Reconciler chases open orders.
type Reconciler struct {
	Listen         string     `yaml:"listen"`
	Schedule       []Duration `yaml:"schedule"`
	RetriggerGrace Duration   `yaml:"retrigger_grace"`
	// WatchRetention is how long a watch's record (state, polls, last
	// error, outcome) is kept after its last change: closed, expired and
	// cancelled watches stay visible to payhookctl that long (default 7d).
	WatchRetention Duration `yaml:"watch_retention"`
	// Providers overrides, per provider name, the schedule and the rate limit.
	Providers map[string]ReconcilerProvider `yaml:"providers"`
	// RatePerSecond limits queries per provider account (default 5/s, burst
	// 10). Each replica has its own buckets: N replicas allow N× the rate.
	RatePerSecond float64 `yaml:"rate_per_second"`
	RateBurst     int     `yaml:"rate_burst"`
	// MaxWatchesPerAccount caps the open watches of one account (default
	// DefaultMaxWatchesPerAccount): an announcement beyond it is refused
	// (POST /v1/watches 429), so one account cannot grow the queue without bound.
	MaxWatchesPerAccount int `yaml:"max_watches_per_account"`
}

// DefaultMaxWatchesPerAccount is reconciler.max_watches_per_account's
// default: at the default 5 polls/s an account's first polls of 10,000
// watches take 33 min, already longer than the schedule's first three steps.
const DefaultMaxWatchesPerAccount = 10000

// Start values besides an RFC 3339 time.
const (
	StartNew = "new"
	StartAll = "all"
)

// StartFrom parses Start: all reports "all"; a non-zero t is the time
// given; neither means "new".
func (s Subscriber) StartFrom() (all bool, t time.Time, err error) {
	switch s.Start {
	case "", StartNew:
		return false, time.Time{}, nil
	case StartAll:
		return true, time.Time{}, nil
	}
	t, err = time.Parse(time.RFC3339, s.Start)
	if err != nil {
		return false, time.Time{}, fmt.Errorf("want new, all or an RFC 3339 time like 2026-12-01T00:00:00Z, got %q", s.Start)
	}
	return false, t, nil
}

// ReconcilerProvider overrides the reconciler's settings for one provider's
// watches and accounts; a zero (or empty) field keeps the reconciler-wide value.
type ReconcilerProvider struct {
	Schedule []Duration `yaml:"schedule"`
	// RatePerSecond and RateBurst replace reconciler.rate_per_second and
	// rate_burst for each account of the provider (still per replica).
	RatePerSecond float64 `yaml:"rate_per_second"`
	RateBurst     int     `yaml:"rate_burst"`
}

// Subscriber is a merchant endpoint receiving webhooks.
type Subscriber struct {
	ID  string `yaml:"id"`
	URL string `yaml:"url"`
	// Secret is a Standard Webhooks secret (whsec_ + base64). Secrets lists more
	// for rotation: every delivery is signed with each.
	Secret         string   `yaml:"secret"`
	Secrets        []string `yaml:"secrets"`
	Filter         Filter   `yaml:"filter"`
	MaxAttempts    int      `yaml:"max_attempts"`
	Timeout        Duration `yaml:"timeout"`
	BackoffInitial Duration `yaml:"backoff_initial"`
	BackoffMax     Duration `yaml:"backoff_max"`
	// Concurrency caps in-flight deliveries (default 16).
	Concurrency int `yaml:"concurrency"`
	// RatePerSecond caps deliveries per second (0 = unlimited), with RateBurst.
	RatePerSecond float64 `yaml:"rate_per_second"`
	RateBurst     int     `yaml:"rate_burst"`
	// Start is where a new subscriber's delivery begins: "new" (default,
	// also when empty): events stored after the subscriber first appears;
	// "all": every event PAYHOOK_EVENTS still holds; or an RFC 3339 time:
	// events stored from then on. It is read once, when the subscriber's
	// position is first recorded; changing it later does nothing.
	Start string `yaml:"start"`
}

// Filter selects events; every empty list matches all.
type Filter struct {
	Providers []string `yaml:"providers"`
	Accounts  []string `yaml:"accounts"`
	Kinds     []string `yaml:"kinds"`
	Statuses  []string `yaml:"statuses"`
}

// Log configures log/slog output.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error (default info)
	Format string `yaml:"format"` // json | text (default json)
}

// Duration is a time.Duration written as a Go duration string ("90s", "2h").
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("not a duration (like 90s or 2h): %q", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML renders the duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// AllSecrets returns Secret followed by Secrets, without empties.
func (s Subscriber) AllSecrets() []string {
	var out []string
	if s.Secret != "" {
		out = append(out, s.Secret)
	}
	for _, x := range s.Secrets {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}

// Account returns the account with id, if configured.
func (c *Config) Account(id string) (providers.Account, bool) {
	for _, a := range c.Accounts {
		if a.ID == id {
			return a, true
		}
	}
	return providers.Account{}, false
}
