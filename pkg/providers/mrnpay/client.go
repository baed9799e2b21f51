package mrnpay

import (
	"context"
	"encoding/json"
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

// MaxResponse bounds how much of an mrnpay answer the client reads.
const MaxResponse = 1 << 20

// DefaultTimeout is the whole-request timeout of a client made with NewClient(nil).
const DefaultTimeout = 10 * time.Second

// Client queries mrnpay orders. It is safe for concurrent use.
type Client struct {
	hc  *http.Client
	now func() time.Time
}

// NewClient returns a client using hc, or an http.Client with a 10 s
// timeout when hc is nil. Every call also honours its context.
func NewClient(hc *http.Client) *Client {
	return &Client{hc: httpx.Client(hc, DefaultTimeout), now: time.Now}
}

var _ providers.Querier = (*Client)(nil)

// answer is the query reply (seed "JSON 响应内容"):
// {"error":"success","result":{"Mrn":"...","status":0|1|2}}, as
// decodeAnswer reads it. errorMessage is the companion of error in the
// payout-create reply and is kept if present.
type answer struct {
	Error        string
	ErrorMessage string
	Result       *result // nil when absent or null
}

type result struct {
	Mrn    string // "" when absent or null
	Status string // the number's digits as written; "" when absent or null
	// Not in the seed's reply; used when a deployment adds them (see
	// Query). Each is nil (absent or null), a string or a json.Number.
	Amount, OriginAmount, Channel any
}

// maxDepth bounds the reply's nesting; the seed's is two levels deep.
const maxDepth = 16

// decodeAnswer reads a reply with strictjson: one JSON object, no
// duplicate key at any depth (encoding/json would keep the last, so
// {"error":"sign_error","error":"success"} would read as success), nothing
// after it. Member names match ignoring case, as they did when the reply
// went through encoding/json ("mrn" for "Mrn"), but two members whose
// names differ only in case are ambiguous and refused too. Errors carry
// no reply bytes.
func decodeAnswer(raw []byte) (*answer, error) {
	obj, err := strictjson.DecodeObject(raw, maxDepth)
	if err != nil {
		return nil, err
	}
	var a answer
	if a.Error, err = stringField(obj, "error"); err != nil {
		return nil, err
	}
	if a.ErrorMessage, err = stringField(obj, "errorMessage"); err != nil {
		return nil, err
	}
	v, err := field(obj, "result")
	if err != nil {
		return nil, err
	}
	switch r := v.(type) {
	case nil:
		return &a, nil
	case map[string]any:
		res := &result{}
		if res.Mrn, err = stringField(r, "Mrn"); err != nil {
			return nil, err
		}
		if res.Status, err = scalarField(r, "status"); err != nil {
			return nil, err
		}
		for _, f := range []struct {
			name string
			dst  *any
		}{{"amount", &res.Amount}, {"originAmount", &res.OriginAmount}, {"channel", &res.Channel}} {
			if *f.dst, err = field(r, f.name); err != nil {
				return nil, err
			}
			switch (*f.dst).(type) {
			case nil, string, json.Number:
			default:
				return nil, fmt.Errorf("%s is not a number or a string", f.name)
			}
		}
		a.Result = res
		return &a, nil
	default:
		return nil, errors.New("result is not an object")
	}
}

// field returns the member of m named name, ignoring case; nil when absent.
func field(m map[string]any, name string) (any, error) {
	var v any
	found := false
	for k, x := range m {
		if strings.EqualFold(k, name) {
			if found {
				return nil, fmt.Errorf("%s given twice", name)
			}
			v, found = x, true
		}
	}
	return v, nil
}

// stringField is a string member; "" when absent or null.
func stringField(m map[string]any, name string) (string, error) {
	v, err := field(m, name)
	if err != nil || v == nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s is not a string", name)
	}
	return s, nil
}

// scalarField is a number's digits as written, or a string's text (as
// encoding/json read a quoted number into json.Number); "" when absent
// or null.
func scalarField(m map[string]any, name string) (string, error) {
	v, err := field(m, name)
	if err != nil {
		return "", err
	}
	switch x := v.(type) {
	case nil:
		return "", nil
	case json.Number:
		return string(x), nil
	case string:
		return x, nil
	}
	return "", fmt.Errorf("%s is not a number", name)
}

// Query asks mrnpay about an order (seed "充值查单接口说明", "下发查单接口说明"):
// GET {base}/api/Payments/Query (payin) or /api/Payouts/Query (payout) with
// appKey, mrn, sign and callback. status 0 is pending, 1 succeeded, 2 failed.
// With retrigger (callback=true) and status 1, mrnpay posts the callback
// again; that is how a lost mrnpay callback is recovered, through the
// normal verified path.
//
// The reply carries no amount, so Event is nil: an event needs one, and the
// reconciler re-triggers instead. Should a reply include "amount" (and for
// pay-ins "originAmount"), a terminal answer yields the event the callback
// would have, with origin poll and the same event id.
//
// Not found: the seed documents no answer for an unknown mrn (its
// object_not_found means an invalid merchant account). A "success" reply
// with no result is taken as Found false with a nil error; object_not_found
// and every other error string is a *providers.APIError with the string as
// Code. HTTP 5xx and transport failures are Temporary; a cancelled or
// expired ctx returns the context's error (wrapped).
func (c *Client) Query(ctx context.Context, acct providers.Account, order providers.Order, retrigger bool) (providers.QueryResult, error) {
	var path string
	switch order.Kind {
	case events.KindPayin:
		path = "/api/Payments/Query"
	case events.KindPayout:
		path = "/api/Payouts/Query"
	default:
		return providers.QueryResult{}, fmt.Errorf("mrnpay query %s: %w", order.Kind, providers.ErrUnsupported)
	}
	if order.MerchantOrderID == "" {
		return providers.QueryResult{}, errors.New("mrnpay query: no merchant order id (mrn)")
	}
	if acct.Key("secret") == "" || acct.Key("merchant_id") == "" {
		return providers.QueryResult{}, fmt.Errorf("mrnpay query: account %q needs merchant_id (appKey) and secret", acct.ID)
	}
	u, err := httpx.Endpoint(acct.BaseURL, path)
	if err != nil {
		return providers.QueryResult{}, fmt.Errorf("mrnpay query: %w", err)
	}
	q := url.Values{}
	q.Set("appKey", acct.Key("merchant_id"))
	q.Set("mrn", order.MerchantOrderID)
	q.Set("sign", SignQuery(acct.Key("merchant_id"), order.MerchantOrderID, acct.Key("secret")))
	q.Set("callback", fmt.Sprint(retrigger))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+"?"+q.Encode(), nil)
	if err != nil {
		return providers.QueryResult{}, fmt.Errorf("mrnpay query: %w", err)
	}
	ans, err := c.do(req)
	if err != nil {
		return providers.QueryResult{}, err
	}
	if ans.Result == nil {
		return providers.QueryResult{Found: false}, nil
	}
	r := ans.Result
	if r.Mrn != "" && r.Mrn != order.MerchantOrderID {
		return providers.QueryResult{}, badAnswer("answer is about another order")
	}
	var status events.Status
	switch r.Status {
	case "":
		return providers.QueryResult{}, badAnswer("no status")
	case "0":
		status = events.StatusPending
	case "1":
		status = events.StatusSucceeded
	case "2":
		status = events.StatusFailed
	default:
		return providers.QueryResult{}, badAnswer("unknown status")
	}
	res := providers.QueryResult{Found: true, Status: status}
	if !status.Terminal() || r.Amount == nil {
		return res, nil
	}
	ev, err := c.pollEvent(acct, order, status, r)
	if err != nil {
		return providers.QueryResult{}, err
	}
	res.Event = ev
	return res, nil
}

// pollEvent builds the event a callback would have produced from a reply
// that carries amounts. Only the fields that feed the event id and the
// amounts matter for it to match the callback's.
func (c *Client) pollEvent(acct providers.Account, order providers.Order, status events.Status, r *result) (*events.Event, error) {
	amount, err := rawAmount(r.Amount, acct.Currency)
	if err != nil {
		return nil, badAnswer("bad amount")
	}
	now := c.now().UTC()
	fields := map[string]any{"mrn": order.MerchantOrderID, "amount": amount.Value, "appKey": acct.Key("merchant_id")}
	ev := &events.Event{
		Provider:        Name,
		Account:         acct.ID,
		Kind:            order.Kind,
		Status:          status,
		MerchantOrderID: order.MerchantOrderID,
		Amount:          amount,
		OccurredAt:      now,
		ReceivedAt:      now,
		Origin:          events.OriginPoll,
		ProviderFields:  fields,
	}
	if order.Kind == events.KindPayin && r.OriginAmount != nil {
		origin, err := rawAmount(r.OriginAmount, acct.Currency)
		if err != nil {
			return nil, badAnswer("bad originAmount")
		}
		ev.RequestedAmount = &origin
		ev.AmountMismatch = amount.Cmp(origin) != 0
		fields["originAmount"] = origin.Value
	}
	if ch := text(r.Channel); order.Kind == events.KindPayin && digits(ch) {
		fields["channel"] = ch
	}
	return ev, nil
}

// text is a json.Number's digits or a string's text; "" for anything else.
func text(v any) string {
	switch x := v.(type) {
	case json.Number:
		return string(x)
	case string:
		return x
	}
	return ""
}

// rawAmount reads a JSON number, or a JSON string, holding an exact decimal.
func rawAmount(v any, currency string) (events.Money, error) {
	switch v.(type) {
	case json.Number, string:
		return parseAmount(text(v), "amount", currency)
	}
	return events.Money{}, errors.New("amount is not a number or a string")
}

// do sends req and decodes the reply (decodeAnswer); any error string but
// "success", any HTTP status outside 2xx and any reply decodeAnswer
// refuses is a *providers.APIError. Errors never include the URL, which
// carries the signature, nor reply bytes.
func (c *Client) do(req *http.Request) (*answer, error) {
	const op = "query"
	req.Header.Set("Accept", "application/json")
	status, raw, err := httpx.Do(c.hc, req, Name, op, MaxResponse)
	if err != nil {
		return nil, err
	}
	ans, decErr := decodeAnswer(raw)
	if !httpx.OK(status) {
		ae := httpx.StatusError(Name, op, status)
		if decErr == nil && ans.Error != "" && ans.Error != "success" {
			ae.Code, ae.Message = ans.Error, ans.ErrorMessage
		}
		return nil, ae
	}
	if decErr != nil {
		return nil, badAnswer("answer is not mrnpay's JSON reply: " + decErr.Error())
	}
	if ans.Error == "" {
		return nil, badAnswer("answer is not mrnpay's JSON reply: no error string")
	}
	if ans.Error != "success" {
		return nil, &providers.APIError{Provider: Name, Op: op, HTTP: status, Code: ans.Error, Message: ans.ErrorMessage}
	}
	return ans, nil
}

func badAnswer(detail string) error {
	return &providers.APIError{Provider: Name, Op: "query", Code: "bad_answer", Message: detail}
}
