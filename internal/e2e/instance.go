package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/testenv"
)

// Instance is one more process of a service, beside the Cluster's own:
// a replica of a new release during a rolling deploy, with a config of its
// own (written next to the cluster's, on its own listen port).
type Instance struct {
	Service Service
	// ConfigPath is the file it runs; Config is it parsed back.
	ConfigPath string
	Config     *config.Config
	addr       string
	proc       *proc
}

// URL is the instance's root URL.
func (i *Instance) URL() string { return "http://" + i.addr }

// Running reports whether the instance is alive.
func (i *Instance) Running() bool { return i.proc.running() }

// Logs is what the instance wrote.
func (i *Instance) Logs() string { return i.proc.logs() }

// StartInstance starts another process of s on a config derived from the
// cluster's as it was written (mutate changes it; the listen address of s
// is set to a free port after), and waits until its /readyz answers 200.
// It is killed when the test ends.
func (c *Cluster) StartInstance(tb testing.TB, s Service, mutate func(*config.Config)) (*Instance, error) {
	tb.Helper()
	text, err := os.ReadFile(c.ConfigPath)
	if err != nil {
		return nil, err
	}
	var cfg config.Config
	if err := yaml.Unmarshal(text, &cfg); err != nil {
		return nil, fmt.Errorf("e2e: re-read the config: %w", err)
	}
	if mutate != nil {
		mutate(&cfg)
	}
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(tb))
	switch s {
	case Ingress:
		cfg.Ingress.Listen = addr
	case Dispatcher:
		cfg.Dispatcher.Listen = addr
	case Reconciler:
		cfg.Reconciler.Listen = addr
	default:
		return nil, fmt.Errorf("e2e: unknown service %q", s)
	}
	out, err := yaml.Marshal(&cfg)
	if err != nil {
		return nil, err
	}
	c.startMu.Lock()
	c.instances++
	n := c.instances
	c.startMu.Unlock()
	name := fmt.Sprintf("%s-%d", s, n)
	inst := &Instance{Service: s, ConfigPath: filepath.Join(c.Dir, name+".yaml"), addr: addr}
	if err := os.WriteFile(inst.ConfigPath, out, 0o600); err != nil {
		return nil, err
	}
	if inst.Config, err = config.Load(inst.ConfigPath, func(string) (string, bool) { return "", false }); err != nil {
		return nil, fmt.Errorf("e2e: the instance's config does not load: %w", err)
	}
	base := c.procs[s]
	inst.proc = &proc{name: name, path: base.path, args: []string{"--config", inst.ConfigPath}, env: base.env,
		logPath: filepath.Join(c.Dir, name+".log")}
	tb.Cleanup(func() {
		inst.proc.kill()
		if tb.Failed() {
			tb.Logf("e2e: %s log, last 3000 bytes:\n%s", name, inst.proc.tail(3000))
		}
	})
	if err := inst.proc.start(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return inst, inst.proc.waitReady(ctx, inst.URL()+"/readyz")
}

// Term sends SIGTERM to the instance and waits up to 60 s for it to drain
// and exit; it returns the exit code.
func (i *Instance) Term() (int, error) {
	code, clean := i.proc.term(60 * time.Second)
	if !clean {
		return code, fmt.Errorf("e2e: %s did not exit within 60s of SIGTERM; killed", i.proc.name)
	}
	return code, nil
}

// Promote makes inst the cluster's process of its service, in place of the
// original (which must be stopped): URL, Metrics, Running and the rest then
// address it. The cluster's Config keeps its subscribers (the books check
// them); only the service's listen address changes.
func (c *Cluster) Promote(inst *Instance) error {
	if c.Running(inst.Service) {
		return fmt.Errorf("e2e: %s still runs; stop it before promoting %s", inst.Service, inst.proc.name)
	}
	c.startMu.Lock()
	defer c.startMu.Unlock()
	c.procs[inst.Service] = inst.proc
	switch inst.Service {
	case Ingress:
		c.Config.Ingress.Listen = inst.addr
	case Dispatcher:
		c.Config.Dispatcher.Listen = inst.addr
	case Reconciler:
		c.Config.Reconciler.Listen = inst.addr
	}
	return nil
}

// AddSubscriber creates a Subscriber that is not in the cluster's config
// (for an Instance's config: a subscriber added by a deploy), and its config
// entry with the fast test defaults. The books do not check it.
func (c *Cluster) AddSubscriber(tb testing.TB, sc SubscriberConfig) (*Subscriber, config.Subscriber) {
	tb.Helper()
	o := Options{Subscribers: []SubscriberConfig{sc}}
	o.defaults()
	sc = o.Subscribers[0]
	if sc.Secret == "" {
		sc.Secret = randomSecret()
	}
	s, err := NewSubscriber(sc.ID, sc.Secret)
	if err != nil {
		tb.Fatalf("e2e: subscriber %s: %v", sc.ID, err)
	}
	tb.Cleanup(s.Close)
	return s, config.Subscriber{
		ID: sc.ID, URL: s.URL, Secret: sc.Secret, Filter: sc.Filter,
		MaxAttempts: sc.MaxAttempts, Timeout: config.Duration(sc.Timeout),
		BackoffInitial: config.Duration(sc.BackoffInitial), BackoffMax: config.Duration(sc.BackoffMax),
	}
}

// WithoutSubscriber drops subscriber id from a config (for StartInstance).
func WithoutSubscriber(cfg *config.Config, id string) {
	cfg.Subscribers = slices.DeleteFunc(cfg.Subscribers, func(s config.Subscriber) bool { return s.ID == id })
}
