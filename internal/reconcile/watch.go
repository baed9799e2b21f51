package reconcile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

// Request is an announcement of an open order: the JSON of
// payhook.watch.{provider} (docs/interfaces.md), and of POST /v1/watches, which
// adds Provider.
type Request struct {
	Provider        string      `json:"provider,omitempty"`
	Account         string      `json:"account"`
	Kind            events.Kind `json:"kind"`
	MerchantOrderID string      `json:"merchant_order_id"`
	ProviderOrderID string      `json:"provider_order_id,omitempty"`
	// ExpiresAt, when set, is when the order expires at the provider: the
	// watch polls no later than this and expires after that poll.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Amount, when set, is the order's amount as the merchant asked for it:
	// an exact decimal in major units, as a JSON string ("100.00"; a JSON
	// number is refused, it would be read through a float somewhere).
	// Currency defaults to the account's, and must be the account's when
	// given. Only providers whose query answer carries no amount use it
	// (providers.WatchNeeds Amount: mrnpay): a terminal answer with no event becomes an event
	// with this amount instead of "unrecoverable".
	Amount   string `json:"amount,omitempty"`
	Currency string `json:"currency,omitempty"`
}

// MaxRequestBytes bounds an announcement (watch message or API body).
const MaxRequestBytes = 4 << 10

// maxOrderID bounds order ids: the providers allow at most 64 characters
// (mrnpay mrn, fantian payment_cl_id 32); 128 leaves room, and the dedupe
// store accepts 256.
const maxOrderID = 128

// ErrInvalidRequest wraps every reason an announcement is refused; the
// message names the field and is safe to return to the caller.
var ErrInvalidRequest = errors.New("invalid watch")

// ParseRequest decodes an announcement, rejecting anything but one JSON
// object of at most MaxRequestBytes. Unknown fields are ignored so that
// announcers may add fields (the announcement format changes only by adding).
func ParseRequest(b []byte) (Request, error) {
	if len(b) > MaxRequestBytes {
		return Request{}, fmt.Errorf("%w: body over %d bytes", ErrInvalidRequest, MaxRequestBytes)
	}
	var r Request
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&r); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && (te.Field == "amount" || te.Field == "currency") {
			return Request{}, fmt.Errorf("%w: %s must be a JSON string (amount an exact decimal like \"100.00\")", ErrInvalidRequest, te.Field)
		}
		return Request{}, fmt.Errorf("%w: not a JSON watch object", ErrInvalidRequest)
	}
	if dec.More() {
		return Request{}, fmt.Errorf("%w: trailing data after the JSON object", ErrInvalidRequest)
	}
	return r, nil
}

// validOrderID reports whether s is a plausible order id: 1..maxOrderID
// printable, non-space characters.
func validOrderID(s string) bool { return len(s) <= maxOrderID && events.ValidOrderID(s) }

// Validate checks r against the configured accounts (by id). provider is
// the provider the announcement came for (the subject token or the API's
// field); it must be one of provs and be the account's provider. A watch
// for a provider whose query is by the provider's order id
// (providers.WatchNeeds) must carry provider_order_id.
func (r *Request) Validate(accounts map[string]providers.Account, provs *providers.Set) error {
	p := strings.TrimSpace(r.Provider)
	r.Provider = p // stored and used in subjects as validated
	switch {
	case p == "":
		return fmt.Errorf("%w: provider is required", ErrInvalidRequest)
	case !provs.Known(p):
		return fmt.Errorf("%w: unknown provider %q (want one of %s)", ErrInvalidRequest, truncate(p, 32), strings.Join(provs.Names(), ", "))
	case r.Account == "":
		return fmt.Errorf("%w: account is required", ErrInvalidRequest)
	}
	a, ok := accounts[r.Account]
	switch {
	case !ok:
		return fmt.Errorf("%w: unknown account %q", ErrInvalidRequest, truncate(r.Account, 32))
	case a.Provider != p:
		return fmt.Errorf("%w: account %q belongs to provider %s, not %s", ErrInvalidRequest, r.Account, a.Provider, p)
	case !r.Kind.Valid():
		return fmt.Errorf("%w: kind %q is not payin, payout or appeal", ErrInvalidRequest, truncate(string(r.Kind), 16))
	case r.MerchantOrderID == "":
		return fmt.Errorf("%w: merchant_order_id is required", ErrInvalidRequest)
	case !validOrderID(r.MerchantOrderID):
		return fmt.Errorf("%w: merchant_order_id must be 1 to %d printable characters without spaces", ErrInvalidRequest, maxOrderID)
	case r.ProviderOrderID == "" && needs(provs, p).ProviderOrderID:
		return fmt.Errorf("%w: provider_order_id is required for %s (its orders are queried by the provider's id)", ErrInvalidRequest, p)
	case r.ProviderOrderID != "" && !validOrderID(r.ProviderOrderID):
		return fmt.Errorf("%w: provider_order_id must be 1 to %d printable characters without spaces", ErrInvalidRequest, maxOrderID)
	case r.Currency != "" && r.Amount == "":
		return fmt.Errorf("%w: currency without amount", ErrInvalidRequest)
	case r.Currency != "" && r.Currency != a.Currency:
		// Events carry the account's currency (config accounts[].currency);
		// an order in another one cannot be this account's.
		return fmt.Errorf("%w: currency %q is not account %q's (%s)", ErrInvalidRequest, truncate(r.Currency, 8), r.Account, a.Currency)
	}
	if r.Amount != "" {
		if _, err := r.money(a); err != nil {
			return fmt.Errorf("%w: amount must be a non-negative exact decimal of at most 40 characters, like \"100.00\"", ErrInvalidRequest)
		}
	}
	return nil
}

// money is the announced amount in the account's currency; r.Amount must be set.
func (r *Request) money(a providers.Account) (events.Money, error) {
	m, err := events.ParseMoney(r.Amount, a.Currency)
	if err == nil && strings.HasPrefix(m.Value, "-") {
		err = events.ErrAmount
	}
	return m, err
}

// needs is what a watch must carry for provider's query (providers.WatchNeeds).
func needs(provs *providers.Set, provider string) providers.Watch {
	if n, ok := providers.Role[providers.WatchNeeds](provs, provider); ok {
		return n.WatchNeeds()
	}
	return providers.Watch{}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Watch is one open order being chased, with its place in the schedule. It
// is the body of its message on PAYHOOK_RECONCILE; every state change
// replaces the message (see queue.go).
type Watch struct {
	ID              string      `json:"id"`
	Provider        string      `json:"provider"`
	Account         string      `json:"account"`
	Kind            events.Kind `json:"kind"`
	MerchantOrderID string      `json:"merchant_order_id"`
	ProviderOrderID string      `json:"provider_order_id,omitempty"`
	ExpiresAt       time.Time   `json:"expires_at,omitzero"`
	// Source is how the watch arrived: "subject" or "api".
	Source   string    `json:"source"`
	OpenedAt time.Time `json:"opened_at"`

	// Step is the index in the schedule of the next poll; DueAt is when it
	// (or the retrigger grace check) is due.
	Step  int       `json:"step"`
	DueAt time.Time `json:"due_at"`
	// Errors counts consecutive failed polls (provider or publish errors);
	// they do not advance Step.
	Errors int `json:"errors,omitempty"`
	// RetriggeredAt is when the provider was last asked to resend the
	// callback (mrnpay callback=true with a succeeded answer); while
	// AwaitingRetrigger is set, the next due time is the end of the grace period.
	RetriggeredAt     time.Time `json:"retriggered_at,omitzero"`
	AwaitingRetrigger bool      `json:"awaiting_retrigger,omitempty"`
	// Unrecoverable is set once a provider reported a terminal status that
	// could not be turned into an event (no amount in the answer nor in the watch).
	Unrecoverable bool `json:"unrecoverable,omitempty"`
	// Amount is the announced order amount (Request.Amount), if any.
	Amount *events.Money `json:"amount,omitempty"`
	// Polls counts the provider queries made; LastPollAt is the latest.
	Polls      int       `json:"polls,omitempty"`
	LastPollAt time.Time `json:"last_poll_at,omitzero"`
	// LastError is the latest failed poll's error (or a synthesized event
	// that could not be stored), kept after later polls succeed.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`

	// subject is the subject of the message the watch was read from (set
	// by the handler): a watch stored before the account was part of the
	// subject keeps its old one.
	subject string
}

// noteError records err as the watch's last error (bounded to 300 bytes).
func (w *Watch) noteError(err error, now time.Time) {
	w.LastError = truncate(err.Error(), 300)
	w.LastErrorAt = now.UTC()
}

// WatchID is the deterministic id of the watch on an order: "wch_" and the
// first 16 bytes of SHA-256 over provider, account, kind and merchant order
// id, hex encoded. Both intake paths compute the same id, so an order
// announced twice has one watch.
func WatchID(provider, account string, kind events.Kind, merchantOrderID string) string {
	h := sha256.New()
	for _, part := range []string{provider, account, string(kind), merchantOrderID} {
		fmt.Fprintf(h, "%d:%s|", len(part), part)
	}
	return "wch_" + hex.EncodeToString(h.Sum(nil)[:16])
}

// Order is the provider-side order the watch chases.
func (w *Watch) Order() providers.Order {
	return providers.Order{Kind: w.Kind, MerchantOrderID: w.MerchantOrderID, ProviderOrderID: w.ProviderOrderID}
}

// probe is the event the order's terminal success would be; its id and
// order key are what the dedupe store is asked about.
func (w *Watch) probe() *events.Event {
	return &events.Event{Provider: w.Provider, Account: w.Account, Kind: w.Kind, Status: events.StatusSucceeded, MerchantOrderID: w.MerchantOrderID}
}

// AmountSource is provider_fields.amount_source of an event synthesized
// with the watch's announced amount (origin poll): the provider confirmed
// the status, the amount is what the merchant announced.
const AmountSource = "watch"

// event is the event a terminal query answer without amounts makes with the
// announced amount (w.Amount must be set): the same id as the provider's
// callback (provider, account, kind, merchant order id, status), so a late
// callback is a duplicate. Amount and requested amount are both the
// announced amount, amount_mismatch false: what was actually paid is not
// known, and provider_fields.amount_source says so. occurred_at is the poll.
func (w *Watch) event(status events.Status, now time.Time) *events.Event {
	amt := *w.Amount
	return &events.Event{
		Provider: w.Provider, Account: w.Account, Kind: w.Kind, Status: status,
		MerchantOrderID: w.MerchantOrderID, ProviderOrderID: w.ProviderOrderID,
		Amount: amt, RequestedAmount: &amt,
		OccurredAt: now.UTC(), ReceivedAt: now.UTC(), Origin: events.OriginPoll,
		ProviderFields: map[string]any{"amount_source": AmountSource},
	}
}

// Subject is the watch's subject on PAYHOOK_RECONCILE:
// payhook.reconcile.{provider}.{account}.{watch id}, or the subject of the
// message it was read from. One subject per watch lets the stream keep at
// most one message per watch; the account in it lets the reconciler count
// an account's open watches (max_watches_per_account).
func (w *Watch) Subject() string {
	if w.subject != "" {
		return w.subject
	}
	return watchSubject(w.Provider, w.Account, w.ID)
}

// WatchSubject is where the watch on an order lives in PAYHOOK_RECONCILE
// (for tools that inspect the queue).
func WatchSubject(provider, account string, kind events.Kind, merchantOrderID string) string {
	return watchSubject(provider, account, WatchID(provider, account, kind, merchantOrderID))
}

// watchSubject is the subject of watch id of provider and account in PAYHOOK_RECONCILE.
func watchSubject(provider, account, id string) string {
	return events.ReconcileSubject(provider, account, id)
}

// legacyWatchSubject is where a watch was stored before the account was
// part of the subject: payhook.reconcile.{provider}.{watch id}. Such
// watches run their course there; the closer looks there too.
func legacyWatchSubject(provider, id string) string {
	return events.LegacyReconcileSubject(provider, id)
}

// accountSubjects matches every watch of account (on the current layout).
func accountSubjects(provider, account string) string {
	return events.ReconcileSubject(provider, account, events.Any)
}

func encodeWatch(w *Watch) ([]byte, error) { return json.Marshal(w) }

func decodeWatch(b []byte) (*Watch, error) {
	var w Watch
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("undecodable watch: %v", err)
	}
	if w.ID == "" || w.Provider == "" || w.Account == "" || w.MerchantOrderID == "" || !w.Kind.Valid() || w.DueAt.IsZero() {
		return nil, errors.New("undecodable watch: missing fields")
	}
	return &w, nil
}
