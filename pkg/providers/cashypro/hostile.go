package cashypro

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

// cashypro's wire for the bad-input corpus (hostile.Provider): a JSON body
// signed in the Sign header over its fields sorted by name, nulls and
// empty values skipped (sign.go), with the merchant id in the MerchantId
// header, checked before the signature; and what Verify answers each
// mutation with.

var _ hostile.Provider = (*Provider)(nil)

// HostileAccounts are two IDR accounts with throwaway keys.
func (p *Provider) HostileAccounts() []providers.Account {
	return []providers.Account{
		{ID: "cp-id", Provider: Name, Keys: providers.Keys{"merchant_id": "BI1002001", "secret": "badinput-cashypro-secret-1"}, Currency: "IDR"},
		{ID: "cp-2", Provider: Name, Keys: providers.Keys{"merchant_id": "BI1002002", "secret": "badinput-cashypro-secret-2"}, Currency: "IDR"},
	}
}

// HostileWire: a JSON body of up to MaxBody bytes; a cut body no longer
// parses; a foreign callback has no MerchantId header.
func (p *Provider) HostileWire() hostile.Wire {
	missing := hostile.Rejected(hostile.ReasonMissingField)
	return hostile.Wire{
		Format: hostile.FormatJSON, MaxBody: MaxBody,
		Truncated: hostile.Rejected(hostile.ReasonMalformed),
		Foreign:   map[hostile.Format]hostile.Want{hostile.FormatJSON: missing, hostile.FormatForm: missing, hostile.FormatText: missing},
	}
}

// HostileCallback is a QRIS payin in whole rupiah.
func (p *Provider) HostileCallback(g hostile.Gen, acct providers.Account, orderID string) *hostile.Callback {
	amt := 10000 + g.IntN(9990000)
	completed := fmt.Sprintf("2025-%02d-%02d %02d:%02d:%02d", 1+g.IntN(12), 1+g.IntN(28), g.IntN(24), g.IntN(60), g.IntN(60))
	return &hostile.Callback{Account: acct, Kind: events.KindPayin, Obj: callback{
		Amount: strconv.Itoa(amt/100*100) + ".00", Fee: strconv.Itoa(amt/1000) + ".0000", CompletionTime: completed,
		ChannelOrderNo: "QR" + g.Digits(10), MchOrderNo: orderID, MerchantID: acct.Key("merchant_id"),
		NonceStr: g.Digits(13), OrderNo: "PAYIN" + g.Digits(19),
		OrderStatus: g.Pick([]string{"SUCCESS", "SUCCESS", "SUCCESS", "FAIL", "PAYING"}),
		PayCode:     "OR.GPNQR.BI", PayType: "41", PayURL: "https://payurl.example/" + g.Digits(8),
	}.obj()}
}

// HostileSign signs c's body with signHeaders under acct.
func (p *Provider) HostileSign(acct providers.Account, c *hostile.Callback) (http.Header, []byte, error) {
	return signCallback(acct, c)
}

// signCallback is c's body and its headers under acct.
func signCallback(acct providers.Account, c *hostile.Callback) (http.Header, []byte, error) {
	body := c.Obj.Bytes()
	h, err := signHeaders(acct, body)
	return h, body, err
}

// HostileMutations are cashypro's own mutations.
func (p *Provider) HostileMutations() []hostile.Mutation {
	return hostile.Build(addPreserving, addSignature, addTampering, addEncodings, addStructure, addSemantics, addMerchant)
}

type mutateFunc = func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error)

// afterSigning signs c, then lets f change the headers and the object.
func afterSigning(w hostile.Want, f func(g hostile.Gen, c *hostile.Callback, h http.Header, o *hostile.Obj) []byte) mutateFunc {
	return func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		h, _, err := signCallback(c.Account, c)
		if err != nil {
			return hostile.Result{}, err
		}
		return hostile.Result{Header: h, Body: f(g, c, h, c.Obj.Clone()), Want: w}, nil
	}
}

func flipStatus(o *hostile.Obj) *hostile.Obj {
	if o.Get("orderStatus") == `"SUCCESS"` {
		return o.Set("orderStatus", `"FAIL"`)
	}
	return o.Set("orderStatus", `"SUCCESS"`)
}

func addPreserving(ms *hostile.Mutations) {
	ms.Add(hostile.ClassPreserving, "keys reordered", afterSigning(hostile.Valid("cashypro signs fields sorted by name"), func(g hostile.Gen, c *hostile.Callback, h http.Header, o *hostile.Obj) []byte {
		return o.Reversed().Bytes()
	}))
	ms.Add(hostile.ClassPreserving, "whitespace between tokens", afterSigning(hostile.Valid("JSON whitespace is not signed"), func(g hostile.Gen, c *hostile.Callback, h http.Header, o *hostile.Obj) []byte {
		return o.Render(" \n ")
	}))
	ms.Add(hostile.ClassPreserving, "null or empty field added", afterSigning(hostile.Valid("null and empty values are skipped when signing"), func(g hostile.Gen, c *hostile.Callback, h http.Header, o *hostile.Obj) []byte {
		return o.Set(g.Pick([]string{"remark", "extra", "attach"}), g.Pick([]string{"null", `""`})).Bytes()
	}))
	ms.Add(hostile.ClassPreserving, "header names in lower case", afterSigning(hostile.Valid("header names are case-insensitive"), func(g hostile.Gen, c *hostile.Callback, h http.Header, o *hostile.Obj) []byte {
		mid, sign := h.Get(HeaderMerchantID), h.Get(HeaderSign)
		h.Del(HeaderMerchantID)
		h.Del(HeaderSign)
		h["merchantid"], h["SIGN"] = []string{mid}, []string{sign}
		return o.Bytes()
	}))
	ms.Add(hostile.ClassPreserving, "Sign in lower-case hex", afterSigning(hostile.Valid("the digest's bytes are compared, not their hex spelling"), func(g hostile.Gen, c *hostile.Callback, h http.Header, o *hostile.Obj) []byte {
		h.Set(HeaderSign, strings.ToLower(h.Get(HeaderSign)))
		return o.Bytes()
	}))
	ms.Add(hostile.ClassPreserving, "amount written as a string", afterSigning(hostile.Valid("the signed text of a value is the same for 20000.00 and \"20000.00\""), func(g hostile.Gen, c *hostile.Callback, h http.Header, o *hostile.Obj) []byte {
		return o.Set("amount", `"`+o.Get("amount")+`"`).Bytes()
	}))
}

func addSignature(ms *hostile.Mutations) {
	ms.Add(hostile.ClassBadSignature, "signed with a wrong key", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		h, body, err := signCallback(c.Account.With("secret", "wrong-"+c.Account.Key("secret")), c)
		return hostile.Result{Header: h, Body: body, Want: hostile.Rejected(hostile.ReasonBadSignature)}, err
	})
	for _, v := range []struct {
		name   string
		reason string
		f      func(h http.Header)
	}{
		{"Sign removed", hostile.ReasonBadSignature, func(h http.Header) { h.Del(HeaderSign) }},
		{"Sign not hex", hostile.ReasonBadSignature, func(h http.Header) { h.Set(HeaderSign, strings.Repeat("Z", 32)) }},
		{"Sign 31 characters", hostile.ReasonBadSignature, func(h http.Header) { h.Set(HeaderSign, h.Get(HeaderSign)[1:]) }},
		{"Sign one digit changed", hostile.ReasonBadSignature, func(h http.Header) {
			s := h.Get(HeaderSign)
			h.Set(HeaderSign, s[:3]+hostile.FlipHex(s[3])+s[4:])
		}},
		{"Sign header repeated", hostile.ReasonMalformed, func(h http.Header) { h.Add(HeaderSign, h.Get(HeaderSign)) }},
		{"Sign of SHA-256 length", hostile.ReasonBadSignature, func(h http.Header) { h.Set(HeaderSign, strings.Repeat(h.Get(HeaderSign), 2)) }},
	} {
		ms.Add(hostile.ClassBadSignature, v.name, afterSigning(hostile.Rejected(v.reason), func(g hostile.Gen, c *hostile.Callback, h http.Header, o *hostile.Obj) []byte {
			v.f(h)
			return o.Bytes()
		}))
	}
}

// addTampering changes signed content after signing, on fresh callbacks,
// on replays of accepted ones, and on another account's URL.
func addTampering(ms *hostile.Mutations) {
	bad := hostile.Rejected(hostile.ReasonBadSignature)
	for _, v := range []struct {
		name string
		f    func(g hostile.Gen, c *hostile.Callback, o *hostile.Obj) *hostile.Obj
	}{
		{"amount changed", func(g hostile.Gen, c *hostile.Callback, o *hostile.Obj) *hostile.Obj {
			return o.Set("amount", strings.Replace(o.Get("amount"), ".00", g.Pick([]string{".01", "0.00", ".0"}), 1))
		}},
		{"orderStatus flipped", func(g hostile.Gen, c *hostile.Callback, o *hostile.Obj) *hostile.Obj { return flipStatus(o) }},
		{"order id changed", func(g hostile.Gen, c *hostile.Callback, o *hostile.Obj) *hostile.Obj {
			return o.Set("mchOrderNo", hostile.BumpDigits(o.Get("mchOrderNo")))
		}},
		{"signed field removed", func(g hostile.Gen, c *hostile.Callback, o *hostile.Obj) *hostile.Obj {
			return o.Del(g.Pick([]string{"fee", "payUrl", "nonceStr", "channelOrderNo"}))
		}},
		{"non-empty field added", func(g hostile.Gen, c *hostile.Callback, o *hostile.Obj) *hostile.Obj {
			return o.Set("remark", g.Pick([]string{`"x"`, "0", "false", `{"a":1}`}))
		}},
		{"body merchantId changed", func(g hostile.Gen, c *hostile.Callback, o *hostile.Obj) *hostile.Obj {
			return o.Set("merchantId", hostile.Str(g.OtherAccount(c.Account).Key("merchant_id")))
		}},
		{"unicode edge inserted after signing", func(g hostile.Gen, c *hostile.Callback, o *hostile.Obj) *hostile.Obj {
			return o.Set("payCode", hostile.Str(g.Pick(hostile.UnicodeEdges)))
		}},
	} {
		ms.Add(hostile.ClassTampered, v.name, afterSigning(bad, func(g hostile.Gen, c *hostile.Callback, h http.Header, o *hostile.Obj) []byte {
			return v.f(g, c, o).Bytes()
		}))
	}
	for _, name := range []string{"amount raised", "status flipped"} {
		ms.Add(hostile.ClassReplayTampered, "replay: "+name, func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
			*c = *g.Original()
			o := c.Obj.Clone()
			if name == "amount raised" {
				o.Set("amount", "9"+o.Get("amount"))
			} else {
				flipStatus(o)
			}
			return hostile.Result{Header: c.Header.Clone(), Body: o.Bytes(), Want: bad}, nil
		})
	}
	// The MerchantId header is checked before the signature.
	ms.Add(hostile.ClassCrossAccount, "callback of one account posted to the other account's URL", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		h, body, err := signCallback(c.Account, c)
		to := g.OtherAccount(c.Account)
		return hostile.Result{Path: hostile.Path(Name, to.ID, c.Kind), Header: h, Body: body, Want: hostile.Rejected(hostile.ReasonAccountMismatch)}, err
	})
}

// addEncodings: the body in other encodings and content types, unicode
// edges in its strings.
func addEncodings(ms *hostile.Mutations) {
	malformed := hostile.Rejected(hostile.ReasonMalformed)
	ms.Add(hostile.ClassWrongEncoding, "latin-1 body", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		c.Obj.Set("remark", hostile.Str("café Zoë"))
		h, body, err := signCallback(c.Account, c)
		return hostile.Result{Header: h, Body: hostile.Latin1(body), Want: malformed}, err
	})
	ms.Add(hostile.ClassWrongEncoding, "UTF-16 body", afterSigning(malformed, func(g hostile.Gen, c *hostile.Callback, h http.Header, o *hostile.Obj) []byte {
		return hostile.UTF16(o.Bytes(), g.IntN(2) == 0, g.IntN(2) == 0)
	}))
	ms.Add(hostile.ClassWrongEncoding, "invalid UTF-8 in a string", afterSigning(malformed, func(g hostile.Gen, c *hostile.Callback, h http.Header, o *hostile.Obj) []byte {
		return bytes.Replace(o.Bytes(), []byte(`"mchOrderNo":"`), []byte(`"mchOrderNo":"`+g.Pick(hostile.InvalidUTF8)), 1)
	}))
	ms.Add(hostile.ClassWrongEncoding, "UTF-8 BOM before the object", afterSigning(malformed, func(g hostile.Gen, c *hostile.Callback, h http.Header, o *hostile.Obj) []byte {
		return append([]byte("\xef\xbb\xbf"), o.Bytes()...)
	}))

	ms.Add(hostile.ClassUnicodeEdge, "unicode edge in a signed text field", hostile.BeforeSigning(hostile.Valid("free text is data; the signature covers it"), func(g hostile.Gen, c *hostile.Callback) {
		c.Obj.Set(g.Pick([]string{"payCode", "payUrl", "remark"}), hostile.Str(g.Pick(hostile.UnicodeEdges)))
	}))
	ms.Add(hostile.ClassUnicodeEdge, "printable unicode edge in the merchant order id (signed)", hostile.BeforeSigning(hostile.Valid("printable order ids are opaque signed data"), func(g hostile.Gen, c *hostile.Callback) {
		c.Obj.Set("mchOrderNo", hostile.Str("BI-"+g.Digits(6)+g.Pick(hostile.IDEdgesOK)))
	}))
	ms.Add(hostile.ClassUnicodeEdge, "control or format character in the merchant order id (signed)", hostile.BeforeSigning(hostile.Rejected(hostile.ReasonInvalidEvent), func(g hostile.Gen, c *hostile.Callback) {
		c.Obj.Set("mchOrderNo", hostile.Str("BI-"+g.Digits(6)+g.Pick(hostile.IDEdgesBad)))
	}))
	ms.Add(hostile.ClassUnicodeEdge, "raw control character inside a string", afterSigning(malformed, func(g hostile.Gen, c *hostile.Callback, h http.Header, o *hostile.Obj) []byte {
		return bytes.Replace(o.Bytes(), []byte(`"mchOrderNo":"`), []byte(`"mchOrderNo":"`+g.Pick([]string{"\x00", "\n", "\x1b"})), 1)
	}))

	ms.Add(hostile.ClassContentType, "form-encoded body", afterSigning(malformed, func(g hostile.Gen, c *hostile.Callback, h http.Header, o *hostile.Obj) []byte {
		h.Set("Content-Type", "application/x-www-form-urlencoded")
		return o.AsForm().Render()
	}))
	ms.Add(hostile.ClassContentType, "XML body", afterSigning(malformed, func(g hostile.Gen, c *hostile.Callback, h http.Header, o *hostile.Obj) []byte {
		h.Set("Content-Type", "text/xml")
		return []byte("<notify><mchOrderNo>" + g.Digits(8) + "</mchOrderNo></notify>")
	}))
}

// addStructure: keys and headers given twice, nesting, numbers out of range.
func addStructure(ms *hostile.Mutations) {
	malformed := hostile.Rejected(hostile.ReasonMalformed)
	ms.Add(hostile.ClassDuplicateKey, "key repeated", afterSigning(malformed, func(g hostile.Gen, c *hostile.Callback, h http.Header, o *hostile.Obj) []byte {
		k := g.Pick([]string{"amount", "mchOrderNo", "orderStatus", "merchantId"})
		return o.Add(k, o.Get(k)).Bytes()
	}))
	ms.Add(hostile.ClassDuplicateKey, "MerchantId header repeated", afterSigning(malformed, func(g hostile.Gen, c *hostile.Callback, h http.Header, o *hostile.Obj) []byte {
		h.Add(HeaderMerchantID, h.Get(HeaderMerchantID))
		return o.Bytes()
	}))
	ms.Add(hostile.ClassDeeplyNested, "deeply nested value", afterSigning(malformed, func(g hostile.Gen, c *hostile.Callback, h http.Header, o *hostile.Obj) []byte {
		return o.Set("remark", hostile.Nested(g.PickInt([]int{17, 1000, 30000}), "[", "]", "")).Bytes()
	}))
	ms.Add(hostile.ClassDeeplyNested, "body is a deep array", afterSigning(malformed, func(g hostile.Gen, c *hostile.Callback, h http.Header, o *hostile.Obj) []byte {
		return []byte(hostile.Nested(20000, "[", "]", ""))
	}))
	for _, v := range []string{"1e400", "-20000.00", strings.Repeat("9", 45), "2e4", `"NaN"`, `"20.000,00"`, "true"} {
		ms.Add(hostile.ClassHugeNumber, "amount "+hostile.ClipName(v), hostile.BeforeSigning(hostile.Rejected(hostile.ReasonBadAmount), func(g hostile.Gen, c *hostile.Callback) {
			c.Obj.Set("amount", v)
		}))
	}
}

// addSemantics: validly signed callbacks that say something Parse refuses.
func addSemantics(ms *hostile.Mutations) {
	missing := hostile.Rejected(hostile.ReasonMissingField)
	for _, v := range []struct {
		name string
		want hostile.Want
		f    func(g hostile.Gen, c *hostile.Callback)
	}{
		{"mchOrderNo removed", missing, func(g hostile.Gen, c *hostile.Callback) { c.Obj.Del("mchOrderNo") }},
		{"amount removed", missing, func(g hostile.Gen, c *hostile.Callback) { c.Obj.Del("amount") }},
		{"body merchantId removed", missing, func(g hostile.Gen, c *hostile.Callback) { c.Obj.Del("merchantId") }},
		{"orderStatus unknown", hostile.Rejected(hostile.ReasonBadStatus), func(g hostile.Gen, c *hostile.Callback) {
			c.Obj.Set("orderStatus", hostile.Str(g.Pick([]string{"DONE", "success", "PAID"})))
		}},
		{"completionTime malformed", hostile.Valid("an unreadable time falls back to received_at; a verified payment is not refused over it"), func(g hostile.Gen, c *hostile.Callback) {
			c.Obj.Set("completionTime", hostile.Str(g.Pick([]string{"2024/12/02 12:07:06", "2024-12-02T12:07:06Z", "now"})))
		}},
		{"mchOrderNo an object", hostile.Rejected(hostile.ReasonMalformed), func(g hostile.Gen, c *hostile.Callback) { c.Obj.Set("mchOrderNo", `{"id":"1"}`) }},
	} {
		ms.Add(hostile.ClassSemantic, v.name, hostile.BeforeSigning(v.want, v.f))
	}
	ms.Add(hostile.ClassSemantic, "body not an object", afterSigning(hostile.Rejected(hostile.ReasonMalformed), func(g hostile.Gen, c *hostile.Callback, h http.Header, o *hostile.Obj) []byte {
		return []byte(g.Pick([]string{"[]", "null", "42", `"x"`}))
	}))
}

// addMerchant: another merchant in the header or the body, and a field
// over its limit.
func addMerchant(ms *hostile.Mutations) {
	mismatch := hostile.Rejected(hostile.ReasonAccountMismatch)
	ms.Add(hostile.ClassAccountMismatch, "MerchantId header of another merchant", afterSigning(mismatch, func(g hostile.Gen, c *hostile.Callback, h http.Header, o *hostile.Obj) []byte {
		h.Set(HeaderMerchantID, g.Pick([]string{g.OtherAccount(c.Account).Key("merchant_id"), "0", c.Account.Key("merchant_id") + "0"}))
		return o.Bytes()
	}))
	ms.Add(hostile.ClassAccountMismatch, "MerchantId header missing", afterSigning(hostile.Rejected(hostile.ReasonMissingField), func(g hostile.Gen, c *hostile.Callback, h http.Header, o *hostile.Obj) []byte {
		h.Del(HeaderMerchantID)
		return o.Bytes()
	}))
	ms.Add(hostile.ClassAccountMismatch, "body merchantId of another merchant (signed)", hostile.BeforeSigning(mismatch, func(g hostile.Gen, c *hostile.Callback) {
		c.Obj.Set("merchantId", hostile.Str(g.OtherAccount(c.Account).Key("merchant_id")))
	}))
	ms.Add(hostile.ClassHugeField, "30 KB mchOrderNo (signed)", hostile.BeforeSigning(hostile.Rejected(hostile.ReasonInvalidEvent), func(g hostile.Gen, c *hostile.Callback) {
		c.Obj.Set("mchOrderNo", hostile.Str("BI-"+strings.Repeat("6", 30000)+g.Digits(6)))
	}))
}
