package mrnpay

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/hostile"
)

// mrnpay's wire for the bad-input corpus (hostile.Provider): form callbacks
// whose sign covers a fixed list of fields per kind (sign.go), and what
// Verify answers each mutation with.

var _ hostile.Provider = (*Provider)(nil)

// HostileAccounts are two CNY accounts with throwaway keys.
func (p *Provider) HostileAccounts() []providers.Account {
	return []providers.Account{
		{ID: "mrn-cn", Provider: Name, Keys: providers.Keys{"merchant_id": "bi-appkey-1", "secret": "badinput-mrnpay-secret-1"}, Currency: "CNY"},
		{ID: "mrn-2", Provider: Name, Keys: providers.Keys{"merchant_id": "bi-appkey-2", "secret": "badinput-mrnpay-secret-2"}, Currency: "CNY"},
	}
}

// HostileWire: a form of up to MaxBody bytes; a cut form loses its sign
// or part of an escape; a foreign body has no sign field.
func (p *Provider) HostileWire() hostile.Wire {
	missing := hostile.Rejected(hostile.ReasonMissingField)
	return hostile.Wire{
		Format: hostile.FormatForm, MaxBody: MaxBody,
		// A form cut inside an escape, before sign, or inside sign.
		Truncated: hostile.Rejected(hostile.ReasonBadSignature, hostile.ReasonMissingField, hostile.ReasonMalformed),
		Foreign:   map[hostile.Format]hostile.Want{hostile.FormatJSON: missing, hostile.FormatForm: missing, hostile.FormatText: missing},
	}
}

// HostileCallback is a payin (three in four) or a payout callback.
func (p *Provider) HostileCallback(g hostile.Gen, acct providers.Account, orderID string) *hostile.Callback {
	amt := 10000 + g.IntN(9990000) // fen
	if g.IntN(4) == 0 {
		return &hostile.Callback{Account: acct, Kind: events.KindPayout,
			Form: callbackForm(events.KindPayout, acct.Key("merchant_id"), orderID, "", strconv.Itoa(amt/100), "")}
	}
	return &hostile.Callback{Account: acct, Kind: events.KindPayin,
		Form: callbackForm(events.KindPayin, acct.Key("merchant_id"), orderID, strconv.Itoa(1+g.IntN(15)), hostile.Cents(amt), hostile.Cents(amt))}
}

// HostileSign appends the sign of the kind's fields under acct's secret.
func (p *Provider) HostileSign(acct providers.Account, c *hostile.Callback) (http.Header, []byte, error) {
	return hostile.FormHeader(), signedForm(c, acct).Render(), nil
}

// signedForm is c's form with its sign under acct's secret (a copy).
func signedForm(c *hostile.Callback, acct providers.Account) hostile.Form {
	return signForm(c.Kind, c.Form, acct.Key("secret"))
}

// signedFields are the fields the kind's sign covers.
func signedFields(c *hostile.Callback) []string {
	if c.Kind == events.KindPayout {
		return []string{"amount", "appKey", "mrn"}
	}
	return []string{"amount", "appKey", "channel", "mrn", "originAmount"}
}

// HostileMutations are mrnpay's own mutations.
func (p *Provider) HostileMutations() []hostile.Mutation {
	return hostile.Build(addPreserving, addSignature, addTampering, addEncodings, addStructure, addSemantics)
}

type mutateFunc = func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error)

// formAfterSigning signs c, then lets f change the signed form.
func formAfterSigning(w hostile.Want, f func(g hostile.Gen, c *hostile.Callback, form hostile.Form) hostile.Form) mutateFunc {
	return func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		return hostile.Result{Header: hostile.FormHeader(), Body: f(g, c, signedForm(c, c.Account)).Render(), Want: w}, nil
	}
}

// bytesAfterSigning signs c, then lets f change the body's bytes.
func bytesAfterSigning(w hostile.Want, f func(g hostile.Gen, c *hostile.Callback, body []byte) []byte) mutateFunc {
	return func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		return hostile.Result{Header: hostile.FormHeader(), Body: f(g, c, signedForm(c, c.Account).Render()), Want: w}, nil
	}
}

var unsignedIgnored = hostile.Valid("fields outside the signature are ignored")

func addPreserving(ms *hostile.Mutations) {
	ms.Add(hostile.ClassPreserving, "fields reordered", formAfterSigning(hostile.Valid("mrnpay signs a fixed field order, not the body's"), func(g hostile.Gen, c *hostile.Callback, f hostile.Form) hostile.Form {
		slices.Reverse(f)
		return f
	}))
	ms.Add(hostile.ClassPreserving, "unsigned field added", formAfterSigning(unsignedIgnored, func(g hostile.Gen, c *hostile.Callback, f hostile.Form) hostile.Form {
		return append(f, hostile.KV{K: g.Pick([]string{"note", "ts", "extra", "channelId"}), V: g.Pick([]string{"hello", "", "∑"})})
	}))
	ms.Add(hostile.ClassPreserving, "unreserved characters percent-encoded", bytesAfterSigning(hostile.Valid("form decoding yields the same signed values"), func(g hostile.Gen, c *hostile.Callback, body []byte) []byte {
		return bytes.Replace(body, []byte("mrn=BI"), []byte("mrn=%42%49"), 1)
	}))
	ms.Add(hostile.ClassPreserving, "empty segments", bytesAfterSigning(hostile.Valid("empty form segments carry nothing"), func(g hostile.Gen, c *hostile.Callback, body []byte) []byte {
		return append(append([]byte("&&"), body...), '&')
	}))
}

func addSignature(ms *hostile.Mutations) {
	bad := hostile.Rejected(hostile.ReasonBadSignature)
	ms.Add(hostile.ClassBadSignature, "signed with a wrong key", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		wrong := c.Account.With("secret", "wrong-"+c.Account.Key("secret"))
		return hostile.Result{Header: hostile.FormHeader(), Body: signedForm(c, wrong).Render(), Want: bad}, nil
	})
	ms.Add(hostile.ClassBadSignature, "sign in upper case", formAfterSigning(bad, func(g hostile.Gen, c *hostile.Callback, f hostile.Form) hostile.Form {
		return f.Set("sign", strings.ToUpper(f.Get("sign")))
	}))
	ms.Add(hostile.ClassBadSignature, "sign one digit changed", formAfterSigning(bad, func(g hostile.Gen, c *hostile.Callback, f hostile.Form) hostile.Form {
		s := f.Get("sign")
		return f.Set("sign", s[:7]+hostile.FlipHex(s[7])+s[8:])
	}))
	ms.Add(hostile.ClassBadSignature, "sign removed", formAfterSigning(hostile.Rejected(hostile.ReasonMissingField), func(g hostile.Gen, c *hostile.Callback, f hostile.Form) hostile.Form {
		return f.Del("sign")
	}))
	ms.Add(hostile.ClassBadSignature, "sign empty", formAfterSigning(hostile.Rejected(hostile.ReasonMissingField), func(g hostile.Gen, c *hostile.Callback, f hostile.Form) hostile.Form {
		return f.Set("sign", "")
	}))
}

// addTampering changes signed fields after signing, on fresh callbacks,
// on replays of accepted ones, and on another account's URL.
func addTampering(ms *hostile.Mutations) {
	bad := hostile.Rejected(hostile.ReasonBadSignature)
	ms.Add(hostile.ClassTampered, "signed field changed", formAfterSigning(bad, func(g hostile.Gen, c *hostile.Callback, f hostile.Form) hostile.Form {
		k := g.Pick(signedFields(c))
		return f.Set(k, f.Get(k)+"1")
	}))
	ms.Add(hostile.ClassTampered, "amount lowered to originAmount's twin", formAfterSigning(bad, func(g hostile.Gen, c *hostile.Callback, f hostile.Form) hostile.Form {
		return f.Set("amount", "0.01")
	}))
	ms.Add(hostile.ClassTampered, "invalid UTF-8 appended to the order id", bytesAfterSigning(bad, func(g hostile.Gen, c *hostile.Callback, body []byte) []byte {
		return bytes.Replace(body, []byte("&mrn="), []byte("&mrn="+g.Pick([]string{"%FF", "%C3%28", "%E9"})), 1)
	}))
	ms.Add(hostile.ClassTampered, "unicode edge appended to the order id", formAfterSigning(bad, func(g hostile.Gen, c *hostile.Callback, f hostile.Form) hostile.Form {
		return f.Set("mrn", f.Get("mrn")+g.Pick(hostile.UnicodeEdges))
	}))
	for _, name := range []string{"amount raised", "order id swapped"} {
		ms.Add(hostile.ClassReplayTampered, "replay: "+name, func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
			*c = *g.Original()
			f := signedForm(c, c.Account)
			if name == "amount raised" {
				f = f.Set("amount", f.Get("amount")+"0")
			} else {
				f = f.Set("mrn", "BI-REPLAY-"+g.Digits(8))
			}
			return hostile.Result{Header: hostile.FormHeader(), Body: f.Render(), Want: bad}, nil
		})
	}
	ms.Add(hostile.ClassCrossAccount, "callback of one account posted to the other account's URL", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		to := g.OtherAccount(c.Account)
		return hostile.Result{Path: hostile.Path(Name, to.ID, c.Kind), Header: hostile.FormHeader(), Body: signedForm(c, c.Account).Render(), Want: bad}, nil
	})
}

// addEncodings: the form in other encodings and content types, unicode
// edges in its values.
func addEncodings(ms *hostile.Mutations) {
	missing, malformed := hostile.Rejected(hostile.ReasonMissingField), hostile.Rejected(hostile.ReasonMalformed)
	ms.Add(hostile.ClassWrongEncoding, "latin-1 order id, signed over its UTF-8 text", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		c.Form = c.Form.Set("mrn", c.Form.Get("mrn")+"é")
		body := signedForm(c, c.Account).Render()
		return hostile.Result{Header: hostile.FormHeader(), Body: bytes.Replace(body, []byte("%C3%A9"), []byte("%E9"), 1), Want: hostile.Rejected(hostile.ReasonBadSignature)}, nil
	})
	// An order id must be valid UTF-8 (events.ValidOrderID), or two ids
	// would collapse into one U+FFFD spelling.
	ms.Add(hostile.ClassWrongEncoding, "latin-1 order id, signed over its latin-1 bytes", hostile.BeforeSigning(hostile.Rejected(hostile.ReasonInvalidEvent), func(g hostile.Gen, c *hostile.Callback) {
		c.Form = c.Form.Set("mrn", c.Form.Get("mrn")+g.Pick([]string{"\xe9", "\xff", "\xc3\x28"}))
	}))
	ms.Add(hostile.ClassWrongEncoding, "UTF-16 body", bytesAfterSigning(missing, func(g hostile.Gen, c *hostile.Callback, body []byte) []byte {
		return hostile.UTF16(body, g.IntN(2) == 0, g.IntN(2) == 0)
	}))
	ms.Add(hostile.ClassWrongEncoding, "UTF-8 BOM before the form", bytesAfterSigning(missing, func(g hostile.Gen, c *hostile.Callback, body []byte) []byte {
		return append([]byte("\xef\xbb\xbf"), body...)
	}))
	ms.Add(hostile.ClassWrongEncoding, "invalid percent escape", bytesAfterSigning(malformed, func(g hostile.Gen, c *hostile.Callback, body []byte) []byte {
		return append(body, g.Pick([]string{"&x=%zz", "&x=%", "&%G1=1"})...)
	}))
	ms.Add(hostile.ClassWrongEncoding, "invalid UTF-8 in an unsigned field", bytesAfterSigning(unsignedIgnored, func(g hostile.Gen, c *hostile.Callback, body []byte) []byte {
		return append(body, "&note=%FF%FE"...)
	}))
	ms.Add(hostile.ClassWrongEncoding, "semicolon separators", bytesAfterSigning(malformed, func(g hostile.Gen, c *hostile.Callback, body []byte) []byte {
		return bytes.ReplaceAll(body, []byte("&"), []byte(";"))
	}))

	ms.Add(hostile.ClassUnicodeEdge, "printable unicode edge in the order id (signed)", hostile.BeforeSigning(hostile.Valid("printable order ids are opaque signed data"), func(g hostile.Gen, c *hostile.Callback) {
		c.Form = c.Form.Set("mrn", "BI-"+g.Digits(4)+g.Pick(hostile.IDEdgesOK))
	}))
	ms.Add(hostile.ClassUnicodeEdge, "control or format character in the order id (signed)", hostile.BeforeSigning(hostile.Rejected(hostile.ReasonInvalidEvent), func(g hostile.Gen, c *hostile.Callback) {
		c.Form = c.Form.Set("mrn", "BI-"+g.Digits(4)+g.Pick(hostile.IDEdgesBad))
	}))

	ms.Add(hostile.ClassContentType, "JSON body", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		o := &hostile.Obj{}
		for _, p := range signedForm(c, c.Account) {
			o.Set(p.K, hostile.Str(p.V))
		}
		return hostile.Result{Header: hostile.JSONHeader(), Body: o.Bytes(), Want: missing}, nil
	})
	ms.Add(hostile.ClassContentType, "multipart body", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		var buf bytes.Buffer
		for _, p := range signedForm(c, c.Account) {
			fmt.Fprintf(&buf, "--x\r\nContent-Disposition: form-data; name=%q\r\n\r\n%s\r\n", p.K, p.V)
		}
		buf.WriteString("--x--\r\n")
		// ';' is not a form separator.
		return hostile.Result{Header: hostile.ContentType("multipart/form-data; boundary=x"), Body: buf.Bytes(), Want: malformed}, nil
	})
}

// addStructure: fields given twice, nesting, and numbers out of range.
func addStructure(ms *hostile.Mutations) {
	ms.Add(hostile.ClassDuplicateKey, "signed field repeated", formAfterSigning(hostile.Rejected(hostile.ReasonMalformed), func(g hostile.Gen, c *hostile.Callback, f hostile.Form) hostile.Form {
		k := g.Pick(append(signedFields(c), "sign"))
		v := f.Get(k)
		if g.IntN(2) == 0 {
			v += "9"
		}
		return append(f, hostile.KV{K: k, V: v})
	}))
	ms.Add(hostile.ClassDuplicateKey, "unsigned field repeated", formAfterSigning(unsignedIgnored, func(g hostile.Gen, c *hostile.Callback, f hostile.Form) hostile.Form {
		return append(f, hostile.KV{K: "note", V: "a"}, hostile.KV{K: "note", V: "b"})
	}))
	ms.Add(hostile.ClassDeeplyNested, "deeply nested JSON body", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		body := `{"a":` + hostile.Nested(g.PickInt([]int{100, 20000}), "[", "]", "") + "}"
		return hostile.Result{Header: hostile.JSONHeader(), Body: []byte(body), Want: hostile.Rejected(hostile.ReasonMissingField)}, nil
	})
	ms.Add(hostile.ClassDeeplyNested, "deeply bracketed unsigned key", formAfterSigning(hostile.Valid("a form is flat: a bracketed name is just an unsigned field"), func(g hostile.Gen, c *hostile.Callback, f hostile.Form) hostile.Form {
		return append(f, hostile.KV{K: "a" + strings.Repeat("[b]", 5000), V: "1"})
	}))

	badAmount := hostile.Rejected(hostile.ReasonBadAmount)
	for _, v := range []string{"1e5", strings.Repeat("9", 50), "-1.00", "NaN", "Infinity", "1,000.00", "0x10", " 1.00", "1.2.3", "+5"} {
		ms.Add(hostile.ClassHugeNumber, "amount "+hostile.ClipName(v), hostile.BeforeSigning(badAmount, func(g hostile.Gen, c *hostile.Callback) { c.Form = c.Form.Set("amount", v) }))
	}
	ms.Add(hostile.ClassHugeNumber, "originAmount out of range", hostile.BeforeSigning(badAmount, func(g hostile.Gen, c *hostile.Callback) {
		if c.Kind == events.KindPayout {
			c.Form = c.Form.Set("amount", "1e400")
			return
		}
		c.Form = c.Form.Set("originAmount", g.Pick([]string{"1e400", strings.Repeat("1", 41), "-0.01"}))
	}))
	ms.Add(hostile.ClassHugeNumber, "39-digit amount", hostile.BeforeSigning(hostile.Valid("an exact decimal within 40 characters: no overflow"), func(g hostile.Gen, c *hostile.Callback) {
		c.Form = c.Form.Set("amount", strings.Repeat("9", 39))
	}))
}

// addSemantics: validly signed callbacks Parse refuses, the other kind's
// URL, another merchant, fields over their limits.
func addSemantics(ms *hostile.Mutations) {
	ms.Add(hostile.ClassSemantic, "signed field removed", hostile.BeforeSigning(hostile.Rejected(hostile.ReasonMissingField), func(g hostile.Gen, c *hostile.Callback) {
		c.Form = c.Form.Del(g.Pick(signedFields(c)))
	}))
	ms.Add(hostile.ClassSemantic, "channel not a channel id (signed)", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		if c.Kind != events.KindPayin {
			return hostile.Result{}, hostile.ErrRetry
		}
		c.Form = c.Form.Set("channel", g.Pick([]string{"abc", "12345", "-1", "1.0"}))
		return hostile.Result{Want: hostile.Rejected(hostile.ReasonMalformed)}, nil
	})
	for _, v := range []struct {
		from, to events.Kind
		reason   string
	}{
		{events.KindPayin, events.KindPayout, hostile.ReasonBadSignature},
		{events.KindPayout, events.KindPayin, hostile.ReasonMissingField},
	} {
		ms.Add(hostile.ClassWrongKind, string(v.from)+" callback posted as "+string(v.to), func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
			if c.Kind != v.from {
				return hostile.Result{}, hostile.ErrRetry
			}
			return hostile.Result{Path: hostile.Path(Name, c.Account.ID, v.to), Want: hostile.Rejected(v.reason)}, nil
		})
	}
	ms.Add(hostile.ClassAccountMismatch, "appKey of another merchant (signed)", hostile.BeforeSigning(hostile.Rejected(hostile.ReasonAccountMismatch), func(g hostile.Gen, c *hostile.Callback) {
		c.Form = c.Form.Set("appKey", g.OtherAccount(c.Account).Key("merchant_id"))
	}))
	ms.Add(hostile.ClassHugeField, "order id over 64 bytes (signed)", hostile.BeforeSigning(hostile.Rejected(hostile.ReasonMalformed), func(g hostile.Gen, c *hostile.Callback) {
		c.Form = c.Form.Set("mrn", strings.Repeat("7", g.PickInt([]int{65, 500, 20000})))
	}))
	ms.Add(hostile.ClassHugeField, "large unsigned field under the body limit", formAfterSigning(hostile.Valid("fields outside the signature are ignored; the body limit bounds them"), func(g hostile.Gen, c *hostile.Callback, f hostile.Form) hostile.Form {
		return append(f, hostile.KV{K: "blob", V: strings.Repeat("z", int(g.BodyLimit())/2)})
	}))
}
