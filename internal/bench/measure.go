package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/payhook/payhook/internal/natsbus"
)

// naiveRedisURL is redisURL on database 1: the straightforward handler's
// keys stay out of database 0, where payhook's are counted, and are flushed
// after each of its phases so Redis memory per event stays payhook's.
func naiveRedisURL(redisURL string) string {
	return strings.TrimSuffix(strings.TrimSuffix(redisURL, "/0"), "/") + "/1"
}

func flushNaive(ctx context.Context, redisURL string) {
	rdb := redis.NewClient(mustRedisOpts(naiveRedisURL(redisURL)))
	defer rdb.Close()
	rdb.FlushDB(ctx)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func subID(i int) string { return "sub" + strconv.Itoa(i) }

func waitNATS(ctx context.Context, url string, p *Proc) (*nats.Conn, error) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		nc, err := nats.Connect(url, nats.MaxReconnects(-1))
		if err == nil {
			return nc, nil
		}
		if p.Exited() || time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("nats on %s: %w", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// consumerLag is the summed backlog of the dispatcher's consumers: messages
// not yet handed out plus handed out and not yet acknowledged.
func consumerLag(ctx context.Context, js jetstream.JetStream, names []string) int64 {
	var total int64
	for _, n := range names {
		c, err := js.Consumer(ctx, natsbus.StreamEvents, n)
		if err != nil {
			continue
		}
		info, err := c.Info(ctx)
		if err != nil {
			continue
		}
		total += int64(info.NumPending) + int64(info.NumAckPending)
	}
	return total
}

func waitCatchUp(ctx context.Context, lag func() int64, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for lag() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
	}
}

func waitDeliveries(ctx context.Context, sub *Subscriber, want int64, timeout time.Duration) int64 {
	deadline := time.Now().Add(timeout)
	for sub.Tracked() < want && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	return sub.Tracked()
}

// sampleMax polls f every 500 ms into *peak until the returned stop is called.
func sampleMax(f func() int64, peak *int64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if v := f(); v > *peak {
					*peak = v
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func cpuTimes(ps []*service) []time.Duration {
	out := make([]time.Duration, len(ps))
	for i, s := range ps {
		out[i], _ = ReadCPU(s.proc.PID())
	}
	return out
}

// scrape reads a Prometheus text page into name → value, summing the
// series of a labelled metric under its bare name.
func scrape(ctx context.Context, url string) map[string]float64 {
	out := map[string]float64{}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return out
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		name := line[:i]
		if j := strings.IndexByte(name, '{'); j >= 0 {
			name = name[:j] // labelled series are summed under the bare name
		}
		if f, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[name] += f
		}
	}
	return out
}

// meanOf is the mean of histogram name between two scrapes.
func meanOf(before, after map[string]float64, name string) time.Duration {
	n := after[name+"_count"] - before[name+"_count"]
	if n <= 0 {
		return 0
	}
	return time.Duration((after[name+"_sum"] - before[name+"_sum"]) / n * float64(time.Second))
}

func mustRedisOpts(url string) *redis.Options {
	o, err := redis.ParseURL(url)
	if err != nil {
		return &redis.Options{Addr: strings.TrimPrefix(url, "redis://")}
	}
	return o
}

func redisInfoInt(ctx context.Context, rdb *redis.Client, section, key string) (int64, error) {
	s, err := rdb.Info(ctx, section).Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(s, "\r\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("redis INFO %s has no %s", section, key)
}

// sampleMemoryUsage is the mean MEMORY USAGE (SAMPLES 0: exact) of up to n keys.
func sampleMemoryUsage(ctx context.Context, rdb *redis.Client, n int) float64 {
	var total, count int64
	iter := rdb.Scan(ctx, 0, "*", 100).Iterator()
	for iter.Next(ctx) && count < int64(n) {
		v, err := rdb.MemoryUsage(ctx, iter.Val(), 0).Result()
		if err == nil {
			total += v
			count++
		}
	}
	if count == 0 {
		return 0
	}
	return float64(total) / float64(count)
}
