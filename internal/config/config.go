// Package config loads and validates the YAML configuration shared by every
// payhook binary (docs/config.md; the rules in docs/interfaces.md). The whole file is checked before any
// binary starts; every problem is reported as one line naming the key.
package config

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/payhook/payhook/pkg/events"
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

// Error is a config problem: Key is the dotted path ("accounts[1].provider").
type Error struct {
	Key string
	Msg string
}

func (e *Error) Error() string {
	if e.Key == "" {
		return "config: " + e.Msg
	}
	return "config: " + e.Key + ": " + e.Msg
}

func errf(key, format string, args ...any) error {
	return &Error{Key: key, Msg: fmt.Sprintf(format, args...)}
}

// Load reads, expands and validates the file at path. getenv resolves ${NAME}
// (os.Getenv semantics, but a missing variable is an error).
func Load(path string, lookupEnv func(string) (string, bool)) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Msg: err.Error()}
	}
	return Parse(b, lookupEnv)
}

var envRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Parse is Load on bytes.
func Parse(b []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, &Error{Msg: "not valid YAML: " + oneLine(err.Error())}
	}
	lines := map[string]int{}
	if err := expand(&root, reflect.TypeOf(Config{}), "", lookupEnv, lines); err != nil {
		return nil, err
	}
	expanded, err := yaml.Marshal(&root)
	if err != nil {
		return nil, &Error{Msg: oneLine(err.Error())}
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlError(err)
	}
	c.lines = lines
	c.defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

var fieldRE = regexp.MustCompile(`line \d+: field (\S+) not found in type (?:\w+\.)*(\w+)`)

// yamlError turns yaml.v3's messages into one line naming the key. Unknown
// keys are normally caught by expand with their dotted path; one the walk
// did not see (reached through an alias) is named here by its leaf only,
// and without yaml.v3's line number, which counts lines of the re-encoded
// document rather than of the file as written.
func yamlError(err error) error {
	msg := oneLine(err.Error())
	if m := fieldRE.FindStringSubmatch(msg); m != nil {
		return &Error{Key: m[1], Msg: fmt.Sprintf("unknown key (in %s)", m[2])}
	}
	if strings.Contains(msg, "field ") && strings.Contains(msg, "not found") {
		return &Error{Msg: "unknown key: " + strings.TrimPrefix(msg, "yaml: unmarshal errors: ")}
	}
	return &Error{Msg: strings.TrimPrefix(msg, "yaml: unmarshal errors: ")}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// expand walks the parsed document beside t, the Go type it decodes into.
// It replaces ${NAME} in scalar values (keys never), after parsing, so a
// secret containing YAML syntax can't change the document's structure, and
// it refuses a key t has no field for, naming the key's dotted path and its
// line in the file as written. The decoder's own KnownFields check stays
// behind it for what the walk does not see (keys reached through an alias).
func expand(n *yaml.Node, t reflect.Type, path string, lookupEnv func(string) (string, bool), lines map[string]int) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if err := expand(c, t, path, lookupEnv, lines); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			kn := n.Content[i]
			if kn.Tag == "!!merge" {
				continue // "<<: *anchor": the anchored mapping was walked where it is defined
			}
			p := kn.Value
			if path != "" {
				p = path + "." + kn.Value
			}
			lines[p] = kn.Line
			var vt reflect.Type
			switch {
			case t == nil:
			case t.Kind() == reflect.Struct && !isUnmarshaler(t):
				f, ok := fieldByKey(t, kn.Value)
				if !ok {
					return errf(p, "unknown key (line %d)", kn.Line)
				}
				vt = f
			case t.Kind() == reflect.Map:
				vt = t.Elem()
			}
			if err := expand(n.Content[i+1], vt, p, lookupEnv, lines); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		var et reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			et = t.Elem()
		}
		for i, c := range n.Content {
			if err := expand(c, et, fmt.Sprintf("%s[%d]", path, i), lookupEnv, lines); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return checkSelfDecoding(n, t, path)
		}
		var missing string
		var names []string
		v := envRE.ReplaceAllStringFunc(n.Value, func(m string) string {
			name := m[2 : len(m)-1]
			names = append(names, name)
			val, ok := lookupEnv(name)
			if !ok && missing == "" {
				missing = name
			}
			return val
		})
		if missing != "" {
			return errf(path, "environment variable %s is not set", missing)
		}
		n.Value = v
		if len(names) == 0 || n.Style&yaml.TaggedStyle != 0 {
			return nil // no ${NAME} after all, or the author's explicit tag decides
		}
		return retag(n, t, path, names)
	}
	return nil
}

// retag gives a substituted scalar the tag its field reads. A string field
// (or a type with its own UnmarshalYAML, like Duration, or a key outside
// the schema) gets !!str, so the value is taken literally whatever it looks
// like: "007" stays "007", "true" stays "true", "*x" and "a: #b" are not
// YAML. A number or bool field gets the value read as YAML reads a plain
// scalar of that type (3, 0.5, true); anything else there is an error that
// names the variables but, since a secret may have been put in the wrong
// place, not the value. An empty value in such a field is YAML's null,
// like "replicas:" with nothing after it: the key keeps its default.
func retag(n *yaml.Node, t reflect.Type, path string, names []string) error {
	var what string
	var tags []string // what the value may resolve to, besides null
	if t != nil && !isUnmarshaler(t) {
		switch t.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			// Only !!int: yaml.v3 would truncate 1.5 to 1.
			what, tags = "an integer", []string{"!!int"}
		case reflect.Float32, reflect.Float64:
			what, tags = "a number", []string{"!!int", "!!float"}
		case reflect.Bool:
			what, tags = "true or false", []string{"!!bool"}
		}
	}
	if what == "" {
		n.Tag = "!!str"
		if t != nil && isUnmarshaler(t) && checkSelfDecoding(n, t, path) != nil {
			if t == reflect.TypeOf(Duration(0)) || t == durationType {
				what = "a duration (like 90s or 2h)"
			} else {
				what = "accepted here"
			}
			return errf(path, "environment variable %s: the value is not %s", strings.Join(names, ", "), what)
		}
		return nil
	}
	probe := yaml.Node{Kind: yaml.ScalarNode, Value: n.Value}
	tag := probe.ShortTag()
	if err := probe.Decode(reflect.New(t).Interface()); err != nil || (tag != "!!null" && !slices.Contains(tags, tag)) {
		return errf(path, "environment variable %s: the value is not %s", strings.Join(names, ", "), what)
	}
	n.Tag, n.Style = tag, 0
	if n.Tag == "!!null" {
		n.Value = "null"
	}
	return nil
}

// checkSelfDecoding decodes a scalar bound for a type with its own
// UnmarshalYAML (Duration), so that its error names the key: the decoder
// reports it without one.
func checkSelfDecoding(n *yaml.Node, t reflect.Type, path string) error {
	if t == nil || !isUnmarshaler(t) || n.ShortTag() == "!!null" {
		return nil
	}
	if t == durationType {
		// yaml.v3 decodes a time.Duration itself, but its error names no key.
		if _, err := time.ParseDuration(n.Value); err != nil || n.ShortTag() != "!!str" {
			return errf(path, "not a duration (like 90s or 2h): %q", n.Value)
		}
		return nil
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		return errf(path, "%s", oneLine(err.Error()))
	}
	return nil
}

var (
	unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	// durationType is time.Duration, which yaml.v3 reads from a Go
	// duration string itself (providers.Account.MaxAge): treated here like
	// a type with its own UnmarshalYAML.
	durationType = reflect.TypeOf(time.Duration(0))
)

// isUnmarshaler reports whether t (or *t) decodes itself from a node.
func isUnmarshaler(t reflect.Type) bool {
	return t == durationType || t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType)
}

// fieldByKey returns the type of struct t's field that yaml.v3 fills from
// key: the name in the field's yaml tag, or the lower-cased field name when
// the tag gives none, looking into ",inline" structs.
func fieldByKey(t reflect.Type, key string) (reflect.Type, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if slices.Contains(strings.Split(opts, ","), "inline") {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Map {
				return ft.Elem(), true
			}
			if got, ok := fieldByKey(ft, key); ok {
				return got, true
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if name == key {
			return f.Type, true
		}
	}
	return nil, false
}

// Default values and bounds, with the reasoning beside each.
const (
	DefaultBodyLimit = 64 << 10 // callbacks are < 4 KiB; 64 KiB leaves room and bounds abuse

	// MinDedupeWindow: the dedupe window must outlast every provider's
	// retry schedule (cashypro's ~17 h is the longest), and the default
	// max_age leaves a seventh of it for FutureSkew, which takes 21 h.
	MinDedupeWindow = 24 * time.Hour

	// FutureSkew is how far in the future a signed provider timestamp may
	// be and still be accepted: provider clocks drift, and cashypro's
	// completionTime carries no zone (read as WIB, UTC+7; a provider on
	// WIT, UTC+9, would look 2 h ahead). A callback signed further ahead is
	// refused (reason "future_timestamp"): it would stay fresh past the
	// dedupe window.
	FutureSkew = 3 * time.Hour

	// MinAdminTokenBytes: a bearer token guessable by brute force guards nothing.
	MinAdminTokenBytes = 32
)

// DefaultMaxAge is accounts[].max_age when not set: six sevenths of the
// dedupe window (168h → 144h). A callback is accepted only while
// now - signed ≤ max_age, and a signed timestamp is at most FutureSkew
// ahead of the first receipt, so a replay is refused before the dedupe
// store forgets the first copy as long as max_age + FutureSkew ≤ window.
func DefaultMaxAge(window time.Duration) time.Duration { return window - window/7 }

// DefaultSchedule is the reconciler's poll schedule after a watch opens:
// 1m+3m+10m+30m+1h+3h+6h+12h+24h ≈ 46.7 h of chasing, past cashypro's ~17 h
// retry schedule and mpurse's ~2 h, then the watch expires.
var DefaultSchedule = []Duration{
	Duration(time.Minute), Duration(3 * time.Minute), Duration(10 * time.Minute),
	Duration(30 * time.Minute), Duration(time.Hour), Duration(3 * time.Hour),
	Duration(6 * time.Hour), Duration(12 * time.Hour), Duration(24 * time.Hour),
}

func (c *Config) defaults() {
	if c.NATS.Replicas == 0 {
		c.NATS.Replicas = 1
	}
	if c.NATS.TraceMaxAge == 0 {
		c.NATS.TraceMaxAge = Duration(30 * 24 * time.Hour)
	}
	if c.NATS.TraceMaxBytes == 0 {
		c.NATS.TraceMaxBytes = 2 << 30
	}
	if c.NATS.RawMaxAge == 0 {
		c.NATS.RawMaxAge = Duration(30 * 24 * time.Hour)
	}
	if c.NATS.RawMaxBytes == 0 {
		c.NATS.RawMaxBytes = 10 << 30
	}
	if c.NATS.RawRejectedMaxBytes == 0 {
		c.NATS.RawRejectedMaxBytes = 1 << 30
	}
	if c.NATS.EventsMaxAge == 0 {
		c.NATS.EventsMaxAge = Duration(90 * 24 * time.Hour)
	}
	if c.NATS.DuplicateWindow == 0 {
		// 5 minutes, past the first retry of every provider (cashypro 1 min,
		// mpurse 2 min): a publish whose acknowledgement was lost but which
		// JetStream stored is then absorbed when the provider retries, even
		// if the dedupe store never heard of it. Costs NATS one id per
		// message for 5 minutes (~300k ids at 1,000 callbacks/s).
		c.NATS.DuplicateWindow = Duration(5 * time.Minute)
	}
	if c.Dedupe.Window == 0 {
		c.Dedupe.Window = Duration(7 * 24 * time.Hour)
	}
	if c.Ingress.Listen == "" {
		c.Ingress.Listen = "127.0.0.1:8080"
	}
	if c.Ingress.BodyLimit == 0 {
		c.Ingress.BodyLimit = DefaultBodyLimit
	}
	if c.Ingress.PublishTimeout == 0 {
		c.Ingress.PublishTimeout = Duration(5 * time.Second)
	}
	if c.Ingress.RejectionsPerSecond == 0 {
		c.Ingress.RejectionsPerSecond = 10
	}
	if c.Ingress.RejectionsBurst == 0 {
		c.Ingress.RejectionsBurst = 100
	}
	if c.Dispatcher.Listen == "" {
		c.Dispatcher.Listen = "127.0.0.1:8081"
	}
	if c.Reconciler.Listen == "" {
		c.Reconciler.Listen = "127.0.0.1:8082"
	}
	if len(c.Reconciler.Schedule) == 0 {
		c.Reconciler.Schedule = slices.Clone(DefaultSchedule)
	}
	if c.Reconciler.RetriggerGrace == 0 {
		c.Reconciler.RetriggerGrace = Duration(2 * time.Minute)
	}
	if c.Reconciler.WatchRetention == 0 {
		c.Reconciler.WatchRetention = Duration(7 * 24 * time.Hour)
	}
	if c.Reconciler.RatePerSecond == 0 {
		c.Reconciler.RatePerSecond = 5
	}
	if c.Reconciler.RateBurst == 0 {
		c.Reconciler.RateBurst = 10
	}
	if c.Reconciler.MaxWatchesPerAccount == 0 {
		c.Reconciler.MaxWatchesPerAccount = DefaultMaxWatchesPerAccount
	}
	for i := range c.Accounts {
		if a := &c.Accounts[i]; a.MaxAge == 0 {
			a.MaxAge = DefaultMaxAge(c.Dedupe.Window.D())
		}
	}
	for i := range c.Subscribers {
		s := &c.Subscribers[i]
		if s.MaxAttempts == 0 {
			s.MaxAttempts = 15
		}
		if s.Timeout == 0 {
			s.Timeout = Duration(10 * time.Second)
		}
		if s.BackoffInitial == 0 {
			s.BackoffInitial = Duration(5 * time.Second)
		}
		if s.BackoffMax == 0 {
			s.BackoffMax = Duration(10 * time.Hour)
		}
		if s.Concurrency == 0 {
			s.Concurrency = 16
		}
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
}

var (
	idRE = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
	// nameRE is what a provider name can be; which names exist is up to
	// the providers a binary links (CheckProviders).
	nameRE = regexp.MustCompile(`^[a-z0-9]{1,32}$`)
)

// Validate checks the whole config; the first problem found is returned.
func (c *Config) Validate() error {
	if err := c.NATS.validate(); err != nil {
		return err
	}
	for key, d := range map[string]Duration{
		"nats.raw_max_age": c.NATS.RawMaxAge, "nats.events_max_age": c.NATS.EventsMaxAge,
		"nats.duplicate_window": c.NATS.DuplicateWindow, "dedupe.window": c.Dedupe.Window,
		"ingress.publish_timeout": c.Ingress.PublishTimeout, "reconciler.retrigger_grace": c.Reconciler.RetriggerGrace,
		"reconciler.watch_retention": c.Reconciler.WatchRetention, "nats.trace_max_age": c.NATS.TraceMaxAge,
	} {
		if d <= 0 {
			return errf(key, "must be positive")
		}
	}
	// An open watch's record is rewritten at every poll: it must outlive
	// the longest wait between two polls, or it would vanish while open.
	longest := slices.Max(append([]Duration{0}, c.Reconciler.Schedule...))
	for _, p := range c.Reconciler.Providers {
		longest = max(longest, slices.Max(append([]Duration{0}, p.Schedule...)))
	}
	if c.Reconciler.WatchRetention <= longest {
		return errf("reconciler.watch_retention", "must be longer than the longest schedule delay (%s)", longest.D())
	}
	if c.Ingress.PublishTimeout.D() > 25*time.Second {
		return errf("ingress.publish_timeout", "must be at most 25s (the provider is waiting for the reply)")
	}
	if c.Dedupe.Window.D() < MinDedupeWindow {
		return errf("dedupe.window", "must be at least %s (longer than every provider's retry schedule, with room for accounts' max_age), got %s", MinDedupeWindow, c.Dedupe.Window.D())
	}
	if c.AdminToken != "" && len(c.AdminToken) < MinAdminTokenBytes {
		return errf("admin_token", "must be at least %d bytes (e.g. openssl rand -hex 32), got %d", MinAdminTokenBytes, len(c.AdminToken))
	}
	if c.NATS.TraceMaxBytes < 1<<20 {
		return errf("nats.trace_max_bytes", "must be at least 1048576 (1 MiB), got %d", c.NATS.TraceMaxBytes)
	}
	if c.NATS.Replicas < 1 || c.NATS.Replicas > 5 {
		return errf("nats.replicas", "must be 1 to 5, got %d", c.NATS.Replicas)
	}
	if c.Redis.URL != "" && !c.Redis.Sentinel.Enabled() {
		if err := checkURL("redis.url", c.Redis.URL, "redis", "rediss"); err != nil {
			return err
		}
	}
	if sn := c.Redis.Sentinel; sn.Enabled() {
		if c.Redis.URL != "" {
			// Credentials, database and TLS only: the host may be left out.
			if u, err := url.Parse(c.Redis.URL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
				return errf("redis.url", "with redis.sentinel: want redis:// or rediss:// carrying the password and database, e.g. redis://:${REDIS_PASSWORD}@/0")
			}
		}
		if sn.Master == "" {
			return errf("redis.sentinel.master", "required with redis.sentinel.addrs: the name the Sentinels monitor")
		}
		if len(sn.Addrs) == 0 {
			return errf("redis.sentinel.addrs", "required with redis.sentinel.master: the Sentinels, host:port")
		}
		for i, a := range sn.Addrs {
			if h, p, err := net.SplitHostPort(a); err != nil || h == "" || p == "" {
				return errf(fmt.Sprintf("redis.sentinel.addrs[%d]", i), "not host:port: %q", a)
			}
		}
	}
	for key, addr := range map[string]string{"ingress.listen": c.Ingress.Listen, "dispatcher.listen": c.Dispatcher.Listen, "reconciler.listen": c.Reconciler.Listen} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return errf(key, "not host:port: %q", addr)
		}
	}
	if c.Ingress.TrustedProxyHeader != "" && len(c.Ingress.TrustedProxies) == 0 {
		return errf("ingress.trusted_proxies", "required with trusted_proxy_header: the CIDRs of the proxies whose %s header is believed", c.Ingress.TrustedProxyHeader)
	}
	for i, cidr := range c.Ingress.TrustedProxies {
		if _, _, err := net.ParseCIDR(cidr); err != nil && net.ParseIP(cidr) == nil {
			return errf(fmt.Sprintf("ingress.trusted_proxies[%d]", i), "not a CIDR or IP: %q", cidr)
		}
	}
	if c.Ingress.BodyLimit < 1024 || c.Ingress.BodyLimit > 16<<20 {
		return errf("ingress.body_limit", "must be between 1024 and 16777216 bytes, got %d", c.Ingress.BodyLimit)
	}
	if c.Ingress.RejectionsPerSecond < 0 {
		return errf("ingress.rejections_per_second", "must be positive, got %g", c.Ingress.RejectionsPerSecond)
	}
	if c.Ingress.RejectionsBurst < 0 {
		return errf("ingress.rejections_burst", "must be positive, got %d", c.Ingress.RejectionsBurst)
	}
	// A stream must hold at least a few of the largest records (a body at
	// body_limit plus headers and envelope), or it would keep almost none.
	for key, n := range map[string]int64{"nats.raw_max_bytes": c.NATS.RawMaxBytes, "nats.raw_rejected_max_bytes": c.NATS.RawRejectedMaxBytes} {
		if n < 1<<20 || n < 16*c.Ingress.BodyLimit {
			return errf(key, "must be at least 1 MiB and 16 times ingress.body_limit (%d bytes), got %d", 16*c.Ingress.BodyLimit, n)
		}
	}
	for i, d := range c.Reconciler.Schedule {
		if d <= 0 {
			return errf(fmt.Sprintf("reconciler.schedule[%d]", i), "must be positive")
		}
	}
	for name, s := range c.Reconciler.Providers {
		if !nameRE.MatchString(name) {
			return errf("reconciler.providers."+name, "not a provider name")
		}
		for i, d := range s.Schedule {
			if d <= 0 {
				return errf(fmt.Sprintf("reconciler.providers.%s.schedule[%d]", name, i), "must be positive")
			}
		}
		if s.RatePerSecond < 0 {
			return errf("reconciler.providers."+name+".rate_per_second", "must not be negative (0 or absent: reconciler.rate_per_second)")
		}
		if s.RateBurst < 0 {
			return errf("reconciler.providers."+name+".rate_burst", "must not be negative (0 or absent: reconciler.rate_burst)")
		}
	}
	if c.Reconciler.RatePerSecond < 0 {
		return errf("reconciler.rate_per_second", "must not be negative")
	}
	if c.Reconciler.MaxWatchesPerAccount < 0 {
		return errf("reconciler.max_watches_per_account", "must not be negative (0 or absent: %d)", DefaultMaxWatchesPerAccount)
	}
	if c.Reconciler.RateBurst < 0 {
		return errf("reconciler.rate_burst", "must not be negative")
	}
	seen := map[string]bool{}
	for i, a := range c.Accounts {
		k := fmt.Sprintf("accounts[%d]", i)
		if err := validateAccount(k, a); err != nil {
			return err
		}
		if seen[a.ID] {
			return errf(k+".id", "duplicate account id %q", a.ID)
		}
		seen[a.ID] = true
		if limit := c.Dedupe.Window.D() - FutureSkew; a.MaxAge > limit {
			return errf(k+".max_age", "must be at most dedupe.window (%s) less the %s allowed clock skew, %s: an older callback could be stored twice, got %s", c.Dedupe.Window.D(), FutureSkew, limit, a.MaxAge)
		}
	}
	seen = map[string]bool{}
	for i, s := range c.Subscribers {
		k := fmt.Sprintf("subscribers[%d]", i)
		if err := validateSubscriber(k, s); err != nil {
			return err
		}
		if seen[s.ID] {
			return errf(k+".id", "duplicate subscriber id %q", s.ID)
		}
		seen[s.ID] = true
	}
	if err := c.EventSigning.validate(); err != nil {
		return err
	}
	if err := c.Tracing.validate(); err != nil {
		return err
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		return errf("log.level", "want debug, info, warn or error, got %q", c.Log.Level)
	}
	if !slices.Contains([]string{"json", "text"}, c.Log.Format) {
		return errf("log.format", "want json or text, got %q", c.Log.Format)
	}
	return nil
}

var currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)

// checkCredentials refuses two accounts of one provider with the same
// callback identity (providers.CallbackIdentity: the key callbacks verify
// under, with the merchant id they carry where they carry one): a callback
// verifying under both would be stored once per account URL it is posted
// to, as two events with different ids.
func checkCredentials(p Providers, accounts []providers.Account) error {
	first := map[[2]string]int{}
	for i, a := range accounts {
		id, what, ok := p.CallbackIdentity(a)
		if !ok {
			continue
		}
		k := [2]string{a.Provider, id}
		if j, ok := first[k]; ok {
			return errf(fmt.Sprintf("accounts[%d]", i), "account %q has the same %s as accounts[%d] %q: a callback would verify for both", a.ID, what, j, accounts[j].ID)
		}
		first[k] = i
	}
	return nil
}

func validateAccount(k string, a providers.Account) error {
	if !idRE.MatchString(a.ID) {
		return errf(k+".id", "must match [a-z0-9-]{1,32}, got %q", a.ID)
	}
	if !nameRE.MatchString(a.Provider) {
		return errf(k+".provider", "not a provider name: %q", a.Provider)
	}
	if !currencyRE.MatchString(a.Currency) {
		return errf(k+".currency", "want an ISO 4217 code like INR, got %q", a.Currency)
	}
	if a.BaseURL != "" {
		if err := checkURL(k+".base_url", a.BaseURL, "http", "https"); err != nil {
			return err
		}
	}
	for j, cidr := range a.AllowIPs {
		if _, _, err := net.ParseCIDR(cidr); err != nil {
			if net.ParseIP(cidr) == nil {
				return errf(fmt.Sprintf("%s.allow_ips[%d]", k, j), "not a CIDR or IP: %q", cidr)
			}
		}
	}
	if a.MaxAge <= 0 {
		return errf(k+".max_age", "must be positive")
	}
	return nil
}

// Providers is what config needs from the providers a binary links (a
// *providers.Set): which names exist, and each provider's check of its own
// keys of an account (a *providers.KeyError naming the key).
type Providers interface {
	Names() []string
	Known(name string) bool
	CheckAccount(acct providers.Account) error
	CallbackIdentity(acct providers.Account) (id, what string, ok bool)
}

// CheckProviders checks what only the linked providers know: every
// provider named in accounts, reconciler.providers and subscriber filters
// exists, and each account's provider keys are what its provider takes.
// Parse cannot: config links no provider, so that a binary which handles
// no callbacks (the dispatcher) links none either. Every binary that does
// calls it right after Load (cli.Flags.Providers).
func (c *Config) CheckProviders(p Providers) error {
	want := strings.Join(p.Names(), ", ")
	for i, a := range c.Accounts {
		k := fmt.Sprintf("accounts[%d]", i)
		if !p.Known(a.Provider) {
			return errf(k+".provider", "unknown provider %q (want one of %s)", a.Provider, want)
		}
		if err := p.CheckAccount(a); err != nil {
			var ke *providers.KeyError
			if errors.As(err, &ke) {
				key := k + "." + ke.Key
				if line, ok := c.lines[key]; ok && strings.HasPrefix(ke.Msg, "unknown key") {
					return errf(key, "%s (line %d)", ke.Msg, line)
				}
				return errf(key, "%s", ke.Msg)
			}
			return errf(k, "%s", oneLine(err.Error()))
		}
	}
	if err := checkCredentials(p, c.Accounts); err != nil {
		return err
	}
	names := make([]string, 0, len(c.Reconciler.Providers))
	for name := range c.Reconciler.Providers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !p.Known(name) {
			return errf("reconciler.providers."+name, "unknown provider (want one of %s)", want)
		}
	}
	for i, s := range c.Subscribers {
		for _, name := range s.Filter.Providers {
			if !p.Known(name) {
				return errf(fmt.Sprintf("subscribers[%d].filter.providers", i), "unknown provider %q", name)
			}
		}
	}
	return nil
}

func validateSubscriber(k string, s Subscriber) error {
	if !idRE.MatchString(s.ID) {
		return errf(k+".id", "must match [a-z0-9-]{1,32}, got %q", s.ID)
	}
	if err := checkURL(k+".url", s.URL, "http", "https"); err != nil {
		return err
	}
	secrets := s.AllSecrets()
	if len(secrets) == 0 {
		return errf(k+".secret", "required (a Standard Webhooks whsec_ secret)")
	}
	for _, sec := range secrets {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sec, "whsec_"))
		if !strings.HasPrefix(sec, "whsec_") || err != nil || len(raw) < 12 {
			return errf(k+".secret", "must be whsec_ followed by base64 of at least 12 bytes")
		}
	}
	for _, p := range s.Filter.Providers {
		if !nameRE.MatchString(p) {
			return errf(k+".filter.providers", "not a provider name: %q", p)
		}
	}
	for _, kind := range s.Filter.Kinds {
		if !events.Kind(kind).Valid() {
			return errf(k+".filter.kinds", "unknown kind %q (want payin, payout or appeal)", kind)
		}
	}
	for _, st := range s.Filter.Statuses {
		if !events.Status(st).Valid() && st != string(events.StatusConflict) {
			return errf(k+".filter.statuses", "unknown status %q (want pending, succeeded, failed or conflict)", st)
		}
	}
	if s.MaxAttempts < 1 || s.MaxAttempts > 100 {
		return errf(k+".max_attempts", "must be 1 to 100, got %d", s.MaxAttempts)
	}
	if s.Timeout <= 0 || s.Timeout.D() > 5*time.Minute {
		return errf(k+".timeout", "must be positive and at most 5m")
	}
	if s.BackoffInitial <= 0 || s.BackoffMax < s.BackoffInitial {
		return errf(k+".backoff_max", "must be at least backoff_initial (%s)", s.BackoffInitial.D())
	}
	if s.Concurrency < 1 || s.Concurrency > 1024 {
		return errf(k+".concurrency", "must be 1 to 1024, got %d", s.Concurrency)
	}
	if s.RatePerSecond < 0 {
		return errf(k+".rate_per_second", "must not be negative")
	}
	if _, _, err := s.StartFrom(); err != nil {
		return errf(k+".start", "%s", err.Error())
	}
	return nil
}

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

func checkURL(key, raw string, schemes ...string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		// The URL may carry a password (redis://:pw@host): never echo it.
		return errf(key, "not a URL with a host")
	}
	if !slices.Contains(schemes, u.Scheme) {
		return errf(key, "scheme must be one of %s, got %q", strings.Join(schemes, ", "), u.Scheme)
	}
	return nil
}
