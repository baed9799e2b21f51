package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/payhook/payhook/internal/testenv"
)

// natsNode is one nats-server process of a Cluster: the only one, or one
// of the three nodes of a JetStream cluster.
type natsNode struct {
	*proc
	name    string // server_name: n1, n2, n3 (nats-server on its own)
	url     string // nats://127.0.0.1:PORT
	monitor string // http://127.0.0.1:PORT of its monitoring endpoint (cluster only)
}

// natsClusterConf is one node's config: deploy/k8s/nats.yaml's server
// block (cluster name, routes to every node including itself, which the
// server ignores, connect_retries, lame_duck_duration 30 s, the server's
// minimum), with the lame-duck grace shortened from 10 s to 1 s so a
// rolling restart of three nodes fits a test: after the grace a node closes
// its clients at most 1 s apart, and exits once they are gone. No auth:
// internal/security runs deploy/nats/auth.conf.
const natsClusterConf = `server_name: %s
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
lame_duck_duration: 30s
lame_duck_grace_period: 1s
jetstream {
  store_dir: %q
}
cluster {
  name: payhook
  listen: 127.0.0.1:%d
  routes: [%s]
  connect_retries: 120
}
`

// setUpNATS lays out the nats-server processes (one, or three with
// Options.NATSCluster) and sets NATSURL; it starts nothing.
func (c *Cluster) setUpNATS(tb testing.TB) error {
	tb.Helper()
	if !c.opts.NATSCluster {
		port := testenv.FreePort(tb)
		n := &natsNode{name: "nats-server", url: "nats://127.0.0.1:" + strconv.Itoa(port)}
		n.proc = &proc{name: "nats-server", path: c.bins.NATSServer, logPath: filepath.Join(c.Dir, "nats.log"),
			args: []string{"-js", "-sd", filepath.Join(c.Dir, "jetstream"), "-a", "127.0.0.1", "-p", strconv.Itoa(port)}}
		c.nodes = []*natsNode{n}
		c.NATSURL = n.url
		return nil
	}
	const size = 3
	var clientPorts, clusterPorts, httpPorts [size]int
	var routes, urls []string
	for i := range size {
		clientPorts[i], clusterPorts[i], httpPorts[i] = testenv.FreePort(tb), testenv.FreePort(tb), testenv.FreePort(tb)
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", clusterPorts[i]))
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[i]))
	}
	for i := range size {
		name := "n" + strconv.Itoa(i+1)
		conf := fmt.Sprintf(natsClusterConf, name, clientPorts[i], httpPorts[i],
			filepath.Join(c.Dir, "jetstream-"+name), clusterPorts[i], strings.Join(routes, ", "))
		confPath := filepath.Join(c.Dir, "nats-"+name+".conf")
		if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
			return err
		}
		n := &natsNode{name: name, url: urls[i], monitor: fmt.Sprintf("http://127.0.0.1:%d", httpPorts[i])}
		n.proc = &proc{name: "nats-server " + name, path: c.bins.NATSServer,
			logPath: filepath.Join(c.Dir, "nats-"+name+".log"), args: []string{"--config", confPath}}
		c.nodes = append(c.nodes, n)
	}
	c.NATSURL = strings.Join(urls, ",")
	return nil
}

// waitReady waits until the node serves JetStream: on a cluster, until its
// /healthz answers 200 — JetStream current with the meta leader and with
// every stream and consumer it holds a replica of, what the StatefulSet's
// startupProbe waits for before Kubernetes moves on to the next pod.
func (n *natsNode) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	var last error
	for time.Now().Before(deadline) {
		if !n.running() {
			return fmt.Errorf("e2e: %s exited; log:\n%s", n.proc.name, n.tail(3000))
		}
		if n.monitor == "" {
			last = probeJetStream(n.url)
		} else if resp, err := client.Get(n.monitor + "/healthz"); err != nil {
			last = err
		} else {
			resp.Body.Close()
			last = nil
			if resp.StatusCode != http.StatusOK {
				last = fmt.Errorf("/healthz: HTTP %d", resp.StatusCode)
			}
		}
		if last == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("e2e: %s not ready on %s: %v; log, first 3000 bytes:\n%s\nlast 1500 bytes:\n%s", n.proc.name, n.url, last, n.head(3000), n.tail(1500))
}

// head returns the first n bytes of the node's log.
func (n *natsNode) head(size int) string {
	s := n.logs()
	if len(s) > size {
		s = s[:size] + "…"
	}
	return s
}

// NATSNodes is how many nats-server processes run (1, or 3 with Options.NATSCluster).
func (c *Cluster) NATSNodes() int { return len(c.nodes) }

// NATSNodeName is node i's server_name (n1, n2, n3).
func (c *Cluster) NATSNodeName(i int) string { return c.nodes[i].name }

// KillNATSNode kills node i (SIGKILL), keeping its store.
func (c *Cluster) KillNATSNode(i int) { c.nodes[i].kill() }

// StartNATSNode restarts node i on its ports and store and waits (60 s at
// most) until it is healthy: caught up with the cluster.
func (c *Cluster) StartNATSNode(i int) error {
	c.startMu.Lock()
	defer c.startMu.Unlock()
	n := c.nodes[i]
	if !n.running() {
		if err := n.start(); err != nil {
			return err
		}
	}
	return n.waitReady(60 * time.Second)
}

// LameDuckNATSNode puts node i in lame-duck mode (SIGUSR2, what
// `nats-server --signal ldm` sends and the StatefulSet's preStop hook
// runs): it hands its raft leaderships to other nodes, stops taking
// clients, closes the ones it has (after a 1 s grace, at most 1 s apart),
// and exits. It waits up to 40 s for the exit, then kills the node and says so.
func (c *Cluster) LameDuckNATSNode(i int) error {
	n := c.nodes[i]
	pid := n.pid()
	if pid == 0 {
		return fmt.Errorf("e2e: %s is not running", n.name)
	}
	if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
		return fmt.Errorf("e2e: lame duck %s: %w", n.name, err)
	}
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-time.After(40 * time.Second):
		n.kill()
		return fmt.Errorf("e2e: %s still running 40 s after lame duck; killed", n.name)
	}
}

// FreezeNATSNode stops node i (SIGSTOP): its sockets stay open but nothing
// answers, as on a host that stalls. ThawNATSNode resumes it (SIGCONT).
func (c *Cluster) FreezeNATSNode(i int) error { return c.signalNode(i, syscall.SIGSTOP) }

// ThawNATSNode resumes node i after FreezeNATSNode.
func (c *Cluster) ThawNATSNode(i int) error { return c.signalNode(i, syscall.SIGCONT) }

func (c *Cluster) signalNode(i int, sig syscall.Signal) error {
	n := c.nodes[i]
	pid := n.pid()
	if pid == 0 {
		return fmt.Errorf("e2e: %s is not running", n.name)
	}
	return syscall.Kill(pid, sig)
}

// StreamLeader returns the index of the node that leads stream (-1 and an
// error while it has no leader, or the leader is not one of the nodes).
func (c *Cluster) StreamLeader(ctx context.Context, stream string) (int, error) {
	s, err := c.js.Stream(ctx, stream)
	if err != nil {
		return -1, err
	}
	info := s.CachedInfo()
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return -1, fmt.Errorf("e2e: %s has no leader", stream)
	}
	for i, n := range c.nodes {
		if n.name == info.Cluster.Leader {
			return i, nil
		}
	}
	return -1, fmt.Errorf("e2e: %s is led by %q, not a node of this cluster", stream, info.Cluster.Leader)
}

// ClientNode returns the index of the node that service s (its NATS
// connection, named payhook-{s}) is connected to, from each node's /connz.
func (c *Cluster) ClientNode(s Service) (int, error) {
	client := &http.Client{Timeout: 2 * time.Second}
	for i, n := range c.nodes {
		if n.monitor == "" || !n.running() {
			continue
		}
		resp, err := client.Get(n.monitor + "/connz?limit=1024")
		if err != nil {
			continue
		}
		var connz struct {
			Connections []struct {
				Name string `json:"name"`
			} `json:"connections"`
		}
		err = json.NewDecoder(resp.Body).Decode(&connz)
		resp.Body.Close()
		if err != nil {
			continue
		}
		for _, conn := range connz.Connections {
			if conn.Name == "payhook-"+string(s) {
				return i, nil
			}
		}
	}
	return -1, fmt.Errorf("e2e: no node has a connection of %s", s)
}

// MoveStreamLeader asks stream's leader to step down in favour of node i
// (JetStream's leader stepdown with a preferred placement) and waits up to
// 20 s until node i leads.
func (c *Cluster) MoveStreamLeader(ctx context.Context, stream string, i int) error {
	req, _ := json.Marshal(map[string]any{"placement": map[string]string{"preferred": c.nodes[i].name}})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if cur, err := c.StreamLeader(ctx, stream); err == nil && cur == i {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("e2e: %s not led by %s within 20 s", stream, c.nodes[i].name)
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := c.nc.RequestWithContext(rctx, "$JS.API.STREAM.LEADER.STEPDOWN."+stream, req)
		cancel()
		if err != nil && ctx.Err() != nil {
			return err
		}
		time.Sleep(500 * time.Millisecond)
	}
}
