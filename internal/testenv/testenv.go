// Package testenv starts the real dependencies integration tests need: an
// embedded NATS server with JetStream in a temp dir, and a redis-server
// process, each on a free port, each stoppable and restartable on the same
// port to simulate outages. Tests never touch the machine's own NATS (4222)
// or Redis (6379).
package testenv

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
//
// It is drawn at random below Linux's ephemeral range (32768-60999 by
// default), not from the kernel's port 0: the kernel hands out ports of
// that range to every outgoing connection as well, and a suite that starts
// many processes and clients would see a port it was given taken by a
// client socket before the process meant to listen on it binds. Below the
// range only another test's listener can collide, and a random draw over
// 17,000 ports makes that rare; the port is checked free before it is returned.
func FreePort(tb testing.TB) int {
	tb.Helper()
	const lo, hi = 15000, 32000
	for range 200 {
		port := lo + rand.IntN(hi-lo)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// NATS is an embedded nats-server with JetStream on file storage.
type NATS struct {
	tb   testing.TB
	mu   sync.Mutex
	srv  *server.Server
	opts server.Options
	URL  string
}

// StartNATS starts a JetStream-enabled server on a free port with its store
// in a temp dir; it is shut down when the test ends.
func StartNATS(tb testing.TB) *NATS {
	tb.Helper()
	return StartNATSWith(tb, server.Options{})
}

// StartNATSConfig is StartNATS with the settings of a nats-server config
// file (authorization, TLS, limits), parsed as nats-server parses it, so
// "$NAME" references read the environment (tb.Setenv before). Where to
// listen and store is still the test's: a free port on 127.0.0.1 and a
// temp dir.
func StartNATSConfig(tb testing.TB, path string) *NATS {
	tb.Helper()
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		tb.Fatalf("nats config %s: %v", path, err)
	}
	return StartNATSWith(tb, *opts)
}

// StartNATSWith is StartNATS with opts as the base (users, TLS ...); host,
// port, JetStream, store dir, logging and signals are set here.
func StartNATSWith(tb testing.TB, opts server.Options) *NATS {
	tb.Helper()
	port := FreePort(tb)
	opts.Host, opts.Port = "127.0.0.1", port
	opts.JetStream, opts.StoreDir = true, tb.TempDir()
	opts.NoLog, opts.NoSigs = true, true
	opts.HTTPPort, opts.Cluster.Port, opts.LeafNode.Port = 0, 0, 0
	n := &NATS{tb: tb, opts: opts}
	n.URL = fmt.Sprintf("nats://127.0.0.1:%d", port)
	n.Start()
	tb.Cleanup(n.Stop)
	return n
}

// Start (re)starts the server on the same port and store.
func (n *NATS) Start() {
	n.tb.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil && n.srv.Running() {
		return
	}
	opts := n.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		n.tb.Fatalf("nats server: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		n.tb.Fatalf("nats server not ready on %s", n.URL)
	}
	n.srv = srv
}

// Stop shuts the server down, keeping its store for a later Start.
func (n *NATS) Stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}

// Server returns the running server (nil while stopped).
func (n *NATS) Server() *server.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}

// Connect opens a client connection that is closed when the test ends.
func (n *NATS) Connect(tb testing.TB) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(n.URL, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		tb.Fatalf("nats connect: %v", err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// Redis is a redis-server child process without persistence.
type Redis struct {
	tb   testing.TB
	mu   sync.Mutex
	cmd  *exec.Cmd
	Port int
	Addr string
	URL  string
	dir  string
	// args are extra redis-server arguments (a replica's --replicaof).
	args []string
}

// RedisServerPath finds redis-server on PATH or in /usr/bin. The test command
// (scripts/test.sh) installs it when missing; here a missing binary fails the test.
func RedisServerPath(tb testing.TB) string {
	tb.Helper()
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/bin/redis-server", "/usr/local/bin/redis-server"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	tb.Fatalf("redis-server not found: run scripts/test.sh, which installs it, or apt-get install redis-server")
	return ""
}

// StartRedis starts redis-server on a free port with persistence off; it is
// killed when the test ends.
func StartRedis(tb testing.TB) *Redis {
	tb.Helper()
	r := &Redis{tb: tb, Port: FreePort(tb), dir: tb.TempDir()}
	r.Addr = "127.0.0.1:" + strconv.Itoa(r.Port)
	r.URL = "redis://" + r.Addr + "/0"
	r.Start()
	tb.Cleanup(r.Stop)
	return r
}

// Start (re)starts redis-server on the same port; its data starts empty.
func (r *Redis) Start() {
	r.tb.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		return
	}
	cmd := exec.Command(RedisServerPath(r.tb), append([]string{
		"--bind", "127.0.0.1", "--port", strconv.Itoa(r.Port),
		"--save", "", "--appendonly", "no", "--dir", r.dir,
		"--logfile", filepath.Join(r.dir, "redis.log")}, r.args...)...)
	if err := cmd.Start(); err != nil {
		r.tb.Fatalf("start redis-server: %v", err)
	}
	r.cmd = cmd
	// Generous: on a loaded 2-core CI machine a child process can take
	// seconds to be scheduled.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if pingRedis(r.Addr) == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.tb.Fatalf("redis-server on %s did not answer PING", r.Addr)
}

// Stop kills redis-server (SIGKILL: an outage, not a shutdown).
func (r *Redis) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// pingRedis speaks just enough RESP to tell that the server is up.
func pingRedis(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}

// Eventually polls cond every 20ms until it is true or timeout passes.
func Eventually(tb testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s: "+format, append([]any{timeout}, args...)...)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
