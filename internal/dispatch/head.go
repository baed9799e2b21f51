package dispatch

import (
	"encoding/json"
	"fmt"

	"github.com/payhook/payhook/internal/trace"
	"github.com/payhook/payhook/pkg/events"
)

// head is what routing needs of a stored CloudEvent: decoding only these
// fields skips building provider_fields (a map per event per subscriber),
// which was a fifth of the dispatcher's CPU.
type head struct {
	SpecVersion string `json:"specversion"`
	ID          string `json:"id"`
	Type        string `json:"type"`
	Data        struct {
		Provider        string        `json:"provider"`
		Account         string        `json:"account"`
		Kind            events.Kind   `json:"kind"`
		Status          events.Status `json:"status"`
		MerchantOrderID string        `json:"merchant_order_id"`
		ProviderOrderID string        `json:"provider_order_id"`
	} `json:"data"`
}

// parseHead decodes the routing fields of a CloudEvent published by payhook.
func parseHead(b []byte) (events.CloudEvent, error) {
	var h head
	if err := json.Unmarshal(b, &h); err != nil {
		return events.CloudEvent{}, fmt.Errorf("%w: %v", events.ErrInvalid, err)
	}
	if h.SpecVersion != "1.0" || h.ID == "" {
		return events.CloudEvent{}, fmt.Errorf("%w: not a payhook CloudEvent", events.ErrInvalid)
	}
	return events.CloudEvent{SpecVersion: h.SpecVersion, ID: h.ID, Type: h.Type, Data: events.Event{
		Provider: h.Data.Provider, Account: h.Data.Account, Kind: h.Data.Kind, Status: h.Data.Status,
		MerchantOrderID: h.Data.MerchantOrderID, ProviderOrderID: h.Data.ProviderOrderID,
	}}, nil
}

// eventHead is what the dispatcher needs of a stored event, worked out
// once per event (headCache) and shared, read-only, by the event's
// deliveries to every subscriber: their attempts' log lines and attempt
// log entries would otherwise decode the body again.
type eventHead struct {
	ce events.CloudEvent
	// subject is the one the signed body says (events.SubjectOf).
	subject string
	// key is SequenceKey(ce).
	key string
	// order is the merchant order id, else the provider's: what logs and
	// the attempt log name the event's order by.
	order string
	// traceSubject is the subject of the order's attempt log entries.
	traceSubject string
}

// newHead decodes the routing fields of b (parseHead) and works out the
// rest of eventHead from them.
func newHead(b []byte) (*eventHead, error) {
	ce, err := parseHead(b)
	if err != nil {
		return nil, err
	}
	order := ce.Data.MerchantOrderID
	if order == "" {
		order = ce.Data.ProviderOrderID
	}
	return &eventHead{
		ce: ce, subject: events.SubjectOf(ce), key: SequenceKey(ce), order: order,
		traceSubject: trace.Subject(trace.OrderIndexKey(ce.Data.Provider, ce.Data.Account, order)),
	}, nil
}

// SequenceKey is the key a subscriber's deliveries are sequenced by (one at
// a time per key, in stream order): provider, account, kind and merchant
// order id (the provider order id when there is none; the event id when
// neither is known, which orders nothing).
func SequenceKey(ce events.CloudEvent) string {
	e := ce.Data
	id := e.MerchantOrderID
	if id == "" {
		id = e.ProviderOrderID
	}
	if id == "" {
		id = "evt:" + ce.ID
	}
	return e.Provider + "|" + e.Account + "|" + string(e.Kind) + "|" + id
}
