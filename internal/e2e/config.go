package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/providersim"
)

func randomSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// writeConfig renders the config from Go values (yaml tags of
// internal/config), writes it, and loads it back through config.Load: the
// services will accept exactly what the suite validated.
func (c *Cluster) writeConfig(tb testing.TB) error {
	tb.Helper()
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	c.AdminToken = "e2e-admin-" + hex.EncodeToString(tok)
	cfg := &config.Config{
		NATS:  config.NATS{URL: c.NATSURL, Replicas: len(c.nodes)},
		Redis: config.Redis{URL: c.RedisURL},
		// Every simulated provider posts from 127.0.0.1: the suites' refused
		// callbacks must be answered and recorded, not rate-limited.
		Ingress:    config.Ingress{Listen: "127.0.0.1:" + strconv.Itoa(testenv.FreePort(tb)), RejectionsPerSecond: 10000, RejectionsBurst: 10000},
		Dispatcher: config.Dispatcher{Listen: "127.0.0.1:" + strconv.Itoa(testenv.FreePort(tb))},
		Reconciler: config.Reconciler{
			Listen:         "127.0.0.1:" + strconv.Itoa(testenv.FreePort(tb)),
			RetriggerGrace: config.Duration(c.opts.RetriggerGrace),
			// Fast enough that no test waits for a token.
			RatePerSecond: 100, RateBurst: 100,
		},
		AdminToken: c.AdminToken,
		Log:        config.Log{Level: c.opts.LogLevel, Format: "json"},
		// Every binary signs or verifies with the test key pair.
		EventSigning: config.EventSigning{PrivateKey: testenv.EventPrivateKey, PublicKeys: []string{testenv.EventPublicKey}},
	}
	for _, d := range c.opts.Schedule {
		cfg.Reconciler.Schedule = append(cfg.Reconciler.Schedule, config.Duration(d))
	}
	for _, a := range testAccounts {
		a.BaseURL = providersim.BaseURL(c.SimURL, a)
		cfg.Accounts = append(cfg.Accounts, a)
	}
	for i, sc := range c.opts.Subscribers {
		cfg.Subscribers = append(cfg.Subscribers, config.Subscriber{
			ID: sc.ID, URL: c.subs[i].URL, Secret: sc.Secret, Filter: sc.Filter,
			MaxAttempts: sc.MaxAttempts, Timeout: config.Duration(sc.Timeout),
			BackoffInitial: config.Duration(sc.BackoffInitial), BackoffMax: config.Duration(sc.BackoffMax),
			// Every event of the run, also those stored before the
			// dispatcher first starts (tests that start it later).
			Start: config.StartAll,
		})
	}
	if c.sentinel != nil {
		cfg.Redis.Sentinel = config.RedisSentinel{Master: testenv.SentinelMaster, Addrs: c.sentinel.Addrs}
	}
	if c.opts.Configure != nil {
		c.opts.Configure(cfg)
	}
	text, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("e2e: render config: %w", err)
	}
	c.ConfigPath = filepath.Join(c.Dir, "payhook.yaml")
	if err := os.WriteFile(c.ConfigPath, text, 0o600); err != nil {
		return err
	}
	parsed, err := config.Load(c.ConfigPath, func(string) (string, bool) { return "", false })
	if err != nil {
		return fmt.Errorf("e2e: the generated config does not load: %w\n%s", err, text)
	}
	c.Config = parsed
	return nil
}
