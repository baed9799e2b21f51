package stripe

import (
	"unicode/utf8"

	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/internal/strictjson"
)

var _ providers.ClaimedOrder = (*Provider)(nil)

// ClaimedOrder reads the merchant order id an Event body names, as Event
// would decode it: data.object.metadata.order_id, else the object's id.
// The Stripe-Signature header is not looked at.
func (p *Provider) ClaimedOrder(_ providers.Account, req providers.Request) (string, bool) {
	if len(req.Body) == 0 || len(req.Body) > MaxBody || !utf8.Valid(req.Body) {
		return "", false
	}
	ev, err := strictjson.DecodeObject(req.Body, maxDepth)
	if err != nil {
		return "", false
	}
	data, _ := ev["data"].(map[string]any)
	obj, _ := data["object"].(map[string]any)
	if obj == nil {
		return "", false
	}
	id, _ := obj["id"].(string)
	if meta, _ := obj["metadata"].(map[string]any); meta != nil {
		if s, ok := meta["order_id"].(string); ok {
			id = s
		}
	}
	if id == "" || len(id) > maxIDLen {
		return "", false
	}
	return id, true
}
