// Package mpurse verifies and decodes MPurse's "UPI Transfer、Bank Transfer回调接口"
// (seed 001_fcd125f1cc87ac6b.txt): the collection callback for dedicated
// virtual accounts in India (INR).
//
// # Wire format
//
// MPurse POSTs BASE64(AES.encrypt(json, key)) to the merchant's URL (seed:
// "最终会使用密文发送 BASE64.encode(AES.encrypt(request,key))"). The seed names
// neither mode nor padding; following docs/providers.md we support
//
//   - the key: the bytes of Account.Key("aes_key"), 16/24/32 bytes → AES-128/192/256;
//   - the mode: Account.Key("aes_mode") "ecb" (also the default when empty) or "cbc"
//     with the 16-byte Account.Key("aes_iv");
//   - PKCS#7 padding, checked strictly (every pad byte, in constant time).
//
// The body is the base64 text itself, standard alphabet, with or without "="
// padding; surrounding whitespace and embedded CR/LF (MIME-style line breaks)
// are ignored. A form-encoded body (`data=...`) is NOT supported: the seed
// names no form field, and guessing one would widen what we accept.
//
// There is no signature besides the encryption and no MAC: a ciphertext
// decrypted under the wrong key, or tampered with, normally fails the padding
// check and otherwise decodes to garbage. Both are reported with the same
// reason, "undecryptable", so that the reply does not become a padding oracle
// for CBC accounts.
//
// # Plaintext
//
// A JSON object (duplicate keys rejected, numbers kept exact) with mpQueryId,
// payerVA, payerAmount ("120.00"), txnStatus (TRANSACTION_SUCCESS |
// TRANSACTION_FAILURE), payChannel, txnCompletionDate (yyyyMMddHHmmss, IST,
// optional), partnerId (our merchant id), bankRRN, receiverVA and errorMsg.
// The seed's idempotency advice, "mpQueryId + bankRRN字段值可做唯一校验", becomes
// the event's IdempotencyKey mpQueryId+":"+bankRRN.
//
// # Reply
//
// The plain text SUCCESS, unencrypted (seed: "商户返回 “SUCCESS” 表示已接收到回调").
// Otherwise MPurse retries at most 5 times: attempts 1–3 every 2 minutes,
// 4–5 every hour, so a callback not stored within about 2 h 6 min
// (3×2 min + 2×60 min) is never sent again and only an operator can recover it.
package mpurse

import (
	"crypto/subtle"
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/internal/strictjson"
)

// MaxBody bounds the callback body. The seed's plaintext is about 300 bytes;
// 64 KiB leaves a wide margin and keeps a hostile body cheap to refuse.
const MaxBody = 64 << 10

// Success is the acknowledgement text MPurse expects.
const Success = "SUCCESS"

// ist is India Standard Time, UTC+05:30 with no daylight saving, built
// without tzdata so the binary needs no zoneinfo.
var ist = time.FixedZone("IST", 5*3600+1800)

// Provider is the mpurse inbound callback handler. The zero value is ready to use.
type Provider struct{}

// New returns the mpurse provider.
func New() *Provider { return &Provider{} }

// Name is the provider's name in URLs, subjects and config.
const Name = "mpurse"

var (
	_ providers.Inbound     = (*Provider)(nil)
	_ providers.Credentials = (*Provider)(nil)
)

// CheckAccount checks an account's mpurse keys: merchant_id (partnerId)
// and aes_key (its bytes are the AES key: 16, 24 or 32 of them) are
// required; aes_mode is ecb (the default) or cbc, and aes_iv, 16 bytes, is
// for cbc only; sign_rule may only be default (mpurse encrypts, it does not sign).
func (p *Provider) CheckAccount(acct providers.Account) error {
	if err := providers.CheckKeys(acct, []string{"merchant_id", "aes_key"}, "aes_mode", "aes_iv", "sign_rule"); err != nil {
		return err
	}
	if n := len(acct.Key("aes_key")); n != 16 && n != 24 && n != 32 {
		return providers.KeyErrorf("aes_key", "must be 16, 24 or 32 bytes (AES-128/192/256), got %d", n)
	}
	switch acct.Key("aes_mode") {
	case "", "ecb":
		if acct.Key("aes_iv") != "" {
			return providers.KeyErrorf("aes_iv", "only used with aes_mode cbc")
		}
	case "cbc":
		if n := len(acct.Key("aes_iv")); n != 16 {
			return providers.KeyErrorf("aes_iv", "must be 16 bytes for cbc, got %d", n)
		}
	default:
		return providers.KeyErrorf("aes_mode", "want ecb or cbc, got %q", acct.Key("aes_mode"))
	}
	return providers.CheckFixedSignRule(acct)
}

// CallbackIdentity: callbacks are encrypted under the AES key and carry
// partnerId, so merchant_id and aes_key together tell accounts apart.
func (p *Provider) CallbackIdentity(acct providers.Account) (id, what string) {
	return acct.Key("merchant_id") + "\x00" + acct.Key("aes_key"), "merchant_id and aes_key"
}

// Name is "mpurse".
func (p *Provider) Name() string { return Name }

// Kinds is payin only: the seed documents no other callback.
func (p *Provider) Kinds() []events.Kind { return []events.Kind{events.KindPayin} }

// Ack is the plain text SUCCESS with HTTP 200, for every kind.
func (p *Provider) Ack(events.Kind) providers.Reply {
	return providers.Reply{Status: 200, ContentType: "text/plain; charset=utf-8", Body: []byte(Success)}
}

// Parse verifies (decrypts) req and decodes it into its event: Verify, then Event.
func (p *Provider) Parse(acct providers.Account, req providers.Request) (events.Event, error) {
	cb, err := p.Verify(acct, req)
	if err != nil {
		return events.Event{}, err
	}
	return providers.Checked(cb.Event())
}

// Callback is a decrypted callback whose partnerId matched the account. Only
// Verify produces one; the zero value decodes to an error.
type Callback struct {
	accountID  string
	currency   string
	receivedAt time.Time
	fields     map[string]any
}

// Verify decrypts req for acct and checks that it is a payin callback for
// acct's merchant. Every error is a *providers.RejectError.
func (p *Provider) Verify(acct providers.Account, req providers.Request) (*Callback, error) {
	if req.Kind != events.KindPayin {
		return nil, providers.Reject(providers.ReasonWrongKind, providers.ErrKind, "mpurse sends no %q callbacks", req.Kind)
	}
	plain, err := Decrypt(acct, req.Body)
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(plain) {
		return nil, providers.Reject(providers.ReasonUndecryptable, providers.ErrDecrypt, "plaintext is not UTF-8 text")
	}
	fields, err := decodeObject(plain)
	if err != nil {
		if isSyntaxError(err) {
			// Garbage after decryption means a wrong key or a tampered body; see the package doc.
			return nil, providers.Reject(providers.ReasonUndecryptable, providers.ErrDecrypt, "plaintext is not a JSON object")
		}
		return nil, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "%v", err)
	}
	partner, ok, err := stringField(fields, "partnerId")
	if err != nil {
		return nil, err
	}
	if !ok || partner == "" {
		return nil, providers.Reject(providers.ReasonMissingField, providers.ErrMalformed, "partnerId missing")
	}
	if subtle.ConstantTimeCompare([]byte(partner), []byte(acct.Key("merchant_id"))) != 1 {
		return nil, providers.Reject(providers.ReasonAccountMismatch, providers.ErrAccount, "partnerId is not this account's merchant id")
	}
	currency := acct.Currency
	if currency == "" {
		currency = "INR"
	}
	return &Callback{accountID: acct.ID, currency: currency, receivedAt: req.ReceivedAt, fields: fields}, nil
}

// Event decodes the verified callback into its canonical event. Errors are
// *providers.RejectError: missing_field, bad_amount, bad_status, malformed.
func (c *Callback) Event() (events.Event, error) {
	if c == nil || c.fields == nil {
		return events.Event{}, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "callback was not verified")
	}
	queryID, err := required(c.fields, "mpQueryId")
	if err != nil {
		return events.Event{}, err
	}
	statusText, err := required(c.fields, "txnStatus")
	if err != nil {
		return events.Event{}, err
	}
	var status events.Status
	switch statusText {
	case "TRANSACTION_SUCCESS":
		status = events.StatusSucceeded
	case "TRANSACTION_FAILURE":
		status = events.StatusFailed
	default:
		return events.Event{}, providers.Reject(providers.ReasonBadStatus, providers.ErrMalformed, "txnStatus is neither TRANSACTION_SUCCESS nor TRANSACTION_FAILURE")
	}
	rrn, _, err := stringField(c.fields, "bankRRN")
	if err != nil {
		return events.Event{}, err
	}
	// A refused payment (TRANSACTION_FAILURE) may carry no bank reference; a
	// success without one cannot be told apart from another success.
	if rrn == "" && status == events.StatusSucceeded {
		return events.Event{}, providers.Reject(providers.ReasonMissingField, providers.ErrMalformed, "bankRRN missing")
	}
	amountText, err := required(c.fields, "payerAmount")
	if err != nil {
		return events.Event{}, err
	}
	amount, err := events.ParseMoney(amountText, c.currency)
	if err != nil || amountText[0] == '-' {
		return events.Event{}, providers.Reject(providers.ReasonBadAmount, providers.ErrMalformed, "payerAmount is not a non-negative decimal")
	}
	occurred := c.receivedAt
	when, ok, err := stringField(c.fields, "txnCompletionDate")
	if err != nil {
		return events.Event{}, err
	}
	if ok && when != "" {
		// An unreadable time is no reason to refuse a verified payment (the
		// provider would retry in vain): occurred_at falls back to when we
		// received it, and the provider's text stays in provider_fields.
		if t, err := time.ParseInLocation("20060102150405", when, ist); err == nil && t.UTC().Year() >= 1 && t.UTC().Year() <= 9999 {
			occurred = t.UTC()
		}
	}
	return events.Event{
		Provider:        Name,
		Account:         c.accountID,
		Kind:            events.KindPayin,
		Status:          status,
		MerchantOrderID: queryID,
		ProviderOrderID: queryID,
		Reference:       rrn,
		Amount:          amount,
		OccurredAt:      occurred,
		ReceivedAt:      c.receivedAt,
		Origin:          events.OriginCallback,
		ProviderFields:  providerFields(c.fields),
		IdempotencyKey:  queryID + ":" + rrn,
	}, nil
}

// required returns a non-empty string field or a missing_field rejection.
func required(fields map[string]any, key string) (string, error) {
	v, ok, err := stringField(fields, key)
	if err != nil {
		return "", err
	}
	if !ok || v == "" {
		return "", providers.Reject(providers.ReasonMissingField, providers.ErrMalformed, "%s missing", key)
	}
	return v, nil
}

// stringField reads a field documented as string. A JSON number is taken as
// its exact text (a provider may print ids or amounts unquoted); null counts
// as absent; objects, arrays and booleans are malformed.
func stringField(fields map[string]any, key string) (string, bool, error) {
	switch v := fields[key].(type) {
	case nil:
		return "", false, nil
	case string:
		return v, true, nil
	case json.Number:
		return string(v), true, nil
	default:
		return "", false, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "%s is not a string", key)
	}
}

// providerFields is the decrypted object for the event, numbers rendered as
// their exact digits. MPurse sends no secret fields, so nothing is removed.
func providerFields(fields map[string]any) map[string]any {
	return strictjson.NumbersAsText(fields).(map[string]any)
}

// clip bounds a provider-supplied value quoted in an error.
func clip(s string) string { return providers.Clip(s, 32) }

// DemoAccount is the test account devstack and the end-to-end suites
// configure: the seed's example partner id and a 16-byte test key (AES-128-ECB).
func (p *Provider) DemoAccount() providers.Account {
	return providers.Account{ID: "mpurse-in", Provider: Name, Currency: "INR", Keys: providers.Keys{"merchant_id": "Mct_test_10001_PartnerId", "aes_key": "mpurseKey16bytes", "aes_mode": "ecb"}}
}
