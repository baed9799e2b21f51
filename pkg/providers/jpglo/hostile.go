package jpglo

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/hostile"
)

// jpglo's wire for the bad-input corpus (hostile.Provider): JSON callbacks
// signed in a "sign" field over the fields sorted by name, nulls skipped
// (sign.go), and what Verify and decodeFields answer each mutation with.

var _ hostile.Provider = (*Provider)(nil)

// HostileAccounts are an INR and a BRL account with throwaway keys.
func (p *Provider) HostileAccounts() []providers.Account {
	return []providers.Account{
		{ID: "glo-in", Provider: Name, Keys: providers.Keys{"merchant_id": "1", "secret": "badinput-jpglo-secret-5d1f"}, Currency: "INR"},
		{ID: "glo-br", Provider: Name, Keys: providers.Keys{"merchant_id": "2", "secret": "badinput-jpglo-br-secret-88aa"}, Currency: "BRL"},
	}
}

// HostileWire: a JSON body of up to MaxBody bytes; a cut body no longer
// parses; a foreign JSON body has no sign field, or is refused before for
// a nested object (a Stripe event), any other is not JSON.
func (p *Provider) HostileWire() hostile.Wire {
	return hostile.Wire{
		Format: hostile.FormatJSON, MaxBody: MaxBody,
		Truncated: hostile.Rejected(hostile.ReasonMalformed),
		Foreign: map[hostile.Format]hostile.Want{
			hostile.FormatJSON: hostile.Rejected(hostile.ReasonMissingField, hostile.ReasonMalformed),
			hostile.FormatForm: hostile.Rejected(hostile.ReasonMalformed),
			hostile.FormatText: hostile.Rejected(hostile.ReasonMalformed),
		},
	}
}

// HostileCallback is a payin (four in five) or an appeal callback.
func (p *Provider) HostileCallback(g hostile.Gen, acct providers.Account, orderID string) *hostile.Callback {
	amt := strconv.Itoa(10000 + g.IntN(9990000)) // minor units
	ts := strconv.Itoa(1700000000 + g.IntN(50000000))
	c := &hostile.Callback{Account: acct, Kind: events.KindPayin}
	if g.IntN(5) == 0 {
		c.Kind = events.KindAppeal
		c.Obj = callback{Kind: events.KindAppeal, MchOrderNo: orderID, OrderNo: "2203" + g.Digits(12),
			InquiryNo: "INQ" + orderID, InquiryOrderNo: "2205" + g.Digits(12),
			Status: g.Pick([]string{"success", "success", "fail"}), Amount: amt,
			UserRemark: "I've paid!", Reason: "已完成充值", Timestamp: ts}.obj()
		return c
	}
	ext := `{"user_id":"` + g.Digits(6) + `","real_name":"Asha Verma","phone":"9876543210","email":"asha@example.com"}`
	remark := ""
	c.Obj = callback{Kind: events.KindPayin, OrderNo: "2202" + g.Digits(12), MchOrderNo: orderID,
		Status: g.Pick([]string{"success", "success", "success", "fail"}), Amount: amt, RealAmount: amt,
		PayType: g.Pick([]string{"upi", "upi_gpay", "pix", "qris", "bankcard"}), Remark: &remark, UserExt: ext,
		Timestamp: ts}.obj()
	return c
}

// HostileSign adds the sign field, computed with Sign over the body as
// Verify decodes it (numbers exact).
func (p *Provider) HostileSign(acct providers.Account, c *hostile.Callback) (http.Header, []byte, error) {
	o, err := signedObj(c.Obj, acct.Key("secret"))
	if err != nil {
		return nil, nil, err
	}
	return hostile.JSONHeader(), o.Bytes(), nil
}

// HostileMutations are jpglo's own mutations.
func (p *Provider) HostileMutations() []hostile.Mutation {
	return hostile.Build(addPreserving, addSignature, addTampering, addReplays,
		addEncodings, addStructure, addNumbers, addSemantics, addMerchant)
}

type mutateFunc = func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error)

// amountKey and textKey are the callback kind's amount and free-text fields.
func amountKey(c *hostile.Callback) string {
	if c.Kind == events.KindAppeal {
		return "inquiry_amount"
	}
	return "real_amount"
}

func textKey(c *hostile.Callback) string {
	if c.Kind == events.KindAppeal {
		return "user_remark"
	}
	return "remark"
}

func post(o *hostile.Obj, w hostile.Want) (hostile.Result, error) {
	return hostile.Result{Header: hostile.JSONHeader(), Body: o.Bytes(), Want: w}, nil
}

// afterSigning signs c, then lets f change the signed object.
func afterSigning(w hostile.Want, f func(g hostile.Gen, c *hostile.Callback, o *hostile.Obj) *hostile.Obj) mutateFunc {
	return func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		o, err := signedObj(c.Obj, c.Account.Key("secret"))
		if err != nil {
			return hostile.Result{}, err
		}
		return post(f(g, c, o), w)
	}
}

// bytesAfterSigning signs c, then lets f change the body's bytes.
func bytesAfterSigning(w hostile.Want, f func(g hostile.Gen, c *hostile.Callback, body []byte) []byte) mutateFunc {
	return func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		o, err := signedObj(c.Obj, c.Account.Key("secret"))
		if err != nil {
			return hostile.Result{}, err
		}
		return hostile.Result{Header: hostile.JSONHeader(), Body: f(g, c, o.Bytes()), Want: w}, nil
	}
}

type objChange = func(g hostile.Gen, c *hostile.Callback, o *hostile.Obj) *hostile.Obj

func addPreserving(ms *hostile.Mutations) {
	nullSkipped := hostile.Valid("jpglo skips null fields when signing")
	ms.Add(hostile.ClassPreserving, "keys reordered", hostile.BeforeSigning(hostile.Valid("jpglo signs fields sorted by name; key order is not signed"),
		func(g hostile.Gen, c *hostile.Callback) { c.Obj = c.Obj.Reversed() }))
	ms.Add(hostile.ClassPreserving, "whitespace between tokens", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		o, err := signedObj(c.Obj, c.Account.Key("secret"))
		if err != nil {
			return hostile.Result{}, err
		}
		return hostile.Result{Header: hostile.JSONHeader(), Body: o.Render(g.Pick([]string{" ", "\n", "\t", " \r\n  "})), Want: hostile.Valid("JSON whitespace is not signed")}, nil
	})
	ms.Add(hostile.ClassPreserving, "null field added after signing", afterSigning(nullSkipped, func(g hostile.Gen, c *hostile.Callback, o *hostile.Obj) *hostile.Obj {
		return o.Set(g.Pick([]string{"note", "sub_pay_type2", "extra"}), "null")
	}))
	ms.Add(hostile.ClassPreserving, "null field removed after signing", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		c.Obj.Set("device_note", "null")
		o, err := signedObj(c.Obj, c.Account.Key("secret"))
		if err != nil {
			return hostile.Result{}, err
		}
		return post(o.Del("device_note"), nullSkipped)
	})
	ms.Add(hostile.ClassPreserving, "string written with \\u escapes", afterSigning(hostile.Valid("escapes decode to the same signed text"), func(g hostile.Gen, c *hostile.Callback, o *hostile.Obj) *hostile.Obj {
		raw := o.Get("mch_order_no") // "BI..."
		return o.Set("mch_order_no", fmt.Sprintf(`"\u%04x%s`, raw[1], raw[2:]))
	}))
}

func addSignature(ms *hostile.Mutations) {
	ms.Add(hostile.ClassBadSignature, "signed with a wrong key", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		o, err := signedObj(c.Obj, "wrong-"+c.Account.Key("secret"))
		if err != nil {
			return hostile.Result{}, err
		}
		return post(o, hostile.Rejected(hostile.ReasonBadSignature))
	})
	for _, v := range []struct {
		name   string
		reason string
		f      func(s string) string
	}{
		{"sign in lower case", hostile.ReasonBadSignature, strings.ToLower},
		{"sign one digit changed", hostile.ReasonBadSignature, func(s string) string { return s[:5] + hostile.FlipHex(s[5]) + s[6:] }},
		{"sign empty", hostile.ReasonBadSignature, func(string) string { return `""` }},
		{"sign padded with spaces", hostile.ReasonBadSignature, func(s string) string { return `" ` + s[1:len(s)-1] + ` "` }},
		{"sign 64 hex digits", hostile.ReasonBadSignature, func(s string) string { return `"` + s[1:len(s)-1] + s[1:len(s)-1] + `"` }},
		{"sign null", hostile.ReasonMissingField, func(string) string { return "null" }},
		{"sign a number", hostile.ReasonMalformed, func(string) string { return "12345" }},
		{"sign an array", hostile.ReasonMalformed, func(s string) string { return "[" + s + "]" }},
	} {
		ms.Add(hostile.ClassBadSignature, v.name, afterSigning(hostile.Rejected(v.reason), func(g hostile.Gen, c *hostile.Callback, o *hostile.Obj) *hostile.Obj {
			return o.Set("sign", v.f(o.Get("sign")))
		}))
	}
	ms.Add(hostile.ClassBadSignature, "sign removed", afterSigning(hostile.Rejected(hostile.ReasonMissingField), func(g hostile.Gen, c *hostile.Callback, o *hostile.Obj) *hostile.Obj {
		return o.Del("sign")
	}))
}

func flipStatus(g hostile.Gen, c *hostile.Callback, o *hostile.Obj) *hostile.Obj {
	if o.Get("status") == `"success"` {
		return o.Set("status", `"fail"`)
	}
	return o.Set("status", `"success"`)
}

func bumpAmount(g hostile.Gen, c *hostile.Callback, o *hostile.Obj) *hostile.Obj {
	return o.Set(amountKey(c), hostile.BumpDigits(o.Get(amountKey(c))))
}

// addTampering changes signed content after signing.
func addTampering(ms *hostile.Mutations) {
	bad := hostile.Rejected(hostile.ReasonBadSignature)
	ms.Add(hostile.ClassTampered, "amount changed", afterSigning(bad, bumpAmount))
	ms.Add(hostile.ClassTampered, "status flipped", afterSigning(bad, flipStatus))
	ms.Add(hostile.ClassTampered, "merchant order id changed", afterSigning(bad, func(g hostile.Gen, c *hostile.Callback, o *hostile.Obj) *hostile.Obj {
		return o.Set("mch_order_no", hostile.BumpDigits(o.Get("mch_order_no")))
	}))
	ms.Add(hostile.ClassTampered, "non-null field added", afterSigning(bad, func(g hostile.Gen, c *hostile.Callback, o *hostile.Obj) *hostile.Obj {
		return o.Set("bonus", g.Pick([]string{`"x"`, `""`, "0", "false", "[]"}))
	}))
	ms.Add(hostile.ClassTampered, "empty-string field removed", afterSigning(bad, func(g hostile.Gen, c *hostile.Callback, o *hostile.Obj) *hostile.Obj {
		return o.Del(textKey(c))
	}))
	ms.Add(hostile.ClassTampered, "amount respelled as a float", afterSigning(bad, func(g hostile.Gen, c *hostile.Callback, o *hostile.Obj) *hostile.Obj {
		return o.Set(amountKey(c), o.Get(amountKey(c))+".0")
	}))
	// "a&b=c" in one value signs as the same text as two fields; Verify
	// refuses a value that could be read that way.
	ms.Add(hostile.ClassTampered, "pay_type absorbs real_amount (&name= forgery, same signing text)", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		if c.Kind != events.KindPayin {
			return hostile.Result{}, hostile.ErrRetry
		}
		return afterSigning(hostile.Rejected(hostile.ReasonMalformed), func(g hostile.Gen, c *hostile.Callback, o *hostile.Obj) *hostile.Obj {
			pt := o.Get("pay_type")
			return o.Set("pay_type", pt[:len(pt)-1]+"&real_amount="+o.Get("real_amount")+`"`).Del("real_amount")
		})(g, c)
	})
	ms.Add(hostile.ClassTampered, "unicode edge inserted after signing", afterSigning(bad, func(g hostile.Gen, c *hostile.Callback, o *hostile.Obj) *hostile.Obj {
		return o.Set(textKey(c), hostile.Str(g.Pick(hostile.UnicodeEdges)))
	}))
}

// addReplays changes accepted callbacks and sends them again under their
// old signature.
func addReplays(ms *hostile.Mutations) {
	for _, v := range []struct {
		name string
		f    objChange
	}{
		{"amount raised", bumpAmount},
		{"timestamp refreshed", func(g hostile.Gen, c *hostile.Callback, o *hostile.Obj) *hostile.Obj {
			return o.Set("timestamp", hostile.BumpDigits(o.Get("timestamp")))
		}},
		{"order id swapped", func(g hostile.Gen, c *hostile.Callback, o *hostile.Obj) *hostile.Obj {
			return o.Set("mch_order_no", hostile.Str("BI-REPLAY-"+g.Digits(8)))
		}},
		{"status flipped", flipStatus},
	} {
		ms.Add(hostile.ClassReplayTampered, "replay: "+v.name, func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
			*c = *g.Original()
			return afterSigning(hostile.Rejected(hostile.ReasonBadSignature), v.f)(g, c)
		})
	}
}

// addEncodings: the body in other encodings, unicode edges in its strings,
// and in the format of other content types.
func addEncodings(ms *hostile.Mutations) {
	malformed := hostile.Rejected(hostile.ReasonMalformed)
	ms.Add(hostile.ClassWrongEncoding, "latin-1 body", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		c.Obj.Set(textKey(c), hostile.Str("café Zoë"))
		return bytesAfterSigning(malformed, func(g hostile.Gen, c *hostile.Callback, body []byte) []byte { return hostile.Latin1(body) })(g, c)
	})
	ms.Add(hostile.ClassWrongEncoding, "UTF-16 body", bytesAfterSigning(malformed, func(g hostile.Gen, c *hostile.Callback, body []byte) []byte {
		return hostile.UTF16(body, g.IntN(2) == 0, g.IntN(2) == 0)
	}))
	ms.Add(hostile.ClassWrongEncoding, "invalid UTF-8 in a string", bytesAfterSigning(malformed, func(g hostile.Gen, c *hostile.Callback, body []byte) []byte {
		return bytes.Replace(body, []byte(`"mch_order_no":"`), []byte(`"mch_order_no":"`+g.Pick(hostile.InvalidUTF8)), 1)
	}))
	ms.Add(hostile.ClassWrongEncoding, "UTF-8 BOM before the object", bytesAfterSigning(malformed, func(g hostile.Gen, c *hostile.Callback, body []byte) []byte {
		return append([]byte("\xef\xbb\xbf"), body...)
	}))

	ms.Add(hostile.ClassUnicodeEdge, "unicode edge in a signed free-text field", hostile.BeforeSigning(hostile.Valid("free text is data; the signature covers it"), func(g hostile.Gen, c *hostile.Callback) {
		c.Obj.Set(textKey(c), hostile.Str(g.Pick(hostile.UnicodeEdges)))
	}))
	ms.Add(hostile.ClassUnicodeEdge, "unicode edge in user_ext names", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		if c.Kind != events.KindPayin {
			return hostile.Result{}, hostile.ErrRetry
		}
		ext := `{"user_id":"1","real_name":"` + strings.ReplaceAll(g.Pick(hostile.UnicodeEdges), "\x00", `\u0000`) + `","email":"a@example.com"}`
		c.Obj.Set("user_ext", hostile.Str(ext))
		return hostile.Result{Want: hostile.Valid("user_ext is a signed JSON string; its content is data")}, nil
	})
	ms.Add(hostile.ClassUnicodeEdge, "printable unicode edge in the merchant order id", hostile.BeforeSigning(hostile.Valid("printable order ids are opaque signed data"), func(g hostile.Gen, c *hostile.Callback) {
		c.Obj.Set("mch_order_no", hostile.Str("BI-"+g.Digits(6)+g.Pick(hostile.IDEdgesOK)))
	}))
	ms.Add(hostile.ClassUnicodeEdge, "control or format character in the merchant order id", hostile.BeforeSigning(hostile.Rejected(hostile.ReasonInvalidEvent), func(g hostile.Gen, c *hostile.Callback) {
		c.Obj.Set("mch_order_no", hostile.Str("BI-"+g.Digits(6)+g.Pick(hostile.IDEdgesBad)))
	}))
	ms.Add(hostile.ClassUnicodeEdge, "raw control character inside a string", bytesAfterSigning(malformed, func(g hostile.Gen, c *hostile.Callback, body []byte) []byte {
		return bytes.Replace(body, []byte(`"mch_order_no":"`), []byte(`"mch_order_no":"`+g.Pick([]string{"\x00", "\n", "\x1b", "\t"})), 1)
	}))

	ms.Add(hostile.ClassContentType, "form-encoded body", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		o, err := signedObj(c.Obj, c.Account.Key("secret"))
		if err != nil {
			return hostile.Result{}, err
		}
		return hostile.Result{Header: hostile.FormHeader(), Body: o.AsForm().Render(), Want: malformed}, nil
	})
	ms.Add(hostile.ClassContentType, "XML body", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		body := "<xml><mch_order_no>" + g.Digits(8) + "</mch_order_no><status>success</status></xml>"
		return hostile.Result{Header: hostile.ContentType("application/xml"), Body: []byte(body), Want: malformed}, nil
	})
}

// addStructure: keys given twice and nesting past the decoder's depth.
func addStructure(ms *hostile.Mutations) {
	malformed := hostile.Rejected(hostile.ReasonMalformed)
	ms.Add(hostile.ClassDuplicateKey, "key repeated", afterSigning(malformed, func(g hostile.Gen, c *hostile.Callback, o *hostile.Obj) *hostile.Obj {
		k := g.Pick([]string{amountKey(c), "mch_order_no", "status", "sign", "timestamp"})
		v := o.Get(k)
		if g.IntN(2) == 0 {
			v = hostile.BumpDigits(v)
		}
		return o.Add(k, v)
	}))
	ms.Add(hostile.ClassDeeplyNested, "deeply nested array in a field", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		c.Obj.Set(textKey(c), hostile.Nested(g.PickInt([]int{17, 100, 10000, 30000}), "[", "]", "1"))
		return post(c.Obj.Clone().Set("sign", hostile.Str("00000000000000000000000000000000")), malformed)
	})
	ms.Add(hostile.ClassDeeplyNested, "nested object in a field (signed)", hostile.BeforeSigning(malformed, func(g hostile.Gen, c *hostile.Callback) {
		c.Obj.Set(textKey(c), hostile.Nested(1+g.IntN(10), `{"a":`, "}", "1"))
	}))
	ms.Add(hostile.ClassDeeplyNested, "body is a deep array", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		return hostile.Result{Header: hostile.JSONHeader(), Body: []byte(hostile.Nested(20000, "[", "]", "")), Want: malformed}, nil
	})
	ms.Add(hostile.ClassDeeplyNested, "unterminated deep nesting", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		return hostile.Result{Header: hostile.JSONHeader(), Body: []byte(`{"a":` + strings.Repeat("[", 30000)), Want: malformed}, nil
	})
}

// addNumbers: amounts and timestamps out of range, validly signed.
func addNumbers(ms *hostile.Mutations) {
	hostile.AddMinorUnitEdges(ms, "amount", func(c *hostile.Callback, raw string) { c.Obj.Set(amountKey(c), raw) },
		func(string) hostile.Want { return hostile.Rejected(hostile.ReasonBadAmount) })
	hostile.AddUnixTimeEdges(ms, "timestamp", []string{"0"}, func(c *hostile.Callback, raw string) { c.Obj.Set("timestamp", raw) },
		hostile.Rejected(hostile.ReasonMalformed))
}

// addSemantics: validly signed callbacks that say something Parse refuses,
// and callbacks of one kind posted to the other kind's URL.
func addSemantics(ms *hostile.Mutations) {
	hostile.AddEdits(ms, hostile.ClassSemantic, []hostile.Edit{
		{Name: "merchant order id removed", Reason: hostile.ReasonMissingField, F: func(g hostile.Gen, c *hostile.Callback) { c.Obj.Del("mch_order_no") }},
		{Name: "merchant order id empty", Reason: hostile.ReasonMissingField, F: func(g hostile.Gen, c *hostile.Callback) { c.Obj.Set("mch_order_no", `""`) }},
		{Name: "merchant order id a number", Reason: hostile.ReasonMalformed, F: func(g hostile.Gen, c *hostile.Callback) { c.Obj.Set("mch_order_no", g.Digits(10)) }},
		{Name: "status pending", Reason: hostile.ReasonBadStatus, F: func(g hostile.Gen, c *hostile.Callback) {
			c.Obj.Set("status", hostile.Str(g.Pick([]string{"pending", "SUCCESS", "success ", "ok"})))
		}},
		{Name: "status removed", Reason: hostile.ReasonMissingField, F: func(g hostile.Gen, c *hostile.Callback) { c.Obj.Del("status") }},
		{Name: "timestamp removed", Reason: hostile.ReasonMissingField, F: func(g hostile.Gen, c *hostile.Callback) { c.Obj.Del("timestamp") }},
		{Name: "field name not an identifier", Reason: hostile.ReasonMalformed, F: func(g hostile.Gen, c *hostile.Callback) {
			c.Obj.Set(g.Pick([]string{"bad-name", "a=b", "x&y", "", "ключ"}), `"1"`)
		}},
	})
	ms.Add(hostile.ClassSemantic, "body not an object", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		body := g.Pick([]string{"[]", "null", `"x"`, "42", "true"})
		return hostile.Result{Header: hostile.JSONHeader(), Body: []byte(body), Want: hostile.Rejected(hostile.ReasonMalformed)}, nil
	})
	ms.Add(hostile.ClassSemantic, "data after the object", bytesAfterSigning(hostile.Rejected(hostile.ReasonMalformed), func(g hostile.Gen, c *hostile.Callback, body []byte) []byte {
		return append(body, g.Pick([]string{"{}", " x", "\n{\"a\":1}"})...)
	}))
	ms.Add(hostile.ClassSemantic, "appeal callback posted as payin", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		if c.Kind != events.KindAppeal {
			return hostile.Result{}, hostile.ErrRetry
		}
		return hostile.Result{Path: hostile.Path(Name, c.Account.ID, events.KindPayin), Want: hostile.Rejected(hostile.ReasonWrongKind)}, nil
	})
	ms.Add(hostile.ClassWrongKind, "payin callback posted as appeal", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		if c.Kind != events.KindPayin {
			return hostile.Result{}, hostile.ErrRetry
		}
		return hostile.Result{Path: hostile.Path(Name, c.Account.ID, events.KindAppeal), Want: hostile.Rejected(hostile.ReasonMissingField)}, nil
	})
}

// addMerchant: callbacks naming another merchant, posted to another
// account, and fields over their limits.
func addMerchant(ms *hostile.Mutations) {
	ms.Add(hostile.ClassAccountMismatch, "mch_id of another merchant (signed)", hostile.BeforeSigning(hostile.Rejected(hostile.ReasonAccountMismatch), func(g hostile.Gen, c *hostile.Callback) {
		c.Obj.Set("mch_id", g.Pick([]string{"999", `"2"`, `"1 "`, "0"}))
		if c.Account.Key("merchant_id") == "2" && c.Obj.Get("mch_id") == `"2"` {
			c.Obj.Set("mch_id", "3")
		}
	}))
	ms.Add(hostile.ClassAccountMismatch, "signed with the other account's key, posted to it, naming this merchant", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		to := g.OtherAccount(c.Account)
		o, err := signedObj(c.Obj.Set("mch_id", hostile.Str(c.Account.Key("merchant_id"))), to.Key("secret"))
		if err != nil {
			return hostile.Result{}, err
		}
		return hostile.Result{Path: hostile.Path(Name, to.ID, c.Kind), Header: hostile.JSONHeader(), Body: o.Bytes(), Want: hostile.Rejected(hostile.ReasonAccountMismatch)}, nil
	})
	ms.Add(hostile.ClassCrossAccount, "callback of one account posted to the other account's URL", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		o, err := signedObj(c.Obj, c.Account.Key("secret"))
		if err != nil {
			return hostile.Result{}, err
		}
		to := g.OtherAccount(c.Account)
		return hostile.Result{Path: hostile.Path(Name, to.ID, c.Kind), Header: hostile.JSONHeader(), Body: o.Bytes(), Want: hostile.Rejected(hostile.ReasonBadSignature)}, nil
	})
	ms.Add(hostile.ClassHugeField, "merchant order id over 128 bytes (signed)", hostile.BeforeSigning(hostile.Rejected(hostile.ReasonMalformed), func(g hostile.Gen, c *hostile.Callback) {
		c.Obj.Set("mch_order_no", hostile.Str(strings.Repeat("9", g.PickInt([]int{129, 1000, 40000}))))
	}))
	ms.Add(hostile.ClassHugeField, "field name over 64 bytes (signed)", hostile.BeforeSigning(hostile.Rejected(hostile.ReasonMalformed), func(g hostile.Gen, c *hostile.Callback) {
		c.Obj.Set(strings.Repeat("k", 65+g.IntN(100)), `"v"`)
	}))
}
