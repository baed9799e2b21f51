package trace

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/pkg/events"
)

// Headers of a raw record that the index reads (the record format is
// ingress's, docs/operations.md "Raw record format"; a test checks these
// against ingress's names). The body is never read.
const (
	rawHeaderReceivedAt = "Payhook-Received-At"
	rawHeaderKind       = "Payhook-Kind"
	rawHeaderVerdict    = "Payhook-Verdict"
	rawHeaderReason     = "Payhook-Reason"
	rawHeaderStatus     = "Payhook-Status"
	rawHeaderEventID    = "Payhook-Event-Id"
	rawHeaderProvider   = "Payhook-Provider"
	rawHeaderAccount    = "Payhook-Account"
	rawHeaderOrderID    = "Payhook-Order-Id"
	// rawHeaderClaimedOrderID names the order that the bytes of a refused
	// request that did not verify claim: indexed, marked unverified.
	rawHeaderClaimedOrderID = "Payhook-Claimed-Order-Id"
)

// Durable consumers of the Indexer, shared by the reconciler replicas
// (each message is indexed by one of them).
const (
	ConsumerEvents = "payhook-trace-events"
	ConsumerRaw    = "payhook-trace-raw"
	// ConsumerRejected reads PAYHOOK_RAW_REJECTED for the refusals that
	// name a verified order (handleRejected).
	ConsumerRejected = "payhook-trace-rejected"
)

// Indexer writes the index entries of events (PAYHOOK_EVENTS) and of the
// raw requests that carried them (PAYHOOK_RAW, headers only: the body is
// not needed and not read). It runs in the reconciler. Its consumers are
// durable, so nothing is skipped while it is down, and an entry written
// twice on a redelivery carries the same Nats-Msg-Id ("ev:<seq>",
// "raw:<seq>") and is dropped by JetStream's duplicate window.
type Indexer struct {
	js  jetstream.JetStream
	log *slog.Logger
	ccs []jetstream.ConsumeContext
}

// consumerConfig: AckWait 30s exceeds one publish (5s); MaxAckPending 1000
// bounds the entries in flight per replica.
func consumerConfig(name, filter string, headersOnly bool) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable: name, Description: "payhook trace indexer", AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: 30 * time.Second, MaxDeliver: -1, MaxAckPending: 1000, DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: filter, HeadersOnly: headersOnly,
	}
}

// StartIndexer creates (or updates) the indexer's consumers and starts
// consuming; Stop drains them.
func StartIndexer(ctx context.Context, js jetstream.JetStream, log *slog.Logger) (*Indexer, error) {
	ix := &Indexer{js: js, log: log}
	for _, c := range []struct {
		stream string
		cc     jetstream.ConsumerConfig
		handle func(jetstream.Msg)
	}{
		{natsbus.StreamEvents, consumerConfig(ConsumerEvents, natsbus.SubjectEvents, false), ix.handleEvent},
		{natsbus.StreamRaw, consumerConfig(ConsumerRaw, natsbus.SubjectRaw, true), ix.handleRaw},
		{natsbus.StreamRawRejected, consumerConfig(ConsumerRejected, natsbus.SubjectRawRejected, true), ix.handleRejected},
	} {
		cons, err := js.CreateOrUpdateConsumer(ctx, c.stream, c.cc)
		if err != nil {
			ix.Stop()
			return nil, fmt.Errorf("%w: consumer %s: %v", natsbus.ErrUnavailable, c.cc.Durable, err)
		}
		cc, err := cons.Consume(c.handle, jetstream.PullMaxMessages(256), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			log.Warn("trace indexer consumer", "consumer", c.cc.Durable, "err", err)
		}))
		if err != nil {
			ix.Stop()
			return nil, fmt.Errorf("%w: consume %s: %v", natsbus.ErrUnavailable, c.cc.Durable, err)
		}
		ix.ccs = append(ix.ccs, cc)
	}
	return ix, nil
}

// Stop stops taking messages and waits for the ones being indexed.
func (ix *Indexer) Stop() {
	for _, cc := range ix.ccs {
		cc.Drain()
	}
	for _, cc := range ix.ccs {
		<-cc.Closed()
	}
}

// eventHead is what the index needs of a stored CloudEvent.
type eventHead struct {
	ID   string `json:"id"`
	Data struct {
		Provider        string    `json:"provider"`
		Account         string    `json:"account"`
		Kind            string    `json:"kind"`
		MerchantOrderID string    `json:"merchant_order_id"`
		ProviderOrderID string    `json:"provider_order_id"`
		Origin          string    `json:"origin"`
		ReceivedAt      time.Time `json:"received_at"`
	} `json:"data"`
}

// EventEntry is the index key and entry of the event message data stored
// on subject; ok is false for a message that is not a payhook event.
func EventEntry(subject string, data []byte) (key string, e Entry, ok bool) {
	_, _, status, isEvent := events.ParseSubject(subject)
	var h eventHead
	if !isEvent || json.Unmarshal(data, &h) != nil || h.ID == "" || h.Data.Provider == "" {
		return "", Entry{}, false
	}
	order := h.Data.MerchantOrderID
	if order == "" {
		order = h.Data.ProviderOrderID
	}
	return OrderIndexKey(h.Data.Provider, h.Data.Account, order), Entry{
		Type: TypeEvent, At: h.Data.ReceivedAt, EventID: h.ID, Kind: h.Data.Kind, EventStatus: string(status), Origin: h.Data.Origin,
	}, true
}

func (ix *Indexer) handleEvent(m jetstream.Msg) {
	key, e, ok := EventEntry(m.Subject(), m.Data())
	if !ok {
		_ = m.Ack() // not an event: nothing to index
		return
	}
	md, err := m.Metadata()
	if err != nil {
		_ = m.Nak()
		return
	}
	e.EventSeq = md.Sequence.Stream
	if e.At.IsZero() {
		e.At = md.Timestamp.UTC()
	}
	ix.publish(m, Message(key, e, "ev:"+strconv.FormatUint(e.EventSeq, 10)))
}

func (ix *Indexer) handleRaw(m jetstream.Msg) {
	h := m.Headers()
	id := h.Get(rawHeaderEventID)
	md, err := m.Metadata()
	if id == "" || err != nil {
		_ = m.Ack() // a record without an event (or unreadable): not indexed
		return
	}
	e := rawEntry(h, md)
	ix.publish(m, Message(EventIndexKey(id), e, "raw:"+strconv.FormatUint(e.RawSeq, 10)))
}

// handleRejected indexes a refusal under the order its record names.
// Ingress writes Payhook-Order-Id for a request that verified and decoded
// before it was refused (too_old, future_timestamp, invalid_event), and
// Payhook-Claimed-Order-Id for one that did not verify (bad_signature,
// malformed, ...) but whose bytes claim an order (providers.ClaimedOrder):
// that entry is marked Unverified, as anyone can claim any order. Ingress
// writes either only for a configured account, and the claimed one only
// within its per-(account, order) and per-account buckets, so what reaches
// here is bounded (docs/security.md); a record of an account that is not
// configured is never indexed.
func (ix *Indexer) handleRejected(m jetstream.Msg) {
	h := m.Headers()
	order, provider, account := h.Get(rawHeaderOrderID), h.Get(rawHeaderProvider), h.Get(rawHeaderAccount)
	unverified := false
	if order == "" {
		order, unverified = h.Get(rawHeaderClaimedOrderID), true
	}
	md, err := m.Metadata()
	if order == "" || !events.ValidOrderID(order) || provider == "" || account == "" || account == "unknown" || err != nil {
		_ = m.Ack()
		return
	}
	e := rawEntry(h, md)
	e.Unverified = unverified
	ix.publish(m, Message(OrderIndexKey(provider, account, order), e, "raw:"+md.Stream+":"+strconv.FormatUint(e.RawSeq, 10)))
}

// rawEntry is the index entry of a raw record, from its headers.
func rawEntry(h nats.Header, md *jetstream.MsgMetadata) Entry {
	e := Entry{
		Type: TypeRaw, RawStream: md.Stream, RawSeq: md.Sequence.Stream, EventID: h.Get(rawHeaderEventID),
		Kind: h.Get(rawHeaderKind), Verdict: h.Get(rawHeaderVerdict), Reason: h.Get(rawHeaderReason),
	}
	e.Status, _ = strconv.Atoi(h.Get(rawHeaderStatus))
	if at, err := time.Parse(time.RFC3339Nano, h.Get(rawHeaderReceivedAt)); err == nil {
		e.At = at.UTC()
	} else {
		e.At = md.Timestamp.UTC()
	}
	return e
}

// publish stores the entry, then acknowledges the message it came from;
// an entry not stored leaves the message for redelivery a second later.
func (ix *Indexer) publish(m jetstream.Msg, entry *nats.Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := ix.js.PublishMsg(ctx, entry); err != nil {
		ix.log.Debug("trace entry not stored; retrying", "subject", entry.Subject, "err", err)
		_ = m.NakWithDelay(time.Second)
		return
	}
	_ = m.Ack()
}
