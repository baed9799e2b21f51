package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelMaster is the name the Sentinels of StartRedisSentinel monitor.
const SentinelMaster = "payhook"

// RedisSentinel is Redis made highly available by Sentinel, as in
// production but on loopback: a master, one replica and three Sentinels
// (redis-server --sentinel) with quorum 2, declaring the master down after
// 1 s without an answer (production: 5 s or more).
type RedisSentinel struct {
	tb testing.TB
	// Nodes are the data nodes: Nodes[0] starts as the master, Nodes[1] as
	// its replica. After a failover the roles differ: ask Master.
	Nodes []*Redis
	// Addrs are the Sentinels, host:port.
	Addrs     []string
	sentinels []*exec.Cmd
}

// StartRedisSentinel starts the data nodes and the Sentinels and waits
// until the Sentinels know the replica; everything is killed when the test ends.
func StartRedisSentinel(tb testing.TB) *RedisSentinel {
	tb.Helper()
	rs := &RedisSentinel{tb: tb}
	master := StartRedis(tb)
	replica := &Redis{tb: tb, Port: FreePort(tb), dir: tb.TempDir(), args: []string{"--replicaof", "127.0.0.1", strconv.Itoa(master.Port)}}
	replica.Addr = "127.0.0.1:" + strconv.Itoa(replica.Port)
	replica.URL = "redis://" + replica.Addr + "/0"
	replica.Start()
	tb.Cleanup(replica.Stop)
	rs.Nodes = []*Redis{master, replica}
	for range 3 {
		port := FreePort(tb)
		dir := tb.TempDir()
		conf := filepath.Join(dir, "sentinel.conf") // Sentinel rewrites it: its own file
		text := fmt.Sprintf("bind 127.0.0.1\nport %d\ndir %s\nlogfile %s\n"+
			"sentinel monitor %s 127.0.0.1 %d 2\n"+
			"sentinel down-after-milliseconds %s 1000\n"+
			"sentinel failover-timeout %s 5000\n"+
			"sentinel parallel-syncs %s 1\n",
			port, dir, filepath.Join(dir, "sentinel.log"), SentinelMaster, master.Port, SentinelMaster, SentinelMaster, SentinelMaster)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			tb.Fatal(err)
		}
		cmd := exec.Command(RedisServerPath(tb), conf, "--sentinel")
		if err := cmd.Start(); err != nil {
			tb.Fatalf("start redis-sentinel: %v", err)
		}
		tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		rs.sentinels = append(rs.sentinels, cmd)
		rs.Addrs = append(rs.Addrs, "127.0.0.1:"+strconv.Itoa(port))
	}
	// Ready when every Sentinel names the master and counts the replica.
	Eventually(tb, 30*time.Second, func() bool {
		for _, a := range rs.Addrs {
			sc := redis.NewSentinelClient(&redis.Options{Addr: a, DialTimeout: time.Second, ReadTimeout: time.Second})
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			rep, err := sc.Replicas(ctx, SentinelMaster).Result()
			cancel()
			_ = sc.Close()
			if err != nil || len(rep) == 0 {
				return false
			}
		}
		return true
	}, "Sentinels on %v never saw the master and its replica", rs.Addrs)
	return rs
}

// Master is the data node the Sentinels name as master now (nil when they
// name none of Nodes, or cannot be asked).
func (rs *RedisSentinel) Master() *Redis {
	for _, a := range rs.Addrs {
		sc := redis.NewSentinelClient(&redis.Options{Addr: a, DialTimeout: time.Second, ReadTimeout: time.Second})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		addr, err := sc.GetMasterAddrByName(ctx, SentinelMaster).Result()
		cancel()
		_ = sc.Close()
		if err != nil || len(addr) != 2 {
			continue
		}
		for _, n := range rs.Nodes {
			if n.Addr == addr[0]+":"+addr[1] {
				return n
			}
		}
	}
	return nil
}

// Restart starts data node n again (after Stop), empty, as a replica of the
// current master, as an operator or Kubernetes brings a lost node back.
func (rs *RedisSentinel) Restart(n *Redis) {
	rs.tb.Helper()
	if m := rs.Master(); m != nil && m != n {
		n.args = []string{"--replicaof", "127.0.0.1", strconv.Itoa(m.Port)}
	}
	n.Start()
}
