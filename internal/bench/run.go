package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/payhook/payhook/internal/dispatch"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/ops"
	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

// Options configure one benchmark run. Zero values take the defaults below,
// which keep a run (after building) under about two minutes.
type Options struct {
	Self            string        // this binary, for the serve-nats and serve-echo children (required)
	Dir             string        // work dir for binaries, stores and logs (default: a temp dir, removed unless Keep)
	Keep            bool          // keep Dir
	IngressBin      string        // prebuilt cmd/ingress (default: go build)
	DispatcherBin   string        // prebuilt cmd/dispatcher (default: go build)
	Conns           int           // closed loop: concurrent connections (default 64, like wrk -c64)
	Workers         int           // open loop: concurrent senders (default 256)
	Warmup          time.Duration // before each max-throughput phase (default 3s)
	MaxDuration     time.Duration // each max-throughput phase (default 15s)
	LoadFraction    float64       // latency phase rate as a fraction of payhook's max (default 0.5)
	LatencyDuration time.Duration // latency phase on payhook (default 20s); the baseline gets half
	RSSRate         float64       // the steady phase's rate, for RSS (default 1000/s)
	RSSDuration     time.Duration // the steady phase (default 10s)
	Subscribers     int           // dispatcher subscribers (default 3; negative: no dispatcher)
	Profile         string        // write an ingress CPU profile of the max phase here (runs the ServeIngress mirror)
	Rounds          int           // max-throughput pairs (baseline, payhook) to run; the report gives each ratio and the median (default 1)
	Log             io.Writer     // progress lines (default: discard)
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if o.Conns == 0 {
		o.Conns = 64
	}
	if o.Workers == 0 {
		o.Workers = 256
	}
	def(&o.Warmup, 3*time.Second)
	def(&o.MaxDuration, 15*time.Second)
	def(&o.LatencyDuration, 20*time.Second)
	def(&o.RSSDuration, 10*time.Second)
	if o.LoadFraction == 0 {
		o.LoadFraction = 0.5
	}
	if o.RSSRate == 0 {
		o.RSSRate = 1000
	}
	if o.Subscribers == 0 {
		o.Subscribers = 3
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// ProcStats is what one service process used.
type ProcStats struct {
	Name       string
	RSSAt1k    int64         // VmRSS at the end of the steady phase, bytes
	PeakAt1k   int64         // VmHWM at the end of the steady phase
	PeakTotal  int64         // VmHWM at the end of the run
	CPUPerReq  time.Duration // CPU time per callback in the latency phase
	CPUMaxLoad float64       // cores used during payhook's max phase
}

// Report is everything one run measured.
type Report struct {
	Started            time.Time
	Host               string
	CPUs               int
	Mix                []Target
	Excluded           []string // providers in the mix ingress does not register yet
	BaselineMax        Result
	PayhookMax         Result
	NaiveMax           Result    // the straightforward handler (NaiveHandler), closed loop like the others
	RoundRatios        []float64 // payhook/baseline max req/s of every round, the first being BaselineMax/PayhookMax
	NaiveRatios        []float64 // naive/baseline max req/s of every round
	NaiveCPUMaxLoad    float64   // cores the straightforward handler used during its max phase
	MinimalMax         Result    // the minimal durable handler (MinimalHandler), closed loop like the others
	MinimalRatios      []float64 // minimal/baseline max req/s of every round
	PayhookToMinimal   []float64 // payhook/minimal max req/s of every round
	P99ToMinimal       []float64 // payhook/minimal closed-loop p99 of every round (Conns connections)
	MinimalCPUMaxLoad  float64   // cores the minimal handler used during its max phase
	MinimalSignedMax   Result    // the minimal handler signing every event, as payhook does
	PayhookToSigned    []float64 // payhook/minimal-signed max req/s of every round
	Rate               float64   // latency phase rate
	PayhookLat         Result
	BaselineLat        Result
	Steady             Result
	E2ELat             *Histogram // e2e at Rate
	E2ESteady          *Histogram // e2e at RSSRate
	E2EMissing         int64      // deliveries expected in the latency phase but not seen before the timeout
	MaxLag             int64      // largest consumer backlog (pending + unacked) seen in the max phase
	CatchUp            time.Duration
	Subscribers        int
	Conns              int // closed-loop connections of the max phases
	Procs              []ProcStats
	RedisPerEvent      float64 // INFO used_memory delta / tracked events
	RedisUsageSample   float64 // mean MEMORY USAGE of sampled keys
	RedisKeys          int64
	RedisCmdsPerCB     float64 // Redis commands per callback, latency phase
	EventsStored       uint64
	AllocsPerCB        float64 // ingress mallocs per callback, latency phase (process-wide)
	AllocBytesPerCB    float64
	DispAllocsPerEvent float64       // dispatcher mallocs per delivered event (3 deliveries)
	PublishMean        time.Duration // mean JetStream publish-until-PubAck time in the latency phase (ingress metric)
	HandlerMean        time.Duration // mean ingress handler time in the latency phase (ingress metric)
	BaselineCPUPerReq  time.Duration // echo baseline CPU per request in its latency phase
	LoadStart, LoadEnd string        // /proc/loadavg at start and end: how shared the machine was
	Profile            string
}

type service struct {
	proc    *Proc
	metrics string // /metrics URL, empty when none
}

// Run starts NATS, Redis, ingress, the dispatcher, the echo baseline and the
// subscriber, runs the phases and returns the report. Phase order matters:
// the 1,000/s steady phase runs first so its RSS is not inflated by the max
// phase's heap (Go returns memory to the OS only gradually).
func Run(ctx context.Context, o Options) (*Report, error) {
	o.defaults()
	logf := func(format string, args ...any) { fmt.Fprintf(o.Log, "bench: "+format+"\n", args...) }
	if o.Self == "" {
		return nil, fmt.Errorf("bench: Options.Self is required")
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "payhook-bench-")
		if err != nil {
			return nil, err
		}
		o.Dir = d
		if !o.Keep {
			defer os.RemoveAll(d)
		}
	}
	rep := &Report{Started: time.Now().UTC(), CPUs: numCPU(), Subscribers: max(o.Subscribers, 0), Conns: o.Conns}
	rep.Host, _ = os.Hostname()
	rep.LoadStart = loadAvg()
	defer func() { rep.LoadEnd = loadAvg() }()

	// Binaries.
	var err error
	if o.IngressBin == "" && o.Profile == "" {
		logf("building cmd/ingress")
		if o.IngressBin, err = GoBuild(ctx, "./cmd/ingress", o.Dir); err != nil {
			return nil, err
		}
	}
	if o.DispatcherBin == "" && o.Subscribers > 0 {
		logf("building cmd/dispatcher")
		if o.DispatcherBin, err = GoBuild(ctx, "./cmd/dispatcher", o.Dir); err != nil {
			return nil, err
		}
	}

	var procs []*service
	defer func() {
		// Teardown, reverse of start: load-facing services first, then the stores.
		for _, s := range slices.Backward(procs) {
			s.proc.Stop(10 * time.Second)
		}
	}()
	redisProc, redisURL, err := StartRedis(ctx, o.Dir)
	if err != nil {
		return nil, err
	}
	procs = append(procs, &service{proc: redisProc})
	natsPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	natsDir := filepath.Join(o.Dir, "jetstream")
	natsProc, err := Start("nats", o.Self, []string{"serve-nats", "--port", strconv.Itoa(natsPort), "--dir", natsDir}, o.Dir)
	if err != nil {
		return nil, err
	}
	procs = append(procs, &service{proc: natsProc})
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	nc, err := waitNATS(ctx, natsURL, natsProc)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}

	// Accounts: only providers ingress registers (mrnpay and cashypro may not be yet).
	inbound := registry.Inbound()
	var accts []providers.Account
	for _, a := range Accounts() {
		if _, ok := inbound[a.Provider]; ok {
			accts = append(accts, a)
		} else {
			rep.Excluded = append(rep.Excluded, a.Provider)
		}
	}
	gen, err := NewGenerator(accts, DefaultMix, "b"+strconv.FormatInt(time.Now().Unix()%100000, 36)+"-")
	if err != nil {
		return nil, err
	}
	rep.Mix = gen.Targets()

	// The subscriber, in this process.
	sub := NewSubscriber()
	subLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	subSrv := ops.NewServer(sub, ops.DefaultTimeouts)
	go func() { _ = subSrv.Serve(subLn) }()
	defer subSrv.Close()

	ingressPort, _ := FreePort()
	dispPort, _ := FreePort()
	cfgPath := filepath.Join(o.Dir, "payhook.yaml")
	cfgText, err := ConfigYAML(natsURL, redisURL, ingressPort, dispPort, accts, "http://"+subLn.Addr().String(), max(o.Subscribers, 0))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(cfgPath, cfgText, 0o600); err != nil {
		return nil, err
	}
	ingressURL := fmt.Sprintf("http://127.0.0.1:%d", ingressPort)
	var ing *Proc
	if o.Profile != "" {
		ing, err = Start("ingress", o.Self, []string{"serve-ingress", "--config", cfgPath, "--cpuprofile", o.Profile + ".tmp"}, o.Dir)
	} else {
		ing, err = Start("ingress", o.IngressBin, []string{"--config", cfgPath}, o.Dir)
	}
	if err != nil {
		return nil, err
	}
	ingSvc := &service{proc: ing, metrics: ingressURL + "/metrics"}
	procs = append(procs, ingSvc)
	if err := WaitHTTP(ctx, ingressURL+"/readyz", ing, 30*time.Second); err != nil {
		return nil, err
	}
	var dispSvc *service
	if o.Subscribers > 0 {
		d, err := Start("dispatcher", o.DispatcherBin, []string{"--config", cfgPath}, o.Dir)
		if err != nil {
			return nil, err
		}
		dispURL := fmt.Sprintf("http://127.0.0.1:%d", dispPort)
		dispSvc = &service{proc: d, metrics: dispURL + "/metrics"}
		procs = append(procs, dispSvc)
		if err := WaitHTTP(ctx, dispURL+"/readyz", d, 30*time.Second); err != nil {
			return nil, err
		}
	}
	echoPort, _ := FreePort()
	echoURL := fmt.Sprintf("http://127.0.0.1:%d", echoPort)
	echoProc, err := Start("baseline", o.Self, []string{"serve-echo", "--addr", fmt.Sprintf("127.0.0.1:%d", echoPort)}, o.Dir)
	if err != nil {
		return nil, err
	}
	procs = append(procs, &service{proc: echoProc})
	if err := WaitHTTP(ctx, echoURL+"/readyz", echoProc, 30*time.Second); err != nil {
		return nil, err
	}
	naivePort, _ := FreePort()
	naiveURL := fmt.Sprintf("http://127.0.0.1:%d", naivePort)
	naiveProc, err := Start("naive", o.Self, []string{"serve-naive", "--addr", fmt.Sprintf("127.0.0.1:%d", naivePort),
		"--nats", natsURL, "--redis", naiveRedisURL(redisURL)}, o.Dir)
	if err != nil {
		return nil, err
	}
	procs = append(procs, &service{proc: naiveProc})
	if err := WaitHTTP(ctx, naiveURL+"/readyz", naiveProc, 30*time.Second); err != nil {
		return nil, err
	}
	startMinimal := func(name string, extra ...string) (*Proc, string, error) {
		port, _ := FreePort()
		url := fmt.Sprintf("http://127.0.0.1:%d", port)
		p, err := Start(name, o.Self, append([]string{"serve-minimal", "--addr", fmt.Sprintf("127.0.0.1:%d", port), "--nats", natsURL}, extra...), o.Dir)
		if err != nil {
			return nil, "", err
		}
		procs = append(procs, &service{proc: p})
		return p, url, WaitHTTP(ctx, url+"/readyz", p, 30*time.Second)
	}
	minimalProc, minimalURL, err := startMinimal("minimal")
	if err != nil {
		return nil, err
	}
	_, signedURL, err := startMinimal("minimal-signed", "--sign")
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(mustRedisOpts(redisURL))
	defer rdb.Close()
	redisMem0, _ := redisInfoInt(ctx, rdb, "memory", "used_memory")
	keys0, _ := rdb.DBSize(ctx).Result()

	acks := map[string][]byte{}
	for name, p := range inbound {
		for _, k := range p.Kinds() {
			acks[name+"/"+string(k)] = p.Ack(k).Body
		}
	}
	payhook, err := newSender(ingressURL, gen, acks, o.Conns+o.Workers)
	if err != nil {
		return nil, err
	}
	defer payhook.cl.Close()
	baseline, err := newSender(echoURL, gen, nil, o.Conns+o.Workers)
	if err != nil {
		return nil, err
	}
	defer baseline.cl.Close()
	naive, err := newSender(naiveURL, gen, acks, o.Conns)
	if err != nil {
		return nil, err
	}
	defer naive.cl.Close()
	minimal, err := newSender(minimalURL, gen, acks, o.Conns)
	if err != nil {
		return nil, err
	}
	defer minimal.cl.Close()
	signed, err := newSender(signedURL, gen, acks, o.Conns)
	if err != nil {
		return nil, err
	}
	defer signed.cl.Close()
	consumers := make([]string, 0, max(o.Subscribers, 0))
	for i := 1; i <= o.Subscribers; i++ {
		consumers = append(consumers, dispatch.ConsumerName(subID(i)))
	}
	lag := func() int64 { return consumerLag(ctx, js, consumers) }

	// 1. Warm-up and the steady phase at RSSRate, for RSS and e2e at a modest load.
	logf("warm-up: %s at %.0f/s", o.Warmup, o.RSSRate)
	RunOpen(ctx, Plan{o.RSSRate, o.Warmup}, o.Workers, payhook.do(nil))
	waitCatchUp(ctx, lag, 30*time.Second)
	sub.Reset()
	logf("steady: %s at %.0f/s", o.RSSDuration, o.RSSRate)
	rep.Steady = RunOpen(ctx, Plan{o.RSSRate, o.RSSDuration}, o.Workers, payhook.do(sub))
	waitDeliveries(ctx, sub, rep.Steady.OK*int64(o.Subscribers), 15*time.Second)
	rep.E2ESteady = sub.Reset()
	for _, s := range procs {
		m, _ := ReadMem(s.proc.PID())
		rep.Procs = append(rep.Procs, ProcStats{Name: s.proc.Name, RSSAt1k: m.RSS, PeakAt1k: m.Peak})
	}

	// 2. Max throughput: baseline, then payhook (closed loop, Conns connections).
	logf("baseline max: %s + %s warm-up, %d connections", o.MaxDuration, o.Warmup, o.Conns)
	RunClosed(ctx, o.Warmup, o.Conns, baseline.do(nil))
	rep.BaselineMax = RunClosed(ctx, o.MaxDuration, o.Conns, baseline.do(nil))
	logf("baseline max: %.0f req/s", rep.BaselineMax.Throughput())
	logf("straightforward handler max: %s + %s warm-up", o.MaxDuration, o.Warmup)
	RunClosed(ctx, o.Warmup, o.Conns, naive.do(nil))
	ncpu0, _ := ReadCPU(naiveProc.PID())
	rep.NaiveMax = RunClosed(ctx, o.MaxDuration, o.Conns, naive.do(nil))
	ncpu1, _ := ReadCPU(naiveProc.PID())
	rep.NaiveCPUMaxLoad = (ncpu1 - ncpu0).Seconds() / rep.NaiveMax.Elapsed.Seconds()
	logf("straightforward handler max: %.0f req/s (%d errors)", rep.NaiveMax.Throughput(), rep.NaiveMax.Errors)
	flushNaive(ctx, redisURL)
	logf("minimal durable handler max: %s + %s warm-up", o.MaxDuration, o.Warmup)
	RunClosed(ctx, o.Warmup, o.Conns, minimal.do(nil))
	mcpu0, _ := ReadCPU(minimalProc.PID())
	rep.MinimalMax = RunClosed(ctx, o.MaxDuration, o.Conns, minimal.do(nil))
	mcpu1, _ := ReadCPU(minimalProc.PID())
	rep.MinimalCPUMaxLoad = (mcpu1 - mcpu0).Seconds() / rep.MinimalMax.Elapsed.Seconds()
	logf("minimal durable handler max: %.0f req/s (%d errors)", rep.MinimalMax.Throughput(), rep.MinimalMax.Errors)
	RunClosed(ctx, o.Warmup, o.Conns, signed.do(nil))
	rep.MinimalSignedMax = RunClosed(ctx, o.MaxDuration, o.Conns, signed.do(nil))
	logf("minimal durable handler, signed, max: %.0f req/s (%d errors)", rep.MinimalSignedMax.Throughput(), rep.MinimalSignedMax.Errors)
	waitCatchUp(ctx, lag, 30*time.Second)
	logf("payhook max: %s + %s warm-up", o.MaxDuration, o.Warmup)
	RunClosed(ctx, o.Warmup, o.Conns, payhook.do(nil))
	cpu0 := cpuTimes(procs)
	stopSampling := sampleMax(lag, &rep.MaxLag)
	rep.PayhookMax = RunClosed(ctx, o.MaxDuration, o.Conns, payhook.do(nil))
	stopSampling()
	cpu1 := cpuTimes(procs)
	for i := range rep.Procs {
		rep.Procs[i].CPUMaxLoad = (cpu1[i] - cpu0[i]).Seconds() / rep.PayhookMax.Elapsed.Seconds()
	}
	logf("payhook max: %.0f req/s (%d errors), consumer backlog peaked at %d", rep.PayhookMax.Throughput(), rep.PayhookMax.Errors, rep.MaxLag)
	t0 := time.Now()
	waitCatchUp(ctx, lag, 120*time.Second)
	rep.CatchUp = time.Since(t0)
	rep.RoundRatios = []float64{rep.PayhookMax.Throughput() / max(rep.BaselineMax.Throughput(), 1)}
	rep.NaiveRatios = []float64{rep.NaiveMax.Throughput() / max(rep.BaselineMax.Throughput(), 1)}
	rep.addMinimalRound(rep.BaselineMax, rep.MinimalMax, rep.MinimalSignedMax, rep.PayhookMax)
	logf("round 1: baseline %.0f, straightforward %.0f, minimal %.0f, payhook %.0f req/s; payhook %.2f× the minimal handler",
		rep.BaselineMax.Throughput(), rep.NaiveMax.Throughput(), rep.MinimalMax.Throughput(), rep.PayhookMax.Throughput(), rep.PayhookToMinimal[0])
	for r := 2; r <= o.Rounds; r++ {
		// More rounds, alternating, so that a change in the machine's load
		// shows as spread instead of moving one side only.
		b := RunClosed(ctx, o.MaxDuration, o.Conns, baseline.do(nil))
		nv := RunClosed(ctx, o.MaxDuration, o.Conns, naive.do(nil))
		flushNaive(ctx, redisURL)
		mn := RunClosed(ctx, o.MaxDuration, o.Conns, minimal.do(nil))
		ms := RunClosed(ctx, o.MaxDuration, o.Conns, signed.do(nil))
		p := RunClosed(ctx, o.MaxDuration, o.Conns, payhook.do(nil))
		waitCatchUp(ctx, lag, 120*time.Second)
		rep.RoundRatios = append(rep.RoundRatios, p.Throughput()/max(b.Throughput(), 1))
		rep.NaiveRatios = append(rep.NaiveRatios, nv.Throughput()/max(b.Throughput(), 1))
		rep.addMinimalRound(b, mn, ms, p)
		logf("round %d: baseline %.0f, straightforward %.0f, minimal %.0f, payhook %.0f req/s; payhook %.2f× the minimal handler",
			r, b.Throughput(), nv.Throughput(), mn.Throughput(), p.Throughput(), rep.PayhookToMinimal[r-1])
	}

	// 3. Latency at LoadFraction of payhook's max, open loop.
	rep.Rate = float64(int(rep.PayhookMax.Throughput() * o.LoadFraction))
	if rep.Rate < 1 {
		rep.Rate = 1
	}
	logf("payhook latency: %s at %.0f/s", o.LatencyDuration, rep.Rate)
	sub.Reset()
	before := scrape(ctx, ingSvc.metrics)
	var dispBefore map[string]float64
	if dispSvc != nil {
		dispBefore = scrape(ctx, dispSvc.metrics)
	}
	cmds0, _ := redisInfoInt(ctx, rdb, "stats", "total_commands_processed")
	cpu0 = cpuTimes(procs)
	rep.PayhookLat = RunOpen(ctx, Plan{rep.Rate, o.LatencyDuration}, o.Workers, payhook.do(sub))
	cpu1 = cpuTimes(procs)
	cmds1, _ := redisInfoInt(ctx, rdb, "stats", "total_commands_processed")
	after := scrape(ctx, ingSvc.metrics)
	n := float64(rep.PayhookLat.Sent)
	if n > 0 {
		rep.AllocsPerCB = (after["go_memstats_mallocs_total"] - before["go_memstats_mallocs_total"]) / n
		rep.AllocBytesPerCB = (after["go_memstats_alloc_bytes_total"] - before["go_memstats_alloc_bytes_total"]) / n
		rep.RedisCmdsPerCB = float64(cmds1-cmds0-2) / n // minus the two INFO calls
		rep.PublishMean = meanOf(before, after, "payhook_publish_duration_seconds")
		rep.HandlerMean = meanOf(before, after, "payhook_ingress_request_duration_seconds")
		for i := range rep.Procs {
			rep.Procs[i].CPUPerReq = (cpu1[i] - cpu0[i]) / time.Duration(n)
		}
	}
	expected := rep.PayhookLat.OK * int64(o.Subscribers)
	got := waitDeliveries(ctx, sub, expected, 30*time.Second)
	rep.E2EMissing = expected - got
	rep.E2ELat = sub.Reset()
	if dispSvc != nil && got > 0 {
		da := scrape(ctx, dispSvc.metrics)
		rep.DispAllocsPerEvent = (da["go_memstats_mallocs_total"] - dispBefore["go_memstats_mallocs_total"]) / float64(rep.PayhookLat.OK)
	}
	logf("baseline latency: %s at %.0f/s", o.LatencyDuration/2, rep.Rate)
	bcpu0, _ := ReadCPU(echoProc.PID())
	rep.BaselineLat = RunOpen(ctx, Plan{rep.Rate, o.LatencyDuration / 2}, o.Workers, baseline.do(nil))
	bcpu1, _ := ReadCPU(echoProc.PID())
	if rep.BaselineLat.Sent > 0 {
		rep.BaselineCPUPerReq = (bcpu1 - bcpu0) / time.Duration(rep.BaselineLat.Sent)
	}

	// 4. Stores.
	if si, err := js.Stream(ctx, natsbus.StreamEvents); err == nil {
		if info, err := si.Info(ctx); err == nil {
			rep.EventsStored = info.State.Msgs
		}
	}
	redisMem1, _ := redisInfoInt(ctx, rdb, "memory", "used_memory")
	keys1, _ := rdb.DBSize(ctx).Result()
	rep.RedisKeys = keys1 - keys0
	if rep.EventsStored > 0 {
		rep.RedisPerEvent = float64(redisMem1-redisMem0) / float64(rep.EventsStored)
	}
	rep.RedisUsageSample = sampleMemoryUsage(ctx, rdb, 200)
	for i, s := range procs {
		m, _ := ReadMem(s.proc.PID())
		rep.Procs[i].PeakTotal = m.Peak
	}
	if o.Profile != "" {
		ing.Stop(30 * time.Second) // flushes the profile
		if err := os.Rename(o.Profile+".tmp", o.Profile); err == nil {
			rep.Profile = o.Profile
		}
	}
	return rep, nil
}

// addMinimalRound notes one round's ratios against the minimal durable
// handler: its own to bare echo, payhook's throughput and closed-loop p99
// to its, and payhook's throughput to the signing variant's.
func (r *Report) addMinimalRound(b, mn, ms, p Result) {
	r.PayhookToSigned = append(r.PayhookToSigned, p.Throughput()/max(ms.Throughput(), 1))
	r.MinimalRatios = append(r.MinimalRatios, mn.Throughput()/max(b.Throughput(), 1))
	r.PayhookToMinimal = append(r.PayhookToMinimal, p.Throughput()/max(mn.Throughput(), 1))
	r.P99ToMinimal = append(r.P99ToMinimal, float64(p.Latency.Quantile(.99))/max(float64(mn.Latency.Quantile(.99)), 1))
}

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

// ConfigYAML is the payhook config the benchmark runs ingress and the
// dispatcher with: real NATS and Redis, one account per provider, n
// subscribers at subBase/s/subN with the product's default delivery settings,
// and a fresh event signing key pair.
func ConfigYAML(natsURL, redisURL string, ingressPort, dispPort int, accts []providers.Account, subBase string, n int) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "nats:\n  url: %s\nredis:\n  url: %s\n", natsURL, redisURL)
	fmt.Fprintf(&b, "ingress:\n  listen: 127.0.0.1:%d\ndispatcher:\n  listen: 127.0.0.1:%d\n", ingressPort, dispPort)
	// A key pair per run: ingress signs every event and the dispatcher
	// verifies every copy, as in production, so both costs are measured.
	key, err := events.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(&b, "event_signing:\n  private_key: %s\n  public_keys: [%q]\n", key.Encode(), key.Public().Encode())
	b.WriteString("log:\n  level: warn\naccounts:\n")
	for _, a := range accts {
		fmt.Fprintf(&b, "  - id: %s\n    provider: %s\n    currency: %s\n", a.ID, a.Provider, a.Currency)
		// Each provider's own keys, whatever they are: a provider refuses
		// keys it does not know (stripe has no merchant_id), so only the
		// ones the account sets are written.
		for _, k := range slices.Sorted(maps.Keys(a.Keys)) {
			if v := a.Keys[k]; v != "" {
				fmt.Fprintf(&b, "    %s: %q\n", k, v)
			}
		}
	}
	if n > 0 {
		b.WriteString("subscribers:\n")
		for i := 1; i <= n; i++ {
			fmt.Fprintf(&b, "  - id: %s\n    url: %s/s/%s\n    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n    timeout: 10s\n",
				subID(i), subBase, subID(i))
		}
	}
	return b.Bytes(), nil
}

// sender posts generated callbacks to one target.
type sender struct {
	gen  *Generator
	acks map[string][]byte // provider/kind → expected reply body; nil: any 200
	cl   *Client
}

func newSender(base string, gen *Generator, acks map[string][]byte, conns int) (*sender, error) {
	cl, err := NewClient(base, conns, 30*time.Second)
	if err != nil {
		return nil, err
	}
	return &sender{gen: gen, acks: acks, cl: cl}, nil
}

// do returns the Do that sends the next generated callback; with sub set,
// each callback's due time is tracked for end-to-end latency.
func (s *sender) do(sub *Subscriber) Do {
	return func(ctx context.Context, _ int64, due time.Time) error {
		cb, err := s.gen.Next()
		if err != nil {
			return err
		}
		if sub != nil {
			sub.Track(cb.OrderID, due)
		}
		resp, err := s.cl.Post(ctx, cb.Path, cb.Header, cb.Body)
		if err != nil {
			return err
		}
		if resp.Status != http.StatusOK {
			return fmt.Errorf("%s/%s: HTTP %d", cb.Provider, cb.Kind, resp.Status)
		}
		if s.acks != nil && !bytes.Equal(resp.Body, s.acks[cb.Provider+"/"+string(cb.Kind)]) {
			return fmt.Errorf("%s/%s: reply is not the provider's ack", cb.Provider, cb.Kind)
		}
		return nil
	}
}

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
