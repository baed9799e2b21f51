package jpglo

import "github.com/payhook/payhook/pkg/providers"

var _ providers.ClaimedOrder = (*Provider)(nil)

// ClaimedOrder reads mch_order_no, the merchant order id of both callbacks
// (支付回调, 申诉回调), from a body that may not verify: the body is decoded
// as Verify decodes it (one strict JSON object), and nothing is checked.
func (p *Provider) ClaimedOrder(_ providers.Account, req providers.Request) (string, bool) {
	if len(req.Body) == 0 || len(req.Body) > MaxBody {
		return "", false
	}
	fields, err := decodeObject(req.Body)
	if err != nil {
		return "", false
	}
	s, ok := fields["mch_order_no"].(string)
	if !ok || s == "" || len(s) > maxIDLen {
		return "", false
	}
	return s, true
}
