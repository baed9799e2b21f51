package badinput

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/cashypro"
	"github.com/payhook/payhook/pkg/providers/jpglo"
	"github.com/payhook/payhook/pkg/providers/mpurse"
	"github.com/payhook/payhook/pkg/providers/mrnpay"
)

// mutation is one entry of the table: a class, the provider whose callback
// it mutates, and the function that mutates a fresh valid base.
type mutation struct {
	class Class
	prov  string
	name  string
	fn    func(g *gen, b *base) (result, error)
}

// errRetry asks for another random attempt (used where a random mutation
// could land on something the generator cannot classify with certainty).
var errRetry = errors.New("retry")

// providerMaxBody is each provider package's own body limit (MaxBody).
var providerMaxBody = map[string]int64{
	jpglo.Name: 1 << 20, mrnpay.Name: 64 << 10, mpurse.Name: 64 << 10, cashypro.Name: 64 << 10,
}

// kindsSent are the kinds each provider sends.
var kindsSent = map[string][]events.Kind{
	jpglo.Name:    {events.KindPayin, events.KindAppeal},
	mrnpay.Name:   {events.KindPayin, events.KindPayout},
	mpurse.Name:   {events.KindPayin},
	cashypro.Name: {events.KindPayin},
}

// wrongProviderReasons[from][to] is the reason a callback of provider from,
// posted to provider to's URL, must get: the target's decoder fails at its
// first check of the foreign format.
var wrongProviderReasons = map[string]map[string][]string{
	jpglo.Name:    {mrnpay.Name: {ReasonMissingField}, mpurse.Name: {ReasonMalformed}, cashypro.Name: {ReasonMissingField}},
	mrnpay.Name:   {jpglo.Name: {ReasonMalformed}, mpurse.Name: {ReasonMalformed}, cashypro.Name: {ReasonMissingField}},
	mpurse.Name:   {jpglo.Name: {ReasonMalformed}, mrnpay.Name: {ReasonMissingField}, cashypro.Name: {ReasonMissingField}},
	cashypro.Name: {jpglo.Name: {ReasonMissingField}, mrnpay.Name: {ReasonMissingField}, mpurse.Name: {ReasonMalformed}},
}

// Unicode edge strings: bidi controls, zero-width joiners, combining marks,
// emoji, NUL, line separators, a BOM in the middle.
var unicodeEdges = []string{
	"\u202eevil\u202c", // right-to-left override … pop
	"Asha\u200fVerma",  // right-to-left mark
	"\U0001F468\u200d\U0001F469\u200d\U0001F467", // family emoji joined with ZWJ
	"Jose\u0301 Zoe\u0308",                       // combining acute and diaeresis
	"Z\u0337\u0322a\u0335l\u0336g\u0337o\u0338",  // stacked combining marks
	"\U0001F4B8\U0001F642 pay",                   // emoji
	"nul\x00byte",                                // NUL (escaped as \u0000 in JSON)
	"line\u2028sep\u2029para",                    // JavaScript line terminators
	"zero\u200bwidth\ufeffbom",                   // zero-width space, BOM mid-string
	"\u0645\u062d\u0645\u062f",                   // Arabic (RTL script)
}

// idEdgesOK and idEdgesBad split unicodeEdges by whether an order id
// carrying one is acceptable to events.ValidOrderID: printable characters
// (emoji, combining marks, RTL script) are; controls, format characters
// (bidi overrides, zero-width) and line separators are not, and ingress
// refuses them as invalid_event.
var idEdgesOK, idEdgesBad = splitIDEdges()

func splitIDEdges() (ok, bad []string) {
	for _, e := range unicodeEdges {
		if events.ValidOrderID("BI-1" + e) {
			ok = append(ok, e)
		} else {
			bad = append(bad, e)
		}
	}
	return ok, bad
}

var invalidUTF8 = []string{"\xff", "\xc3\x28", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82"}

var otherContentTypes = []string{"text/plain", "application/xml", "text/html; charset=iso-8859-1",
	"multipart/form-data; boundary=x", "application/octet-stream", "", "application/json; charset=utf-16"}

func jsonHdr() http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	return h
}

// signedObj is b's JSON object with its jpglo sign field added.
func signedObj(b *base) (*obj, error) {
	o := b.obj.clone().del("sign")
	s, err := jpgloSign(o.bytes(), b.acct.Key("secret"))
	if err != nil {
		return nil, err
	}
	return o.set("sign", str(s)), nil
}

func otherAcct(g *gen, a providers.Account) providers.Account {
	for _, x := range g.byProv[a.Provider] {
		if x.ID != a.ID {
			return x
		}
	}
	return a
}

// bumpDigits changes a raw JSON number or digit string so it differs.
func bumpDigits(raw string) string {
	if strings.HasSuffix(raw, `"`) {
		return raw[:len(raw)-1] + `1"`
	}
	return raw + "1"
}

// pad inserts whitespace (or an unsigned field) so the body is n bytes long.
func padTo(prov string, body []byte, n int) []byte {
	extra := n - len(body)
	if extra <= 0 {
		return body
	}
	switch prov {
	case mrnpay.Name:
		if extra < 6 {
			return append(body, bytes.Repeat([]byte("&"), extra)...)
		}
		return append(append(body, "&pad="...), bytes.Repeat([]byte("x"), extra-5)...)
	case mpurse.Name:
		return append(body, bytes.Repeat([]byte("\n"), extra)...)
	default: // JSON: whitespace after the opening brace
		out := append([]byte("{"), bytes.Repeat([]byte(" "), extra)...)
		return append(out, body[1:]...)
	}
}

func mutations() []mutation {
	var ms []mutation
	add := func(class Class, prov, name string, fn func(*gen, *base) (result, error)) {
		ms = append(ms, mutation{class: class, prov: prov, name: name, fn: retrying(fn)})
	}
	for _, p := range Inbound {
		addCommon(add, p)
	}
	addJpglo(add)
	addMrnpay(add)
	addMpurse(add)
	addCashypro(add)
	for _, p := range Simulated {
		addSimulated(add, p)
	}
	return ms
}

// retrying re-runs fn on a fresh base of the same provider when it returns errRetry.
func retrying(fn func(*gen, *base) (result, error)) func(*gen, *base) (result, error) {
	return func(g *gen, b *base) (result, error) {
		for range 64 {
			r, err := fn(g, b)
			if !errors.Is(err, errRetry) {
				return r, err
			}
			*b = *g.newBase(b.prov)
		}
		return result{}, errors.New("no classifiable mutation in 64 attempts")
	}
}

type addFunc func(class Class, prov, name string, fn func(*gen, *base) (result, error))

// addPreserving adds the mutations that leave a callback valid: every
// provider, real or simulated, gets them first.
func addPreserving(add addFunc, p string) {
	add(ClassPreserving, p, "content type changed, body untouched", func(g *gen, b *base) (result, error) {
		h, body, err := g.sign(b)
		if err != nil {
			return result{}, err
		}
		if ct := g.pick(otherContentTypes); ct == "" {
			h.Del("Content-Type")
		} else {
			h.Set("Content-Type", ct)
		}
		return result{hdr: h, body: body, want: valid("decoders read the body, never the Content-Type header")}, nil
	})
	add(ClassPreserving, p, "exact replay of an accepted callback", func(g *gen, b *base) (result, error) {
		orig := g.originals[p][g.rng.IntN(len(g.originals[p]))]
		*b = *orig
		return result{hdr: orig.hdr.Clone(), body: orig.body, want: valid("a provider retry: acknowledged again, one event")}, nil
	})
}

// addCommon adds the mutations every provider gets.
func addCommon(add addFunc, p string) {
	addPreserving(add, p)
	add(ClassTruncated, p, "body cut short", func(g *gen, b *base) (result, error) {
		h, body, err := g.sign(b)
		if err != nil {
			return result{}, err
		}
		w := map[string]Want{
			jpglo.Name:    rejected(ReasonMalformed),
			cashypro.Name: rejected(ReasonMalformed),
			// A form cut inside an escape, before sign, or inside sign.
			mrnpay.Name: rejected(ReasonBadSignature, ReasonMissingField, ReasonMalformed),
			// Base64 that no longer decodes, or a ciphertext short of whole blocks or of its padding.
			mpurse.Name: rejected(ReasonMalformed, ReasonUndecryptable),
		}[p]
		return result{hdr: h, body: body[:1+g.rng.IntN(len(body)-1)], want: w}, nil
	})
	add(ClassTruncated, p, "empty body", func(g *gen, b *base) (result, error) {
		h, _, err := g.sign(b)
		return result{hdr: h, body: []byte{}, want: rejected(ReasonMalformed)}, err
	})
	add(ClassOversized, p, "body over the ingress limit", func(g *gen, b *base) (result, error) {
		h, body, err := g.sign(b)
		return result{hdr: h, body: padTo(p, body, int(g.limit)+1+g.rng.IntN(4096)), want: rejected(ReasonTooLarge)}, err
	})
	add(ClassOversized, p, "body one byte over the ingress limit", func(g *gen, b *base) (result, error) {
		h, body, err := g.sign(b)
		return result{hdr: h, body: padTo(p, body, int(g.limit)+1), want: rejected(ReasonTooLarge)}, err
	})
	add(ClassOversized, p, "body exactly at the ingress limit (padding only)", func(g *gen, b *base) (result, error) {
		h, body, err := g.sign(b)
		w := valid("exactly body_limit bytes is allowed; the padding is whitespace or an unsigned field")
		if g.limit > providerMaxBody[p] {
			w = rejected(ReasonMalformed)
		}
		return result{hdr: h, body: padTo(p, body, int(g.limit)), want: w}, err
	})
	add(ClassWrongKind, p, "kind the provider does not send", func(g *gen, b *base) (result, error) {
		var kinds []string
		for _, k := range []events.Kind{events.KindPayin, events.KindPayout, events.KindAppeal} {
			if !slices.Contains(kindsSent[p], k) {
				kinds = append(kinds, string(k))
			}
		}
		kinds = append(kinds, "refund", "PAYIN", "Payin", "payin2", "chargeback")
		k := g.pick(kinds)
		return result{path: "/v1/callbacks/" + p + "/" + b.acct.ID + "/" + k, want: rejected(ReasonWrongKind)}, nil
	})
	add(ClassUnknownAccount, p, "account not configured or of another provider", func(g *gen, b *base) (result, error) {
		ids := []string{"nosuch", b.acct.ID + "-x", strings.ToUpper(b.acct.ID), "a", "0"}
		for _, q := range Inbound {
			if q != p {
				ids = append(ids, g.byProv[q][0].ID)
			}
		}
		return result{path: "/v1/callbacks/" + p + "/" + g.pick(ids) + "/" + string(b.kind), want: rejected(ReasonUnknownAccount)}, nil
	})
	add(ClassWrongProvider, p, "unknown provider in the URL", func(g *gen, b *base) (result, error) {
		// Names no registered provider has (fantian is one, but sends no
		// callbacks: its URL is not served either).
		var names []string
		for _, n := range []string{"paypal", "fantian", strings.ToUpper(p), p + "2", "adyen"} {
			if _, calls := providers.Role[providers.Inbound](registry.All(), n); !calls {
				names = append(names, n)
			}
		}
		name := g.pick(names)
		return result{path: "/v1/callbacks/" + name + "/" + b.acct.ID + "/" + string(b.kind), want: rejected(ReasonUnknownProvider)}, nil
	})
	for _, q := range Inbound {
		if q == p {
			continue
		}
		add(ClassWrongProvider, p, q+" callback posted to this provider's URL", func(g *gen, b *base) (result, error) {
			h, body, err := g.sign(g.newBase(q))
			return result{hdr: h, body: body, want: rejected(wrongProviderReasons[q][p]...)}, err
		})
	}
	add(ClassCrossAccount, p, "callback of one account posted to the other account's URL", func(g *gen, b *base) (result, error) {
		h, body, err := g.sign(b)
		if err != nil {
			return result{}, err
		}
		to := otherAcct(g, b.acct)
		path := "/v1/callbacks/" + p + "/" + to.ID + "/" + string(b.kind)
		var w Want
		switch p {
		case jpglo.Name, mrnpay.Name:
			w = rejected(ReasonBadSignature)
		case cashypro.Name:
			w = rejected(ReasonAccountMismatch) // MerchantId header is checked before the signature
		case mpurse.Name:
			if classifyCiphertext(to, body, nil) != plainGarbage {
				return result{}, errRetry
			}
			w = rejected(ReasonUndecryptable)
		}
		return result{path: path, hdr: h, body: body, want: w}, nil
	})
}

func addJpglo(add addFunc) {
	J := jpglo.Name
	amtKey := func(b *base) string {
		if b.kind == events.KindAppeal {
			return "inquiry_amount"
		}
		return "real_amount"
	}
	textKey := func(b *base) string {
		if b.kind == events.KindAppeal {
			return "user_remark"
		}
		return "remark"
	}
	post := func(o *obj, w Want) (result, error) { return result{hdr: jsonHdr(), body: o.bytes(), want: w}, nil }
	signedThen := func(w Want, f func(g *gen, b *base, o *obj) *obj) func(*gen, *base) (result, error) {
		return func(g *gen, b *base) (result, error) {
			o, err := signedObj(b)
			if err != nil {
				return result{}, err
			}
			return post(f(g, b, o), w)
		}
	}
	resigned := func(w Want, f func(g *gen, b *base)) func(*gen, *base) (result, error) {
		return func(g *gen, b *base) (result, error) {
			f(g, b)
			return result{want: w}, nil
		}
	}
	bytesThen := func(w Want, f func(g *gen, b *base, body []byte) []byte) func(*gen, *base) (result, error) {
		return func(g *gen, b *base) (result, error) {
			h, body, err := g.sign(b)
			if err != nil {
				return result{}, err
			}
			return result{hdr: h, body: f(g, b, body), want: w}, nil
		}
	}

	// Semantics-preserving.
	add(ClassPreserving, J, "keys reordered", resigned(valid("jpglo signs fields sorted by name; key order is not signed"), func(g *gen, b *base) { b.obj = sortedObj(b.obj) }))
	add(ClassPreserving, J, "whitespace between tokens", func(g *gen, b *base) (result, error) {
		o, err := signedObj(b)
		return result{hdr: jsonHdr(), body: o.render(g.pick([]string{" ", "\n", "\t", " \r\n  "})), want: valid("JSON whitespace is not signed")}, err
	})
	add(ClassPreserving, J, "null field added after signing", signedThen(valid("jpglo skips null fields when signing"), func(g *gen, b *base, o *obj) *obj {
		return o.set(g.pick([]string{"note", "sub_pay_type2", "extra"}), "null")
	}))
	add(ClassPreserving, J, "null field removed after signing", func(g *gen, b *base) (result, error) {
		b.obj.set("device_note", "null")
		o, err := signedObj(b)
		if err != nil {
			return result{}, err
		}
		return post(o.del("device_note"), valid("jpglo skips null fields when signing"))
	})
	add(ClassPreserving, J, "string written with \\u escapes", signedThen(valid("escapes decode to the same signed text"), func(g *gen, b *base, o *obj) *obj {
		raw := o.get("mch_order_no") // "BI..."
		return o.set("mch_order_no", fmt.Sprintf(`"\u%04x%s`, raw[1], raw[2:]))
	}))

	// Signature.
	add(ClassBadSignature, J, "signed with a wrong key", func(g *gen, b *base) (result, error) {
		a := b.acct
		a = a.With("secret", "wrong-"+a.Key("secret"))
		h, body, err := signAs(b, a)
		return result{hdr: h, body: body, want: rejected(ReasonBadSignature)}, err
	})
	for _, v := range []struct {
		name string
		want Want
		f    func(s string) string
	}{
		{"sign in lower case", rejected(ReasonBadSignature), func(s string) string { return strings.ToLower(s) }},
		{"sign one digit changed", rejected(ReasonBadSignature), func(s string) string { return s[:5] + flipHex(s[5]) + s[6:] }},
		{"sign empty", rejected(ReasonBadSignature), func(string) string { return `""` }},
		{"sign padded with spaces", rejected(ReasonBadSignature), func(s string) string { return `" ` + s[1:len(s)-1] + ` "` }},
		{"sign 64 hex digits", rejected(ReasonBadSignature), func(s string) string { return `"` + s[1:len(s)-1] + s[1:len(s)-1] + `"` }},
		{"sign null", rejected(ReasonMissingField), func(string) string { return "null" }},
		{"sign a number", rejected(ReasonMalformed), func(string) string { return "12345" }},
		{"sign an array", rejected(ReasonMalformed), func(s string) string { return "[" + s + "]" }},
	} {
		add(ClassBadSignature, J, v.name, signedThen(v.want, func(g *gen, b *base, o *obj) *obj {
			return o.set("sign", v.f(o.get("sign")))
		}))
	}
	add(ClassBadSignature, J, "sign removed", signedThen(rejected(ReasonMissingField), func(g *gen, b *base, o *obj) *obj { return o.del("sign") }))

	// Tampering after signing.
	add(ClassTampered, J, "amount changed", signedThen(rejected(ReasonBadSignature), func(g *gen, b *base, o *obj) *obj { return o.set(amtKey(b), bumpDigits(o.get(amtKey(b)))) }))
	add(ClassTampered, J, "status flipped", signedThen(rejected(ReasonBadSignature), func(g *gen, b *base, o *obj) *obj {
		if o.get("status") == `"success"` {
			return o.set("status", `"fail"`)
		}
		return o.set("status", `"success"`)
	}))
	add(ClassTampered, J, "merchant order id changed", signedThen(rejected(ReasonBadSignature), func(g *gen, b *base, o *obj) *obj { return o.set("mch_order_no", bumpDigits(o.get("mch_order_no"))) }))
	add(ClassTampered, J, "non-null field added", signedThen(rejected(ReasonBadSignature), func(g *gen, b *base, o *obj) *obj {
		return o.set("bonus", g.pick([]string{`"x"`, `""`, "0", "false", "[]"}))
	}))
	add(ClassTampered, J, "empty-string field removed", signedThen(rejected(ReasonBadSignature), func(g *gen, b *base, o *obj) *obj {
		if b.kind == events.KindAppeal {
			return o.del("user_remark")
		}
		return o.del("remark")
	}))
	add(ClassTampered, J, "amount respelled as a float", signedThen(rejected(ReasonBadSignature), func(g *gen, b *base, o *obj) *obj { return o.set(amtKey(b), o.get(amtKey(b))+".0") }))
	add(ClassTampered, J, "pay_type absorbs real_amount (&name= forgery, same signing text)", func(g *gen, b *base) (result, error) {
		if b.kind != events.KindPayin {
			return result{}, errRetry
		}
		o, err := signedObj(b)
		if err != nil {
			return result{}, err
		}
		pt := o.get("pay_type")
		o.set("pay_type", pt[:len(pt)-1]+"&real_amount="+o.get("real_amount")+`"`).del("real_amount")
		return post(o, rejected(ReasonMalformed))
	})
	add(ClassTampered, J, "unicode edge inserted after signing", signedThen(rejected(ReasonBadSignature), func(g *gen, b *base, o *obj) *obj {
		return o.set(textKey(b), str(g.pick(unicodeEdges)))
	}))

	// Replays of accepted callbacks, changed.
	for _, v := range []struct {
		name string
		f    func(g *gen, b *base, o *obj) *obj
	}{
		{"amount raised", func(g *gen, b *base, o *obj) *obj { return o.set(amtKey(b), bumpDigits(o.get(amtKey(b)))) }},
		{"timestamp refreshed", func(g *gen, b *base, o *obj) *obj { return o.set("timestamp", bumpDigits(o.get("timestamp"))) }},
		{"order id swapped", func(g *gen, b *base, o *obj) *obj { return o.set("mch_order_no", str("BI-REPLAY-"+g.digits(8))) }},
		{"status flipped", func(g *gen, b *base, o *obj) *obj {
			if o.get("status") == `"fail"` {
				return o.set("status", `"success"`)
			}
			return o.set("status", `"fail"`)
		}},
	} {
		add(ClassReplayTampered, J, "replay: "+v.name, func(g *gen, b *base) (result, error) {
			*b = *g.originals[J][g.rng.IntN(len(g.originals[J]))]
			o, err := signedObj(b)
			if err != nil {
				return result{}, err
			}
			return post(v.f(g, b, o), rejected(ReasonBadSignature))
		})
	}

	// Encodings.
	add(ClassWrongEncoding, J, "latin-1 body", func(g *gen, b *base) (result, error) {
		b.obj.set(textKey(b), str("café Zoë"))
		h, body, err := g.sign(b)
		return result{hdr: h, body: toLatin1(body), want: rejected(ReasonMalformed)}, err
	})
	add(ClassWrongEncoding, J, "UTF-16 body", bytesThen(rejected(ReasonMalformed), func(g *gen, b *base, body []byte) []byte {
		return toUTF16(body, g.rng.IntN(2) == 0, g.rng.IntN(2) == 0)
	}))
	add(ClassWrongEncoding, J, "invalid UTF-8 in a string", bytesThen(rejected(ReasonMalformed), func(g *gen, b *base, body []byte) []byte {
		return bytes.Replace(body, []byte(`"mch_order_no":"`), []byte(`"mch_order_no":"`+g.pick(invalidUTF8)), 1)
	}))
	add(ClassWrongEncoding, J, "UTF-8 BOM before the object", bytesThen(rejected(ReasonMalformed), func(g *gen, b *base, body []byte) []byte {
		return append([]byte("\xef\xbb\xbf"), body...)
	}))

	// Unicode edges, validly signed.
	add(ClassUnicodeEdge, J, "unicode edge in a signed free-text field", resigned(valid("free text is data; the signature covers it"), func(g *gen, b *base) {
		b.obj.set(textKey(b), str(g.pick(unicodeEdges)))
	}))
	add(ClassUnicodeEdge, J, "unicode edge in user_ext names", func(g *gen, b *base) (result, error) {
		if b.kind != events.KindPayin {
			return result{}, errRetry
		}
		ext := `{"user_id":"1","real_name":"` + strings.ReplaceAll(g.pick(unicodeEdges), "\x00", `\u0000`) + `","email":"a@example.com"}`
		b.obj.set("user_ext", str(ext))
		return result{want: valid("user_ext is a signed JSON string; its content is data")}, nil
	})
	add(ClassUnicodeEdge, J, "printable unicode edge in the merchant order id", resigned(valid("printable order ids are opaque signed data"), func(g *gen, b *base) {
		b.obj.set("mch_order_no", str("BI-"+g.digits(6)+g.pick(idEdgesOK)))
	}))
	add(ClassUnicodeEdge, J, "control or format character in the merchant order id", resigned(rejected(ReasonInvalidEvent), func(g *gen, b *base) {
		b.obj.set("mch_order_no", str("BI-"+g.digits(6)+g.pick(idEdgesBad)))
	}))
	add(ClassUnicodeEdge, J, "raw control character inside a string", bytesThen(rejected(ReasonMalformed), func(g *gen, b *base, body []byte) []byte {
		return bytes.Replace(body, []byte(`"mch_order_no":"`), []byte(`"mch_order_no":"`+g.pick([]string{"\x00", "\n", "\x1b", "\t"})), 1)
	}))

	// Content type with a body in that format.
	add(ClassContentType, J, "form-encoded body", func(g *gen, b *base) (result, error) {
		o, err := signedObj(b)
		if err != nil {
			return result{}, err
		}
		var f []kv
		for i, k := range o.k {
			v := o.v[i]
			if s, err := strconv.Unquote(v); err == nil {
				v = s
			}
			f = append(f, kv{k, v})
		}
		h := http.Header{}
		h.Set("Content-Type", "application/x-www-form-urlencoded")
		return result{hdr: h, body: renderForm(f), want: rejected(ReasonMalformed)}, nil
	})
	add(ClassContentType, J, "XML body", func(g *gen, b *base) (result, error) {
		h := http.Header{}
		h.Set("Content-Type", "application/xml")
		return result{hdr: h, body: []byte("<xml><mch_order_no>" + g.digits(8) + "</mch_order_no><status>success</status></xml>"), want: rejected(ReasonMalformed)}, nil
	})

	// Duplicated keys.
	add(ClassDuplicateKey, J, "key repeated", signedThen(rejected(ReasonMalformed), func(g *gen, b *base, o *obj) *obj {
		k := g.pick([]string{amtKey(b), "mch_order_no", "status", "sign", "timestamp"})
		v := o.get(k)
		if g.rng.IntN(2) == 0 {
			v = bumpDigits(v)
		}
		o.k, o.v = append(o.k, k), append(o.v, v)
		return o
	}))

	// Nesting.
	add(ClassDeeplyNested, J, "deeply nested array in a field", func(g *gen, b *base) (result, error) {
		d := g.pickInt([]int{17, 100, 10000, 30000})
		b.obj.set(textKey(b), nested(d, "[", "]", "1"))
		o := b.obj.clone().set("sign", str("00000000000000000000000000000000"))
		return post(o, rejected(ReasonMalformed))
	})
	add(ClassDeeplyNested, J, "nested object in a field (signed)", resigned(rejected(ReasonMalformed), func(g *gen, b *base) {
		b.obj.set(textKey(b), nested(1+g.rng.IntN(10), `{"a":`, "}", "1"))
	}))
	add(ClassDeeplyNested, J, "body is a deep array", func(g *gen, b *base) (result, error) {
		return result{hdr: jsonHdr(), body: []byte(nested(20000, "[", "]", "")), want: rejected(ReasonMalformed)}, nil
	})
	add(ClassDeeplyNested, J, "unterminated deep nesting", func(g *gen, b *base) (result, error) {
		return result{hdr: jsonHdr(), body: []byte(`{"a":` + strings.Repeat("[", 30000)), want: rejected(ReasonMalformed)}, nil
	})

	// Numbers, validly signed.
	for _, v := range []struct {
		raw  string
		want Want
	}{
		{"1" + strings.Repeat("0", 400), rejected(ReasonBadAmount)},
		{"1e400", rejected(ReasonBadAmount)},
		{"-100", rejected(ReasonBadAmount)},
		{"100.5", rejected(ReasonBadAmount)},
		{"1E2", rejected(ReasonBadAmount)},
		{"-0", rejected(ReasonBadAmount)},
		{`"100"`, rejected(ReasonBadAmount)},
		{"18446744073709551616", valid("2^64 minor units is an exact decimal: no overflow, within the 40-digit limit")},
	} {
		add(ClassHugeNumber, J, "amount "+clipName(v.raw), resigned(v.want, func(g *gen, b *base) { b.obj.set(amtKey(b), v.raw) }))
	}
	for _, raw := range []string{"1e20", "-1", "99999999999999999999999", "1.5", `"1700000000"`, "0"} {
		add(ClassHugeNumber, J, "timestamp "+raw, resigned(rejected(ReasonMalformed), func(g *gen, b *base) { b.obj.set("timestamp", raw) }))
	}

	// Semantics, validly signed.
	for _, v := range []struct {
		name string
		want Want
		f    func(g *gen, b *base)
	}{
		{"merchant order id removed", rejected(ReasonMissingField), func(g *gen, b *base) { b.obj.del("mch_order_no") }},
		{"merchant order id empty", rejected(ReasonMissingField), func(g *gen, b *base) { b.obj.set("mch_order_no", `""`) }},
		{"merchant order id a number", rejected(ReasonMalformed), func(g *gen, b *base) { b.obj.set("mch_order_no", g.digits(10)) }},
		{"status pending", rejected(ReasonBadStatus), func(g *gen, b *base) {
			b.obj.set("status", str(g.pick([]string{"pending", "SUCCESS", "success ", "ok"})))
		}},
		{"status removed", rejected(ReasonMissingField), func(g *gen, b *base) { b.obj.del("status") }},
		{"timestamp removed", rejected(ReasonMissingField), func(g *gen, b *base) { b.obj.del("timestamp") }},
		{"field name not an identifier", rejected(ReasonMalformed), func(g *gen, b *base) { b.obj.set(g.pick([]string{"bad-name", "a=b", "x&y", "", "ключ"}), `"1"`) }},
	} {
		add(ClassSemantic, J, v.name, resigned(v.want, v.f))
	}
	add(ClassSemantic, J, "body not an object", func(g *gen, b *base) (result, error) {
		return result{hdr: jsonHdr(), body: []byte(g.pick([]string{"[]", "null", `"x"`, "42", "true"})), want: rejected(ReasonMalformed)}, nil
	})
	add(ClassSemantic, J, "data after the object", bytesThen(rejected(ReasonMalformed), func(g *gen, b *base, body []byte) []byte {
		return append(body, g.pick([]string{"{}", " x", "\n{\"a\":1}"})...)
	}))
	add(ClassSemantic, J, "appeal callback posted as payin", func(g *gen, b *base) (result, error) {
		if b.kind != events.KindAppeal {
			return result{}, errRetry
		}
		return result{path: "/v1/callbacks/jpglo/" + b.acct.ID + "/payin", want: rejected(ReasonWrongKind)}, nil
	})
	add(ClassWrongKind, J, "payin callback posted as appeal", func(g *gen, b *base) (result, error) {
		if b.kind != events.KindPayin {
			return result{}, errRetry
		}
		return result{path: "/v1/callbacks/jpglo/" + b.acct.ID + "/appeal", want: rejected(ReasonMissingField)}, nil
	})

	// Merchant.
	add(ClassAccountMismatch, J, "mch_id of another merchant (signed)", resigned(rejected(ReasonAccountMismatch), func(g *gen, b *base) {
		b.obj.set("mch_id", g.pick([]string{"999", `"2"`, `"1 "`, "0"}))
		if b.acct.Key("merchant_id") == "2" && b.obj.get("mch_id") == `"2"` {
			b.obj.set("mch_id", "3")
		}
	}))
	add(ClassAccountMismatch, J, "signed with the other account's key, posted to it, naming this merchant", func(g *gen, b *base) (result, error) {
		to := otherAcct(g, b.acct)
		b.obj.set("mch_id", str(b.acct.Key("merchant_id")))
		h, body, err := signAs(b, to)
		return result{path: "/v1/callbacks/jpglo/" + to.ID + "/" + string(b.kind), hdr: h, body: body, want: rejected(ReasonAccountMismatch)}, err
	})

	// Field sizes.
	add(ClassHugeField, J, "merchant order id over 128 bytes (signed)", resigned(rejected(ReasonMalformed), func(g *gen, b *base) {
		b.obj.set("mch_order_no", str(strings.Repeat("9", g.pickInt([]int{129, 1000, 40000}))))
	}))
	add(ClassHugeField, J, "field name over 64 bytes (signed)", resigned(rejected(ReasonMalformed), func(g *gen, b *base) {
		b.obj.set(strings.Repeat("k", 65+g.rng.IntN(100)), `"v"`)
	}))
}

func flipHex(c byte) string {
	if c == '0' {
		return "1"
	}
	return "0"
}

func clipName(s string) string {
	if len(s) > 24 {
		return s[:12] + "…(" + strconv.Itoa(len(s)) + " chars)"
	}
	return s
}

func formHdr() http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	return h
}

func addMrnpay(add addFunc) {
	M := mrnpay.Name
	resigned := func(w Want, f func(g *gen, b *base)) func(*gen, *base) (result, error) {
		return func(g *gen, b *base) (result, error) {
			f(g, b)
			return result{want: w}, nil
		}
	}
	// signedForm is b's form with its sign.
	signedForm := func(b *base) []kv {
		f := formDel(append([]kv(nil), b.form...), "sign")
		return append(f, kv{"sign", mrnpaySign(b.kind, f, b.acct.Key("secret"))})
	}
	formThen := func(w Want, f func(g *gen, b *base, form []kv) []kv) func(*gen, *base) (result, error) {
		return func(g *gen, b *base) (result, error) {
			return result{hdr: formHdr(), body: renderForm(f(g, b, signedForm(b))), want: w}, nil
		}
	}
	rawThen := func(w Want, f func(g *gen, b *base, body []byte) []byte) func(*gen, *base) (result, error) {
		return func(g *gen, b *base) (result, error) {
			return result{hdr: formHdr(), body: f(g, b, renderForm(signedForm(b))), want: w}, nil
		}
	}
	signed := func(b *base) []string {
		if b.kind == events.KindPayout {
			return []string{"amount", "appKey", "mrn"}
		}
		return []string{"amount", "appKey", "channel", "mrn", "originAmount"}
	}

	add(ClassPreserving, M, "fields reordered", formThen(valid("mrnpay signs a fixed field order, not the body's"), func(g *gen, b *base, f []kv) []kv {
		slices.Reverse(f)
		return f
	}))
	add(ClassPreserving, M, "unsigned field added", formThen(valid("fields outside the signature are ignored"), func(g *gen, b *base, f []kv) []kv {
		return append(f, kv{g.pick([]string{"note", "ts", "extra", "channelId"}), g.pick([]string{"hello", "", "∑"})})
	}))
	add(ClassPreserving, M, "unreserved characters percent-encoded", rawThen(valid("form decoding yields the same signed values"), func(g *gen, b *base, body []byte) []byte {
		return bytes.Replace(body, []byte("mrn=BI"), []byte("mrn=%42%49"), 1)
	}))
	add(ClassPreserving, M, "empty segments", rawThen(valid("empty form segments carry nothing"), func(g *gen, b *base, body []byte) []byte {
		return append(append([]byte("&&"), body...), '&')
	}))

	add(ClassBadSignature, M, "signed with a wrong key", func(g *gen, b *base) (result, error) {
		a := b.acct
		a = a.With("secret", "wrong-"+a.Key("secret"))
		h, body, err := signAs(b, a)
		return result{hdr: h, body: body, want: rejected(ReasonBadSignature)}, err
	})
	add(ClassBadSignature, M, "sign in upper case", formThen(rejected(ReasonBadSignature), func(g *gen, b *base, f []kv) []kv {
		return formSet(f, "sign", strings.ToUpper(formGet(f, "sign")))
	}))
	add(ClassBadSignature, M, "sign one digit changed", formThen(rejected(ReasonBadSignature), func(g *gen, b *base, f []kv) []kv {
		s := formGet(f, "sign")
		return formSet(f, "sign", s[:7]+flipHex(s[7])+s[8:])
	}))
	add(ClassBadSignature, M, "sign removed", formThen(rejected(ReasonMissingField), func(g *gen, b *base, f []kv) []kv { return formDel(f, "sign") }))
	add(ClassBadSignature, M, "sign empty", formThen(rejected(ReasonMissingField), func(g *gen, b *base, f []kv) []kv { return formSet(f, "sign", "") }))

	add(ClassTampered, M, "signed field changed", formThen(rejected(ReasonBadSignature), func(g *gen, b *base, f []kv) []kv {
		k := g.pick(signed(b))
		return formSet(f, k, formGet(f, k)+"1")
	}))
	add(ClassTampered, M, "amount lowered to originAmount's twin", formThen(rejected(ReasonBadSignature), func(g *gen, b *base, f []kv) []kv {
		return formSet(f, "amount", "0.01")
	}))
	add(ClassTampered, M, "invalid UTF-8 appended to the order id", rawThen(rejected(ReasonBadSignature), func(g *gen, b *base, body []byte) []byte {
		return bytes.Replace(body, []byte("&mrn="), []byte("&mrn="+g.pick([]string{"%FF", "%C3%28", "%E9"})), 1)
	}))
	add(ClassTampered, M, "unicode edge appended to the order id", formThen(rejected(ReasonBadSignature), func(g *gen, b *base, f []kv) []kv {
		return formSet(f, "mrn", formGet(f, "mrn")+g.pick(unicodeEdges))
	}))
	for _, name := range []string{"amount raised", "order id swapped"} {
		add(ClassReplayTampered, M, "replay: "+name, func(g *gen, b *base) (result, error) {
			*b = *g.originals[M][g.rng.IntN(len(g.originals[M]))]
			f := signedForm(b)
			if name == "amount raised" {
				f = formSet(f, "amount", formGet(f, "amount")+"0")
			} else {
				f = formSet(f, "mrn", "BI-REPLAY-"+g.digits(8))
			}
			return result{hdr: formHdr(), body: renderForm(f), want: rejected(ReasonBadSignature)}, nil
		})
	}

	add(ClassWrongEncoding, M, "latin-1 order id, signed over its UTF-8 text", func(g *gen, b *base) (result, error) {
		b.form = formSet(b.form, "mrn", formGet(b.form, "mrn")+"é")
		body := renderForm(signedForm(b))
		return result{hdr: formHdr(), body: bytes.Replace(body, []byte("%C3%A9"), []byte("%E9"), 1), want: rejected(ReasonBadSignature)}, nil
	})
	add(ClassWrongEncoding, M, "latin-1 order id, signed over its latin-1 bytes", func(g *gen, b *base) (result, error) {
		b.form = formSet(b.form, "mrn", formGet(b.form, "mrn")+g.pick([]string{"\xe9", "\xff", "\xc3\x28"}))
		// Finding F1, fixed: an order id must be valid UTF-8 (events.ValidOrderID),
		// or two ids would collapse into one U+FFFD spelling.
		return result{want: rejected(ReasonInvalidEvent)}, nil
	})
	add(ClassWrongEncoding, M, "UTF-16 body", rawThen(rejected(ReasonMissingField), func(g *gen, b *base, body []byte) []byte {
		return toUTF16(body, g.rng.IntN(2) == 0, g.rng.IntN(2) == 0)
	}))
	add(ClassWrongEncoding, M, "UTF-8 BOM before the form", rawThen(rejected(ReasonMissingField), func(g *gen, b *base, body []byte) []byte {
		return append([]byte("\xef\xbb\xbf"), body...)
	}))
	add(ClassWrongEncoding, M, "invalid percent escape", rawThen(rejected(ReasonMalformed), func(g *gen, b *base, body []byte) []byte {
		return append(body, g.pick([]string{"&x=%zz", "&x=%", "&%G1=1"})...)
	}))
	add(ClassWrongEncoding, M, "invalid UTF-8 in an unsigned field", rawThen(valid("fields outside the signature are ignored"), func(g *gen, b *base, body []byte) []byte {
		return append(body, "&note=%FF%FE"...)
	}))
	add(ClassWrongEncoding, M, "semicolon separators", rawThen(rejected(ReasonMalformed), func(g *gen, b *base, body []byte) []byte {
		return bytes.ReplaceAll(body, []byte("&"), []byte(";"))
	}))

	add(ClassUnicodeEdge, M, "printable unicode edge in the order id (signed)", resigned(valid("printable order ids are opaque signed data"), func(g *gen, b *base) {
		b.form = formSet(b.form, "mrn", "BI-"+g.digits(4)+g.pick(idEdgesOK))
	}))
	add(ClassUnicodeEdge, M, "control or format character in the order id (signed)", resigned(rejected(ReasonInvalidEvent), func(g *gen, b *base) {
		b.form = formSet(b.form, "mrn", "BI-"+g.digits(4)+g.pick(idEdgesBad))
	}))

	add(ClassContentType, M, "JSON body", func(g *gen, b *base) (result, error) {
		o := &obj{}
		for _, p := range signedForm(b) {
			o.set(p.k, str(p.v))
		}
		return result{hdr: jsonHdr(), body: o.bytes(), want: rejected(ReasonMissingField)}, nil
	})
	add(ClassContentType, M, "multipart body", func(g *gen, b *base) (result, error) {
		var buf bytes.Buffer
		for _, p := range signedForm(b) {
			fmt.Fprintf(&buf, "--x\r\nContent-Disposition: form-data; name=%q\r\n\r\n%s\r\n", p.k, p.v)
		}
		buf.WriteString("--x--\r\n")
		h := http.Header{}
		h.Set("Content-Type", "multipart/form-data; boundary=x")
		return result{hdr: h, body: buf.Bytes(), want: rejected(ReasonMalformed)}, nil // ';' is not a form separator
	})

	add(ClassDuplicateKey, M, "signed field repeated", formThen(rejected(ReasonMalformed), func(g *gen, b *base, f []kv) []kv {
		k := g.pick(append(signed(b), "sign"))
		v := formGet(f, k)
		if g.rng.IntN(2) == 0 {
			v += "9"
		}
		return append(f, kv{k, v})
	}))
	add(ClassDuplicateKey, M, "unsigned field repeated", formThen(valid("fields outside the signature are ignored"), func(g *gen, b *base, f []kv) []kv {
		return append(f, kv{"note", "a"}, kv{"note", "b"})
	}))

	add(ClassDeeplyNested, M, "deeply nested JSON body", func(g *gen, b *base) (result, error) {
		return result{hdr: jsonHdr(), body: []byte(`{"a":` + nested(g.pickInt([]int{100, 20000}), "[", "]", "") + "}"), want: rejected(ReasonMissingField)}, nil
	})
	add(ClassDeeplyNested, M, "deeply bracketed unsigned key", formThen(valid("a form is flat: a bracketed name is just an unsigned field"), func(g *gen, b *base, f []kv) []kv {
		return append(f, kv{"a" + strings.Repeat("[b]", 5000), "1"})
	}))

	for _, v := range []string{"1e5", strings.Repeat("9", 50), "-1.00", "NaN", "Infinity", "1,000.00", "0x10", " 1.00", "1.2.3", "+5"} {
		add(ClassHugeNumber, M, "amount "+clipName(v), resigned(rejected(ReasonBadAmount), func(g *gen, b *base) { b.form = formSet(b.form, "amount", v) }))
	}
	add(ClassHugeNumber, M, "originAmount out of range", resigned(rejected(ReasonBadAmount), func(g *gen, b *base) {
		if b.kind == events.KindPayout {
			b.form = formSet(b.form, "amount", "1e400")
			return
		}
		b.form = formSet(b.form, "originAmount", g.pick([]string{"1e400", strings.Repeat("1", 41), "-0.01"}))
	}))
	add(ClassHugeNumber, M, "39-digit amount", resigned(valid("an exact decimal within 40 characters: no overflow"), func(g *gen, b *base) {
		b.form = formSet(b.form, "amount", strings.Repeat("9", 39))
	}))

	add(ClassSemantic, M, "signed field removed", resigned(rejected(ReasonMissingField), func(g *gen, b *base) {
		b.form = formDel(b.form, g.pick(signed(b)))
	}))
	add(ClassSemantic, M, "channel not a channel id (signed)", func(g *gen, b *base) (result, error) {
		if b.kind != events.KindPayin {
			return result{}, errRetry
		}
		b.form = formSet(b.form, "channel", g.pick([]string{"abc", "12345", "-1", "1.0"}))
		return result{want: rejected(ReasonMalformed)}, nil
	})
	add(ClassWrongKind, M, "payin callback posted as payout", func(g *gen, b *base) (result, error) {
		if b.kind != events.KindPayin {
			return result{}, errRetry
		}
		return result{path: "/v1/callbacks/mrnpay/" + b.acct.ID + "/payout", want: rejected(ReasonBadSignature)}, nil
	})
	add(ClassWrongKind, M, "payout callback posted as payin", func(g *gen, b *base) (result, error) {
		if b.kind != events.KindPayout {
			return result{}, errRetry
		}
		return result{path: "/v1/callbacks/mrnpay/" + b.acct.ID + "/payin", want: rejected(ReasonMissingField)}, nil
	})
	add(ClassAccountMismatch, M, "appKey of another merchant (signed)", resigned(rejected(ReasonAccountMismatch), func(g *gen, b *base) {
		b.form = formSet(b.form, "appKey", otherAcct(g, b.acct).Key("merchant_id"))
	}))
	add(ClassHugeField, M, "order id over 64 bytes (signed)", resigned(rejected(ReasonMalformed), func(g *gen, b *base) {
		b.form = formSet(b.form, "mrn", strings.Repeat("7", g.pickInt([]int{65, 500, 20000})))
	}))
	add(ClassHugeField, M, "large unsigned field under the body limit", formThen(valid("fields outside the signature are ignored; the body limit bounds them"), func(g *gen, b *base, f []kv) []kv {
		return append(f, kv{"blob", strings.Repeat("z", int(g.limit)/2)})
	}))
}

func addMpurse(add addFunc) {
	P := mpurse.Name
	plainHdr := func() http.Header {
		h := http.Header{}
		h.Set("Content-Type", "text/plain")
		return h
	}
	// encrypted posts plaintext encrypted under b's account.
	encrypted := func(b *base, plain []byte, w Want) (result, error) {
		ct, err := mpurseEncrypt(b.acct, plain)
		return result{hdr: plainHdr(), body: []byte(ct), want: w}, err
	}
	plainThen := func(w Want, f func(g *gen, b *base, plain []byte) []byte) func(*gen, *base) (result, error) {
		return func(g *gen, b *base) (result, error) { return encrypted(b, f(g, b, b.obj.bytes()), w) }
	}
	resigned := func(w Want, f func(g *gen, b *base)) func(*gen, *base) (result, error) {
		return func(g *gen, b *base) (result, error) {
			f(g, b)
			return result{want: w}, nil
		}
	}
	bodyThen := func(w Want, f func(g *gen, b *base, body []byte) []byte) func(*gen, *base) (result, error) {
		return func(g *gen, b *base) (result, error) {
			h, body, err := g.sign(b)
			if err != nil {
				return result{}, err
			}
			return result{hdr: h, body: f(g, b, body), want: w}, nil
		}
	}
	success := func(b *base) bool { return b.obj.get("txnStatus") == `"TRANSACTION_SUCCESS"` }

	add(ClassPreserving, P, "plaintext keys reordered", resigned(valid("the plaintext is JSON; key order carries nothing"), func(g *gen, b *base) { b.obj = sortedObj(b.obj) }))
	add(ClassPreserving, P, "base64 with MIME line breaks", bodyThen(valid("CR/LF inside base64 are skipped"), func(g *gen, b *base, body []byte) []byte {
		var out []byte
		for i := 0; i < len(body); i += 76 {
			out = append(out, body[i:min(i+76, len(body))]...)
			out = append(out, "\r\n"...)
		}
		return out
	}))
	add(ClassPreserving, P, "base64 without padding", bodyThen(valid("unpadded base64 is accepted (one spelling per ciphertext)"), func(g *gen, b *base, body []byte) []byte {
		return bytes.TrimRight(body, "=")
	}))
	add(ClassPreserving, P, "surrounding whitespace", bodyThen(valid("surrounding whitespace is trimmed"), func(g *gen, b *base, body []byte) []byte {
		return append(append([]byte(" \n"), body...), "\r\n\t"...)
	}))

	add(ClassBadSignature, P, "encrypted under a wrong key", func(g *gen, b *base) (result, error) {
		a := b.acct
		a = a.With("aes_key", strings.Repeat("K", len(a.Key("aes_key"))))
		ct, err := mpurseEncrypt(a, b.obj.bytes())
		if err != nil {
			return result{}, err
		}
		if classifyCiphertext(b.acct, []byte(ct), nil) != plainGarbage {
			return result{}, errRetry
		}
		return result{hdr: plainHdr(), body: []byte(ct), want: rejected(ReasonUndecryptable)}, nil
	})
	add(ClassBadSignature, P, "encrypted in the other AES mode", func(g *gen, b *base) (result, error) {
		a := b.acct
		if a.Key("aes_mode") == "cbc" {
			a = a.With("aes_mode", "ecb").With("aes_iv", "")
		} else {
			a = a.With("aes_mode", "cbc").With("aes_iv", "0123456789abcdef")
		}
		ct, err := mpurseEncrypt(a, b.obj.bytes())
		if err != nil {
			return result{}, err
		}
		if classifyCiphertext(b.acct, []byte(ct), nil) != plainGarbage {
			return result{}, errRetry
		}
		return result{hdr: plainHdr(), body: []byte(ct), want: rejected(ReasonUndecryptable)}, nil
	})
	add(ClassBadSignature, P, "ciphertext not whole blocks", bodyThen(rejected(ReasonUndecryptable), func(g *gen, b *base, body []byte) []byte {
		ct := ciphertext(body)
		return []byte(base64.StdEncoding.EncodeToString(append(ct, byte(g.rng.IntN(256)))))
	}))
	add(ClassBadSignature, P, "not base64", func(g *gen, b *base) (result, error) {
		return result{hdr: plainHdr(), body: []byte(g.pick([]string{"====", "not base64!", "a===", "QUJD\x00", "%%%%"})), want: rejected(ReasonMalformed)}, nil
	})

	flip := func(g *gen, b *base, orig []byte, body []byte) (result, error) {
		out := g.flipB64(body)
		switch classifyCiphertext(b.acct, out, orig) {
		case plainGarbage:
			return result{hdr: plainHdr(), body: out, want: rejected(ReasonUndecryptable)}, nil
		}
		return result{}, errRetry
	}
	add(ClassTampered, P, "ciphertext character changed", func(g *gen, b *base) (result, error) {
		_, body, err := g.sign(b)
		if err != nil {
			return result{}, err
		}
		return flip(g, b, b.obj.bytes(), body)
	})
	add(ClassTampered, P, "ECB blocks swapped", func(g *gen, b *base) (result, error) {
		if b.acct.Key("aes_mode") == "cbc" {
			return result{}, errRetry
		}
		_, body, err := g.sign(b)
		if err != nil {
			return result{}, err
		}
		ct := ciphertext(body)
		n := len(ct) / 16
		i, j := g.rng.IntN(n-1), g.rng.IntN(n-1)
		if i == j {
			return result{}, errRetry
		}
		out := append([]byte(nil), ct...)
		copy(out[i*16:], ct[j*16:j*16+16])
		copy(out[j*16:], ct[i*16:i*16+16])
		enc := []byte(base64.StdEncoding.EncodeToString(out))
		if classifyCiphertext(b.acct, enc, b.obj.bytes()) != plainGarbage {
			return result{}, errRetry
		}
		return result{hdr: plainHdr(), body: enc, want: rejected(ReasonUndecryptable)}, nil
	})
	add(ClassReplayTampered, P, "replay: ciphertext character changed", func(g *gen, b *base) (result, error) {
		*b = *g.originals[P][g.rng.IntN(len(g.originals[P]))]
		return flip(g, b, b.obj.bytes(), b.body)
	})
	add(ClassReplayTampered, P, "replay: last block spliced from another callback", func(g *gen, b *base) (result, error) {
		os := g.originals[P]
		o1, o2 := os[g.rng.IntN(len(os))], os[g.rng.IntN(len(os))]
		if o1 == o2 || o1.acct.ID != o2.acct.ID {
			return result{}, errRetry
		}
		*b = *o1
		c1, c2 := ciphertext(o1.body), ciphertext(o2.body)
		out := append(append([]byte(nil), c1[:len(c1)-16]...), c2[len(c2)-16:]...)
		enc := []byte(base64.StdEncoding.EncodeToString(out))
		switch classifyCiphertext(b.acct, enc, o1.obj.bytes()) {
		case plainGarbage:
			return result{hdr: plainHdr(), body: enc, want: rejected(ReasonUndecryptable)}, nil
		case plainSame:
			return result{hdr: plainHdr(), body: enc, want: valid("the spliced block equals the original's: an exact replay")}, nil
		}
		return result{}, errRetry
	})

	add(ClassWrongEncoding, P, "latin-1 plaintext", func(g *gen, b *base) (result, error) {
		b.obj.set("payerVA", str("josé.zoë@upi"))
		return encrypted(b, toLatin1(b.obj.bytes()), rejected(ReasonUndecryptable))
	})
	add(ClassWrongEncoding, P, "UTF-16 plaintext", plainThen(rejected(ReasonUndecryptable), func(g *gen, b *base, p []byte) []byte {
		return toUTF16(p, g.rng.IntN(2) == 0, g.rng.IntN(2) == 0)
	}))
	add(ClassWrongEncoding, P, "UTF-8 BOM before the plaintext", plainThen(rejected(ReasonUndecryptable), func(g *gen, b *base, p []byte) []byte {
		return append([]byte("\xef\xbb\xbf"), p...)
	}))
	add(ClassWrongEncoding, P, "invalid UTF-8 in the plaintext", plainThen(rejected(ReasonUndecryptable), func(g *gen, b *base, p []byte) []byte {
		return bytes.Replace(p, []byte(`"payerVA":"`), []byte(`"payerVA":"`+g.pick(invalidUTF8)), 1)
	}))
	add(ClassWrongEncoding, P, "base64 text in UTF-16", bodyThen(rejected(ReasonMalformed), func(g *gen, b *base, body []byte) []byte {
		return toUTF16(body, g.rng.IntN(2) == 0, g.rng.IntN(2) == 0)
	}))
	add(ClassWrongEncoding, P, "UTF-8 BOM before the base64", bodyThen(rejected(ReasonMalformed), func(g *gen, b *base, body []byte) []byte {
		return append([]byte("\xef\xbb\xbf"), body...)
	}))
	add(ClassWrongEncoding, P, "base64url alphabet", func(g *gen, b *base) (result, error) {
		h, body, err := g.sign(b)
		if err != nil {
			return result{}, err
		}
		if !bytes.ContainsAny(body, "+/") {
			return result{}, errRetry
		}
		out := strings.NewReplacer("+", "-", "/", "_").Replace(string(body))
		return result{hdr: h, body: []byte(out), want: rejected(ReasonMalformed)}, nil
	})

	add(ClassUnicodeEdge, P, "unicode edge in payer fields (encrypted)", resigned(valid("payer fields are data"), func(g *gen, b *base) {
		b.obj.set(g.pick([]string{"payerVA", "errorMsg", "receiverVA"}), str(g.pick(unicodeEdges)))
	}))
	add(ClassUnicodeEdge, P, "printable unicode edge in mpQueryId (encrypted)", resigned(valid("printable order ids are opaque data"), func(g *gen, b *base) {
		b.obj.set("mpQueryId", str("BI-"+g.digits(6)+g.pick(idEdgesOK)))
	}))
	add(ClassUnicodeEdge, P, "control or format character in mpQueryId (encrypted)", resigned(rejected(ReasonInvalidEvent), func(g *gen, b *base) {
		b.obj.set("mpQueryId", str("BI-"+g.digits(6)+g.pick(idEdgesBad)))
	}))
	add(ClassUnicodeEdge, P, "raw control character in the plaintext", plainThen(rejected(ReasonUndecryptable), func(g *gen, b *base, p []byte) []byte {
		return bytes.Replace(p, []byte(`"payerVA":"`), []byte(`"payerVA":"`+g.pick([]string{"\x00", "\n", "\x1b"})), 1)
	}))

	add(ClassContentType, P, "plaintext JSON posted unencrypted", func(g *gen, b *base) (result, error) {
		return result{hdr: jsonHdr(), body: b.obj.bytes(), want: rejected(ReasonMalformed)}, nil
	})
	add(ClassContentType, P, "form field data=<base64>", func(g *gen, b *base) (result, error) {
		_, body, err := g.sign(b)
		return result{hdr: formHdr(), body: append([]byte("data="), urlEscapeB64(body)...), want: rejected(ReasonMalformed)}, err
	})

	add(ClassDuplicateKey, P, "plaintext key repeated", plainThen(rejected(ReasonMalformed), func(g *gen, b *base, p []byte) []byte {
		k := g.pick([]string{"payerAmount", "mpQueryId", "txnStatus", "partnerId", "bankRRN"})
		return append(p[:len(p)-1], []byte(`,"`+k+`":`+b.obj.get(k)+"}")...)
	}))
	add(ClassDeeplyNested, P, "deep nesting in the plaintext", plainThen(rejected(ReasonMalformed), func(g *gen, b *base, p []byte) []byte {
		return append(p[:len(p)-1], []byte(`,"x":`+nested(g.pickInt([]int{17, 1000, 20000}), "[", "]", "")+"}")...)
	}))
	add(ClassDeeplyNested, P, "plaintext is a deep array", plainThen(rejected(ReasonUndecryptable), func(g *gen, b *base, p []byte) []byte {
		return []byte(nested(10000, "[", "]", ""))
	}))

	for _, v := range []struct {
		raw  string
		want Want
	}{
		{`"1e400"`, rejected(ReasonBadAmount)},
		{`"-120.00"`, rejected(ReasonBadAmount)},
		{`"` + strings.Repeat("9", 45) + `"`, rejected(ReasonBadAmount)},
		{`1e2`, rejected(ReasonBadAmount)},
		{`"NaN"`, rejected(ReasonBadAmount)},
		{`""`, rejected(ReasonMissingField)},
		{`{"v":"1"}`, rejected(ReasonMalformed)},
		{`120.00`, valid("a JSON number is taken as its exact digits")},
	} {
		add(ClassHugeNumber, P, "payerAmount "+clipName(v.raw), resigned(v.want, func(g *gen, b *base) { b.obj.set("payerAmount", v.raw) }))
	}
	for _, v := range []struct {
		name string
		want func(b *base) Want
		f    func(g *gen, b *base)
	}{
		{"txnStatus unknown", func(*base) Want { return rejected(ReasonBadStatus) }, func(g *gen, b *base) {
			b.obj.set("txnStatus", str(g.pick([]string{"PENDING", "transaction_success", "SUCCESS"})))
		}},
		{"bankRRN removed", func(b *base) Want {
			if success(b) {
				return rejected(ReasonMissingField)
			}
			return valid("a failed payment may carry no bank reference")
		}, func(g *gen, b *base) { b.obj.del("bankRRN") }},
		{"required field removed", func(*base) Want { return rejected(ReasonMissingField) }, func(g *gen, b *base) {
			b.obj.del(g.pick([]string{"mpQueryId", "partnerId", "payerAmount", "txnStatus"}))
		}},
		{"txnCompletionDate malformed", func(*base) Want {
			return valid("an unreadable time falls back to received_at; a verified payment is not refused over it")
		}, func(g *gen, b *base) {
			b.obj.set("txnCompletionDate", str(g.pick([]string{"2026-01-01", "20261301000000", "yesterday"})))
		}},
		{"field of the wrong type", func(*base) Want { return rejected(ReasonMalformed) }, func(g *gen, b *base) {
			b.obj.set(g.pick([]string{"mpQueryId", "txnStatus", "bankRRN"}), g.pick([]string{"true", "[]", `{"a":1}`}))
		}},
		{"trailing data after the object", func(*base) Want { return rejected(ReasonUndecryptable) }, nil},
	} {
		add(ClassSemantic, P, v.name, func(g *gen, b *base) (result, error) {
			if v.f == nil {
				return encrypted(b, append(b.obj.bytes(), " {}"...), v.want(b))
			}
			v.f(g, b)
			return result{want: v.want(b)}, nil
		})
	}
	add(ClassAccountMismatch, P, "partnerId of another merchant (encrypted)", resigned(rejected(ReasonAccountMismatch), func(g *gen, b *base) {
		b.obj.set("partnerId", g.pick([]string{str(otherAcct(g, b.acct).Key("merchant_id")), "12345", str(strings.ToLower(b.acct.Key("merchant_id")))}))
	}))
	add(ClassAccountMismatch, P, "encrypted with the other account's key, posted to it, naming this merchant", func(g *gen, b *base) (result, error) {
		to := otherAcct(g, b.acct)
		ct, err := mpurseEncrypt(to, b.obj.bytes())
		return result{path: "/v1/callbacks/mpurse/" + to.ID + "/payin", hdr: plainHdr(), body: []byte(ct), want: rejected(ReasonAccountMismatch)}, err
	})
	add(ClassHugeField, P, "30 KB mpQueryId (encrypted)", resigned(rejected(ReasonInvalidEvent), func(g *gen, b *base) {
		b.obj.set("mpQueryId", str("BI-"+strings.Repeat("8", 30000)+g.digits(6)))
	}))
}

func urlEscapeB64(b []byte) []byte {
	return []byte(strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(string(b)))
}

func addCashypro(add addFunc) {
	C := cashypro.Name
	resigned := func(w Want, f func(g *gen, b *base)) func(*gen, *base) (result, error) {
		return func(g *gen, b *base) (result, error) {
			f(g, b)
			return result{want: w}, nil
		}
	}
	// after signs b, then lets f change the body and headers.
	after := func(w Want, f func(g *gen, b *base, h http.Header, o *obj) []byte) func(*gen, *base) (result, error) {
		return func(g *gen, b *base) (result, error) {
			h, _, err := g.sign(b)
			if err != nil {
				return result{}, err
			}
			return result{hdr: h, body: f(g, b, h, b.obj.clone()), want: w}, nil
		}
	}
	statusFlip := func(o *obj) *obj {
		if o.get("orderStatus") == `"SUCCESS"` {
			return o.set("orderStatus", `"FAIL"`)
		}
		return o.set("orderStatus", `"SUCCESS"`)
	}

	add(ClassPreserving, C, "keys reordered", after(valid("cashypro signs fields sorted by name"), func(g *gen, b *base, h http.Header, o *obj) []byte { return sortedObj(o).bytes() }))
	add(ClassPreserving, C, "whitespace between tokens", after(valid("JSON whitespace is not signed"), func(g *gen, b *base, h http.Header, o *obj) []byte { return o.render(" \n ") }))
	add(ClassPreserving, C, "null or empty field added", after(valid("null and empty values are skipped when signing"), func(g *gen, b *base, h http.Header, o *obj) []byte {
		return o.set(g.pick([]string{"remark", "extra", "attach"}), g.pick([]string{"null", `""`})).bytes()
	}))
	add(ClassPreserving, C, "header names in lower case", func(g *gen, b *base) (result, error) {
		h, body, err := g.sign(b)
		if err != nil {
			return result{}, err
		}
		mid, sign := h.Get(cashypro.HeaderMerchantID), h.Get(cashypro.HeaderSign)
		h.Del(cashypro.HeaderMerchantID)
		h.Del(cashypro.HeaderSign)
		h["merchantid"], h["SIGN"] = []string{mid}, []string{sign}
		return result{hdr: h, body: body, want: valid("header names are case-insensitive")}, nil
	})
	add(ClassPreserving, C, "Sign in lower-case hex", after(valid("the digest's bytes are compared, not their hex spelling"), func(g *gen, b *base, h http.Header, o *obj) []byte {
		h.Set(cashypro.HeaderSign, strings.ToLower(h.Get(cashypro.HeaderSign)))
		return o.bytes()
	}))
	add(ClassPreserving, C, "amount written as a string", after(valid("the signed text of a value is the same for 20000.00 and \"20000.00\""), func(g *gen, b *base, h http.Header, o *obj) []byte {
		return o.set("amount", `"`+o.get("amount")+`"`).bytes()
	}))

	add(ClassBadSignature, C, "signed with a wrong key", func(g *gen, b *base) (result, error) {
		a := b.acct
		a = a.With("secret", "wrong-"+a.Key("secret"))
		h, body, err := signAs(b, a)
		return result{hdr: h, body: body, want: rejected(ReasonBadSignature)}, err
	})
	for _, v := range []struct {
		name string
		want Want
		f    func(h http.Header)
	}{
		{"Sign removed", rejected(ReasonBadSignature), func(h http.Header) { h.Del(cashypro.HeaderSign) }},
		{"Sign not hex", rejected(ReasonBadSignature), func(h http.Header) { h.Set(cashypro.HeaderSign, strings.Repeat("Z", 32)) }},
		{"Sign 31 characters", rejected(ReasonBadSignature), func(h http.Header) { h.Set(cashypro.HeaderSign, h.Get(cashypro.HeaderSign)[1:]) }},
		{"Sign one digit changed", rejected(ReasonBadSignature), func(h http.Header) {
			s := h.Get(cashypro.HeaderSign)
			h.Set(cashypro.HeaderSign, s[:3]+flipHex(s[3])+s[4:])
		}},
		{"Sign header repeated", rejected(ReasonMalformed), func(h http.Header) { h.Add(cashypro.HeaderSign, h.Get(cashypro.HeaderSign)) }},
		{"Sign of SHA-256 length", rejected(ReasonBadSignature), func(h http.Header) { h.Set(cashypro.HeaderSign, strings.Repeat(h.Get(cashypro.HeaderSign), 2)) }},
	} {
		add(ClassBadSignature, C, v.name, after(v.want, func(g *gen, b *base, h http.Header, o *obj) []byte {
			v.f(h)
			return o.bytes()
		}))
	}

	add(ClassTampered, C, "amount changed", after(rejected(ReasonBadSignature), func(g *gen, b *base, h http.Header, o *obj) []byte {
		return o.set("amount", strings.Replace(o.get("amount"), ".00", g.pick([]string{".01", "0.00", ".0"}), 1)).bytes()
	}))
	add(ClassTampered, C, "orderStatus flipped", after(rejected(ReasonBadSignature), func(g *gen, b *base, h http.Header, o *obj) []byte { return statusFlip(o).bytes() }))
	add(ClassTampered, C, "order id changed", after(rejected(ReasonBadSignature), func(g *gen, b *base, h http.Header, o *obj) []byte {
		return o.set("mchOrderNo", bumpDigits(o.get("mchOrderNo"))).bytes()
	}))
	add(ClassTampered, C, "signed field removed", after(rejected(ReasonBadSignature), func(g *gen, b *base, h http.Header, o *obj) []byte {
		return o.del(g.pick([]string{"fee", "payUrl", "nonceStr", "channelOrderNo"})).bytes()
	}))
	add(ClassTampered, C, "non-empty field added", after(rejected(ReasonBadSignature), func(g *gen, b *base, h http.Header, o *obj) []byte {
		return o.set("remark", g.pick([]string{`"x"`, "0", "false", `{"a":1}`})).bytes()
	}))
	add(ClassTampered, C, "body merchantId changed", after(rejected(ReasonBadSignature), func(g *gen, b *base, h http.Header, o *obj) []byte {
		return o.set("merchantId", str(otherAcct(g, b.acct).Key("merchant_id"))).bytes()
	}))
	add(ClassTampered, C, "unicode edge inserted after signing", after(rejected(ReasonBadSignature), func(g *gen, b *base, h http.Header, o *obj) []byte {
		return o.set("payCode", str(g.pick(unicodeEdges))).bytes()
	}))
	for _, name := range []string{"amount raised", "status flipped"} {
		add(ClassReplayTampered, C, "replay: "+name, func(g *gen, b *base) (result, error) {
			*b = *g.originals[C][g.rng.IntN(len(g.originals[C]))]
			o := b.obj.clone()
			if name == "amount raised" {
				o.set("amount", "9"+o.get("amount"))
			} else {
				statusFlip(o)
			}
			return result{hdr: b.hdr.Clone(), body: o.bytes(), want: rejected(ReasonBadSignature)}, nil
		})
	}

	add(ClassWrongEncoding, C, "latin-1 body", func(g *gen, b *base) (result, error) {
		b.obj.set("remark", str("café Zoë"))
		h, body, err := g.sign(b)
		return result{hdr: h, body: toLatin1(body), want: rejected(ReasonMalformed)}, err
	})
	add(ClassWrongEncoding, C, "UTF-16 body", after(rejected(ReasonMalformed), func(g *gen, b *base, h http.Header, o *obj) []byte {
		return toUTF16(o.bytes(), g.rng.IntN(2) == 0, g.rng.IntN(2) == 0)
	}))
	add(ClassWrongEncoding, C, "invalid UTF-8 in a string", after(rejected(ReasonMalformed), func(g *gen, b *base, h http.Header, o *obj) []byte {
		return bytes.Replace(o.bytes(), []byte(`"mchOrderNo":"`), []byte(`"mchOrderNo":"`+g.pick(invalidUTF8)), 1)
	}))
	add(ClassWrongEncoding, C, "UTF-8 BOM before the object", after(rejected(ReasonMalformed), func(g *gen, b *base, h http.Header, o *obj) []byte {
		return append([]byte("\xef\xbb\xbf"), o.bytes()...)
	}))

	add(ClassUnicodeEdge, C, "unicode edge in a signed text field", resigned(valid("free text is data; the signature covers it"), func(g *gen, b *base) {
		b.obj.set(g.pick([]string{"payCode", "payUrl", "remark"}), str(g.pick(unicodeEdges)))
	}))
	add(ClassUnicodeEdge, C, "printable unicode edge in the merchant order id (signed)", resigned(valid("printable order ids are opaque signed data"), func(g *gen, b *base) {
		b.obj.set("mchOrderNo", str("BI-"+g.digits(6)+g.pick(idEdgesOK)))
	}))
	add(ClassUnicodeEdge, C, "control or format character in the merchant order id (signed)", resigned(rejected(ReasonInvalidEvent), func(g *gen, b *base) {
		b.obj.set("mchOrderNo", str("BI-"+g.digits(6)+g.pick(idEdgesBad)))
	}))
	add(ClassUnicodeEdge, C, "raw control character inside a string", after(rejected(ReasonMalformed), func(g *gen, b *base, h http.Header, o *obj) []byte {
		return bytes.Replace(o.bytes(), []byte(`"mchOrderNo":"`), []byte(`"mchOrderNo":"`+g.pick([]string{"\x00", "\n", "\x1b"})), 1)
	}))

	add(ClassContentType, C, "form-encoded body", after(rejected(ReasonMalformed), func(g *gen, b *base, h http.Header, o *obj) []byte {
		h.Set("Content-Type", "application/x-www-form-urlencoded")
		var f []kv
		for i, k := range o.k {
			v := o.v[i]
			if s, err := strconv.Unquote(v); err == nil {
				v = s
			}
			f = append(f, kv{k, v})
		}
		return renderForm(f)
	}))
	add(ClassContentType, C, "XML body", after(rejected(ReasonMalformed), func(g *gen, b *base, h http.Header, o *obj) []byte {
		h.Set("Content-Type", "text/xml")
		return []byte("<notify><mchOrderNo>" + g.digits(8) + "</mchOrderNo></notify>")
	}))

	add(ClassDuplicateKey, C, "key repeated", after(rejected(ReasonMalformed), func(g *gen, b *base, h http.Header, o *obj) []byte {
		k := g.pick([]string{"amount", "mchOrderNo", "orderStatus", "merchantId"})
		o.k, o.v = append(o.k, k), append(o.v, o.get(k))
		return o.bytes()
	}))
	add(ClassDuplicateKey, C, "MerchantId header repeated", after(rejected(ReasonMalformed), func(g *gen, b *base, h http.Header, o *obj) []byte {
		h.Add(cashypro.HeaderMerchantID, h.Get(cashypro.HeaderMerchantID))
		return o.bytes()
	}))

	add(ClassDeeplyNested, C, "deeply nested value", after(rejected(ReasonMalformed), func(g *gen, b *base, h http.Header, o *obj) []byte {
		return o.set("remark", nested(g.pickInt([]int{17, 1000, 30000}), "[", "]", "")).bytes()
	}))
	add(ClassDeeplyNested, C, "body is a deep array", after(rejected(ReasonMalformed), func(g *gen, b *base, h http.Header, o *obj) []byte {
		return []byte(nested(20000, "[", "]", ""))
	}))

	for _, v := range []string{"1e400", "-20000.00", strings.Repeat("9", 45), "2e4", `"NaN"`, `"20.000,00"`, "true"} {
		add(ClassHugeNumber, C, "amount "+clipName(v), resigned(rejected(ReasonBadAmount), func(g *gen, b *base) { b.obj.set("amount", v) }))
	}
	for _, v := range []struct {
		name string
		want Want
		f    func(g *gen, b *base)
	}{
		{"mchOrderNo removed", rejected(ReasonMissingField), func(g *gen, b *base) { b.obj.del("mchOrderNo") }},
		{"amount removed", rejected(ReasonMissingField), func(g *gen, b *base) { b.obj.del("amount") }},
		{"body merchantId removed", rejected(ReasonMissingField), func(g *gen, b *base) { b.obj.del("merchantId") }},
		{"orderStatus unknown", rejected(ReasonBadStatus), func(g *gen, b *base) { b.obj.set("orderStatus", str(g.pick([]string{"DONE", "success", "PAID"}))) }},
		{"completionTime malformed", valid("an unreadable time falls back to received_at; a verified payment is not refused over it"), func(g *gen, b *base) {
			b.obj.set("completionTime", str(g.pick([]string{"2024/12/02 12:07:06", "2024-12-02T12:07:06Z", "now"})))
		}},
		{"mchOrderNo an object", rejected(ReasonMalformed), func(g *gen, b *base) { b.obj.set("mchOrderNo", `{"id":"1"}`) }},
	} {
		add(ClassSemantic, C, v.name, resigned(v.want, v.f))
	}
	add(ClassSemantic, C, "body not an object", after(rejected(ReasonMalformed), func(g *gen, b *base, h http.Header, o *obj) []byte {
		return []byte(g.pick([]string{"[]", "null", "42", `"x"`}))
	}))
	add(ClassAccountMismatch, C, "MerchantId header of another merchant", after(rejected(ReasonAccountMismatch), func(g *gen, b *base, h http.Header, o *obj) []byte {
		h.Set(cashypro.HeaderMerchantID, g.pick([]string{otherAcct(g, b.acct).Key("merchant_id"), "0", b.acct.Key("merchant_id") + "0"}))
		return o.bytes()
	}))
	add(ClassAccountMismatch, C, "MerchantId header missing", after(rejected(ReasonMissingField), func(g *gen, b *base, h http.Header, o *obj) []byte {
		h.Del(cashypro.HeaderMerchantID)
		return o.bytes()
	}))
	add(ClassAccountMismatch, C, "body merchantId of another merchant (signed)", resigned(rejected(ReasonAccountMismatch), func(g *gen, b *base) {
		b.obj.set("merchantId", str(otherAcct(g, b.acct).Key("merchant_id")))
	}))
	add(ClassHugeField, C, "30 KB mchOrderNo (signed)", resigned(rejected(ReasonInvalidEvent), func(g *gen, b *base) {
		b.obj.set("mchOrderNo", str("BI-"+strings.Repeat("6", 30000)+g.digits(6)))
	}))
}

// mpurseEncrypt is mpurse.Encrypt, the provider package's own helper.
func mpurseEncrypt(a providers.Account, plain []byte) (string, error) {
	return mpurse.Encrypt(a, plain)
}
