package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

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
	Started           time.Time
	Host              string
	CPUs              int
	Mix               []Target
	Excluded          []string // providers in the mix ingress does not register yet
	BaselineMax       Result
	PayhookMax        Result
	NaiveMax          Result    // the straightforward handler (NaiveHandler), closed loop like the others
	RoundRatios       []float64 // payhook/baseline max req/s of every round, the first being BaselineMax/PayhookMax
	NaiveRatios       []float64 // naive/baseline max req/s of every round
	NaiveCPUMaxLoad   float64   // cores the straightforward handler used during its max phase
	MinimalMax        Result    // the minimal durable handler (MinimalHandler), closed loop like the others
	MinimalRatios     []float64 // minimal/baseline max req/s of every round
	PayhookToMinimal  []float64 // payhook/minimal max req/s of every round
	P99ToMinimal      []float64 // payhook/minimal closed-loop p99 of every round (Conns connections)
	MinimalCPUMaxLoad float64   // cores the minimal handler used during its max phase
	MinimalSignedMax  Result    // the minimal handler signing every event, as payhook does
	PayhookToSigned   []float64 // payhook/minimal-signed max req/s of every round
	// The contract floor: the minimal handler signing every event and
	// recording every request as ingress does (MinimalOptions).
	FloorMax        Result
	PayhookToFloor  []float64 // payhook/floor max req/s of every round
	FloorCPUMaxLoad float64   // cores the floor handler used during its max phase
	// Cores the NATS server used during the minimal handler's and the
	// floor's max phases (payhook's is in Procs).
	MinimalNATSMaxLoad, FloorNATSMaxLoad float64
	Rate                                 float64 // latency phase rate
	PayhookLat                           Result
	BaselineLat                          Result
	Steady                               Result
	E2ELat                               *Histogram // e2e at Rate
	E2ESteady                            *Histogram // e2e at RSSRate
	E2EMissing                           int64      // deliveries expected in the latency phase but not seen before the timeout
	MaxLag                               int64      // largest consumer backlog (pending + unacked) seen in the max phase
	CatchUp                              time.Duration
	Subscribers                          int
	Conns                                int // closed-loop connections of the max phases
	Procs                                []ProcStats
	RedisPerEvent                        float64 // INFO used_memory delta / tracked events
	RedisUsageSample                     float64 // mean MEMORY USAGE of sampled keys
	RedisKeys                            int64
	RedisCmdsPerCB                       float64 // Redis commands per callback, latency phase
	EventsStored                         uint64
	AllocsPerCB                          float64 // ingress mallocs per callback, latency phase (process-wide)
	AllocBytesPerCB                      float64
	DispAllocsPerEvent                   float64       // dispatcher mallocs per delivered event (3 deliveries)
	PublishMean                          time.Duration // mean JetStream publish-until-PubAck time in the latency phase (ingress metric)
	HandlerMean                          time.Duration // mean ingress handler time in the latency phase (ingress metric)
	BaselineCPUPerReq                    time.Duration // echo baseline CPU per request in its latency phase
	LoadStart, LoadEnd                   string        // /proc/loadavg at start and end: how shared the machine was
	Profile                              string
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
	if o.Self == "" {
		return nil, fmt.Errorf("bench: Options.Self is required")
	}
	r := &runner{ctx: ctx, o: &o}
	defer r.close()
	if err := r.setUp(); err != nil {
		return nil, err
	}
	r.steadyPhase()
	r.maxPhase()
	r.latencyPhase()
	r.measureStores()
	return r.rep, nil
}

// runner is one Run: the processes it started, the clients it opened and
// the report the phases fill in. setUp (start.go) brings everything up, the
// phases (phases.go) measure, and close tears down in reverse.
type runner struct {
	ctx context.Context
	o   *Options
	rep *Report

	cleanups []func() // run last to first by close
	procs    []*service

	natsURL, redisURL string
	js                jetstream.JetStream
	rdb               *redis.Client
	redisMem0, keys0  int64 // Redis before the phases, for the stores' growth

	inbound map[string]providers.Inbound
	accts   []providers.Account
	gen     *Generator
	sub     *Subscriber
	subURL  string

	cfgPath, ingressURL string
	ing                 *Proc
	ingSvc, dispSvc     *service // dispSvc is nil without subscribers
	dispPort            int

	natsProc                                         *Proc
	echoProc, naiveProc, minimalProc, floorProc      *Proc
	echoURL, naiveURL, minimalURL, signedURL         string
	floorURL                                         string
	payhook, baseline, naive, minimal, signed, floor *sender
	lag                                              func() int64 // the dispatcher consumers' backlog
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.o.Log, "bench: "+format+"\n", args...)
}

// onClose registers f to run when the runner closes, before everything
// registered earlier.
func (r *runner) onClose(f func()) { r.cleanups = append(r.cleanups, f) }

func (r *runner) close() {
	for _, f := range slices.Backward(r.cleanups) {
		f()
	}
}
