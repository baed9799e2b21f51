package e2e

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StartService starts s (when it is not running) and waits until its
// /readyz answers 200 (30 s at most).
func (c *Cluster) StartService(s Service) error {
	p := c.procs[s]
	if p == nil {
		return fmt.Errorf("e2e: unknown service %q", s)
	}
	if p.running() {
		return nil
	}
	if err := p.start(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return p.waitReady(ctx, c.URL(s)+"/readyz")
}

// Kill sends SIGKILL to s (a crash) and waits until it is gone.
func (c *Cluster) Kill(s Service) {
	if p := c.procs[s]; p != nil {
		p.kill()
	}
}

// Term sends SIGTERM to s and waits up to 60 s for it to drain and exit
// (then kills it and returns an error). It returns the exit code.
func (c *Cluster) Term(s Service) (int, error) {
	p := c.procs[s]
	if p == nil {
		return 0, fmt.Errorf("e2e: unknown service %q", s)
	}
	if !p.running() {
		return p.exitCode(), fmt.Errorf("e2e: %s is not running", s)
	}
	code, clean := p.term(60 * time.Second)
	if !clean {
		return code, fmt.Errorf("e2e: %s did not exit within 60s of SIGTERM; killed", s)
	}
	return code, nil
}

// Restart stops s gracefully (SIGTERM; it must exit 0) and starts it
// again on the same port and config. For a crash restart, Kill then StartService.
func (c *Cluster) Restart(s Service) error {
	if c.Running(s) {
		code, err := c.Term(s)
		if err != nil {
			return err
		}
		if code != 0 {
			return fmt.Errorf("e2e: %s exited %d on SIGTERM; log:\n%s", s, code, c.procs[s].tail(3000))
		}
	}
	return c.StartService(s)
}

// Running reports whether s is alive.
func (c *Cluster) Running(s Service) bool {
	p := c.procs[s]
	return p != nil && p.running()
}

// PID is the process id of s (0 when not running).
func (c *Cluster) PID(s Service) int {
	if p := c.procs[s]; p != nil {
		return p.pid()
	}
	return 0
}

// ExitCode is the exit code of the last run of s (-2 while running or never started, -1 killed by a signal).
func (c *Cluster) ExitCode(s Service) int {
	if p := c.procs[s]; p != nil {
		return p.exitCode()
	}
	return -2
}

// Logs is everything s wrote to stdout and stderr, over all its runs (each
// begins with a "=== start N of … ===" line).
func (c *Cluster) Logs(s Service) string {
	if p := c.procs[s]; p != nil {
		return p.logs()
	}
	return ""
}

// LogPath is the file s logs to.
func (c *Cluster) LogPath(s Service) string { return filepath.Join(c.Dir, string(s)+".log") }

// NATSLogs is what nats-server wrote (every node's log, in node order, on a cluster).
func (c *Cluster) NATSLogs() string {
	var b strings.Builder
	for _, n := range c.nodes {
		b.WriteString(n.logs())
	}
	return b.String()
}

// StartNATS (re)starts every nats-server that is not running, on the same
// ports and store, and waits until each accepts connections with JetStream
// enabled (on a cluster: until each is healthy, i.e. current with the
// cluster's leaders).
func (c *Cluster) StartNATS() error {
	c.startMu.Lock()
	defer c.startMu.Unlock()
	var starting []*natsNode
	for _, n := range c.nodes {
		if n.running() {
			continue
		}
		if err := n.start(); err != nil {
			return err
		}
		starting = append(starting, n)
	}
	errs := make([]error, len(starting))
	var wg sync.WaitGroup
	// A new cluster elects its meta leader once the routes are up: ≈ 5 s,
	// longer on a busy machine.
	for i, n := range starting {
		wg.Go(func() { errs[i] = n.waitReady(60 * time.Second) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func probeJetStream(url string) error {
	nc, err := nats.Connect(url, nats.Timeout(time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err
}

// StopNATS stops every nats-server gracefully (SIGTERM), keeping its store.
func (c *Cluster) StopNATS() {
	for _, n := range c.nodes {
		n.term(15 * time.Second)
	}
}

// KillNATS kills every nats-server (SIGKILL), keeping its store (what was
// written survives in the page cache, as after a process crash).
func (c *Cluster) KillNATS() {
	for _, n := range c.nodes {
		n.kill()
	}
}

// StopRedis kills redis-server (its data is lost: persistence is off).
func (c *Cluster) StopRedis() {
	if c.redis != nil {
		c.redis.Stop()
	}
}

// StartRedis restarts redis-server on the same port, empty.
func (c *Cluster) StartRedis() {
	if c.redis != nil {
		c.redis.Start()
	}
}
