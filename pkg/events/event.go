// Package events defines payhook's canonical payment event: what a verified
// provider callback or a reconciler poll means, independent of provider
// dialect. It imports only the standard library.
package events

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Kind is what an event is about.
type Kind string

// Kinds of event. Appeal is a jpglo inquiry about an unpaid deposit.
const (
	KindPayin  Kind = "payin"
	KindPayout Kind = "payout"
	KindAppeal Kind = "appeal"
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k == KindPayin || k == KindPayout || k == KindAppeal }

// Status is where the payment stands.
type Status string

// Statuses. Conflict is not a payment status but the subject token for a
// terminal status contradicted by a later one (see pkg/dedupe).
const (
	StatusPending   Status = "pending"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusConflict  Status = "conflict"
)

// Valid reports whether s is a payment status (pending, succeeded, failed).
func (s Status) Valid() bool {
	return s == StatusPending || s == StatusSucceeded || s == StatusFailed
}

// Terminal reports whether s is final: succeeded or failed.
func (s Status) Terminal() bool { return s == StatusSucceeded || s == StatusFailed }

// Origin tells how payhook learned of the event.
type Origin string

// Origins (docs/interfaces.md "The CloudEvent").
const (
	OriginCallback  Origin = "callback"  // the provider called us
	OriginRetrigger Origin = "retrigger" // the provider called again because the reconciler asked
	OriginPoll      Origin = "poll"      // synthesized from a query result
	OriginReprocess Origin = "reprocess" // a refused request that verifies now, re-run by an operator
)

// Event is one distinct fact about a payment. Its JSON form is the "data"
// of the CloudEvent in docs/interfaces.md.
type Event struct {
	Provider        string `json:"provider"`
	Account         string `json:"account"`
	Kind            Kind   `json:"kind"`
	Status          Status `json:"status"`
	MerchantOrderID string `json:"merchant_order_id"`
	ProviderOrderID string `json:"provider_order_id,omitempty"`
	// Reference is the bank RRN / UTR / channel order number, when the provider gives one.
	Reference       string    `json:"reference,omitempty"`
	Amount          Money     `json:"amount"`
	RequestedAmount *Money    `json:"requested_amount,omitempty"`
	AmountMismatch  bool      `json:"amount_mismatch"`
	OccurredAt      time.Time `json:"occurred_at"`
	ReceivedAt      time.Time `json:"received_at"`
	Origin          Origin    `json:"origin"`
	// ProviderFields is the decoded callback with secrets and signature removed.
	ProviderFields map[string]any `json:"provider_fields,omitempty"`

	// IdempotencyKey, when set, identifies the fact at the provider in place of
	// MerchantOrderID (mpurse: mpQueryId + bankRRN; jpglo appeal: mch_inquiry_no).
	// It feeds ID and is not serialized.
	IdempotencyKey string `json:"-"`

	// SignedAt is the provider's own timestamp of the callback when the
	// signature covers it (jpglo "timestamp", cashypro "completionTime"),
	// zero when the callback carries none. Ingress refuses a callback whose
	// SignedAt is older than the account's max_age. Not serialized.
	SignedAt time.Time `json:"-"`
}

// ErrInvalid reports an event that is missing something every event must have.
var ErrInvalid = errors.New("invalid event")

// validToken reports whether s matches [a-z0-9-]{1,32} (provider and
// account names); a loop, not a regexp: it runs for every event.
func validToken(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// MaxOrderIDLen bounds order ids and references: the providers allow at
// most 64 characters (mrnpay mrn, fantian payment_reference); 128 bytes
// leaves room for multi-byte characters.
const MaxOrderIDLen = 128

// MaxKeyLen bounds idempotency keys (mpurse: mpQueryId + ":" + bankRRN),
// as pkg/dedupe bounds its key parts.
const MaxKeyLen = 256

// Normalize makes the fields that only describe the event safe to publish
// without refusing a verified callback over them: ProviderOrderID and
// Reference are trimmed, and dropped when they still are not printable ids
// (the provider's original value stays in ProviderFields). The fields that
// identify the event (MerchantOrderID, IdempotencyKey) are left alone:
// Validate refuses them when unusable.
func (e *Event) Normalize() {
	normalizeID(&e.Reference)
	if e.MerchantOrderID != "" || e.IdempotencyKey != "" {
		// Only when it does not identify the event: changing an identifying
		// field would change the event id.
		normalizeID(&e.ProviderOrderID)
	}
}

// normalizeID trims *f and clears it when it is not a valid order id.
func normalizeID(f *string) {
	*f = strings.TrimSpace(*f)
	if *f != "" && !ValidOrderID(*f) {
		*f = ""
	}
}

// ValidOrderID reports whether s can identify an order (or a bank
// reference): 1 to MaxOrderIDLen bytes of valid UTF-8, every character
// printable, no whitespace but inner ASCII spaces. Invalid UTF-8 would otherwise collapse two
// different ids into one U+FFFD spelling; control and bidi-override
// characters would make ids that logs and UIs show deceptively.
func ValidOrderID(s string) bool { return validID(s, MaxOrderIDLen) }

func validID(s string, maxLen int) bool {
	if s == "" || len(s) > maxLen || !utf8.ValidString(s) || s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for _, c := range s {
		if c != ' ' && (!unicode.IsPrint(c) || unicode.IsSpace(c)) {
			return false
		}
	}
	return true
}

// Validate checks the invariants every published event satisfies.
func (e *Event) Validate() error {
	switch {
	case !validToken(e.Provider):
		return fmt.Errorf("%w: provider %q", ErrInvalid, e.Provider)
	case !validToken(e.Account):
		return fmt.Errorf("%w: account %q", ErrInvalid, e.Account)
	case !e.Kind.Valid():
		return fmt.Errorf("%w: kind %q", ErrInvalid, e.Kind)
	case !e.Status.Valid():
		return fmt.Errorf("%w: status %q", ErrInvalid, e.Status)
	case e.key() == "":
		return fmt.Errorf("%w: no order id", ErrInvalid)
	case e.MerchantOrderID != "" && !ValidOrderID(e.MerchantOrderID):
		return fmt.Errorf("%w: merchant_order_id is not a printable id of at most %d bytes", ErrInvalid, MaxOrderIDLen)
	case e.MerchantOrderID == "" && e.IdempotencyKey == "" && !ValidOrderID(e.ProviderOrderID):
		return fmt.Errorf("%w: provider_order_id is not a printable id of at most %d bytes", ErrInvalid, MaxOrderIDLen)
	case e.IdempotencyKey != "" && !validID(e.IdempotencyKey, MaxKeyLen):
		return fmt.Errorf("%w: idempotency key is not printable or over %d bytes", ErrInvalid, MaxKeyLen)
	case e.Amount.Value != "" && checkDecimal(e.Amount.Value) != nil:
		return fmt.Errorf("%w: amount %q", ErrInvalid, e.Amount.Value)
	}
	return nil
}

func (e *Event) key() string {
	if e.IdempotencyKey != "" {
		return e.IdempotencyKey
	}
	if e.MerchantOrderID != "" {
		return e.MerchantOrderID
	}
	return e.ProviderOrderID
}

// OrderKey identifies the order (or appeal) the event is about, within
// provider, account and kind: the idempotency key when set, else the merchant
// order id, else the provider's order id. Per-order state is kept under it.
func (e *Event) OrderKey() string { return e.key() }

// ID is the deterministic event id: the same fact yields the same id whether
// it came from a callback, a provider retry, a re-triggered callback or a
// poll, so every path collapses to one event. It is the first 16 bytes of
// SHA-256 over provider, account, kind, order key and status, hex encoded
// with an "evt_" prefix (36 characters).
func (e *Event) ID() string {
	// Hand-rolled rather than fmt.Fprintf: this runs on every callback.
	var buf [256]byte
	b := buf[:0]
	for _, part := range [...]string{e.Provider, e.Account, string(e.Kind), e.key(), string(e.Status)} {
		// Length-prefix each part so ("a","bc") and ("ab","c") differ.
		b = strconv.AppendInt(b, int64(len(part)), 10)
		b = append(b, ':')
		b = append(b, part...)
		b = append(b, '|')
	}
	sum := sha256.Sum256(b)
	out := make([]byte, 4+32)
	copy(out, "evt_")
	hex.Encode(out[4:], sum[:16])
	return string(out)
}

// Subject is the NATS subject the event is published on:
// payhook.events.{provider}.{kind}.{status}.
func (e *Event) Subject() string { return Subject(e.Provider, e.Kind, e.Status) }

// Type is the CloudEvents type: payhook.{kind}.{status}.
func (e *Event) Type() string { return "payhook." + string(e.Kind) + "." + string(e.Status) }

// Source is the CloudEvents source: payhook/{provider}/{account}.
func (e *Event) Source() string { return "payhook/" + e.Provider + "/" + e.Account }

// CloudEvent is the CloudEvents 1.0 structured-mode JSON envelope.
type CloudEvent struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Subject         string    `json:"subject,omitempty"`
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	Data            Event     `json:"data"`
}

// Envelope wraps the event in its CloudEvent. The CloudEvent time is when
// payhook received the fact; subject is the merchant order id.
func (e *Event) Envelope() CloudEvent {
	return CloudEvent{
		SpecVersion:     "1.0",
		ID:              e.ID(),
		Source:          e.Source(),
		Type:            e.Type(),
		Subject:         e.MerchantOrderID,
		Time:            e.ReceivedAt.UTC(),
		DataContentType: "application/json",
		Data:            *e,
	}
}

// MarshalCloudEvent renders the CloudEvent JSON that goes on the wire.
func (e *Event) MarshalCloudEvent() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return e.appendCloudEvent(make([]byte, 0, 1024), e.ID())
}

// ParseCloudEvent decodes a CloudEvent published by payhook.
func ParseCloudEvent(b []byte) (CloudEvent, error) {
	var ce CloudEvent
	if err := json.Unmarshal(b, &ce); err != nil {
		return CloudEvent{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if ce.SpecVersion != "1.0" || ce.ID == "" {
		return CloudEvent{}, fmt.Errorf("%w: not a payhook CloudEvent", ErrInvalid)
	}
	return ce, nil
}

// ConflictData is the data of a conflict CloudEvent: a terminal status
// contradicted by a later, different terminal status for the same order
// (success then fail, or the reverse). It carries the new fact in full and
// names the first one, which stands. Published on
// payhook.events.{provider}.{kind}.conflict with type payhook.{kind}.conflict.
type ConflictData struct {
	Event
	PreviousStatus  Status `json:"previous_status"`
	PreviousEventID string `json:"previous_event_id"`
}

// ConflictEnvelope is the CloudEvent for a conflict.
type ConflictEnvelope struct {
	SpecVersion     string       `json:"specversion"`
	ID              string       `json:"id"`
	Source          string       `json:"source"`
	Type            string       `json:"type"`
	Subject         string       `json:"subject,omitempty"`
	Time            time.Time    `json:"time"`
	DataContentType string       `json:"datacontenttype"`
	Data            ConflictData `json:"data"`
}

// ConflictSubject is payhook.events.{provider}.{kind}.conflict.
func (e *Event) ConflictSubject() string { return Subject(e.Provider, e.Kind, StatusConflict) }

// MarshalConflict renders the conflict CloudEvent for e contradicting the
// earlier terminal fact (prevStatus, prevID). Its id is e.ID(), so a provider
// retrying the contradicting callback collapses onto the same conflict.
func (e *Event) MarshalConflict(prevStatus Status, prevID string) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return e.appendConflict(make([]byte, 0, 1024), e.ID(), prevStatus, prevID)
}

// ConflictFollowUpID is the id of the conflict CloudEvent that follows e
// when e itself went out normally because it raced the contradicting
// terminal status on another replica: e.ID() + ":conflict". It differs from
// e.ID() so that JetStream's Nats-Msg-Id window and readers deduping on the
// CloudEvent id keep both messages, and it is deterministic so that two
// replicas following up the same event collapse onto one.
func (e *Event) ConflictFollowUpID() string { return e.ID() + ":conflict" }

// MarshalConflictFollowUp is MarshalConflict under ConflictFollowUpID.
func (e *Event) MarshalConflictFollowUp(prevStatus Status, prevID string) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return e.appendConflict(make([]byte, 0, 1024), e.ConflictFollowUpID(), prevStatus, prevID)
}
