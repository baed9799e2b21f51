package jpglo

import (
	"errors"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers/hostile"
	"github.com/payhook/payhook/pkg/providers/internal/simwire"
)

// The one place that renders and signs jpglo's callbacks: the simulator
// (sim.go) and the bad-input corpus (hostile.go) both post what these build.

// callback is seed 004 "支付回调" (Kind payin) or "申诉回调" (Kind appeal)
// as its fields' wire text.
type callback struct {
	Kind                        events.Kind
	MchOrderNo, OrderNo, Status string
	// Amount is the integer 分 of apply_amount (a pay-in) or
	// inquiry_amount (an appeal); RealAmount the pay-in's paid 分, ""
	// for null (an order that did not succeed).
	Amount, RealAmount string
	// PayType, Remark (nil for null) and UserExt (a JSON text) are the
	// pay-in's.
	PayType string
	Remark  *string
	UserExt string
	// InquiryNo (mch_inquiry_no), InquiryOrderNo, UserRemark and Reason
	// are the appeal's.
	InquiryNo, InquiryOrderNo, UserRemark, Reason string
	// Timestamp is Unix seconds.
	Timestamp string
}

// obj is the callback's JSON object, unsigned, keys in the seed's order.
func (c callback) obj() *hostile.Obj {
	if c.Kind == events.KindAppeal {
		return (&hostile.Obj{}).
			Set("mch_order_no", hostile.Str(c.MchOrderNo)).Set("order_no", hostile.Str(c.OrderNo)).
			Set("mch_inquiry_no", hostile.Str(c.InquiryNo)).Set("inquiry_order_no", hostile.Str(c.InquiryOrderNo)).
			Set("status", hostile.Str(c.Status)).Set("inquiry_amount", c.Amount).
			Set("user_remark", hostile.Str(c.UserRemark)).Set("reason", hostile.Str(c.Reason)).
			Set("timestamp", c.Timestamp)
	}
	real, remark := "null", "null"
	if c.RealAmount != "" {
		real = c.RealAmount
	}
	if c.Remark != nil {
		remark = hostile.Str(*c.Remark)
	}
	return (&hostile.Obj{}).
		Set("order_no", hostile.Str(c.OrderNo)).Set("mch_order_no", hostile.Str(c.MchOrderNo)).
		Set("status", hostile.Str(c.Status)).Set("apply_amount", c.Amount).Set("real_amount", real).
		Set("pay_type", hostile.Str(c.PayType)).Set("sub_pay_type", "null").Set("remark", remark).
		Set("user_ext", hostile.Str(c.UserExt)).Set("timestamp", c.Timestamp)
}

// objSign is Sign over o's fields as Verify decodes them (numbers exact),
// its sign field left out.
func objSign(o *hostile.Obj, secret string) (string, error) {
	m, ok := simwire.DecodeFlat(o.Clone().Del("sign").Bytes())
	if !ok {
		return "", errors.New("jpglo: a callback to sign is not a JSON object")
	}
	return Sign(m, secret), nil
}

// signedObj is o (a copy) with its sign field, last, under secret.
func signedObj(o *hostile.Obj, secret string) (*hostile.Obj, error) {
	s, err := objSign(o, secret)
	if err != nil {
		return nil, err
	}
	return o.Clone().Del("sign").Set("sign", hostile.Str(s)), nil
}
