package stripe

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/internal/httpx"
	"github.com/payhook/payhook/pkg/providers/internal/strictjson"
)

// OpQuery is the Op of the *providers.APIError Query returns.
const OpQuery = "query"

// DefaultTimeout bounds a query when NewClient is given no *http.Client.
const DefaultTimeout = 10 * time.Second

// maxReply bounds a PaymentIntent (a few KiB) or error answer.
const maxReply = 1 << 20

// ErrReply reports an answer that is neither a PaymentIntent nor Stripe's
// {"error":{...}} object.
var ErrReply = errors.New("stripe: unexpected answer")

// Client retrieves PaymentIntents. It is safe for concurrent use.
type Client struct {
	hc  *http.Client
	now func() time.Time
}

// NewClient returns a client using hc, or an *http.Client with a
// DefaultTimeout timeout when hc is nil.
func NewClient(hc *http.Client) *Client {
	return &Client{hc: httpx.Client(hc, DefaultTimeout), now: time.Now}
}

var _ providers.Querier = (*Client)(nil)

// Query retrieves the PaymentIntent order.ProviderOrderID (GET
// {base_url}/v1/payment_intents/{id}, Authorization: Bearer {api_key}) and
// maps its status:
//
//	succeeded                                       succeeded (an event, origin poll)
//	canceled                                        failed (an event)
//	requires_payment_method after a failed attempt  failed (an event)
//	processing, requires_*, and a fresh PaymentIntent  pending
//
// A 404 (resource_missing) is ErrNotFound. Payouts are not queried
// (providers.ErrUnsupported): their watches only expire. Stripe has no
// resend, so retrigger is ignored; a lost webhook is recovered from the
// answer itself.
func (c *Client) Query(ctx context.Context, acct providers.Account, order providers.Order, retrigger bool) (providers.QueryResult, error) {
	if order.Kind != events.KindPayin && order.Kind != "" {
		return providers.QueryResult{}, fmt.Errorf("%w: stripe %s orders are not queried", providers.ErrUnsupported, order.Kind)
	}
	id := order.ProviderOrderID
	if !strings.HasPrefix(id, "pi_") || len(id) > maxIDLen || !events.ValidOrderID(id) {
		return providers.QueryResult{}, errors.New("stripe query: the watch carries no PaymentIntent id (provider_order_id pi_...)")
	}
	key := acct.Key("api_key")
	if key == "" {
		return providers.QueryResult{}, fmt.Errorf("stripe query: account %q has no api_key", acct.ID)
	}
	u, err := httpx.Endpoint(acct.BaseURL, "/v1/payment_intents/"+url.PathEscape(id))
	if err != nil {
		return providers.QueryResult{}, fmt.Errorf("stripe query: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return providers.QueryResult{}, fmt.Errorf("stripe query: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	status, body, err := httpx.Do(c.hc, req, Name, OpQuery, maxReply)
	if err != nil {
		return providers.QueryResult{}, err
	}
	return c.decodeReply(acct, order, status, body)
}

// decodeReply maps Stripe's answer to a QueryResult.
func (c *Client) decodeReply(acct providers.Account, order providers.Order, status int, body []byte) (providers.QueryResult, error) {
	obj, err := strictjson.DecodeObject(body, maxDepth)
	if !httpx.OK(status) {
		ae := httpx.StatusError(Name, OpQuery, status)
		if e, ok := obj["error"].(map[string]any); ok && err == nil {
			if code, ok := e["code"].(string); ok && code != "" {
				ae.Code = providers.Clip(code, 64)
			} else if typ, ok := e["type"].(string); ok && typ != "" {
				ae.Code = providers.Clip(typ, 64)
			}
			if msg, ok := e["message"].(string); ok {
				ae.Message = providers.Clip(msg, 200)
			}
		}
		if status == http.StatusNotFound {
			return providers.QueryResult{}, fmt.Errorf("%w: %w", providers.ErrNotFound, ae)
		}
		return providers.QueryResult{}, ae
	}
	if err != nil {
		return providers.QueryResult{}, fmt.Errorf("%w: %v", ErrReply, err)
	}
	if o, _ := obj["object"].(string); o != "payment_intent" {
		return providers.QueryResult{}, fmt.Errorf("%w: not a payment_intent", ErrReply)
	}
	if id, _ := obj["id"].(string); id != order.ProviderOrderID {
		return providers.QueryResult{}, fmt.Errorf("%w: the answer is about another PaymentIntent", ErrReply)
	}
	st, _ := obj["status"].(string)
	var s events.Status
	switch st {
	case "succeeded":
		s = events.StatusSucceeded
	case "canceled":
		s = events.StatusFailed
	case "requires_payment_method":
		// Stripe returns a PaymentIntent whose attempt failed to this
		// status, with last_payment_error set; a fresh one also starts here.
		s = events.StatusPending
		if lpe, ok := obj["last_payment_error"].(map[string]any); ok && lpe != nil {
			s = events.StatusFailed
		}
	case "processing", "requires_action", "requires_confirmation", "requires_capture":
		s = events.StatusPending
	default:
		return providers.QueryResult{}, fmt.Errorf("%w: status %q", ErrReply, providers.Clip(st, 32))
	}
	res := providers.QueryResult{Found: true, Status: s}
	if s.Terminal() {
		ev, err := decodeObject(acct, events.KindPayin, s, obj, events.OriginPoll)
		if err == nil && ev.MerchantOrderID == order.MerchantOrderID {
			now := c.now().UTC()
			ev.OccurredAt, ev.ReceivedAt = now, now
			if ev, err = providers.Checked(ev, nil); err == nil {
				res.Event = &ev
			}
		}
	}
	return res, nil
}
