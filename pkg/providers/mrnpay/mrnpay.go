// Package mrnpay speaks mrnpay's merchant API (its merchant integration document,
// "平台对接文档说明"): it verifies and decodes the form-encoded pay-in
// ("充值回调") and payout ("下发回调") callbacks, renders the "success" reply,
// and queries orders ("充值查单接口", "下发查单接口"), optionally asking the
// platform to send the callback again.
//
// Signatures are MD5, lower-case hex, over a fixed field order (seed
// "回调签名说明"), with the merchant secret appended as key=. The seed writes
// some names with look-alike Cyrillic letters (аррКеу); the real name is appKey.
package mrnpay

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/internal/md5sign"
)

// MaxBody bounds the callback body Verify reads; a real callback is ~150 bytes.
const MaxBody = 64 << 10

// maxMrnLen is the seed's limit on mrn ("最长可接纳64个字符"), in bytes here.
const maxMrnLen = 64

// Provider verifies and decodes mrnpay callbacks. Call New.
type Provider struct {
	client *Client
}

// New returns the mrnpay inbound provider.
func New() *Provider { return &Provider{client: NewClient(nil)} }

// Name is the provider's name in URLs, subjects and config.
const Name = "mrnpay"

var (
	_ providers.Inbound     = (*Provider)(nil)
	_ providers.Retriggerer = (*Provider)(nil)
	_ providers.WatchNeeds  = (*Provider)(nil)
	_ providers.Credentials = (*Provider)(nil)
)

// Query is Client.Query on the provider's client.
func (p *Provider) Query(ctx context.Context, acct providers.Account, order providers.Order, retrigger bool) (providers.QueryResult, error) {
	return p.client.Query(ctx, acct, order, retrigger)
}

// Resends is true for successes: asked with callback=true, mrnpay sends
// the callback again for a successful order only (seed "充值查单接口说明").
func (p *Provider) Resends(kind events.Kind, status events.Status) bool {
	return status == events.StatusSucceeded
}

// WatchNeeds: the query answer is {Mrn, status} only (seed
// "充值查单接口说明", "下发查单接口说明"), without an amount, so a terminal
// answer becomes an event only with the amount the watch was announced
// with. Events are keyed by the merchant order id, so the synthesized
// event has the callback's id.
func (p *Provider) WatchNeeds() providers.Watch { return providers.Watch{Amount: true} }

// CallbackIdentity: callbacks are signed with the secret and name the
// merchant, so merchant_id and secret together tell accounts apart.
func (p *Provider) CallbackIdentity(acct providers.Account) (id, what string) {
	return acct.Key("merchant_id") + "\x00" + acct.Key("secret"), "merchant_id and secret"
}

// CheckAccount checks an account's mrnpay keys: merchant_id (appKey) and
// secret are required; sign_rule may only be default.
func (p *Provider) CheckAccount(acct providers.Account) error {
	if err := providers.CheckKeys(acct, []string{"merchant_id", "secret"}, "sign_rule"); err != nil {
		return err
	}
	return providers.CheckFixedSignRule(acct)
}

// Name is "mrnpay".
func (p *Provider) Name() string { return Name }

// Kinds are payin (充值回调) and payout (下发回调); mrnpay has no appeals.
func (p *Provider) Kinds() []events.Kind {
	return []events.Kind{events.KindPayin, events.KindPayout}
}

// Ack is HTTP 200 with the text "success" (seed "充值回调说明", "下发回调说明").
func (p *Provider) Ack(events.Kind) providers.Reply {
	return providers.Reply{Status: 200, ContentType: "text/plain; charset=utf-8", Body: []byte("success")}
}

// Parse verifies req and decodes it into its event.
func (p *Provider) Parse(acct providers.Account, req providers.Request) (events.Event, error) {
	cb, err := p.Verify(acct, req)
	if err != nil {
		return events.Event{}, err
	}
	return providers.Checked(cb.Event())
}

// Callback is an mrnpay callback whose signature has been checked. Only
// Verify makes one.
type Callback struct {
	acct       providers.Account
	kind       events.Kind
	fields     map[string]string // the signed fields, by name
	receivedAt time.Time
}

// Kind is the callback's kind (payin or payout).
func (c *Callback) Kind() events.Kind { return c.kind }

// signedNames lists each kind's signed fields in signing order.
var signedNames = map[events.Kind][]string{
	events.KindPayin:  {"amount", "appKey", "channel", "mrn", "originAmount"},
	events.KindPayout: {"amount", "appKey", "mrn"},
}

// Verify checks that req is a form-encoded mrnpay callback of a kind mrnpay
// sends, that each signed field and sign appears exactly once and is not
// empty, that sign is the lower-case MD5 the seed prescribes under
// acct.Key("secret") (an upper-case sign is rejected: mrnpay never sends one), and
// that appKey is the account's merchant id. Fields outside the signature are
// ignored: nobody vouches for them. Errors are *providers.RejectError.
func (p *Provider) Verify(acct providers.Account, req providers.Request) (*Callback, error) {
	names, ok := signedNames[req.Kind]
	if !ok {
		return nil, providers.Reject(providers.ReasonWrongKind, providers.ErrKind, "mrnpay sends no %q callbacks", req.Kind)
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
	form, err := url.ParseQuery(string(req.Body))
	if err != nil {
		// The error would quote the bad escape, i.e. body bytes: keep it out.
		return nil, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "not a form-encoded body")
	}
	fields := make(map[string]string, len(names))
	for _, n := range slices.Concat(names, []string{"sign"}) {
		vs := form[n]
		switch {
		case len(vs) > 1:
			return nil, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "%s given %d times", n, len(vs))
		case len(vs) == 0 || vs[0] == "":
			if n == "sign" {
				return nil, providers.Reject(providers.ReasonMissingField, providers.ErrSignature, "no sign")
			}
			return nil, providers.Reject(providers.ReasonMissingField, providers.ErrMalformed, "no %s", n)
		}
		fields[n] = vs[0]
	}
	var want string
	if req.Kind == events.KindPayin {
		want = SignPayin(fields["amount"], fields["appKey"], fields["channel"], fields["mrn"], fields["originAmount"], acct.Key("secret"))
	} else {
		want = SignPayout(fields["amount"], fields["appKey"], fields["mrn"], acct.Key("secret"))
	}
	if !md5sign.Equal(fields["sign"], want) {
		return nil, providers.Reject(providers.ReasonBadSignature, providers.ErrSignature, "sign does not match")
	}
	delete(fields, "sign")
	if !md5sign.Equal(fields["appKey"], acct.Key("merchant_id")) {
		return nil, providers.Reject(providers.ReasonAccountMismatch, providers.ErrAccount, "appKey is not account %q's", acct.ID)
	}
	return &Callback{acct: acct, kind: req.Kind, fields: fields, receivedAt: req.ReceivedAt}, nil
}

// Event decodes the verified callback. mrnpay calls back only on success
// (seed: "充值成功后的回调接口", "出款成功后的回调接口"), so the status is
// succeeded. Pay-in: merchant order mrn, amount what was paid ("精确到分"),
// requested amount originAmount, amount_mismatch when they differ (compared
// exactly), channel in provider_fields. Payout: amount in whole yuan as
// sent. The callback has no time of its own: occurred_at is received_at.
func (c *Callback) Event() (events.Event, error) {
	if c == nil || c.fields == nil {
		return events.Event{}, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "callback was not verified")
	}
	f := c.fields
	if len(f["mrn"]) > maxMrnLen {
		return events.Event{}, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "mrn longer than %d bytes", maxMrnLen)
	}
	amount, err := parseAmount(f["amount"], "amount", c.acct.Currency)
	if err != nil {
		return events.Event{}, err
	}
	pf := make(map[string]any, len(f))
	for k, v := range f {
		pf[k] = v
	}
	ev := events.Event{
		Provider:        Name,
		Account:         c.acct.ID,
		Kind:            c.kind,
		Status:          events.StatusSucceeded,
		MerchantOrderID: f["mrn"],
		Amount:          amount,
		OccurredAt:      c.receivedAt,
		ReceivedAt:      c.receivedAt,
		Origin:          events.OriginCallback,
		ProviderFields:  pf,
	}
	if c.kind == events.KindPayin {
		if !digits(f["channel"]) || len(f["channel"]) > 4 {
			return events.Event{}, providers.Reject(providers.ReasonMalformed, providers.ErrMalformed, "channel is not a channel id")
		}
		origin, err := parseAmount(f["originAmount"], "originAmount", c.acct.Currency)
		if err != nil {
			return events.Event{}, err
		}
		ev.RequestedAmount = &origin
		ev.AmountMismatch = amount.Cmp(origin) != 0
	}
	return ev, nil
}

// parseAmount accepts a non-negative exact decimal ("99.50", "500").
func parseAmount(s, name, currency string) (events.Money, error) {
	m, err := events.ParseMoney(s, currency)
	if err != nil || strings.HasPrefix(m.Value, "-") {
		return events.Money{}, providers.Reject(providers.ReasonBadAmount, providers.ErrMalformed, "%w: %s is not a non-negative decimal", events.ErrAmount, name)
	}
	return m, nil
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// DemoAccount is the test account devstack and the end-to-end suites
// configure: a test appKey and secret.
func (p *Provider) DemoAccount() providers.Account {
	return providers.Account{ID: "mrn-cn", Provider: Name, Currency: "CNY", Keys: providers.Keys{"merchant_id": "app-1", "secret": "s3cr3t-mrn"}}
}
