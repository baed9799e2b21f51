package mrnpay

import (
	"net/url"

	"github.com/payhook/payhook/pkg/providers"
)

var _ providers.ClaimedOrder = (*Provider)(nil)

// ClaimedOrder reads mrn, the merchant order id of both callbacks, from a
// form body that may not verify: given exactly once, not empty, at most
// maxMrnLen bytes. Nothing is checked.
func (p *Provider) ClaimedOrder(_ providers.Account, req providers.Request) (string, bool) {
	if len(req.Body) == 0 || len(req.Body) > MaxBody {
		return "", false
	}
	form, err := url.ParseQuery(string(req.Body))
	if err != nil {
		return "", false
	}
	vs := form["mrn"]
	if len(vs) != 1 || vs[0] == "" || len(vs[0]) > maxMrnLen {
		return "", false
	}
	return vs[0], true
}
