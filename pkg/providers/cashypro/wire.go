package cashypro

import (
	"fmt"
	"net/http"

	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/hostile"
)

// The one place that renders and signs CashyPro's callbacks: the simulator
// (sim.go) and the bad-input corpus (hostile.go) both post what these build.

// callback is seed 002 "代收订单结果通知" as its fields' wire text.
type callback struct {
	// Amount and Fee are JSON numbers as CashyPro writes them, with 2 and
	// 4 decimals ("20000.00", "2500.0000").
	Amount, Fee string
	// CompletionTime is "yyyy-MM-dd HH:mm:ss" in WIB, or "" (null) while
	// the order is PAYING.
	CompletionTime                                   string
	ChannelOrderNo, MchOrderNo, MerchantID, NonceStr string
	OrderNo, OrderStatus, PayCode, PayType, PayURL   string
}

// obj is the callback's JSON object, keys in the seed example's
// (alphabetical) order.
func (c callback) obj() *hostile.Obj {
	completion := "null"
	if c.CompletionTime != "" {
		completion = hostile.Str(c.CompletionTime)
	}
	return (&hostile.Obj{}).
		Set("amount", c.Amount).Set("channelOrderNo", hostile.Str(c.ChannelOrderNo)).
		Set("completionTime", completion).
		Set("fee", c.Fee).Set("mchOrderNo", hostile.Str(c.MchOrderNo)).
		Set("merchantId", hostile.Str(c.MerchantID)).Set("nonceStr", hostile.Str(c.NonceStr)).
		Set("orderNo", hostile.Str(c.OrderNo)).Set("orderStatus", hostile.Str(c.OrderStatus)).
		Set("payCode", hostile.Str(c.PayCode)).Set("payType", hostile.Str(c.PayType)).Set("payUrl", hostile.Str(c.PayURL))
}

// signHeaders is the headers CashyPro sends body with: MerchantId and Sign
// (over the body's fields, under the account's sign_rule).
func signHeaders(acct providers.Account, body []byte) (http.Header, error) {
	sign, err := Sign(body, acct.Key("secret"), acct.Key("sign_rule"))
	if err != nil {
		return nil, fmt.Errorf("cashypro account %q: %w", acct.ID, err)
	}
	h := hostile.JSONHeader()
	h.Set(HeaderMerchantID, acct.Key("merchant_id"))
	h.Set(HeaderSign, sign)
	return h, nil
}
