// Package jpglo speaks JP GLO's merchant API (its merchant integration document,
// "JP_GLO商户对接文档(1.02)"): it verifies and decodes the signed JSON payment
// and appeal callbacks ("支付回调", "申诉回调"), renders the reply jpglo
// expects, and calls the order query, appeal ("代收申訴接口") and replenish
// ("代收补单接口") endpoints.
//
// Signing (seed "签名步骤"): every non-null field sorted by name, name=value
// joined with "&", "&key=SECRET" appended, MD5, upper-case hex. Values are
// rendered the way jpglo's Python server prints them (see PyStr).
package jpglo

import (
	"context"
	"encoding/json"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/internal/md5sign"
)

// MaxBody bounds the callback body Verify reads. The ingress has its own,
// smaller limit; this one keeps the package safe on its own.
const MaxBody = 1 << 20

// maxIDLen bounds order and appeal numbers; the seed's are 10–16 digits.
const maxIDLen = 128

// Provider verifies and decodes jpglo callbacks. The zero value is not
// used; call New.
type Provider struct {
	client *Client
}

// New returns the jpglo inbound provider.
func New() *Provider { return &Provider{client: NewClient(nil)} }

// Name is the provider's name in URLs, subjects and config.
const Name = "jpglo"

var (
	_ providers.Inbound     = (*Provider)(nil)
	_ providers.Querier     = (*Provider)(nil)
	_ providers.Credentials = (*Provider)(nil)
)

// Query is Client.Query on the provider's client.
func (p *Provider) Query(ctx context.Context, acct providers.Account, order providers.Order, retrigger bool) (providers.QueryResult, error) {
	return p.client.Query(ctx, acct, order, retrigger)
}

// CheckAccount checks an account's jpglo keys: merchant_id (mch_id) and
// secret are required; sign_rule may only be default.
func (p *Provider) CheckAccount(acct providers.Account) error {
	if err := providers.CheckKeys(acct, []string{"merchant_id", "secret"}, "sign_rule"); err != nil {
		return err
	}
	return providers.CheckFixedSignRule(acct)
}

// CallbackIdentity: jpglo callbacks carry no merchant id (mch_id only on
// some requests), so the secret alone tells accounts apart.
func (p *Provider) CallbackIdentity(acct providers.Account) (id, what string) {
	return acct.Key("secret"), "secret (jpglo callbacks carry no merchant id)"
}

// Name is "jpglo".
func (p *Provider) Name() string { return Name }

// Kinds are payin (支付回调) and appeal (申诉回调); jpglo has no payouts.
func (p *Provider) Kinds() []events.Kind {
	return []events.Kind{events.KindPayin, events.KindAppeal}
}

// Ack is jpglo's success reply, the same for both callbacks (seed "支付回调",
// "申诉回调"): {"status":0,"msg":"处理成功"}.
func (p *Provider) Ack(events.Kind) providers.Reply {
	return providers.Reply{
		Status:      200,
		ContentType: "application/json",
		Body:        []byte(`{"status":0,"msg":"处理成功"}`),
	}
}

// Parse verifies req and decodes it into its event.
func (p *Provider) Parse(acct providers.Account, req providers.Request) (events.Event, error) {
	cb, err := p.Verify(acct, req)
	if err != nil {
		return events.Event{}, err
	}
	return providers.Checked(cb.Event())
}

// Callback is a jpglo callback whose signature has been checked. Only Verify
// makes one, so holding a *Callback means the bytes were authentic.
type Callback struct {
	acct       providers.Account
	kind       events.Kind
	fields     map[string]any // decoded body, sign included
	receivedAt time.Time
}

// Kind is the callback's kind (payin or appeal).
func (c *Callback) Kind() events.Kind { return c.kind }

// Verify checks that req is a jpglo callback of a kind jpglo sends, that its
// body is exactly one flat JSON object without duplicate keys, and that its
// "sign" is the upper-case MD5 of its other non-null fields under
// acct.Key("secret"). The signature must be upper case as the seed prescribes
// ("字符串大写"); a lower-case sign is rejected, since jpglo never sends one.
// Errors are *providers.RejectError.
func (p *Provider) Verify(acct providers.Account, req providers.Request) (*Callback, error) {
	switch req.Kind {
	case events.KindPayin, events.KindAppeal:
	default:
		return nil, providers.Reject(providers.ReasonWrongKind, providers.ErrKind, "jpglo sends no %q callbacks", req.Kind)
	}
	if acct.Key("secret") == "" {
		return nil, providers.Reject(providers.ReasonNoKey, providers.ErrSignature, "account %q has no signing key", acct.ID)
	}
	if len(req.Body) == 0 {
		return nil, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "empty body")
	}
	if len(req.Body) > MaxBody {
		return nil, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "body over %d bytes", MaxBody)
	}
	fields, err := decodeObject(req.Body)
	if err != nil {
		return nil, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "%v", err)
	}
	for k, v := range fields {
		if !validName(k) {
			return nil, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "field name is not an identifier")
		}
		if _, ok := v.(map[string]any); ok {
			// Python would sign a dict in its insertion order, which a Go map
			// loses; jpglo's callbacks are flat (user_ext is a JSON *string*).
			return nil, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "a field is a nested object")
		}
	}
	raw, ok := fields["sign"]
	if !ok || raw == nil {
		return nil, providers.Reject(providers.ReasonMissingField, providers.ErrSignature, "no sign")
	}
	got, ok := raw.(string)
	if !ok {
		return nil, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "sign is not a string")
	}
	want := Sign(fields, acct.Key("secret"))
	if !md5sign.Equal(got, want) {
		return nil, providers.Reject(providers.ReasonBadSignature, providers.ErrSignature, "sign does not match")
	}
	if err := checkEmbedded(fields); err != nil {
		return nil, err
	}
	if v, ok := fields["mch_id"]; ok && v != nil && PyStr(v) != acct.Key("merchant_id") {
		return nil, providers.Reject(providers.ReasonAccountMismatch, providers.ErrAccount, "mch_id is not account %q's merchant", acct.ID)
	}
	return &Callback{acct: acct, kind: req.Kind, fields: fields, receivedAt: req.ReceivedAt}, nil
}

// validName accepts the field names jpglo uses: ASCII letters, digits, "_".
// A name holding "=" or "&" would make the signing string ambiguous.
func validName(k string) bool {
	if k == "" || len(k) > 64 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// signedFields are the fields whose disappearance would change an event.
var signedFields = []string{
	"apply_amount", "real_amount", "status", "timestamp", "mch_order_no", "order_no",
	"mch_inquiry_no", "inquiry_order_no", "inquiry_amount", "mch_id",
}

// checkEmbedded refuses a string value that spells "&name=" for a field that
// matters. The signing string does not delimit values, so a genuine callback
// {"pay_type":"pix","real_amount":9} and a forged {"pay_type":"pix&real_amount=9"}
// sign the same text; the forgery would drop real_amount and credit apply_amount.
func checkEmbedded(fields map[string]any) error {
	for k, v := range fields {
		s, ok := v.(string)
		if !ok || k == "sign" || !strings.Contains(s, "=") {
			continue
		}
		for _, name := range signedFields {
			if strings.Contains(s, "&"+name+"=") {
				return providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "field %q embeds another field", k)
			}
		}
	}
	return nil
}

// Event decodes the verified callback into its canonical event (origin
// callback). Payment callback (支付回调): merchant order mch_order_no,
// provider order order_no, amount real_amount (apply_amount when null),
// requested amount apply_amount. Appeal callback (申诉回调): the appeal
// mch_inquiry_no is the idempotency key, inquiry_order_no the reference,
// inquiry_amount the amount. Amounts are integer 分: 2 fraction digits in
// the account's currency. occurred_at is the callback's unix timestamp.
func (c *Callback) Event() (events.Event, error) {
	if c == nil || c.fields == nil {
		return events.Event{}, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "callback was not verified")
	}
	ev, err := decodeFields(c.acct, c.kind, c.fields)
	if err != nil {
		return events.Event{}, err
	}
	ev.Origin = events.OriginCallback
	ev.ReceivedAt = c.receivedAt
	// "timestamp" is among the signed fields (seed "签名步骤": every non-null field).
	ev.SignedAt = ev.OccurredAt
	return ev, nil
}

// decodeFields maps decoded callback fields (from a verified callback) to an
// event, leaving Origin and ReceivedAt to the caller. OccurredAt comes from
// "timestamp".
func decodeFields(acct providers.Account, kind events.Kind, f map[string]any) (events.Event, error) {
	ev := events.Event{
		Provider:       Name,
		Account:        acct.ID,
		Kind:           kind,
		ProviderFields: providerFields(f),
	}
	var err error
	if kind == events.KindPayin {
		if _, ok := f["mch_inquiry_no"]; ok {
			return events.Event{}, providers.Reject(providers.ReasonWrongKind, providers.ErrKind, "appeal callback posted as payin")
		}
	}
	if ev.MerchantOrderID, err = idField(f, "mch_order_no"); err != nil {
		return events.Event{}, err
	}
	if ev.ProviderOrderID, err = idField(f, "order_no"); err != nil {
		return events.Event{}, err
	}
	if ev.Status, err = statusField(f); err != nil {
		return events.Event{}, err
	}
	ts, err := timestampField(f)
	if err != nil {
		return events.Event{}, err
	}
	ev.OccurredAt = ts
	switch kind {
	case events.KindPayin:
		apply, err := amountField(f, "apply_amount", acct.Currency)
		if err != nil {
			return events.Event{}, err
		}
		ev.Amount = apply
		ev.RequestedAmount = &apply
		if v, ok := f["real_amount"]; ok && v != nil {
			real, err := amountField(f, "real_amount", acct.Currency)
			if err != nil {
				return events.Event{}, err
			}
			ev.Amount = real
			ev.AmountMismatch = real.Cmp(apply) != 0
		}
	case events.KindAppeal:
		if ev.IdempotencyKey, err = idField(f, "mch_inquiry_no"); err != nil {
			return events.Event{}, err
		}
		if ev.Reference, err = idField(f, "inquiry_order_no"); err != nil {
			return events.Event{}, err
		}
		if ev.Amount, err = amountField(f, "inquiry_amount", acct.Currency); err != nil {
			return events.Event{}, err
		}
	default:
		return events.Event{}, providers.Reject(providers.ReasonWrongKind, providers.ErrKind, "jpglo sends no %q callbacks", kind)
	}
	return ev, nil
}

func providerFields(f map[string]any) map[string]any {
	out := maps.Clone(f)
	delete(out, "sign")
	return out
}

// idField returns a required non-empty string field of bounded length.
func idField(f map[string]any, name string) (string, error) {
	v, ok := f[name]
	if !ok || v == nil {
		return "", providers.Reject(providers.ReasonMissingField, providers.ErrMalformed, "no %s", name)
	}
	s, ok := v.(string)
	if !ok {
		return "", providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "%s is not a string", name)
	}
	if s == "" {
		return "", providers.Reject(providers.ReasonMissingField, providers.ErrMalformed, "empty %s", name)
	}
	if len(s) > maxIDLen {
		return "", providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "%s longer than %d bytes", name, maxIDLen)
	}
	return s, nil
}

// statusField maps the callbacks' status: success → succeeded, fail → failed.
// Callbacks are only sent for final states, so anything else is refused.
func statusField(f map[string]any) (events.Status, error) {
	v, ok := f["status"]
	if !ok || v == nil {
		return "", providers.Reject(providers.ReasonMissingField, providers.ErrMalformed, "no status")
	}
	switch v {
	case "success":
		return events.StatusSucceeded, nil
	case "fail":
		return events.StatusFailed, nil
	}
	return "", providers.Reject(providers.ReasonBadStatus, providers.ErrMalformed, "status is not success or fail")
}

// maxUnix is 9999-12-31T23:59:59Z; later timestamps are nonsense.
const maxUnix = 253402300799

func timestampField(f map[string]any) (time.Time, error) {
	v, ok := f["timestamp"]
	if !ok || v == nil {
		return time.Time{}, providers.Reject(providers.ReasonMissingField, providers.ErrMalformed, "no timestamp")
	}
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "timestamp is not a number")
	}
	sec, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil || sec <= 0 || sec > maxUnix {
		return time.Time{}, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "timestamp is not a unix time in seconds")
	}
	return time.Unix(sec, 0).UTC(), nil
}

// amountField reads an integer count of 分 (JSON integer, non-negative).
func amountField(f map[string]any, name, currency string) (events.Money, error) {
	v, ok := f[name]
	if !ok || v == nil {
		return events.Money{}, providers.Reject(providers.ReasonMissingField, providers.ErrMalformed, "no %s", name)
	}
	n, ok := v.(json.Number)
	if !ok || !isIntLiteral(string(n)) || strings.HasPrefix(string(n), "-") {
		return events.Money{}, providers.Reject(providers.ReasonBadAmount, providers.ErrMalformed, "%w: %s is not a non-negative integer of minor units", events.ErrAmount, name)
	}
	m, err := events.MoneyFromMinor(string(n), 2, currency)
	if err != nil {
		return events.Money{}, providers.Reject(providers.ReasonBadAmount, providers.ErrMalformed, "%w: %s out of range", events.ErrAmount, name)
	}
	return m, nil
}

// DemoAccount is the test account devstack and the end-to-end suites
// configure: the seed's published example merchant and key.
func (p *Provider) DemoAccount() providers.Account {
	return providers.Account{ID: "glo-in", Provider: Name, Currency: "INR", Keys: providers.Keys{"merchant_id": "1", "secret": "9ce23be4-a31b-498f-b951-ad7e771c3d73"}}
}
