package jpglo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/internal/httpx"
)

// MaxResponse bounds how much of a jpglo API answer the client reads.
const MaxResponse = 1 << 20

// DefaultTimeout is the whole-request timeout of a client made with NewClient(nil).
const DefaultTimeout = 10 * time.Second

// jpglo API status codes (seed "请求错误状态列表") the client treats specially.
const (
	codeOK       = 0
	codeInternal = -1   // 内部错误
	codeNotFound = 5001 // 订单不存在
)

// Client calls jpglo's merchant API. It is safe for concurrent use.
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

// Query asks jpglo about a pay-in order (seed "订单查询(商户用)"):
// GET {base}/api/order/query/{mch_order_no}/?mch_id=&timestamp=&sign=, the
// sign over mch_id and timestamp only (the path's order number is not
// signed; vectors.json "order query"). data.status new and commit are
// pending, success succeeded, fail failed. A terminal answer carries the
// event the callback would have produced, with origin poll and the same
// event id; its occurred_at is when the answer arrived, since the query
// gives no completion time. 5001 (订单不存在) in jpglo's envelope is Found
// false with a nil error, whatever the HTTP status it comes with (a 404
// carrying it is jpglo saying the same). jpglo has no re-trigger:
// retrigger is ignored.
func (c *Client) Query(ctx context.Context, acct providers.Account, order providers.Order, retrigger bool) (providers.QueryResult, error) {
	const op = "query"
	if order.Kind != events.KindPayin {
		return providers.QueryResult{}, fmt.Errorf("jpglo %s %s: %w", op, order.Kind, providers.ErrUnsupported)
	}
	if order.MerchantOrderID == "" {
		return providers.QueryResult{}, errors.New("jpglo query: no merchant order id")
	}
	if acct.Key("secret") == "" {
		return providers.QueryResult{}, errors.New("jpglo query: account has no signing key")
	}
	ts := c.now().Unix()
	params := map[string]any{"mch_id": acct.Key("merchant_id"), "timestamp": ts}
	q := url.Values{}
	q.Set("mch_id", acct.Key("merchant_id"))
	q.Set("timestamp", strconv.FormatInt(ts, 10))
	q.Set("sign", Sign(params, acct.Key("secret")))
	u, err := endpoint(acct.BaseURL, "/api/order/query/"+url.PathEscape(order.MerchantOrderID)+"/")
	if err != nil {
		return providers.QueryResult{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+"?"+q.Encode(), nil)
	if err != nil {
		return providers.QueryResult{}, fmt.Errorf("jpglo query: %w", err)
	}
	data, err := c.do(req, op)
	if err != nil {
		var ae *providers.APIError
		if errors.As(err, &ae) && ae.Code == strconv.Itoa(codeNotFound) {
			return providers.QueryResult{Found: false}, nil
		}
		return providers.QueryResult{}, err
	}
	if data == nil {
		return providers.QueryResult{}, malformedAnswer(op, "no data")
	}
	if got, _ := data["mch_order_no"].(string); got != "" && got != order.MerchantOrderID {
		return providers.QueryResult{}, malformedAnswer(op, "answer is about another order")
	}
	var status events.Status
	switch data["status"] {
	case "new", "commit":
		status = events.StatusPending
	case "success":
		status = events.StatusSucceeded
	case "fail":
		status = events.StatusFailed
	default:
		return providers.QueryResult{}, malformedAnswer(op, "unknown order status")
	}
	res := providers.QueryResult{Found: true, Status: status}
	if !status.Terminal() {
		return res, nil
	}
	f := make(map[string]any, len(data)+1)
	for k, v := range data {
		f[k] = v
	}
	if _, ok := f["mch_order_no"]; !ok {
		f["mch_order_no"] = order.MerchantOrderID
	}
	now := c.now().UTC()
	f["timestamp"] = json.Number(strconv.FormatInt(now.Unix(), 10))
	ev, err := decodeFields(acct, events.KindPayin, f)
	if err != nil {
		return providers.QueryResult{}, malformedAnswer(op, string(providers.ReasonOf(err)))
	}
	ev.ProviderFields = data
	ev.OccurredAt = now
	ev.ReceivedAt = now
	ev.Origin = events.OriginPoll
	res.Event = &ev
	return res, nil
}

// AppealRequest is an appeal (inquiry) about an order the user says they
// paid (seed "代收申訴接口(商户用)").
type AppealRequest struct {
	OrderNo       string   // order_no: jpglo's order number
	MchInquiryNo  string   // mch_inquiry_no: our appeal number
	InquiryAmount int64    // inquiry_amount in minor units (分)
	UserID        string   // user_id
	UserRealName  string   // user_real_name
	NotifyURL     string   // notify_url: where the appeal callback goes
	Receipt       []string // receipt: URLs of the payment proof
	UserRemark    string   // user_remark, optional: omitted when empty
	// VIPLevelLastMonth and VIPLevelCurrentMonth are optional.
	VIPLevelLastMonth    *int
	VIPLevelCurrentMonth *int
	// Timestamp is the request time; zero means now.
	Timestamp time.Time
}

// AppealResult is jpglo's answer to an accepted appeal; Status is "new".
type AppealResult struct {
	MerchantOrderID string       // data.mch_order_no
	OrderNo         string       // data.order_no
	MchInquiryNo    string       // data.mch_inquiry_no
	InquiryOrderNo  string       // data.inquiry_order_no: jpglo's appeal number
	Status          string       // data.status, "new" on success
	InquiryAmount   events.Money // data.inquiry_amount in the account's currency
}

// SubmitAppeal posts an appeal to {base}/api/order/inquiry/. jpglo's
// refusals come back as *providers.APIError with its status code and msg
// (5100 申诉订单已存在, 5106 无法申诉该订单, ...); 5001 also wraps
// providers.ErrNotFound. The outcome arrives later as an appeal callback.
func (c *Client) SubmitAppeal(ctx context.Context, acct providers.Account, r AppealRequest) (AppealResult, error) {
	const op = "appeal"
	switch {
	case r.OrderNo == "", r.MchInquiryNo == "", r.UserID == "", r.UserRealName == "", r.NotifyURL == "", len(r.Receipt) == 0:
		return AppealResult{}, errors.New("jpglo appeal: order_no, mch_inquiry_no, user_id, user_real_name, notify_url and receipt are required")
	case r.InquiryAmount <= 0:
		return AppealResult{}, errors.New("jpglo appeal: inquiry_amount must be positive")
	}
	mch, err := merchantNumber(acct)
	if err != nil {
		return AppealResult{}, err
	}
	body := map[string]any{
		"mch_id":         mch,
		"order_no":       r.OrderNo,
		"mch_inquiry_no": r.MchInquiryNo,
		"inquiry_amount": r.InquiryAmount,
		"user_id":        r.UserID,
		"user_real_name": r.UserRealName,
		"notify_url":     r.NotifyURL,
		"receipt":        r.Receipt,
		"timestamp":      c.stamp(r.Timestamp),
	}
	if r.UserRemark != "" {
		body["user_remark"] = r.UserRemark
	}
	if r.VIPLevelLastMonth != nil {
		body["vip_level_last_month"] = *r.VIPLevelLastMonth
	}
	if r.VIPLevelCurrentMonth != nil {
		body["vip_level_current_month"] = *r.VIPLevelCurrentMonth
	}
	data, err := c.post(ctx, acct, "/api/order/inquiry/", op, body)
	if err != nil {
		return AppealResult{}, err
	}
	res := AppealResult{
		MerchantOrderID: str(data, "mch_order_no"),
		OrderNo:         str(data, "order_no"),
		MchInquiryNo:    str(data, "mch_inquiry_no"),
		InquiryOrderNo:  str(data, "inquiry_order_no"),
		Status:          str(data, "status"),
	}
	if res.InquiryOrderNo == "" {
		return AppealResult{}, malformedAnswer(op, "no inquiry_order_no")
	}
	if res.InquiryAmount, err = amountField(data, "inquiry_amount", acct.Currency); err != nil {
		return AppealResult{}, malformedAnswer(op, "bad inquiry_amount")
	}
	return res, nil
}

// ReplenishRequest asks jpglo to credit an order the user paid outside the
// cashier (seed "代收补单接口(商户用)").
type ReplenishRequest struct {
	MerchantOrderID string // mch_order_no: must be new
	ApplyAmount     int64  // apply_amount in minor units (分)
	UserID          string // user_id
	PayType         string // pay_type, optional
	SubPayType      string // sub_pay_type, optional
	BrandCode       string // brand_code, optional
	RealName        string // real_name, optional
	// Timestamp is the request time; zero means now.
	Timestamp time.Time
}

// ReplenishResult is jpglo's answer to an accepted replenish; Status is "new".
type ReplenishResult struct {
	MerchantOrderID string       // data.mch_order_no
	OrderNo         string       // data.order_no
	Status          string       // data.status, "new" on success
	ApplyAmount     events.Money // data.apply_amount in the account's currency
}

// Replenish posts a replenish request to {base}/api/order/replenish/.
// Success ends, after jpglo's staff act, in an ordinary payment callback.
// Refusals are *providers.APIError with jpglo's status code and msg
// (2012 商户订单ip不在白名单中, 5013 商户订单号重复, ...).
func (c *Client) Replenish(ctx context.Context, acct providers.Account, r ReplenishRequest) (ReplenishResult, error) {
	const op = "replenish"
	if r.MerchantOrderID == "" || r.UserID == "" {
		return ReplenishResult{}, errors.New("jpglo replenish: mch_order_no and user_id are required")
	}
	if r.ApplyAmount <= 0 {
		return ReplenishResult{}, errors.New("jpglo replenish: apply_amount must be positive")
	}
	mch, err := merchantNumber(acct)
	if err != nil {
		return ReplenishResult{}, err
	}
	body := map[string]any{
		"mch_id":       mch,
		"mch_order_no": r.MerchantOrderID,
		"apply_amount": r.ApplyAmount,
		"user_id":      r.UserID,
		"timestamp":    c.stamp(r.Timestamp),
	}
	for k, v := range map[string]string{"pay_type": r.PayType, "sub_pay_type": r.SubPayType, "brand_code": r.BrandCode, "real_name": r.RealName} {
		if v != "" {
			body[k] = v
		}
	}
	data, err := c.post(ctx, acct, "/api/order/replenish/", op, body)
	if err != nil {
		return ReplenishResult{}, err
	}
	res := ReplenishResult{
		MerchantOrderID: str(data, "mch_order_no"),
		OrderNo:         str(data, "order_no"),
		Status:          str(data, "status"),
	}
	if res.OrderNo == "" {
		return ReplenishResult{}, malformedAnswer(op, "no order_no")
	}
	if res.ApplyAmount, err = amountField(data, "apply_amount", acct.Currency); err != nil {
		return ReplenishResult{}, malformedAnswer(op, "bad apply_amount")
	}
	return res, nil
}

func (c *Client) stamp(t time.Time) int64 {
	if t.IsZero() {
		t = c.now()
	}
	return t.Unix()
}

// merchantNumber is mch_id as the JSON integer the seed's tables require.
func merchantNumber(acct providers.Account) (json.Number, error) {
	if !isIntLiteral(acct.Key("merchant_id")) {
		return "", fmt.Errorf("jpglo: account %q: merchant_id must be an integer", acct.ID)
	}
	if acct.Key("secret") == "" {
		return "", fmt.Errorf("jpglo: account %q has no signing key", acct.ID)
	}
	return json.Number(acct.Key("merchant_id")), nil
}

// post signs body, POSTs it as JSON and returns the answer's data.
func (c *Client) post(ctx context.Context, acct providers.Account, path, op string, body map[string]any) (map[string]any, error) {
	body["sign"] = Sign(body, acct.Key("secret"))
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("jpglo %s: %w", op, err)
	}
	u, err := endpoint(acct.BaseURL, path)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("jpglo %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	data, err := c.do(req, op)
	if err != nil {
		var ae *providers.APIError
		if errors.As(err, &ae) && ae.Code == strconv.Itoa(codeNotFound) {
			return nil, fmt.Errorf("%w: %w", providers.ErrNotFound, err)
		}
		return nil, err
	}
	if data == nil {
		return nil, malformedAnswer(op, "no data")
	}
	return data, nil
}

// do sends req and decodes jpglo's envelope {"status","msg","timestamp","data"}.
// status 0 returns data (nil when absent); any other status, or an HTTP
// status outside 2xx, is a *providers.APIError. Transport failures and
// timeouts are a temporary APIError with code "transport", except that a
// cancelled or expired ctx returns the context's error (wrapped). Errors
// never include the URL, which carries the signature.
func (c *Client) do(req *http.Request, op string) (map[string]any, error) {
	req.Header.Set("Accept", "application/json")
	status, raw, err := httpx.Do(c.hc, req, Name, op, MaxResponse)
	if err != nil {
		return nil, err
	}
	env, decErr := decodeObject(raw)
	code, hasCode := env["status"].(json.Number)
	if !httpx.OK(status) {
		ae := httpx.StatusError(Name, op, status)
		if decErr == nil && hasCode {
			ae.Code, ae.Message = string(code), str(env, "msg")
			ae.Temporary = ae.Temporary || string(code) == strconv.Itoa(codeInternal)
		}
		return nil, ae
	}
	if decErr != nil || !hasCode {
		return nil, malformedAnswer(op, "answer is not jpglo's JSON envelope")
	}
	if string(code) != strconv.Itoa(codeOK) {
		return nil, &providers.APIError{Provider: Name, Op: op, HTTP: status, Code: string(code), Message: str(env, "msg"),
			Temporary: string(code) == strconv.Itoa(codeInternal)}
	}
	switch d := env["data"].(type) {
	case map[string]any:
		return d, nil
	case nil:
		return nil, nil
	default:
		return nil, malformedAnswer(op, "data is not an object")
	}
}

// malformedAnswer is an answer that is not what the seed documents.
func malformedAnswer(op, detail string) error {
	return &providers.APIError{Provider: Name, Op: op, Code: "bad_answer", Message: detail}
}

func endpoint(base, path string) (string, error) {
	u, err := httpx.Endpoint(base, path)
	if err != nil {
		return "", fmt.Errorf("jpglo: %w", err)
	}
	return u, nil
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}
