package bench

import (
	"os"
	"time"

	"github.com/payhook/payhook/internal/natsbus"
)

// steadyPhase is phase 1: warm-up and the steady phase at RSSRate, for RSS
// and e2e at a modest load.
func (r *runner) steadyPhase() {
	ctx, o, rep := r.ctx, r.o, r.rep
	r.logf("warm-up: %s at %.0f/s", o.Warmup, o.RSSRate)
	RunOpen(ctx, Plan{o.RSSRate, o.Warmup}, o.Workers, r.payhook.do(nil))
	waitCatchUp(ctx, r.lag, 30*time.Second)
	r.sub.Reset()
	r.logf("steady: %s at %.0f/s", o.RSSDuration, o.RSSRate)
	rep.Steady = RunOpen(ctx, Plan{o.RSSRate, o.RSSDuration}, o.Workers, r.payhook.do(r.sub))
	waitDeliveries(ctx, r.sub, rep.Steady.OK*int64(o.Subscribers), 15*time.Second)
	rep.E2ESteady = r.sub.Reset()
	for _, s := range r.procs {
		m, _ := ReadMem(s.proc.PID())
		rep.Procs = append(rep.Procs, ProcStats{Name: s.proc.Name, RSSAt1k: m.RSS, PeakAt1k: m.Peak})
	}
}

// maxPhase is phase 2: max throughput, closed loop over Conns connections,
// of the baseline, the straightforward and minimal handlers, then payhook;
// then Rounds-1 more rounds.
func (r *runner) maxPhase() {
	r.comparisonsMax()
	r.payhookMax()
	rep := r.rep
	rep.RoundRatios = []float64{rep.PayhookMax.Throughput() / max(rep.BaselineMax.Throughput(), 1)}
	rep.NaiveRatios = []float64{rep.NaiveMax.Throughput() / max(rep.BaselineMax.Throughput(), 1)}
	rep.addMinimalRound(rep.BaselineMax, rep.MinimalMax, rep.MinimalSignedMax, rep.FloorMax, rep.PayhookMax)
	r.logf("round 1: baseline %.0f, straightforward %.0f, minimal %.0f, payhook %.0f req/s; payhook %.2f× the minimal handler",
		rep.BaselineMax.Throughput(), rep.NaiveMax.Throughput(), rep.MinimalMax.Throughput(), rep.PayhookMax.Throughput(), rep.PayhookToMinimal[0])
	for n := 2; n <= r.o.Rounds; n++ {
		r.laterRound(n)
	}
}

// comparisonsMax is round 1's max throughput of everything but payhook,
// with the CPU the straightforward and minimal handlers use.
func (r *runner) comparisonsMax() {
	ctx, o, rep := r.ctx, r.o, r.rep
	r.logf("baseline max: %s + %s warm-up, %d connections", o.MaxDuration, o.Warmup, o.Conns)
	RunClosed(ctx, o.Warmup, o.Conns, r.baseline.do(nil))
	rep.BaselineMax = RunClosed(ctx, o.MaxDuration, o.Conns, r.baseline.do(nil))
	r.logf("baseline max: %.0f req/s", rep.BaselineMax.Throughput())
	r.logf("straightforward handler max: %s + %s warm-up", o.MaxDuration, o.Warmup)
	RunClosed(ctx, o.Warmup, o.Conns, r.naive.do(nil))
	rep.NaiveMax, rep.NaiveCPUMaxLoad, _ = r.closedWithCPU(r.naive, r.naiveProc)
	r.logf("straightforward handler max: %.0f req/s (%d errors)", rep.NaiveMax.Throughput(), rep.NaiveMax.Errors)
	flushNaive(ctx, r.redisURL)
	r.logf("minimal durable handler max: %s + %s warm-up", o.MaxDuration, o.Warmup)
	RunClosed(ctx, o.Warmup, o.Conns, r.minimal.do(nil))
	rep.MinimalMax, rep.MinimalCPUMaxLoad, rep.MinimalNATSMaxLoad = r.closedWithCPU(r.minimal, r.minimalProc)
	r.logf("minimal durable handler max: %.0f req/s (%d errors)", rep.MinimalMax.Throughput(), rep.MinimalMax.Errors)
	RunClosed(ctx, o.Warmup, o.Conns, r.signed.do(nil))
	rep.MinimalSignedMax = RunClosed(ctx, o.MaxDuration, o.Conns, r.signed.do(nil))
	r.logf("minimal durable handler, signed, max: %.0f req/s (%d errors)", rep.MinimalSignedMax.Throughput(), rep.MinimalSignedMax.Errors)
	RunClosed(ctx, o.Warmup, o.Conns, r.floor.do(nil))
	rep.FloorMax, rep.FloorCPUMaxLoad, rep.FloorNATSMaxLoad = r.closedWithCPU(r.floor, r.floorProc)
	r.logf("contract floor (minimal, signed, raw record) max: %.0f req/s (%d errors)", rep.FloorMax.Throughput(), rep.FloorMax.Errors)
}

// closedWithCPU is one closed-loop max phase of s, with the cores its
// handler process p and the NATS server used during it.
func (r *runner) closedWithCPU(s *sender, p *Proc) (res Result, handler, nats float64) {
	h0, _ := ReadCPU(p.PID())
	n0, _ := ReadCPU(r.natsProc.PID())
	res = RunClosed(r.ctx, r.o.MaxDuration, r.o.Conns, s.do(nil))
	h1, _ := ReadCPU(p.PID())
	n1, _ := ReadCPU(r.natsProc.PID())
	secs := res.Elapsed.Seconds()
	return res, (h1 - h0).Seconds() / secs, (n1 - n0).Seconds() / secs
}

// payhookMax is round 1's payhook max throughput, with every process's CPU,
// the consumers' peak backlog and the time they take to catch up.
func (r *runner) payhookMax() {
	ctx, o, rep := r.ctx, r.o, r.rep
	waitCatchUp(ctx, r.lag, 30*time.Second)
	r.logf("payhook max: %s + %s warm-up", o.MaxDuration, o.Warmup)
	RunClosed(ctx, o.Warmup, o.Conns, r.payhook.do(nil))
	cpu0 := cpuTimes(r.procs)
	stopSampling := sampleMax(r.lag, &rep.MaxLag)
	rep.PayhookMax = RunClosed(ctx, o.MaxDuration, o.Conns, r.payhook.do(nil))
	stopSampling()
	cpu1 := cpuTimes(r.procs)
	for i := range rep.Procs {
		rep.Procs[i].CPUMaxLoad = (cpu1[i] - cpu0[i]).Seconds() / rep.PayhookMax.Elapsed.Seconds()
	}
	r.logf("payhook max: %.0f req/s (%d errors), consumer backlog peaked at %d", rep.PayhookMax.Throughput(), rep.PayhookMax.Errors, rep.MaxLag)
	t0 := time.Now()
	waitCatchUp(ctx, r.lag, 120*time.Second)
	rep.CatchUp = time.Since(t0)
}

// laterRound is max-throughput round n > 1, without warm-ups. Rounds
// alternate the targets so that a change in the machine's load shows as
// spread instead of moving one side only.
func (r *runner) laterRound(n int) {
	ctx, o, rep := r.ctx, r.o, r.rep
	b := RunClosed(ctx, o.MaxDuration, o.Conns, r.baseline.do(nil))
	nv := RunClosed(ctx, o.MaxDuration, o.Conns, r.naive.do(nil))
	flushNaive(ctx, r.redisURL)
	mn := RunClosed(ctx, o.MaxDuration, o.Conns, r.minimal.do(nil))
	ms := RunClosed(ctx, o.MaxDuration, o.Conns, r.signed.do(nil))
	fl := RunClosed(ctx, o.MaxDuration, o.Conns, r.floor.do(nil))
	p := RunClosed(ctx, o.MaxDuration, o.Conns, r.payhook.do(nil))
	waitCatchUp(ctx, r.lag, 120*time.Second)
	rep.RoundRatios = append(rep.RoundRatios, p.Throughput()/max(b.Throughput(), 1))
	rep.NaiveRatios = append(rep.NaiveRatios, nv.Throughput()/max(b.Throughput(), 1))
	rep.addMinimalRound(b, mn, ms, fl, p)
	r.logf("round %d: baseline %.0f, straightforward %.0f, minimal %.0f, payhook %.0f req/s; payhook %.2f× the minimal handler",
		n, b.Throughput(), nv.Throughput(), mn.Throughput(), p.Throughput(), rep.PayhookToMinimal[n-1])
}

// addMinimalRound notes one round's ratios against the minimal durable
// handler: its own to bare echo, payhook's throughput and closed-loop p99
// to its, and payhook's throughput to the signing variant's and to the
// contract floor's.
func (r *Report) addMinimalRound(b, mn, ms, fl, p Result) {
	r.PayhookToSigned = append(r.PayhookToSigned, p.Throughput()/max(ms.Throughput(), 1))
	r.PayhookToFloor = append(r.PayhookToFloor, p.Throughput()/max(fl.Throughput(), 1))
	r.MinimalRatios = append(r.MinimalRatios, mn.Throughput()/max(b.Throughput(), 1))
	r.PayhookToMinimal = append(r.PayhookToMinimal, p.Throughput()/max(mn.Throughput(), 1))
	r.P99ToMinimal = append(r.P99ToMinimal, float64(p.Latency.Quantile(.99))/max(float64(mn.Latency.Quantile(.99)), 1))
}

// latencyPhase is phase 3: latency at LoadFraction of payhook's max, open
// loop, on payhook and then (for half as long) on the baseline.
func (r *runner) latencyPhase() {
	rep := r.rep
	rep.Rate = float64(int(rep.PayhookMax.Throughput() * r.o.LoadFraction))
	if rep.Rate < 1 {
		rep.Rate = 1
	}
	r.payhookLatency()
	r.baselineLatency()
}

// payhookLatency measures payhook at Rate: latency, end-to-end delivery,
// and per callback the allocations, Redis commands and CPU of every process.
func (r *runner) payhookLatency() {
	ctx, o, rep := r.ctx, r.o, r.rep
	r.logf("payhook latency: %s at %.0f/s", o.LatencyDuration, rep.Rate)
	r.sub.Reset()
	before := scrape(ctx, r.ingSvc.metrics)
	var dispBefore map[string]float64
	if r.dispSvc != nil {
		dispBefore = scrape(ctx, r.dispSvc.metrics)
	}
	cmds0, _ := redisInfoInt(ctx, r.rdb, "stats", "total_commands_processed")
	cpu0 := cpuTimes(r.procs)
	rep.PayhookLat = RunOpen(ctx, Plan{rep.Rate, o.LatencyDuration}, o.Workers, r.payhook.do(r.sub))
	cpu1 := cpuTimes(r.procs)
	cmds1, _ := redisInfoInt(ctx, r.rdb, "stats", "total_commands_processed")
	after := scrape(ctx, r.ingSvc.metrics)
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
	got := waitDeliveries(ctx, r.sub, expected, 30*time.Second)
	rep.E2EMissing = expected - got
	rep.E2ELat = r.sub.Reset()
	if r.dispSvc != nil && got > 0 {
		da := scrape(ctx, r.dispSvc.metrics)
		rep.DispAllocsPerEvent = (da["go_memstats_mallocs_total"] - dispBefore["go_memstats_mallocs_total"]) / float64(rep.PayhookLat.OK)
	}
}

// baselineLatency measures the echo baseline at Rate, for half as long,
// with its CPU per request.
func (r *runner) baselineLatency() {
	ctx, o, rep := r.ctx, r.o, r.rep
	r.logf("baseline latency: %s at %.0f/s", o.LatencyDuration/2, rep.Rate)
	bcpu0, _ := ReadCPU(r.echoProc.PID())
	rep.BaselineLat = RunOpen(ctx, Plan{rep.Rate, o.LatencyDuration / 2}, o.Workers, r.baseline.do(nil))
	bcpu1, _ := ReadCPU(r.echoProc.PID())
	if rep.BaselineLat.Sent > 0 {
		rep.BaselineCPUPerReq = (bcpu1 - bcpu0) / time.Duration(rep.BaselineLat.Sent)
	}
}

// measureStores is phase 4: what the stores kept (events in the stream,
// Redis memory and keys) and every process's peak RSS; with a profile, it
// stops ingress so the profile is flushed.
func (r *runner) measureStores() {
	ctx, o, rep := r.ctx, r.o, r.rep
	if si, err := r.js.Stream(ctx, natsbus.StreamEvents); err == nil {
		if info, err := si.Info(ctx); err == nil {
			rep.EventsStored = info.State.Msgs
		}
	}
	redisMem1, _ := redisInfoInt(ctx, r.rdb, "memory", "used_memory")
	keys1, _ := r.rdb.DBSize(ctx).Result()
	rep.RedisKeys = keys1 - r.keys0
	if rep.EventsStored > 0 {
		rep.RedisPerEvent = float64(redisMem1-r.redisMem0) / float64(rep.EventsStored)
	}
	rep.RedisUsageSample = sampleMemoryUsage(ctx, r.rdb, 200)
	for i, s := range r.procs {
		m, _ := ReadMem(s.proc.PID())
		rep.Procs[i].PeakTotal = m.Peak
	}
	if o.Profile != "" {
		r.ing.Stop(30 * time.Second) // flushes the profile
		if err := os.Rename(o.Profile+".tmp", o.Profile); err == nil {
			rep.Profile = o.Profile
		}
	}
}
