// Package ingress receives provider callbacks over HTTP (echo v4), verifies
// and decodes them, stores one event per distinct fact in JetStream, and only
// then answers the provider in its own dialect. Every request, accepted or
// not, is also recorded with its verdict: on PAYHOOK_RAW when it verified,
// on PAYHOOK_RAW_REJECTED when it was rejected, so that junk can never
// discard the record of an accepted callback.
//
// The rule this package exists to keep: never acknowledge what is not stored.
// A provider gets its success reply only after the event (or an earlier copy
// of it) is acknowledged by JetStream; otherwise it gets 503 and retries on
// its own schedule.
package ingress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/ops"
	"github.com/payhook/payhook/internal/publisher"
	"github.com/payhook/payhook/internal/retrigger"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

// Verdicts, as counted in payhook_ingress_callbacks_total and written to
// payhook.raw.{provider}.{verdict} (natsbus.RawResults and rejected).
const (
	VerdictAccepted    = publisher.Accepted  // a new event was stored
	VerdictDuplicate   = publisher.Duplicate // the same event was stored before; acknowledged again
	VerdictStale       = publisher.Stale     // pending after a terminal status; acknowledged, not published
	VerdictConflict    = publisher.Conflict  // contradicts a terminal status; stored on the conflict subject
	VerdictRejected    = "rejected"          // can never verify: 4xx
	VerdictIgnored     = "ignored"           // verified, but no event to publish (providers.ErrIgnored); acknowledged
	VerdictUnavailable = "unavailable"       // could not be stored now: 503, the provider retries
)

// Deps are ingress's collaborators.
type Deps struct {
	Config    *config.Config
	JS        jetstream.JetStream
	Providers map[string]providers.Inbound
	Dedupe    publisher.Deduper // optional: nil means JetStream's window only
	// Retrigger, when set, labels callbacks the reconciler asked for again
	// with origin "retrigger".
	Retrigger *retrigger.Marks
	// Signer signs every event stored (Run takes it from event_signing);
	// nil stores them unsigned, which the dispatcher refuses unless its
	// checking is disabled too.
	Signer   *events.Signer
	Registry prometheus.Registerer
	Log      *slog.Logger
	Now      func() time.Time
}

// Server is the callback receiver.
type Server struct {
	cfg       *config.Config
	js        jetstream.JetStream
	rawJS     jetstream.JetStream // async publishes of raw records, one error handler for all
	providers map[string]providers.Inbound
	kinds     map[string][]events.Kind // each provider's Kinds, by the same key
	accounts  map[string]account
	proxies   []netip.Prefix // peers allowed to set ingress.trusted_proxy_header
	limiter   *rejectLimiter
	repeats   *keyedLimiter[string] // raw records of verified callbacks that stored nothing new, by event id
	claims    *claimLimiter         // claimed order ids written on rejected records
	pub       *publisher.Publisher
	retrigger *retrigger.Marks
	log       *slog.Logger
	now       func() time.Time
	m         *metrics
	usage     *natsbus.StreamUsage
	echo      *echo.Echo
}

// StreamUsageEvery is how often a serving ingress reads the streams' sizes
// for payhook_stream_bytes: well inside the 5 m the stream-full alerts wait.
const StreamUsageEvery = 15 * time.Second

type account struct {
	providers.Account
	allow []netip.Prefix
}

// New builds the server; it does not listen. It is long because it checks
// and wires every dependency in one place (accounts, limits, stores,
// metrics, routes): a server is never half-built.
func New(d Deps) (*Server, error) {
	if d.Config == nil || d.JS == nil {
		return nil, errors.New("ingress: config and JetStream are required")
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
	s := &Server{
		cfg: d.Config, js: d.JS, providers: d.Providers, retrigger: d.Retrigger,
		log: d.Log, now: d.Now, accounts: map[string]account{}, kinds: map[string][]events.Kind{},
		limiter: newRejectLimiter(d.Config.Ingress.RejectionsPerSecond, d.Config.Ingress.RejectionsBurst),
		repeats: newReplayLimiter(),
		claims:  newClaimLimiter(),
	}
	for name, p := range d.Providers {
		s.kinds[name] = p.Kinds()
	}
	for _, a := range d.Config.Accounts {
		acc := account{Account: a}
		var err error
		if acc.allow, err = parsePrefixes(a.AllowIPs); err != nil {
			return nil, fmt.Errorf("ingress: account %s: allow_ips: %w", a.ID, err)
		}
		s.accounts[a.ID] = acc
	}
	var err error
	if s.proxies, err = parsePrefixes(d.Config.Ingress.TrustedProxies); err != nil {
		return nil, fmt.Errorf("ingress: trusted_proxies: %w", err)
	}
	m, err := newMetrics(d.Registry)
	if err != nil {
		return nil, err
	}
	s.m = m
	if s.usage, err = natsbus.NewStreamUsage(d.JS, d.Registry, d.Log); err != nil {
		return nil, err
	}
	for _, a := range d.Config.Accounts {
		if _, ok := d.Providers[a.Provider]; ok {
			m.precreate(a.Provider, s.kinds[a.Provider])
		}
	}
	s.rawJS, err = jetstream.New(d.JS.Conn(),
		jetstream.WithPublishAsyncMaxPending(8192),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, msg *nats.Msg, err error) {
			m.rawErrors.Inc()
			s.log.Warn("raw record not stored", "subject", msg.Subject, "err", err)
		}))
	if err != nil {
		return nil, err
	}
	s.pub, err = publisher.New(d.JS, d.Dedupe, d.Config.Ingress.PublishTimeout.D(), d.Registry, d.Log, publisher.WithSigner(d.Signer))
	if err != nil {
		return nil, err
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Logger.SetOutput(io.Discard)
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		code := http.StatusInternalServerError
		var he *echo.HTTPError
		if errors.As(err, &he) {
			code = he.Code
		}
		_ = c.JSON(code, map[string]string{"error": http.StatusText(code)})
	}
	e.POST("/v1/callbacks/:provider/:account/:kind", s.handleCallback)
	// Providers' notify URLs often end in "/" (jpglo's own examples do).
	e.POST("/v1/callbacks/:provider/:account/:kind/", s.handleCallback)
	// Anything else under /v1/callbacks/ is refused, and recorded like any
	// other refusal (on PAYHOOK_RAW_REJECTED, body truncated).
	e.Any("/v1/callbacks/*", s.handleUnrouted)
	// Admin: re-run rejected requests (reprocess.go), behind admin_token.
	e.POST("/v1/reprocess", echo.WrapHandler(ops.RequireToken(d.Config.AdminToken, d.Log, http.HandlerFunc(s.serveReprocess))))
	s.echo = e
	return s, nil
}

// Echo returns the echo instance, so a binary can mount /healthz, /readyz
// and /metrics beside the callback route.
func (s *Server) Echo() *echo.Echo { return s.echo }

// ServeHTTP makes Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// outcome is everything decided about one request, for the reply, metrics and the raw record.
type outcome struct {
	provider, account, kind string
	verdict                 string
	reason                  providers.Reason
	status                  int
	reply                   providers.Reply
	eventID                 string
	orderID                 string // the merchant order id (else the provider's), once verified
	detail                  string
	// cause is why a request was refused when the reply must not say it
	// (a decryption failure): logged, never sent to the caller.
	cause string
	// limited: a rejection past its address's rate, answered 429 and not
	// recorded (verdict and reason stay what they were, for the counters).
	limited bool
	// claim reads the order id a request refused before it verified claims
	// (providers.ClaimedOrder); nil when there is none to read. record calls
	// it only for a refusal within its address's rate, and sets
	// claimedOrderID (for the trace index only, never trusted, never logged)
	// when the claim buckets allow.
	claim          func() string
	claimedOrderID string
}

// rateLimitedReply is the body of every 429: it names no reason, so a
// prober past the rate learns nothing more.
var rateLimitedReply = map[string]string{"error": string(providers.ReasonRateLimited), "detail": "too many refused requests from this address; retry later"}

// reply writes the answer of o (see answer): the provider's own reply when
// acknowledged; 429 when a refusal is rate-limited, with how long until the
// next rejection may be answered; else the refusal's status and
// {"error": reason, "detail": detail}.
func (s *Server) reply(c echo.Context, o outcome) error {
	switch {
	case o.verdict != VerdictRejected && o.verdict != VerdictUnavailable:
		return c.Blob(o.reply.Status, o.reply.ContentType, o.reply.Body)
	case o.limited:
		retry := max(1, int(math.Ceil(1/max(s.cfg.Ingress.RejectionsPerSecond, 0.001))))
		c.Response().Header().Set("Retry-After", strconv.Itoa(retry))
		return c.JSON(http.StatusTooManyRequests, rateLimitedReply)
	}
	return c.JSON(o.status, map[string]string{"error": string(o.reason), "detail": o.detail})
}

func (s *Server) handleCallback(c echo.Context) error {
	start := s.now()
	req := c.Request()
	// The work below must finish once started, even if the provider hangs
	// up: a half-published callback is what we promise never to leave.
	ctx := context.WithoutCancel(req.Context())
	ctx, span := startSpan(ctx, req)
	o, body := s.process(ctx, c, start)
	o = s.record(ctx, c, o, body, start)
	s.m.observe(o, s.now().Sub(start))
	endSpan(span, o)
	switch {
	case o.verdict != VerdictRejected && o.verdict != VerdictUnavailable:
		s.logStored(ctx, o)
	case o.limited:
		// Past the rate: no log line per request either.
	default:
		args := append([]any{"provider", o.provider, "account", o.account, "kind", o.kind,
			"verdict", o.verdict, "reason", o.reason, "status", o.status}, o.ids()...)
		if o.cause != "" {
			args = append(args, "cause", o.cause)
		}
		s.log.InfoContext(ctx, "callback refused", args...)
	}
	return s.reply(c, o)
}

// handleUnrouted answers requests under /v1/callbacks/ that are not a POST to
// /v1/callbacks/{provider}/{account}/{kind}: 405 for another method on that
// shape, 404 otherwise; both recorded on PAYHOOK_RAW_REJECTED with the first
// UnroutedBodyBytes of the body.
func (s *Server) handleUnrouted(c echo.Context) error {
	start := s.now()
	err := &refusal{providers.ReasonUnknownRoute, "callbacks are POST /v1/callbacks/{provider}/{account}/{kind}"}
	if parts := strings.Split(strings.Trim(c.Param("*"), "/"), "/"); len(parts) == 3 && c.Request().Method != http.MethodPost {
		err = &refusal{providers.ReasonMethodNotAllowed, "callbacks are POSTed"}
	}
	o := outcome{provider: "unknown", account: "unknown", kind: "unknown"}.answered(err, nil, "")
	body := s.sampleBody(c.Request().Body)
	o = s.record(context.WithoutCancel(c.Request().Context()), c, o, body, start)
	s.m.observe(o, s.now().Sub(start))
	if !o.limited {
		s.log.Info("callback refused", "verdict", o.verdict, "reason", o.reason, "status", o.status)
	}
	return s.reply(c, o)
}

// logStored writes the "callback stored" line of an acknowledged callback.
// It is the line of every callback, so its attributes are built as
// slog.Attrs on the stack rather than boxed into key-value pairs.
func (s *Server) logStored(ctx context.Context, o outcome) {
	if !s.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	var buf [6]slog.Attr
	a := append(buf[:0], slog.String("provider", o.provider), slog.String("account", o.account), slog.String("kind", o.kind),
		slog.String("verdict", o.verdict))
	if o.orderID != "" {
		a = append(a, slog.String("order_id", o.orderID))
	}
	if o.eventID != "" {
		a = append(a, slog.String("event_id", o.eventID))
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "callback stored", a...)
}

// ids are the order id and event id log attributes of a callback, those
// known: none before it verified (logStored writes the same).
func (o outcome) ids() []any {
	var a []any
	if o.orderID != "" {
		a = append(a, "order_id", o.orderID)
	}
	if o.eventID != "" {
		a = append(a, "event_id", o.eventID)
	}
	return a
}

// process verifies, decodes and stores one callback, returning the outcome
// and what its raw record keeps of the body: the first UnroutedBodyBytes
// for an unknown provider, account or kind, nothing when the body was not
// read (address not allowed, too large, unreadable), else all of it.
func (s *Server) process(ctx context.Context, c echo.Context, start time.Time) (outcome, rawBody) {
	o := outcome{provider: "unknown", account: c.Param("account"), kind: "unknown"}
	name := c.Param("provider")
	p, ok := s.providers[name]
	if !ok {
		return o.answered(&refusal{providers.ReasonUnknownProvider, "no such provider"}, nil, ""), s.sampleBody(c.Request().Body)
	}
	o.provider = p.Name()
	acct, ok := s.accounts[o.account]
	if !ok || acct.Provider != o.provider {
		o.account = "unknown"
		return o.answered(&refusal{providers.ReasonUnknownAccount, "no such account for this provider"}, nil, ""), s.sampleBody(c.Request().Body)
	}
	kind := events.Kind(c.Param("kind"))
	if !kind.Valid() || !slices.Contains(s.kinds[name], kind) {
		err := &refusal{providers.ReasonWrongKind, fmt.Sprintf("%s does not send %q callbacks", o.provider, truncate(string(kind), 16))}
		return o.answered(err, nil, ""), s.sampleBody(c.Request().Body)
	}
	o.kind = string(kind)
	if ip := s.clientAddr(c); len(acct.allow) > 0 && !contains(acct.allow, ip) {
		return o.answered(&refusal{providers.ReasonIPNotAllowed, "source address " + truncate(ip, 64) + " is not in the account's allow_ips"}, nil, ""), rawBody{}
	}
	raw, err := readLimited(c.Request().Body, s.cfg.Ingress.BodyLimit)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			return o.answered(&refusal{providers.ReasonTooLarge, fmt.Sprintf("body over %d bytes", s.cfg.Ingress.BodyLimit)}, nil, ""), rawBody{}
		}
		return o.answered(&refusal{providers.ReasonUnreadable, "could not read the body"}, nil, ""), rawBody{}
	}
	body := fullBody(raw)
	ev, err := safeParse(p, acct.Account, providers.Request{
		Kind: kind, Header: c.Request().Header, Body: raw,
		RemoteAddr: c.Request().RemoteAddr, ReceivedAt: start.UTC(),
	})
	if err != nil {
		// Refused, or verified but ignored (acknowledged): see answer.
		o = o.answered(err, p, kind)
		if co, ok := p.(providers.ClaimedOrder); ok && o.verdict == VerdictRejected {
			req := providers.Request{Kind: kind, Header: c.Request().Header, Body: raw}
			o.claim = func() string { return claimedOrder(co, acct.Account, req) }
		}
		return o, body
	}
	o.eventID, o.orderID = ev.ID(), ev.MerchantOrderID
	if o.orderID == "" {
		o.orderID = ev.ProviderOrderID
	}
	if err := checkAge(acct.MaxAge, ev.SignedAt, start); err != nil {
		return o.answered(err, p, kind), body
	}
	var opts []publisher.StoreOption
	if s.retrigger.Applies(&ev) {
		// The mark's lookup (a NATS key-value Get) runs beside the dedupe
		// check instead of before it; only an event that is going to be
		// published waits for it. The event id does not depend on the
		// origin, so the check needs no answer from it.
		marked := make(chan bool, 1)
		go func(e events.Event) { marked <- s.retrigger.Marked(ctx, &e) }(ev)
		opts = append(opts, publisher.BeforeRender(func(e *events.Event) {
			if <-marked {
				e.Origin = events.OriginRetrigger
			}
		}))
	}
	return s.store(ctx, o, p, &ev, opts...), body
}

// checkAge refuses a verified callback whose signed provider timestamp is
// older than maxAge, or more than config.FutureSkew ahead of now: either
// could be a copy replayed after the dedupe store forgot the original
// (config.Validate keeps maxAge + FutureSkew within dedupe.window). A zero
// signedAt (the provider signs no time) or maxAge (not configured) checks
// nothing. It returns the refusal (a *refusal), or nil to go on.
func checkAge(maxAge time.Duration, signedAt, now time.Time) error {
	if maxAge <= 0 || signedAt.IsZero() {
		return nil
	}
	switch age := now.Sub(signedAt); {
	case age > maxAge:
		return &refusal{providers.ReasonTooOld, fmt.Sprintf("signed %s ago, over the account's max_age %s", age.Truncate(time.Second), maxAge)}
	case -age > config.FutureSkew:
		return &refusal{providers.ReasonFutureTimestamp, fmt.Sprintf("signed %s ahead of our clock, over the allowed %s", (-age).Truncate(time.Second), config.FutureSkew)}
	}
	return nil
}

// store is the one place that decides between acknowledging (2xx in the
// provider's dialect) and 503.
func (s *Server) store(ctx context.Context, o outcome, p providers.Inbound, ev *events.Event, opts ...publisher.StoreOption) outcome {
	verdict, err := s.pub.Store(ctx, ev, opts...)
	if err != nil && !errors.Is(err, publisher.ErrInvalid) {
		s.log.WarnContext(ctx, "event not stored; answering 503", append([]any{"provider", o.provider, "account", o.account, "kind", o.kind, "err", err}, o.ids()...)...)
		err = errEventStoreUnavailable
	}
	if err != nil {
		return o.answered(err, p, ev.Kind)
	}
	if verdict == VerdictAccepted && ev.AmountMismatch {
		// Counted once per event, not per provider retry of it.
		s.m.mismatches.WithLabelValues(o.provider, o.kind).Inc()
	}
	o = o.answered(nil, p, ev.Kind)
	o.verdict = verdict
	return o
}

// safeParse turns a provider panic into a rejection: bad input never takes
// the process down, whatever a decoder does with it.
func safeParse(p providers.Inbound, a providers.Account, r providers.Request) (ev events.Event, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "decoder failed on this input")
		}
	}()
	return p.Parse(a, r)
}

// claimedOrder is the order id a refused request claims, when co reads one
// and it is a valid order id; "" otherwise. A panic of the provider's
// reader claims nothing.
func claimedOrder(co providers.ClaimedOrder, a providers.Account, r providers.Request) (id string) {
	defer func() {
		if recover() != nil {
			id = ""
		}
	}()
	id, ok := co.ClaimedOrder(a, r)
	if !ok || !events.ValidOrderID(id) {
		return ""
	}
	return id
}

var errTooLarge = errors.New("body too large")

func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errTooLarge
		}
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errTooLarge
	}
	return b, nil
}

// parsePrefixes reads CIDRs or single addresses.
func parsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, c := range list {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			addr, err2 := netip.ParseAddr(c)
			if err2 != nil {
				return nil, fmt.Errorf("%q: %v", c, err)
			}
			p = netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func contains(ps []netip.Prefix, host string) bool {
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range ps {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// clientAddr is the socket peer, or — only when ingress.trusted_proxy_header is
// set and the peer is one of ingress.trusted_proxies — the last address in
// that header (the one our own proxy appended; earlier entries are whatever
// the client claimed). The account allowlist and the rejection limiter both
// judge this address.
func (s *Server) clientAddr(c echo.Context) string {
	host, _, err := net.SplitHostPort(c.Request().RemoteAddr)
	if err != nil {
		host = c.Request().RemoteAddr
	}
	if h := s.cfg.Ingress.TrustedProxyHeader; h != "" && contains(s.proxies, host) {
		if v := c.Request().Header.Values(h); len(v) > 0 {
			parts := strings.Split(v[len(v)-1], ",")
			if last := strings.TrimSpace(parts[len(parts)-1]); last != "" {
				host = last
			}
		}
	}
	return host
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
