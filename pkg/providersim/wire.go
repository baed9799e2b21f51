package providersim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers/jpglo"
)

// payload is one callback as it goes on the wire.
type payload struct {
	header http.Header
	body   []byte
}

// build renders the callback the provider sends for ord in status. Called
// with s.mu held; ord's fields are stable.
func build(ord *order, status Outcome, corrupt bool) (payload, error) {
	if sp, ok := simulated[ord.o.Provider]; ok {
		return buildSimulated(sp, ord, status, corrupt)
	}
	switch ord.o.Provider {
	case jpglo.Name:
		return buildJpglo(ord, status, corrupt)
	}
	return payload{}, fmt.Errorf("%w: %s sends no callbacks", ErrUnsupported, ord.o.Provider)
}

// corruptHex flips the first hex digit of a signature, keeping its case.
func corruptHex(sign string) string {
	if sign == "" {
		return "0"
	}
	b := []byte(sign)
	switch {
	case b[0] == '0':
		b[0] = '1'
	case b[0] >= 'a' && b[0] <= 'f', b[0] >= 'A' && b[0] <= 'F':
		b[0]--
		if b[0] == 'a'-1 || b[0] == 'A'-1 {
			b[0] = '9'
		}
	default:
		b[0] = '0'
	}
	return string(b)
}

func minor(m events.Money, places int) json.Number {
	n, err := m.Minor(places)
	if err != nil {
		return json.Number("0") // CreateOrder checked the precision
	}
	return json.Number(n.String())
}

// buildJpglo renders seed 004 "支付回调" / "申诉回调": a JSON object signed
// with jpglo.Sign (sorted non-null fields, &key=, MD5 upper). Amounts are
// integer 分; real_amount is null unless the order succeeded, like the query.
func buildJpglo(ord *order, status Outcome, corrupt bool) (payload, error) {
	st := "success"
	if status == Failed {
		st = "fail"
	}
	stamp := ord.providerStamp
	if stamp.IsZero() {
		stamp = time.Now()
	}
	var f map[string]any
	if ord.o.Kind == events.KindAppeal {
		reason := "已完成充值"
		if status == Failed {
			reason = "未查到付款"
		}
		f = map[string]any{
			"mch_order_no":     ord.o.MerchantOrderID,
			"order_no":         ord.o.ProviderOrderID,
			"mch_inquiry_no":   ord.o.AppealNo,
			"inquiry_order_no": ord.inquiryNo,
			"status":           st,
			"inquiry_amount":   minor(ord.paid, 2),
			"user_remark":      "I've paid!",
			"reason":           reason,
			"timestamp":        stamp.Unix(),
		}
	} else {
		var real any
		if status == Succeeded {
			real = minor(ord.paid, 2)
		}
		f = map[string]any{
			"order_no":     ord.o.ProviderOrderID,
			"mch_order_no": ord.o.MerchantOrderID,
			"status":       st,
			"apply_amount": minor(ord.amount, 2),
			"real_amount":  real,
			"pay_type":     ord.payType,
			"sub_pay_type": nil,
			"remark":       nil,
			"user_ext":     `{"user_id":"sim-user"}`,
			"timestamp":    stamp.Unix(),
		}
	}
	sign := jpglo.Sign(f, ord.acct.Key("secret"))
	if corrupt {
		sign = corruptHex(sign)
	}
	f["sign"] = sign
	body, err := json.Marshal(f)
	if err != nil {
		return payload{}, err
	}
	return payload{header: http.Header{"Content-Type": {"application/json"}}, body: body}, nil
}

type kv struct {
	k string
	v any
}

// marshalOrdered writes a JSON object with keys in the given order.
func marshalOrdered(f []kv) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range f {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(e.k)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(e.v)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// ackOf reports whether reply is the provider's "received": jpglo
// {"status":0,...}; mrnpay HTTP 200 "success"; mpurse "SUCCESS"; cashypro
// HTTP 200, 301 or 302 whatever the body.
func ackOf(provider string, status int, body []byte) bool {
	if sp, ok := simulated[provider]; ok {
		return sp.SimAcked(status, body)
	}
	switch provider {
	case jpglo.Name:
		if status < 200 || status > 299 {
			return false
		}
		var r map[string]any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&r); err != nil {
			return false
		}
		n, ok := r["status"].(json.Number)
		return ok && n == "0"
	}
	return false
}

func bigInt(n int64) *big.Int { return big.NewInt(n) }
