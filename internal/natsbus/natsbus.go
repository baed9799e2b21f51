// Package natsbus is payhook's adapter to NATS JetStream: connecting, the
// streams of docs/interfaces.md, and publishing with a durable acknowledgement.
package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/pkg/events"
)

// Stream names and subjects (docs/interfaces.md "Events out").
const (
	StreamEvents = "PAYHOOK_EVENTS" // payhook.events.{provider}.{kind}.{status}
	StreamRaw    = "PAYHOOK_RAW"    // payhook.raw.{provider}.{result}, every result but rejected
	StreamDLQ    = "PAYHOOK_DLQ"    // payhook.dlq.{subscriber}
	StreamWatch  = "PAYHOOK_WATCH"  // payhook.watch.{provider}
	// StreamRawRejected holds the records of rejected requests
	// (payhook.raw.{provider}.rejected), apart from PAYHOOK_RAW so that
	// anyone able to send junk fills only this stream's own byte limit and
	// never discards the record of an accepted callback.
	StreamRawRejected = "PAYHOOK_RAW_REJECTED"

	SubjectEvents = events.EventSubjects
	SubjectRaw    = events.RawSubjects // both raw streams together
	SubjectDLQ    = events.DLQSubjects
	SubjectWatch  = events.WatchSubjects
	// SubjectRawRejected is the one raw subject a request can reach without
	// verifying: an unknown route, provider, account or kind, a bad
	// signature, a disallowed address.
	SubjectRawRejected = events.RawRejectedSubjects
)

// RawResults are the results (verdicts) whose records PAYHOOK_RAW holds:
// every one a request can only get by verifying (accepted, duplicate,
// stale, conflict, ignored: verified, but no event to publish, and
// unavailable: verified, but its event could not be stored, 503). Ingress
// records no 503 of a request that did not verify. The one remaining
// result, rejected, is on PAYHOOK_RAW_REJECTED.
var RawResults = []string{"accepted", "duplicate", "stale", "conflict", "ignored", "unavailable"}

// RawStreams are the streams that together hold payhook.raw.>, verified
// requests first.
var RawStreams = []string{StreamRaw, StreamRawRejected}

// Default byte limits of the raw streams (nats.raw_max_bytes,
// nats.raw_rejected_max_bytes).
//
// PAYHOOK_RAW: a record is the body plus its headers plus ~0.6 KiB of
// envelope; callbacks are under 4 KiB, so ~5 KiB each: 10 GiB is ~2 million
// records, 30 days (raw_max_age) at ~0.8 verified callbacks/s on average.
// Past that the oldest go first; payhook_stream_bytes against
// payhook_stream_max_bytes alerts at 80 %.
//
// PAYHOOK_RAW_REJECTED: 1 GiB is ~200,000 rejected records of 5 KiB, or
// ~16,000 of junk at the 64 KiB body limit (unrouted bodies keep 1 KiB:
// ~500,000 of those). Its limit is reached by a flood, by design: then the
// oldest rejections go, and nothing on PAYHOOK_RAW.
const (
	DefaultRawMaxBytes         int64 = 10 << 30
	DefaultRawRejectedMaxBytes int64 = 1 << 30
)

// rawSubjects are PAYHOOK_RAW's subjects: payhook.raw.*.{result} for each
// of RawResults. None of them matches payhook.raw.*.rejected (the last
// token differs), so the two streams never overlap.
func rawSubjects() []string {
	out := make([]string, len(RawResults))
	for i, r := range RawResults {
		out[i] = events.RawSubject(events.Any, r)
	}
	return out
}

// ErrUnavailable wraps every failure to reach or store in JetStream: the
// caller must not acknowledge anything it could not store.
var ErrUnavailable = errors.New("nats unavailable")

// AuthOptions turns nats.creds, nkey_seed, user/password, token and tls
// into client options (none when nothing is set). The files were checked by
// config validation; a problem here is one that appeared since.
func AuthOptions(cfg config.NATS) ([]nats.Option, error) {
	var opts []nats.Option
	switch cfg.AuthMethod() {
	case "creds":
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	case "nkey_seed":
		kp, err := nkeys.FromSeed([]byte(cfg.NkeySeed))
		if err != nil {
			return nil, &config.Error{Key: "nats.nkey_seed", Msg: "not an nkey seed"}
		}
		pub, err := kp.PublicKey()
		if err != nil {
			return nil, &config.Error{Key: "nats.nkey_seed", Msg: "not an nkey seed"}
		}
		// The key pair stays in memory for the connection's life: every
		// (re)connect signs the server's nonce.
		opts = append(opts, nats.Nkey(pub, kp.Sign))
	case "user":
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	case "token":
		opts = append(opts, nats.Token(cfg.Token))
	}
	if t := cfg.TLS; t.Enabled() {
		opts = append(opts, nats.Secure())
		if t.CA != "" {
			opts = append(opts, nats.RootCAs(t.CA))
		}
		if t.Cert != "" {
			opts = append(opts, nats.ClientCert(t.Cert, t.Key))
		}
	}
	return opts, nil
}

// Connect dials NATS with settings for a long-running service: every seed
// URL of cfg.URL, its credentials and TLS, reconnect forever (a NATS outage
// is survived, not fatal), no reconnect buffer, pings every 2 s, and connection events
// logged (server addresses only: never a credential).
func Connect(cfg config.NATS, name string, log *slog.Logger) (*nats.Conn, error) {
	if log == nil {
		log = slog.Default()
	}
	auth, err := AuthOptions(cfg)
	if err != nil {
		return nil, err
	}
	opts := append([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		// No reconnect buffer: a publish made while disconnected fails at
		// once (503 to the provider) instead of being stored minutes later,
		// after the provider was refused and past JetStream's duplicate
		// window, where its retry would then store a second copy.
		nats.ReconnectBufSize(-1),
		nats.RetryOnFailedConnect(true),
		// A server that stops answering without closing the socket (a
		// frozen or partitioned node of a cluster) is left after two
		// unanswered pings, 4–6 s, for another node: with the client's
		// default (2 min × 2) a service would sit on it for minutes, ingress
		// answering 503 to every callback although the other nodes have
		// quorum. The cost is one PING/PONG per 2 s per connection.
		nats.PingInterval(2 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: our own Close, not an outage
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrlRedacted()) }),
		// A permissions violation means the server's authorization and this
		// service disagree: say which subject, once per occurrence.
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Error("nats error", "err", err)
		}),
	}, auth...)
	nc, err := nats.Connect(strings.Join(cfg.URLs(), ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: connect: %v", ErrUnavailable, err)
	}
	return nc, nil
}

// StreamConfigs returns payhook's streams sized by cfg. Retention:
//   - PAYHOOK_EVENTS: cfg.EventsMaxAge (default 90 days), limits policy so
//     every subscriber and internal reader sees every event.
//   - PAYHOOK_RAW: records of verified requests, cfg.RawMaxAge
//     (default 30 days) and cfg.RawMaxBytes (default 10 GiB), oldest discarded.
//   - PAYHOOK_RAW_REJECTED: records of rejected requests, cfg.RawMaxAge and
//     cfg.RawRejectedMaxBytes (default 1 GiB), oldest discarded.
//   - PAYHOOK_DLQ: 90 days; dead letters wait for an operator.
//   - PAYHOOK_WATCH: 7 days; the reconciler consumes open-order announcements.
func StreamConfigs(cfg config.NATS) []jetstream.StreamConfig {
	replicas := max(cfg.Replicas, 1)
	dup := cfg.DuplicateWindow.D()
	if dup <= 0 {
		dup = 5 * time.Minute
	}
	eventsAge := cfg.EventsMaxAge.D()
	if eventsAge <= 0 {
		eventsAge = 90 * 24 * time.Hour
	}
	rawAge := cfg.RawMaxAge.D()
	if rawAge <= 0 {
		rawAge = 30 * 24 * time.Hour
	}
	rawBytes, rejectedBytes := cfg.RawMaxBytes, cfg.RawRejectedMaxBytes
	if rawBytes <= 0 {
		rawBytes = DefaultRawMaxBytes
	}
	if rejectedBytes <= 0 {
		rejectedBytes = DefaultRawRejectedMaxBytes
	}
	return []jetstream.StreamConfig{
		{
			Name: StreamEvents, Subjects: []string{SubjectEvents},
			Description: "payhook canonical payment events (CloudEvents JSON)",
			Storage:     jetstream.FileStorage, Replicas: replicas,
			Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld,
			MaxAge: eventsAge, Duplicates: dup,
		},
		// PAYHOOK_RAW comes before PAYHOOK_RAW_REJECTED: a stream created
		// by an older payhook holds payhook.raw.>, and must give up
		// payhook.raw.*.rejected before the new stream can take it.
		{
			Name: StreamRaw, Subjects: rawSubjects(),
			Description: "every inbound request that verified, as received, with its verdict (audit and replay)",
			Storage:     jetstream.FileStorage, Replicas: replicas,
			Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld,
			MaxAge: rawAge, MaxBytes: rawBytes, Duplicates: dup,
		},
		{
			Name: StreamRawRejected, Subjects: []string{SubjectRawRejected},
			Description: "every inbound request rejected with 4xx, as received (unrouted bodies truncated), with its reason",
			Storage:     jetstream.FileStorage, Replicas: replicas,
			Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld,
			MaxAge: rawAge, MaxBytes: rejectedBytes, Duplicates: dup,
		},
		{
			Name: StreamDLQ, Subjects: []string{SubjectDLQ},
			Description: "deliveries that ran out of attempts",
			Storage:     jetstream.FileStorage, Replicas: replicas,
			Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld,
			MaxAge: 90 * 24 * time.Hour, Duplicates: dup,
		},
		{
			Name: StreamWatch, Subjects: []string{SubjectWatch},
			Description: "open orders announced for the reconciler to chase",
			Storage:     jetstream.FileStorage, Replicas: replicas,
			Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld,
			MaxAge: 7 * 24 * time.Hour, Duplicates: dup,
		},
	}
}

// EnsureStreams creates or updates every stream so its config matches.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg config.NATS) error {
	for _, sc := range StreamConfigs(cfg) {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("%w: stream %s: %v", ErrUnavailable, sc.Name, err)
		}
	}
	return nil
}

// Streams are the names of every stream StreamConfigs returns.
var Streams = []string{StreamEvents, StreamRaw, StreamRawRejected, StreamDLQ, StreamWatch}

// CheckStreams reports whether NATS is reachable and the named streams
// exist, every stream when none is named (for /readyz).
func CheckStreams(ctx context.Context, js jetstream.JetStream, names ...string) error {
	if !js.Conn().IsConnected() {
		return fmt.Errorf("%w: not connected (%s)", ErrUnavailable, js.Conn().Status())
	}
	return streamsExist(ctx, js, names)
}

// Publish stores body on subject with Nats-Msg-Id = msgID and waits for the
// JetStream acknowledgement. duplicate reports that JetStream already had a
// message with that id in its duplicate window (still stored: success).
// A nil error means the message is durably stored.
func Publish(ctx context.Context, js jetstream.JetStream, subject, msgID string, body []byte, header nats.Header) (duplicate bool, err error) {
	// Fail fast while disconnected: a publish buffered for later would make
	// the caller wait out its timeout for an answer that is already "no".
	if !js.Conn().IsConnected() {
		return false, fmt.Errorf("%w: publish %s: not connected (%s)", ErrUnavailable, subject, js.Conn().Status())
	}
	msg := &nats.Msg{Subject: subject, Data: body, Header: header}
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	if msgID != "" {
		msg.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		return false, fmt.Errorf("%w: publish %s: %v", ErrUnavailable, subject, err)
	}
	return ack.Duplicate, nil
}

// Open is how a producer (ingress, reconciler; devstack and the tools)
// starts on NATS: connect, get JetStream, and create or update the streams
// (bounded to 30 s). Close the returned connection (Drain for a clean stop)
// when done.
func Open(ctx context.Context, cfg config.NATS, name string, log *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	return open(ctx, cfg, name, log, EnsureStreams)
}

// Attach is Open for a service that reads streams but does not manage them
// (the dispatcher): it never creates or updates a stream, whose settings
// are the producers' to decide and which the NATS authorization
// (deploy/nats/auth.conf) does not let it change. It waits, within the same
// 30 s, for the streams it names to exist (only those it uses: waiting for
// one that only a newer producer creates would keep it from starting while
// the producers are upgraded after it), so it can start beside a producer
// on an empty server.
func Attach(ctx context.Context, cfg config.NATS, name string, log *slog.Logger, streams ...string) (*nats.Conn, jetstream.JetStream, error) {
	if len(streams) == 0 {
		return nil, nil, fmt.Errorf("natsbus: Attach %s: no stream named", name)
	}
	return open(ctx, cfg, name, log, func(ctx context.Context, js jetstream.JetStream, _ config.NATS) error {
		return WaitStreams(ctx, js, streams...)
	})
}

func open(ctx context.Context, cfg config.NATS, name string, log *slog.Logger, streams func(context.Context, jetstream.JetStream, config.NATS) error) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := Connect(cfg, name, log)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("%w: jetstream: %v", ErrUnavailable, err)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := streams(sctx, js, cfg); err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// WaitStreams polls every 250 ms until the named streams (every stream when
// none is named) exist or ctx ends, and then returns the last problem seen.
func WaitStreams(ctx context.Context, js jetstream.JetStream, names ...string) error {
	for {
		err := streamsExist(ctx, js, names)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (waiting for the producers to create the streams)", err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func streamsExist(ctx context.Context, js jetstream.JetStream, names []string) error {
	if len(names) == 0 {
		names = Streams
	}
	for _, name := range names {
		if _, err := js.Stream(ctx, name); err != nil {
			return fmt.Errorf("%w: stream %s: %v", ErrUnavailable, name, err)
		}
	}
	return nil
}
