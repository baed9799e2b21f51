package cashypro

import (
	"unicode/utf8"

	"github.com/payhook/payhook/pkg/providers"
)

var _ providers.ClaimedOrder = (*Provider)(nil)

// maxClaimedLen bounds a claimed order id; CashyPro's are tens of bytes.
const maxClaimedLen = 128

// ClaimedOrder reads mchOrderNo from a notification that may not verify:
// the body is parsed as Verify parses it (one strict JSON object, UTF-8);
// neither the Sign nor the MerchantId header is looked at.
func (p *Provider) ClaimedOrder(_ providers.Account, req providers.Request) (string, bool) {
	if len(req.Body) == 0 || len(req.Body) > MaxBody || !utf8.Valid(req.Body) {
		return "", false
	}
	o, err := parseObject(req.Body)
	if err != nil {
		return "", false
	}
	s, ok, err := o.text("mchOrderNo")
	if err != nil || !ok || s == "" || len(s) > maxClaimedLen {
		return "", false
	}
	return s, true
}
