// Package cashypro verifies and decodes CashyPro's pay-in notification
// ("代收订单结果通知") and queries pay-in orders ("查询代收订单", POST
// /api/payInQuery), per seed 002_07296e84c917c626.txt. CashyPro serves
// Indonesia; amounts are IDR.
//
// # Notification
//
// A JSON POST to the merchant's notifyUrl with headers MerchantId and Sign.
// Fields: merchantId, mchOrderNo, orderNo, channelOrderNo, payType, payCode,
// payUrl, amount, fee, orderStatus, completionTime, nonceStr. Amounts arrive
// as JSON numbers (amount 20000.00, fee 2500.0000); they are kept exactly as
// written, never through float64. orderStatus PAYING → pending, SUCCESS →
// succeeded, FAIL → failed.
//
// Checks, in order: the kind is payin; the body is UTF-8 and at most MaxBody
// bytes; the MerchantId header (looked up case-insensitively, exactly one
// value) equals the account's merchant id; the body is one JSON object
// without duplicate keys; the Sign header matches (see Sign; compared in
// constant time and case-insensitively, because only the digest, not its
// spelling, carries the proof); the body's merchantId, string or number,
// equals the account's merchant id too.
//
// # Assumptions (gaps in the seed)
//
//   - Signing rule: not given by the seed (both examples carry the same
//     placeholder). The default is the common assumption (docs/providers.md) (sorted
//     non-empty fields, &key=, MD5, upper-case hex);
//     providers.Account.Key("sign_rule") selects another per account: the same
//     string with empty values included, or MD5 of the raw body followed
//     by the secret, each with upper- or lower-case hex (see Rules).
//   - completionTime ("2024-12-02 12:07:06") carries no zone; we read it as
//     WIB (UTC+7, Jakarta), the zone of an Indonesian provider. When it is
//     null or empty the event's OccurredAt is the time we received it.
//   - Reply: the seed counts HTTP 200, 301 or 302 as received and names no
//     body; we answer 200 text/plain "success".
//
// Retries when not acknowledged: after 1, 2, 4, 8, 16, 32, 64, 128, 256 and
// 512 minutes (seed), 10 retries over 1023 min ≈ 17 h.
package cashypro

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/internal/md5sign"
	"github.com/payhook/payhook/pkg/providers/internal/strictjson"
)

// MaxBody bounds a notification body; the seed's is about 330 bytes.
const MaxBody = 64 << 10

// Header names, as the seed writes them. Lookups are case-insensitive.
const (
	HeaderMerchantID = "MerchantId"
	HeaderSign       = "Sign"
)

// wib is Western Indonesia Time, UTC+7 with no daylight saving, built
// without tzdata.
var wib = time.FixedZone("WIB", 7*3600)

// completionLayout is the seed's completionTime format.
const completionLayout = "2006-01-02 15:04:05"

// Name is the provider's name in URLs, subjects and config.
const Name = "cashypro"

// Provider is cashypro's registration: inbound notifications
// (providers.Inbound), the pay-in query (providers.Querier) and its
// accounts' keys (providers.Credentials).
type Provider struct {
	client *Client
}

// New returns the cashypro provider, querying with a default Client.
func New() *Provider { return &Provider{client: NewClient(nil)} }

var (
	_ providers.Inbound     = (*Provider)(nil)
	_ providers.Querier     = (*Provider)(nil)
	_ providers.Credentials = (*Provider)(nil)
)

// Name is "cashypro".
func (p *Provider) Name() string { return Name }

// CallbackIdentity: callbacks are signed with the secret and name the
// merchant, so merchant_id and secret together tell accounts apart.
func (p *Provider) CallbackIdentity(acct providers.Account) (id, what string) {
	return acct.Key("merchant_id") + "\x00" + acct.Key("secret"), "merchant_id and secret"
}

// Query is Client.Query on the provider's client.
func (p *Provider) Query(ctx context.Context, acct providers.Account, order providers.Order, retrigger bool) (providers.QueryResult, error) {
	return p.client.Query(ctx, acct, order, retrigger)
}

// CheckAccount checks an account's cashypro keys: merchant_id and secret
// are required; sign_rule is optional (one of Rules).
func (p *Provider) CheckAccount(acct providers.Account) error {
	if err := providers.CheckKeys(acct, []string{"merchant_id", "secret"}, "sign_rule"); err != nil {
		return err
	}
	if !ValidRule(acct.Key("sign_rule")) {
		return providers.KeyErrorf("sign_rule", "want one of %s for cashypro, got %q", strings.Join(Rules, ", "), acct.Key("sign_rule"))
	}
	return nil
}

// Kinds is payin only: the seed documents only the pay-in notification.
func (p *Provider) Kinds() []events.Kind { return []events.Kind{events.KindPayin} }

// Ack is HTTP 200 with the plain text "success"; the seed counts any 200 as received.
func (p *Provider) Ack(events.Kind) providers.Reply {
	return providers.Reply{Status: 200, ContentType: "text/plain; charset=utf-8", Body: []byte("success")}
}

// Parse verifies the notification's signature and decodes it: Verify, then Event.
func (p *Provider) Parse(acct providers.Account, req providers.Request) (events.Event, error) {
	cb, err := p.Verify(acct, req)
	if err != nil {
		return events.Event{}, err
	}
	return providers.Checked(cb.Event())
}

// Callback is a notification whose signature and merchant verified. Only
// Verify produces one; the zero value decodes to an error.
type Callback struct {
	accountID  string
	currency   string
	receivedAt time.Time
	body       *object
}

// Verify checks req against acct (see the package doc for the order of
// checks). Every error is a *providers.RejectError.
func (p *Provider) Verify(acct providers.Account, req providers.Request) (*Callback, error) {
	if req.Kind != events.KindPayin {
		return nil, providers.Reject(providers.ReasonWrongKind, providers.ErrKind, "cashypro sends no %q notifications", req.Kind)
	}
	rule, err := ruleOf(acct.Key("sign_rule"))
	if err != nil {
		return nil, providers.Reject(providers.ReasonBadConfig, providers.ErrSignature, "%v", err)
	}
	if acct.Key("secret") == "" {
		return nil, providers.Reject(providers.ReasonNoKey, providers.ErrSignature, "account %q has no signing key", acct.ID)
	}
	switch {
	case len(req.Body) == 0:
		return nil, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "empty body")
	case len(req.Body) > MaxBody:
		return nil, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "body larger than %d bytes", MaxBody)
	case !utf8.Valid(req.Body):
		return nil, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "body is not UTF-8")
	}
	mid, err := header(req.Header, HeaderMerchantID)
	if err != nil {
		return nil, err
	}
	if mid == "" {
		return nil, providers.Reject(providers.ReasonMissingField, providers.ErrMalformed, "MerchantId header missing")
	}
	if !md5sign.Equal(mid, acct.Key("merchant_id")) {
		return nil, providers.Reject(providers.ReasonAccountMismatch, providers.ErrAccount, "MerchantId header is not this account's merchant id")
	}
	sign, err := header(req.Header, HeaderSign)
	if err != nil {
		return nil, err
	}
	got, err := hex.DecodeString(sign)
	if sign == "" || err != nil || len(got) != 16 {
		return nil, providers.Reject(providers.ReasonBadSignature, providers.ErrSignature, "Sign header missing or not 32 hex characters")
	}
	body, err := parseObject(req.Body)
	if err != nil {
		return nil, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "%v", err)
	}
	s, err := signingString(body, acct.Key("secret"), rule.form)
	if err != nil {
		return nil, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "%v", err)
	}
	want, _ := hex.DecodeString(digest(s, rule.upper))
	// Comparing the decoded bytes accepts either hex case; see the package doc.
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return nil, providers.Reject(providers.ReasonBadSignature, providers.ErrSignature, "Sign does not match the body")
	}
	bodyMID, ok, err := body.text("merchantId")
	if err != nil {
		return nil, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "%v", err)
	}
	if !ok || bodyMID == "" {
		return nil, providers.Reject(providers.ReasonMissingField, providers.ErrMalformed, "merchantId missing")
	}
	if !md5sign.Equal(bodyMID, acct.Key("merchant_id")) {
		return nil, providers.Reject(providers.ReasonAccountMismatch, providers.ErrAccount, "body merchantId is not this account's merchant id")
	}
	return &Callback{accountID: acct.ID, currency: currencyOf(acct), receivedAt: req.ReceivedAt, body: body}, nil
}

// Event decodes the verified notification into its canonical event. Errors
// are *providers.RejectError: missing_field, bad_amount, bad_status, malformed.
func (c *Callback) Event() (events.Event, error) {
	if c == nil || c.body == nil {
		return events.Event{}, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "notification was not verified")
	}
	return decodeEvent(c.body, c.accountID, c.currency, c.receivedAt, events.OriginCallback)
}

// decodeEvent maps a notification, or the "data" of a query reply (same
// fields), to an event.
func decodeEvent(o *object, accountID, currency string, receivedAt time.Time, origin events.Origin) (events.Event, error) {
	get := func(key string, need bool) (string, error) {
		v, ok, err := o.text(key)
		if err != nil {
			return "", providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "%v", err)
		}
		if need && (!ok || v == "") {
			return "", providers.Reject(providers.ReasonMissingField, providers.ErrMalformed, "%s missing", key)
		}
		return v, nil
	}
	mchOrderNo, err := get("mchOrderNo", true)
	if err != nil {
		return events.Event{}, err
	}
	orderNo, err := get("orderNo", false)
	if err != nil {
		return events.Event{}, err
	}
	channelOrderNo, err := get("channelOrderNo", false)
	if err != nil {
		return events.Event{}, err
	}
	statusText, err := get("orderStatus", true)
	if err != nil {
		return events.Event{}, err
	}
	status, ok := statusOf(statusText)
	if !ok {
		return events.Event{}, providers.Reject(providers.ReasonBadStatus, providers.ErrMalformed, "orderStatus is not PAYING, SUCCESS or FAIL")
	}
	amountText, err := get("amount", true)
	if err != nil {
		return events.Event{}, err
	}
	// ParseMoney refuses exponents (2e4), signs other than "-", and more
	// than 40 characters; a payment is never negative.
	amount, err := events.ParseMoney(amountText, currency)
	if err != nil || strings.HasPrefix(amountText, "-") {
		return events.Event{}, providers.Reject(providers.ReasonBadAmount, providers.ErrMalformed, "amount is not a non-negative decimal")
	}
	occurred := receivedAt
	var signedAt time.Time
	when, err := get("completionTime", false)
	if err != nil {
		return events.Event{}, err
	}
	if when != "" {
		// An unreadable time is no reason to refuse a verified payment (the
		// provider would retry in vain): occurred_at falls back to when we
		// received it, and the provider's text stays in provider_fields.
		if t, err := time.ParseInLocation(completionLayout, when, wib); err == nil && t.UTC().Year() >= 1 && t.UTC().Year() <= 9999 {
			occurred = t.UTC()
			if origin == events.OriginCallback {
				// Covered by Sign under every rule (a top-level field, or the
				// whole body): the callback's signed timestamp.
				signedAt = occurred
			}
		}
	}
	return events.Event{
		Provider:        Name,
		Account:         accountID,
		Kind:            events.KindPayin,
		Status:          status,
		MerchantOrderID: mchOrderNo,
		ProviderOrderID: orderNo,
		Reference:       channelOrderNo,
		Amount:          amount,
		OccurredAt:      occurred,
		SignedAt:        signedAt,
		ReceivedAt:      receivedAt,
		Origin:          origin,
		ProviderFields:  providerFields(o),
	}, nil
}

// statusOf maps the seed's 代收订单状态: PAYING, SUCCESS, FAIL.
func statusOf(s string) (events.Status, bool) {
	switch s {
	case "PAYING":
		return events.StatusPending, true
	case "SUCCESS":
		return events.StatusSucceeded, true
	case "FAIL":
		return events.StatusFailed, true
	}
	return "", false
}

// providerFields renders the object for the event: strings as strings,
// numbers as strings of their exact digits ("amount": "20000.00", "fee":
// "2500.0000"), null as nil, booleans as booleans. The signature travels in
// a header, so nothing needs removing.
func providerFields(o *object) map[string]any {
	return strictjson.NumbersAsText(o.fields).(map[string]any)
}

// header returns the single value of name in h, matching the name
// case-insensitively: net/http canonicalizes names ("Merchantid"), but a
// Request built from a map may keep them as sent ("merchantid", "SIGN").
// More than one value is malformed: we would not know which was signed.
func header(h http.Header, name string) (string, error) {
	var vals []string
	for k, vs := range h {
		if strings.EqualFold(k, name) {
			vals = append(vals, vs...)
		}
	}
	switch len(vals) {
	case 0:
		return "", nil
	case 1:
		return strings.TrimSpace(vals[0]), nil
	default:
		return "", providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "header %s repeated", name)
	}
}

// currencyOf is the account's currency, IDR when unset (CashyPro is Indonesian).
func currencyOf(acct providers.Account) string {
	if acct.Currency == "" {
		return "IDR"
	}
	return acct.Currency
}

// DemoAccount is the test account devstack and the end-to-end suites
// configure: the seed's example merchant id and a test secret.
func (p *Provider) DemoAccount() providers.Account {
	return providers.Account{ID: "cashy-id", Provider: Name, Currency: "IDR", Keys: providers.Keys{"merchant_id": "1002001", "secret": "cashy-secret"}}
}
