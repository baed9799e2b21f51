package bench

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/payhook/payhook/internal/dispatch"
	"github.com/payhook/payhook/internal/ops"
	"github.com/payhook/payhook/internal/registry"
)

// setUp brings up everything the phases measure, in dependency order:
// work dir and binaries, the stores, the generator, the subscriber, the
// services under test, then the clients. Whatever it started is torn down
// by close, also when it fails halfway.
func (r *runner) setUp() error {
	if err := r.workDir(); err != nil {
		return err
	}
	if err := r.build(); err != nil {
		return err
	}
	if err := r.startStores(); err != nil {
		return err
	}
	if err := r.newGenerator(); err != nil {
		return err
	}
	if err := r.startSubscriber(); err != nil {
		return err
	}
	if err := r.startPayhook(); err != nil {
		return err
	}
	if err := r.startComparisons(); err != nil {
		return err
	}
	r.rdb = redis.NewClient(mustRedisOpts(r.redisURL))
	r.onClose(func() { r.rdb.Close() })
	r.redisMem0, _ = redisInfoInt(r.ctx, r.rdb, "memory", "used_memory")
	r.keys0, _ = r.rdb.DBSize(r.ctx).Result()
	return r.openSenders()
}

// workDir makes the work dir (removed at close unless Keep) and starts the
// report.
func (r *runner) workDir() error {
	o := r.o
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "payhook-bench-")
		if err != nil {
			return err
		}
		o.Dir = d
		if !o.Keep {
			r.onClose(func() { os.RemoveAll(d) })
		}
	}
	r.rep = &Report{Started: time.Now().UTC(), CPUs: numCPU(), Subscribers: max(o.Subscribers, 0), Conns: o.Conns}
	r.rep.Host, _ = os.Hostname()
	r.rep.LoadStart = loadAvg()
	r.onClose(func() { r.rep.LoadEnd = loadAvg() })
	return nil
}

// build compiles the services the options do not name a binary for.
func (r *runner) build() error {
	o := r.o
	var err error
	if o.IngressBin == "" && o.Profile == "" {
		r.logf("building cmd/ingress")
		if o.IngressBin, err = GoBuild(r.ctx, "./cmd/ingress", o.Dir); err != nil {
			return err
		}
	}
	if o.DispatcherBin == "" && o.Subscribers > 0 {
		r.logf("building cmd/dispatcher")
		if o.DispatcherBin, err = GoBuild(r.ctx, "./cmd/dispatcher", o.Dir); err != nil {
			return err
		}
	}
	return nil
}

// startStores starts Redis and NATS and connects to JetStream. From here on
// close stops every started process, reverse of start: load-facing
// services first, then the stores.
func (r *runner) startStores() error {
	r.onClose(func() {
		for _, s := range slices.Backward(r.procs) {
			s.proc.Stop(10 * time.Second)
		}
	})
	redisProc, redisURL, err := StartRedis(r.ctx, r.o.Dir)
	if err != nil {
		return err
	}
	r.redisURL = redisURL
	r.procs = append(r.procs, &service{proc: redisProc})
	natsPort, err := FreePort()
	if err != nil {
		return err
	}
	natsDir := filepath.Join(r.o.Dir, "jetstream")
	natsProc, err := Start("nats", r.o.Self, []string{"serve-nats", "--port", strconv.Itoa(natsPort), "--dir", natsDir}, r.o.Dir)
	if err != nil {
		return err
	}
	r.natsProc = natsProc
	r.procs = append(r.procs, &service{proc: natsProc})
	r.natsURL = fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	nc, err := waitNATS(r.ctx, r.natsURL, natsProc)
	if err != nil {
		return err
	}
	r.onClose(nc.Close)
	r.js, err = jetstream.New(nc)
	return err
}

// newGenerator picks the accounts of the providers ingress registers
// (mrnpay and cashypro may not be yet) and the callback generator over them.
func (r *runner) newGenerator() error {
	r.inbound = registry.Inbound()
	for _, a := range Accounts() {
		if _, ok := r.inbound[a.Provider]; ok {
			r.accts = append(r.accts, a)
		} else {
			r.rep.Excluded = append(r.rep.Excluded, a.Provider)
		}
	}
	gen, err := NewGenerator(r.accts, DefaultMix, "b"+strconv.FormatInt(time.Now().Unix()%100000, 36)+"-")
	if err != nil {
		return err
	}
	r.gen = gen
	r.rep.Mix = gen.Targets()
	return nil
}

// startSubscriber serves the subscriber, in this process.
func (r *runner) startSubscriber() error {
	r.sub = NewSubscriber()
	subLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	subSrv := ops.NewServer(r.sub, ops.DefaultTimeouts)
	go func() { _ = subSrv.Serve(subLn) }()
	r.onClose(func() { subSrv.Close() })
	r.subURL = "http://" + subLn.Addr().String()
	return nil
}

// startPayhook writes the config and starts ingress (the ServeIngress
// mirror when profiling) and, with subscribers, the dispatcher.
func (r *runner) startPayhook() error {
	o := r.o
	ingressPort, _ := FreePort()
	r.dispPort, _ = FreePort()
	r.cfgPath = filepath.Join(o.Dir, "payhook.yaml")
	cfgText, err := ConfigYAML(r.natsURL, r.redisURL, ingressPort, r.dispPort, r.accts, r.subURL, max(o.Subscribers, 0))
	if err != nil {
		return err
	}
	if err := os.WriteFile(r.cfgPath, cfgText, 0o600); err != nil {
		return err
	}
	r.ingressURL = fmt.Sprintf("http://127.0.0.1:%d", ingressPort)
	if o.Profile != "" {
		r.ing, err = Start("ingress", o.Self, []string{"serve-ingress", "--config", r.cfgPath, "--cpuprofile", o.Profile + ".tmp"}, o.Dir)
	} else {
		r.ing, err = Start("ingress", o.IngressBin, []string{"--config", r.cfgPath}, o.Dir)
	}
	if err != nil {
		return err
	}
	r.ingSvc = &service{proc: r.ing, metrics: r.ingressURL + "/metrics"}
	r.procs = append(r.procs, r.ingSvc)
	if err := WaitHTTP(r.ctx, r.ingressURL+"/readyz", r.ing, 30*time.Second); err != nil {
		return err
	}
	if o.Subscribers <= 0 {
		return nil
	}
	d, err := Start("dispatcher", o.DispatcherBin, []string{"--config", r.cfgPath}, o.Dir)
	if err != nil {
		return err
	}
	dispURL := fmt.Sprintf("http://127.0.0.1:%d", r.dispPort)
	r.dispSvc = &service{proc: d, metrics: dispURL + "/metrics"}
	r.procs = append(r.procs, r.dispSvc)
	return WaitHTTP(r.ctx, dispURL+"/readyz", d, 30*time.Second)
}

// startComparisons starts what payhook is compared with: the echo
// baseline, the straightforward handler and the minimal durable handler,
// plain, signing, and signing and recording (the contract floor).
func (r *runner) startComparisons() error {
	var err error
	if r.echoProc, r.echoURL, err = r.startChild("baseline", "serve-echo"); err != nil {
		return err
	}
	if r.naiveProc, r.naiveURL, err = r.startChild("naive", "serve-naive", "--nats", r.natsURL, "--redis", naiveRedisURL(r.redisURL)); err != nil {
		return err
	}
	if r.minimalProc, r.minimalURL, err = r.startChild("minimal", "serve-minimal", "--nats", r.natsURL); err != nil {
		return err
	}
	if _, r.signedURL, err = r.startChild("minimal-signed", "serve-minimal", "--nats", r.natsURL, "--sign"); err != nil {
		return err
	}
	r.floorProc, r.floorURL, err = r.startChild("floor", "serve-minimal", "--nats", r.natsURL, "--sign", "--raw")
	return err
}

// startChild runs this binary's serve command on a free port and waits
// until it is ready.
func (r *runner) startChild(name, cmd string, extra ...string) (*Proc, string, error) {
	port, _ := FreePort()
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	p, err := Start(name, r.o.Self, append([]string{cmd, "--addr", fmt.Sprintf("127.0.0.1:%d", port)}, extra...), r.o.Dir)
	if err != nil {
		return nil, "", err
	}
	r.procs = append(r.procs, &service{proc: p})
	return p, url, WaitHTTP(r.ctx, url+"/readyz", p, 30*time.Second)
}

// openSenders opens one HTTP client per target and the lag probe over the
// dispatcher's consumers.
func (r *runner) openSenders() error {
	o := r.o
	acks := map[string][]byte{}
	for name, p := range r.inbound {
		for _, k := range p.Kinds() {
			acks[name+"/"+string(k)] = p.Ack(k).Body
		}
	}
	for _, t := range []struct {
		s     **sender
		url   string
		acks  map[string][]byte
		conns int
	}{
		{&r.payhook, r.ingressURL, acks, o.Conns + o.Workers},
		{&r.baseline, r.echoURL, nil, o.Conns + o.Workers},
		{&r.naive, r.naiveURL, acks, o.Conns},
		{&r.minimal, r.minimalURL, acks, o.Conns},
		{&r.signed, r.signedURL, acks, o.Conns},
		{&r.floor, r.floorURL, acks, o.Conns},
	} {
		s, err := newSender(t.url, r.gen, t.acks, t.conns)
		if err != nil {
			return err
		}
		*t.s = s
		r.onClose(s.cl.Close)
	}
	consumers := make([]string, 0, max(o.Subscribers, 0))
	for i := 1; i <= o.Subscribers; i++ {
		consumers = append(consumers, dispatch.ConsumerName(subID(i)))
	}
	r.lag = func() int64 { return consumerLag(r.ctx, r.js, consumers) }
	return nil
}
