package mrnpay

import (
	"bytes"
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
// {"error":"success","result":{"Mrn":"...","status":0|1|2}}. Field names
// match case-insensitively, as encoding/json does. errorMessage is the
// companion of error in the payout-create reply and is kept if present.
type answer struct {
	Error        string  `json:"error"`
	ErrorMessage string  `json:"errorMessage"`
	Result       *result `json:"result"`
}

type result struct {
	Mrn    string       `json:"Mrn"`
	Status *json.Number `json:"status"`
	// Not in the seed's reply; used when a deployment adds them (see Query).
	Amount       json.RawMessage `json:"amount"`
	OriginAmount json.RawMessage `json:"originAmount"`
	Channel      json.RawMessage `json:"channel"`
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
	if acct.Secret == "" || acct.MerchantID == "" {
		return providers.QueryResult{}, fmt.Errorf("mrnpay query: account %q needs merchant_id (appKey) and secret", acct.ID)
	}
	u, err := httpx.Endpoint(acct.BaseURL, path)
	if err != nil {
		return providers.QueryResult{}, fmt.Errorf("mrnpay query: %w", err)
	}
	q := url.Values{}
	q.Set("appKey", acct.MerchantID)
	q.Set("mrn", order.MerchantOrderID)
	q.Set("sign", SignQuery(acct.MerchantID, order.MerchantOrderID, acct.Secret))
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
	switch {
	case r.Status == nil:
		return providers.QueryResult{}, badAnswer("no status")
	case *r.Status == "0":
		status = events.StatusPending
	case *r.Status == "1":
		status = events.StatusSucceeded
	case *r.Status == "2":
		status = events.StatusFailed
	default:
		return providers.QueryResult{}, badAnswer("unknown status")
	}
	res := providers.QueryResult{Found: true, Status: status}
	if !status.Terminal() || len(r.Amount) == 0 || string(r.Amount) == "null" {
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
	fields := map[string]any{"mrn": order.MerchantOrderID, "amount": amount.Value, "appKey": acct.MerchantID}
	ev := &events.Event{
		Provider:        providers.Mrnpay,
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
	if order.Kind == events.KindPayin && len(r.OriginAmount) > 0 && string(r.OriginAmount) != "null" {
		origin, err := rawAmount(r.OriginAmount, acct.Currency)
		if err != nil {
			return nil, badAnswer("bad originAmount")
		}
		ev.RequestedAmount = &origin
		ev.AmountMismatch = amount.Cmp(origin) != 0
		fields["originAmount"] = origin.Value
	}
	if ch := strings.Trim(string(r.Channel), `"`); order.Kind == events.KindPayin && digits(ch) {
		fields["channel"] = ch
	}
	return ev, nil
}

// rawAmount reads a JSON number or a JSON string holding an exact decimal.
func rawAmount(raw json.RawMessage, currency string) (events.Money, error) {
	s := string(raw)
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(raw, &s); err != nil {
			return events.Money{}, err
		}
	}
	m, err := parseAmount(s, "amount", currency)
	return m, err
}

// do sends req and decodes the reply; any error string but "success" and
// any HTTP status outside 2xx is a *providers.APIError. Errors never include
// the URL, which carries the signature.
func (c *Client) do(req *http.Request) (*answer, error) {
	const op = "query"
	req.Header.Set("Accept", "application/json")
	status, raw, err := httpx.Do(c.hc, req, providers.Mrnpay, op, MaxResponse)
	if err != nil {
		return nil, err
	}
	var ans answer
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	decErr := dec.Decode(&ans)
	if decErr == nil && dec.More() {
		decErr = errors.New("trailing data")
	}
	if !httpx.OK(status) {
		ae := httpx.StatusError(providers.Mrnpay, op, status)
		if decErr == nil && ans.Error != "" && ans.Error != "success" {
			ae.Code, ae.Message = ans.Error, ans.ErrorMessage
		}
		return nil, ae
	}
	if decErr != nil || ans.Error == "" {
		return nil, badAnswer("answer is not mrnpay's JSON reply")
	}
	if ans.Error != "success" {
		return nil, &providers.APIError{Provider: providers.Mrnpay, Op: op, HTTP: status, Code: ans.Error, Message: ans.ErrorMessage}
	}
	return &ans, nil
}

func badAnswer(detail string) error {
	return &providers.APIError{Provider: providers.Mrnpay, Op: "query", Code: "bad_answer", Message: detail}
}
