package mpurse

import (
	"bytes"
	"crypto/aes"
	"encoding/base64"
	"fmt"
	"net/http"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/internal/simwire"
)

// MPurse's side of the wire, for the provider simulator, devstack and the
// test suites (providers.Simulated). MPurse has no merchant API (seed 001
// documents only its callback), so it serves nothing.

var (
	_ providers.Simulated = (*Provider)(nil)
	_ providers.SimKeyed  = (*Provider)(nil)
	_ providers.SimOpaque = (*Provider)(nil)
)

// SimRetrySchedule: seed 001 "否则MPurse会再次执行回调,最多5次后结束 ...
// 每次回调的时间间隔为: 1 - 3 : 每隔2分钟 4 - 5 : 每隔1小时". Read as five
// re-sends after the first: 3 × 2 min, then 2 × 1 h; the last one
// 3×2 + 2×60 = 126 min (2 h 6 min) after the first.
var SimRetrySchedule = []time.Duration{2 * time.Minute, 2 * time.Minute, 2 * time.Minute, time.Hour, time.Hour}

// SimAccount is DemoAccount's keys under id.
func (p *Provider) SimAccount(id string) providers.Account {
	a := p.DemoAccount()
	a.ID = id
	return a
}

// SimKinds: MPurse calls back about pay-ins only.
func (p *Provider) SimKinds() []events.Kind { return p.Kinds() }

// SimExponent: payerAmount is rupees with two decimals.
func (p *Provider) SimExponent(events.Kind, string) int { return 2 }

// SimIDs: the merchant order id is the mpQueryId ("3131414131", ten
// digits), which is also MPurse's own id; the reference is a 12-digit
// bankRRN.
func (p *Provider) SimIDs(o *providers.SimOrder, digits func(n int) string) {
	if o.MerchantOrderID == "" {
		o.MerchantOrderID = digits(10)
	}
	o.ProviderOrderID = o.MerchantOrderID
	if o.Reference == "" {
		o.Reference = digits(12)
	}
}

// SimCallback renders seed 001: BASE64(AES(json)) with Encrypt. A corrupt
// callback loses its last base64 group, so it is not whole AES blocks and
// can never decrypt.
func (p *Provider) SimCallback(acct providers.Account, o providers.SimOrder, at time.Time, corrupt bool) (http.Header, []byte, error) {
	id := o.MerchantOrderID
	pl := callback{
		MpQueryID:         id,
		PayerVA:           "payer" + id[max(0, len(id)-4):] + "@paytm",
		BankRRN:           o.Reference,
		PayerAmount:       simwire.Fixed(o.Paid, 2),
		PayChannel:        "UPI",
		TxnStatus:         "TRANSACTION_SUCCESS",
		TxnCompletionDate: at.In(ist).Format("20060102150405"),
		PartnerID:         acct.Key("merchant_id"),
		ReceiverVA:        "mpu.cpdf.user" + id[:min(7, len(id))] + "@icici",
		ErrorMsg:          "transaction success",
	}
	if o.Status == events.StatusFailed {
		pl.TxnStatus = "TRANSACTION_FAILURE"
		pl.ErrorMsg = "user declined"
	}
	h, body, err := encryptBody(acct, pl.obj().Bytes())
	if err != nil {
		return nil, nil, err
	}
	if corrupt {
		body = body[:len(body)-4] // one base64 group less: 1–3 bytes short of whole AES blocks
	}
	return h, body, nil
}

// SimSign cannot sign a mutated body beside it: MPurse encrypts the whole
// body (Encrypt), so there is no signature to send with it.
func (p *Provider) SimSign(providers.Account, events.Kind, []byte, time.Time) (http.Header, error) {
	return nil, fmt.Errorf("%w: mpurse encrypts the whole body and sends no signature", providers.ErrUnsupported)
}

// SimAcked: a 2xx whose body is "SUCCESS" (seed 001).
func (p *Provider) SimAcked(status int, body []byte) bool {
	return status >= 200 && status < 300 && string(bytes.TrimSpace(body)) == Success
}

// SimRetries is SimRetrySchedule.
func (p *Provider) SimRetries() []time.Duration { return SimRetrySchedule }

// SimServe serves nothing: MPurse has no merchant API.
func (p *Provider) SimServe(http.ResponseWriter, *http.Request, providers.Account, string, providers.SimLookup) bool {
	return false
}

// SimIdempotencyKey: an event is keyed by mpQueryId and bankRRN, as Parse
// keys it.
func (p *Provider) SimIdempotencyKey(o providers.SimOrder) string {
	return o.MerchantOrderID + ":" + o.Reference
}

// SimPlain decrypts as many whole AES blocks of body as there are, under
// acct's key (a corrupted body has lost its tail, but its whole blocks
// still decrypt); the plaintext starts with the mpQueryId.
func (p *Provider) SimPlain(acct providers.Account, body []byte) []byte {
	ct, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(body)))
	if err != nil {
		return nil
	}
	return decryptBlocks(acct, ct[:len(ct)/aes.BlockSize*aes.BlockSize])
}
