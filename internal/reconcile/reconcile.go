// Package reconcile is payhook's reconciler: it chases every order a
// merchant opened until the order has a terminal event, recovering lost
// callbacks by asking the provider to resend them (mrnpay), or by
// synthesizing the event from the provider's query answer (jpglo,
// cashypro), and it submits UTRs to fantian without ever offering one bank
// transfer for two orders. docs/reconciler.md explains the design.
//
// A watch's life: announced (payhook.watch.{provider} or POST /v1/watches)
// → one message on PAYHOOK_RECONCILE → at each due time (Schedule), first
// the dedupe store is asked whether the order already has a terminal event
// (then the watch closes without a query), else the provider is queried →
// terminal: event recovered, watch closed; otherwise the next step, until
// the schedule runs out and the watch expires (counted by reason).
//
// Where things are: reconcile.go builds a Reconciler (New); run.go is Run,
// its consumers and their drain; intake.go opens watches (Open, the
// payhook.watch.{provider} subject); step.go handles a due watch, stage by
// stage, and applies the outcome; closer.go closes watches on terminal
// events; lane.go and schedule.go are the per-account rate limit and the
// poll schedule; tracing.go the poll's span; api.go is the admin API;
// service.go runs it all as a service (Run with RunOptions, the shape every
// payhook service has).
package reconcile

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/publisher"
	"github.com/payhook/payhook/internal/retrigger"
	"github.com/payhook/payhook/pkg/dedupe"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

// Deps are the reconciler's collaborators.
type Deps struct {
	Config *config.Config
	JS     jetstream.JetStream
	// Store tells whether an order already has a terminal event. Required.
	Store dedupe.Store
	// References holds UTR claims; nil makes POST /v1/references answer 503.
	References dedupe.References
	// Providers are the providers the reconciler works with, by role: it
	// polls each providers.Querier (a provider without the role cannot be
	// verified: its watches only expire), asks each providers.Retriggerer
	// to resend, fills in what a providers.WatchNeeds says a watch must
	// carry, and submits references to each providers.ReferenceSubmitter
	// (none: POST /v1/references answers 503). Nil: none.
	Providers *providers.Set
	// Publisher stores synthesized events; nil builds one on Store with the
	// same dedupe policy as ingress, registering its metrics on Registry.
	Publisher *publisher.Publisher
	// Signer signs the events the Publisher built here stores (Run takes
	// it from event_signing); nil stores them unsigned, which the
	// dispatcher refuses unless its checking is disabled too.
	Signer *events.Signer
	// EventKeys, when set, are the keys the closer verifies terminal events
	// under (events.VerifyMessage) before it closes a watch on one: a
	// message not signed by them, or read from a subject other than its
	// event's, closes nothing. Run sets them from
	// event_signing (public_keys and the private key's own public half);
	// nil (signing disabled, tests) closes on any event.
	EventKeys []events.PublicKey
	// Retrigger, when set, is told of every re-triggered order so that
	// ingress labels the resent callback's event origin "retrigger".
	Retrigger *retrigger.Marks
	Registry  prometheus.Registerer
	Log       *slog.Logger
	Now       func() time.Time
	Options   Options
}

// Options tune the reconciler; zero fields take the defaults named.
type Options struct {
	// Workers is how many delivered watches are triaged at once per
	// replica, and how many polls one account may have in flight on it
	// (default 8; lane.go).
	Workers int
	// AckWait of the shared consumer (default 1m; see ConsumerConfig).
	AckWait time.Duration
	// PollTimeout bounds one provider query (default 20s).
	PollTimeout time.Duration
	// ErrorBase is the first retry delay after a failed poll (default 30s).
	ErrorBase time.Duration
	// MaxRateWait is the longest a due poll waits for its account's rate
	// limit in place; beyond it the watch is put back with that delay (default 1s).
	MaxRateWait time.Duration
	// GaugeInterval is how often watches_open and oldest_watch_age_seconds
	// are refreshed (default 15s).
	GaugeInterval time.Duration
	// DrainTimeout bounds the wait for in-flight watches at shutdown (default 30s).
	DrainTimeout time.Duration
}

func (o *Options) defaults() {
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.AckWait <= 0 {
		o.AckWait = time.Minute
	}
	if o.PollTimeout <= 0 {
		o.PollTimeout = 20 * time.Second
	}
	if o.ErrorBase <= 0 {
		o.ErrorBase = 30 * time.Second
	}
	if o.MaxRateWait <= 0 {
		o.MaxRateWait = time.Second
	}
	if o.GaugeInterval <= 0 {
		o.GaugeInterval = 15 * time.Second
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 30 * time.Second
	}
}

// Reconciler chases open orders. Run it with Run; serve its admin API with
// MountAdmin or Handler.
type Reconciler struct {
	cfg        *config.Config
	js         jetstream.JetStream
	store      dedupe.Store
	refs       dedupe.References
	provs      *providers.Set
	queriers   map[string]providers.Querier
	resenders  map[string]providers.Retriggerer
	submitters map[string]providers.ReferenceSubmitter
	pub        *publisher.Publisher
	marks      *retrigger.Marks
	eventKeys  []events.PublicKey
	log        *slog.Logger
	now        func() time.Time
	opt        Options
	m          *metrics

	accounts  map[string]providers.Account
	schedules map[string]Schedule
	lanes     map[string]*lane // by account id
	// queue is PAYHOOK_RECONCILE, set by Run before any message is handled.
	queue jetstream.Stream
	// records is WatchBucket (records.go), set by Run before any message
	// is handled; nil until then (no record is written).
	records atomic.Pointer[kvHandle]

	countMu sync.Mutex
	counts  map[string]*openCount // account id → open watches (lane.go)

	mu      sync.Mutex
	tracked map[string]tracked // watch id → what this replica last saw
	pokes   chan struct{}
}

// tracked is this replica's memory of a watch it handled, for
// oldest_watch_age_seconds: it is forgotten when the watch closes here, when
// its due time has long passed without this replica seeing it again
// (another replica handled it), or when the gauge refresh finds its message
// gone (closed elsewhere: by the closer on another replica).
type tracked struct {
	subject            string
	openedAt, forgetAt time.Time
}

// New builds a reconciler; it does not touch NATS until Run.
func New(d Deps) (*Reconciler, error) {
	if d.Config == nil || d.JS == nil || d.Store == nil {
		return nil, errors.New("reconcile: config, JetStream and dedupe store are required")
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	if d.Providers == nil {
		d.Providers = providers.NewSet()
	}
	d.Options.defaults()
	queriers := providers.With[providers.Querier](d.Providers)
	submitters := providers.With[providers.ReferenceSubmitter](d.Providers)
	// Every account the reconciler calls out to needs its provider's API:
	// without base_url each poll (or UTR submission) would fail for days.
	for i, a := range d.Config.Accounts {
		_, queries := queriers[a.Provider]
		_, submits := submitters[a.Provider]
		if a.BaseURL == "" && (queries || submits) {
			return nil, &config.Error{Key: fmt.Sprintf("accounts[%d].base_url", i), Msg: "required by the reconciler: the provider's API for queries and submissions"}
		}
	}
	m, err := newMetrics(d.Registry)
	if err != nil {
		return nil, err
	}
	if d.Publisher == nil {
		d.Publisher, err = publisher.New(d.JS, publisher.StoreDeduper{Store: d.Store}, 5*time.Second, d.Registry, d.Log, publisher.WithSigner(d.Signer))
		if err != nil {
			return nil, err
		}
	}
	r := &Reconciler{
		cfg: d.Config, js: d.JS, store: d.Store, refs: d.References, provs: d.Providers, queriers: queriers,
		resenders: providers.With[providers.Retriggerer](d.Providers), submitters: submitters, pub: d.Publisher, marks: d.Retrigger, eventKeys: d.EventKeys,
		log: d.Log, now: d.Now, opt: d.Options, m: m,
		accounts: map[string]providers.Account{}, schedules: map[string]Schedule{},
		lanes: map[string]*lane{}, counts: map[string]*openCount{}, tracked: map[string]tracked{}, pokes: make(chan struct{}, 1),
	}
	rc := d.Config.Reconciler
	for _, name := range d.Providers.Names() {
		delays := rc.Schedule
		if o, ok := rc.Providers[name]; ok && len(o.Schedule) > 0 {
			delays = o.Schedule
		}
		if len(delays) == 0 {
			delays = config.DefaultSchedule
		}
		s := Schedule{Grace: rc.RetriggerGrace.D(), ErrorBase: d.Options.ErrorBase}
		for _, x := range delays {
			s.Delays = append(s.Delays, x.D())
		}
		r.schedules[name] = s
	}
	for _, a := range d.Config.Accounts {
		r.accounts[a.ID] = a
		perSec, burst := RateFor(rc, a.Provider)
		r.lanes[a.ID] = newLane(rate.NewLimiter(rate.Limit(perSec), burst))
	}
	return r, nil
}

// RateFor is the token bucket of each account of provider:
// reconciler.providers.{provider}.rate_per_second / rate_burst where set
// (non-zero), else reconciler.rate_per_second / rate_burst (defaults 5/s
// and 10). The buckets are per replica: N replicas allow N× the rate.
func RateFor(rc config.Reconciler, provider string) (perSecond float64, burst int) {
	perSecond, burst = rc.RatePerSecond, rc.RateBurst
	if o := rc.Providers[provider]; o.RatePerSecond > 0 {
		perSecond = o.RatePerSecond
	}
	if o := rc.Providers[provider]; o.RateBurst > 0 {
		burst = o.RateBurst
	}
	if perSecond <= 0 {
		perSecond = 5
	}
	return perSecond, max(burst, 1)
}

// ScheduleFor is the poll schedule of provider's watches.
func (r *Reconciler) ScheduleFor(provider string) Schedule { return r.schedules[provider] }
