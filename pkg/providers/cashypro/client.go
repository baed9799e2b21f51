package cashypro

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/internal/httpx"
)

// QueryPath is the pay-in query endpoint under the account's BaseURL (seed "查询代收订单").
const QueryPath = "/api/payInQuery"

// OpPayinQuery is the Op of *providers.APIError returned by Query.
const OpPayinQuery = "payin_query"

// DefaultTimeout bounds a query when NewClient is given no *http.Client.
const DefaultTimeout = 10 * time.Second

// maxReply bounds a query reply; the seed's is about 500 bytes.
const maxReply = 1 << 20

// ErrReply reports a query reply that is not the seed's envelope, or that
// answers about another order or merchant than the one asked.
var ErrReply = errors.New("cashypro: unexpected reply")

// Client queries CashyPro pay-in orders. It implements providers.Querier.
type Client struct {
	hc  *http.Client
	now func() time.Time
}

var _ providers.Querier = (*Client)(nil)

// NewClient returns a client using hc, or an *http.Client with a
// DefaultTimeout timeout when hc is nil.
func NewClient(hc *http.Client) *Client {
	return &Client{hc: httpx.Client(hc, DefaultTimeout), now: time.Now}
}

type queryRequest struct {
	MchOrderNo string `json:"mchOrderNo,omitempty"`
	NonceStr   string `json:"nonceStr"`
	OrderNo    string `json:"orderNo,omitempty"`
}

// Query asks CashyPro about a pay-in order: POST {BaseURL}/api/payInQuery
// with {mchOrderNo?, nonceStr, orderNo?} (at least one id; both when known,
// the seed prefers orderNo), signed like a notification (Sign) and sent
// with the MerchantId and Sign headers. CashyPro has no re-trigger flag, so
// retrigger is ignored: a lost notification is recovered from the reply.
//
// Answers:
//   - {"code":200,"data":{...}}: Found, Status from data.orderStatus, and,
//     when terminal, Event: the data decoded like a notification with Origin
//     poll. Its ID equals the notification's for the same fact, because the
//     ID depends on provider, account, kind, mchOrderNo and status only. The
//     amounts differ in spelling: the query returns the string "20000" where
//     the notification has 20000.00 — both are exact and Money.Cmp says equal.
//   - {"code":200,"data":null} or no data: Found false, nil error. The seed
//     documents no not-found answer; this is the only one we treat as such.
//   - any other code, e.g. {"code":500,"msg":"Payin_Order_Error"}: a
//     *providers.APIError with Code "500" and Message "Payin_Order_Error".
//     The seed gives Payin_Order_Error for a failed order creation, so it
//     is not taken to mean "not found"; Temporary is false.
//   - HTTP status other than 2xx: *providers.APIError with HTTP set,
//     Code and Message from the body when it is CashyPro's envelope with a
//     code ({"code":500,"msg":"..."}), else Code "http_NNN" and the status
//     text; Temporary true for 5xx and 429.
//   - a transport failure or timeout: a temporary *providers.APIError with
//     Code "transport"; a reply over 1 MiB: Code "too_large" (httpx.Do). A
//     cancelled or expired ctx returns the context's error, wrapped.
//     Errors never include the URL or the secret.
//
// Replies are not signed by CashyPro (the seed shows no Sign on them), so
// there is no reply signature to check; the reply must name the same
// merchant and order, or Query returns ErrReply.
func (c *Client) Query(ctx context.Context, acct providers.Account, order providers.Order, retrigger bool) (providers.QueryResult, error) {
	if order.Kind != events.KindPayin {
		return providers.QueryResult{}, fmt.Errorf("cashypro %s query: %w", order.Kind, providers.ErrUnsupported)
	}
	if order.MerchantOrderID == "" && order.ProviderOrderID == "" {
		return providers.QueryResult{}, errors.New("cashypro query: need mchOrderNo or orderNo")
	}
	if acct.BaseURL == "" {
		return providers.QueryResult{}, errors.New("cashypro query: account has no base_url")
	}
	nonce, err := newNonce()
	if err != nil {
		return providers.QueryResult{}, fmt.Errorf("cashypro query: nonce: %w", err)
	}
	body, err := json.Marshal(queryRequest{MchOrderNo: order.MerchantOrderID, NonceStr: nonce, OrderNo: order.ProviderOrderID})
	if err != nil {
		return providers.QueryResult{}, fmt.Errorf("cashypro query: %w", err)
	}
	sign, err := Sign(body, acct.Key("secret"), acct.Key("sign_rule"))
	if err != nil {
		return providers.QueryResult{}, fmt.Errorf("cashypro query: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(acct.BaseURL, "/")+QueryPath, bytes.NewReader(body))
	if err != nil {
		return providers.QueryResult{}, fmt.Errorf("cashypro query: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderMerchantID, acct.Key("merchant_id"))
	req.Header.Set(HeaderSign, sign)
	status, reply, err := httpx.Do(c.hc, req, Name, OpPayinQuery, maxReply)
	if err != nil {
		return providers.QueryResult{}, err
	}
	if !httpx.OK(status) {
		return providers.QueryResult{}, statusError(status, reply)
	}
	return c.decodeReply(acct, order, status, reply)
}

// statusError is the *providers.APIError for a non-2xx reply: CashyPro's
// own code (and msg, when it has one) when the body is its envelope with
// a code (a gateway's HTML page is not), else "http_NNN" and the status
// text. Temporary
// follows the HTTP status (5xx, 429), whatever the body says.
func statusError(status int, reply []byte) *providers.APIError {
	ae := httpx.StatusError(Name, OpPayinQuery, status)
	env, err := parseObject(reply)
	if err != nil {
		return ae
	}
	code, _, err := env.text("code")
	if err != nil || code == "" {
		return ae
	}
	ae.Code = clip(code)
	if msg, _, err := env.text("msg"); err == nil && msg != "" {
		ae.Message = clip(msg)
	}
	return ae
}

// decodeReply maps a 2xx reply body to a QueryResult.
func (c *Client) decodeReply(acct providers.Account, order providers.Order, httpStatus int, reply []byte) (providers.QueryResult, error) {
	env, err := parseObject(reply)
	if err != nil {
		return providers.QueryResult{}, fmt.Errorf("%w: %v", ErrReply, err)
	}
	code, _, err := env.text("code")
	if err != nil {
		return providers.QueryResult{}, fmt.Errorf("%w: %v", ErrReply, err)
	}
	msg, _, err := env.text("msg")
	if err != nil {
		return providers.QueryResult{}, fmt.Errorf("%w: %v", ErrReply, err)
	}
	if code != "200" {
		if code == "" {
			return providers.QueryResult{}, fmt.Errorf("%w: no code", ErrReply)
		}
		return providers.QueryResult{}, &providers.APIError{
			Provider: Name, Op: OpPayinQuery, HTTP: httpStatus,
			Code: clip(code), Message: clip(msg),
		}
	}
	raw := env.rawOf("data")
	if len(raw) == 0 || string(raw) == "null" {
		return providers.QueryResult{Found: false}, nil
	}
	if raw[0] != '{' {
		return providers.QueryResult{}, fmt.Errorf("%w: data is not an object", ErrReply)
	}
	data, err := parseObject(raw)
	if err != nil {
		return providers.QueryResult{}, fmt.Errorf("%w: %v", ErrReply, err)
	}
	for _, f := range []struct{ key, want string }{
		{"merchantId", acct.Key("merchant_id")},
		{"mchOrderNo", order.MerchantOrderID},
		{"orderNo", order.ProviderOrderID},
	} {
		got, ok, err := data.text(f.key)
		if err != nil {
			return providers.QueryResult{}, fmt.Errorf("%w: %v", ErrReply, err)
		}
		if ok && got != "" && f.want != "" && got != f.want {
			return providers.QueryResult{}, fmt.Errorf("%w: %s is not the one asked about", ErrReply, f.key)
		}
	}
	statusText, _, err := data.text("orderStatus")
	if err != nil {
		return providers.QueryResult{}, fmt.Errorf("%w: %v", ErrReply, err)
	}
	status, ok := statusOf(statusText)
	if !ok {
		return providers.QueryResult{}, fmt.Errorf("%w: orderStatus %q", ErrReply, clip(statusText))
	}
	res := providers.QueryResult{Found: true, Status: status}
	if status.Terminal() {
		// An answer that lacks what an event needs (say, no amount) still
		// gives the status; the event is then left nil as Querier documents.
		if ev, err := decodeEvent(data, acct.ID, currencyOf(acct), c.now().UTC(), events.OriginPoll); err == nil && ev.Status == status {
			res.Event = &ev
		}
	}
	return res, nil
}

// newNonce is 32 random hex characters (nonceStr is string(32)).
func newNonce() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}
