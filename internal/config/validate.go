package config

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

var (
	idRE = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
	// nameRE is what a provider name can be; which names exist is up to
	// the providers a binary links (CheckProviders).
	nameRE = regexp.MustCompile(`^[a-z0-9]{1,32}$`)
)

// Validate checks the whole config; the first problem found is returned.
// The checks run in this order, each part's keys in the order it lists them,
// so a file with several problems always reports the same one first.
func (c *Config) Validate() error {
	for _, check := range []func() error{
		c.NATS.validate,
		c.validateLifetimes,
		c.validateAdminToken,
		c.validateNATSSizing,
		c.Redis.validate,
		c.validateListeners,
		c.Ingress.validate,
		c.validateStreamBytes,
		c.Reconciler.validate,
		c.validateAccounts,
		c.validateSubscribers,
		c.EventSigning.validate,
		c.Tracing.validate,
		c.Log.validate,
	} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// validateLifetimes checks the durations that bound how long things are
// kept or waited for.
func (c *Config) validateLifetimes() error {
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
	return nil
}

func (c *Config) validateAdminToken() error {
	if c.AdminToken != "" && len(c.AdminToken) < MinAdminTokenBytes {
		return errf("admin_token", "must be at least %d bytes (e.g. openssl rand -hex 32), got %d", MinAdminTokenBytes, len(c.AdminToken))
	}
	return nil
}

func (c *Config) validateNATSSizing() error {
	if c.NATS.TraceMaxBytes < 1<<20 {
		return errf("nats.trace_max_bytes", "must be at least 1048576 (1 MiB), got %d", c.NATS.TraceMaxBytes)
	}
	if c.NATS.Replicas < 1 || c.NATS.Replicas > 5 {
		return errf("nats.replicas", "must be 1 to 5, got %d", c.NATS.Replicas)
	}
	return nil
}

func (r Redis) validate() error {
	if r.URL != "" && !r.Sentinel.Enabled() {
		if err := checkURL("redis.url", r.URL, "redis", "rediss"); err != nil {
			return err
		}
	}
	if sn := r.Sentinel; sn.Enabled() {
		if r.URL != "" {
			// Credentials, database and TLS only: the host may be left out.
			if u, err := url.Parse(r.URL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
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
	return nil
}

func (c *Config) validateListeners() error {
	for key, addr := range map[string]string{"ingress.listen": c.Ingress.Listen, "dispatcher.listen": c.Dispatcher.Listen, "reconciler.listen": c.Reconciler.Listen} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return errf(key, "not host:port: %q", addr)
		}
	}
	return nil
}

func (in Ingress) validate() error {
	if in.TrustedProxyHeader != "" && len(in.TrustedProxies) == 0 {
		return errf("ingress.trusted_proxies", "required with trusted_proxy_header: the CIDRs of the proxies whose %s header is believed", in.TrustedProxyHeader)
	}
	for i, cidr := range in.TrustedProxies {
		if _, _, err := net.ParseCIDR(cidr); err != nil && net.ParseIP(cidr) == nil {
			return errf(fmt.Sprintf("ingress.trusted_proxies[%d]", i), "not a CIDR or IP: %q", cidr)
		}
	}
	if in.BodyLimit < 1024 || in.BodyLimit > 16<<20 {
		return errf("ingress.body_limit", "must be between 1024 and 16777216 bytes, got %d", in.BodyLimit)
	}
	if in.RejectionsPerSecond < 0 {
		return errf("ingress.rejections_per_second", "must be positive, got %g", in.RejectionsPerSecond)
	}
	if in.RejectionsBurst < 0 {
		return errf("ingress.rejections_burst", "must be positive, got %d", in.RejectionsBurst)
	}
	return nil
}

// validateStreamBytes: a stream must hold at least a few of the largest
// records (a body at body_limit plus headers and envelope), or it would keep
// almost none.
func (c *Config) validateStreamBytes() error {
	for key, n := range map[string]int64{"nats.raw_max_bytes": c.NATS.RawMaxBytes, "nats.raw_rejected_max_bytes": c.NATS.RawRejectedMaxBytes} {
		if n < 1<<20 || n < 16*c.Ingress.BodyLimit {
			return errf(key, "must be at least 1 MiB and 16 times ingress.body_limit (%d bytes), got %d", 16*c.Ingress.BodyLimit, n)
		}
	}
	return nil
}

func (r Reconciler) validate() error {
	for i, d := range r.Schedule {
		if d <= 0 {
			return errf(fmt.Sprintf("reconciler.schedule[%d]", i), "must be positive")
		}
	}
	for name, s := range r.Providers {
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
	if r.RatePerSecond < 0 {
		return errf("reconciler.rate_per_second", "must not be negative")
	}
	if r.MaxWatchesPerAccount < 0 {
		return errf("reconciler.max_watches_per_account", "must not be negative (0 or absent: %d)", DefaultMaxWatchesPerAccount)
	}
	if r.RateBurst < 0 {
		return errf("reconciler.rate_burst", "must not be negative")
	}
	return nil
}

func (c *Config) validateAccounts() error {
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
	return nil
}

func (c *Config) validateSubscribers() error {
	seen := map[string]bool{}
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
	return nil
}

func (l Log) validate() error {
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, l.Level) {
		return errf("log.level", "want debug, info, warn or error, got %q", l.Level)
	}
	if !slices.Contains([]string{"json", "text"}, l.Format) {
		return errf("log.format", "want json or text, got %q", l.Format)
	}
	return nil
}

var currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)

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
