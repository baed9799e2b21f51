package stripe

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/hostile"
)

// Stripe's wire for the bad-input corpus (hostile.Provider): a JSON Event
// signed in the Stripe-Signature header over "{t}.{raw body}" (sign.go),
// so that any byte changed after signing breaks it; the header's own
// grammar (t, v1 per secret, other schemes ignored, the 300 s tolerance);
// and what Verify and Event answer each mutation with.

var _ hostile.Provider = (*Provider)(nil)

// hostileSignedAt is when the corpus' callbacks are signed: once per
// process, to the minute, so that one seed is one corpus byte for byte.
// A corpus must be sent within DefaultTolerance (less up to a minute) of
// when the process started.
var hostileSignedAt = time.Now().Truncate(time.Minute)

// HostileAccounts are a USD and a JPY (zero-decimal) account with
// throwaway secrets.
func (p *Provider) HostileAccounts() []providers.Account {
	return []providers.Account{
		{ID: "stripe-us", Provider: Name, Currency: "USD",
			Keys: providers.Keys{"secret": "whsec_badinput_stripe_us_7d0e", "api_key": "sk_test_badinput_us"}},
		{ID: "stripe-jp", Provider: Name, Currency: "JPY",
			Keys: providers.Keys{"secret": "whsec_badinput_stripe_jp_41c9", "api_key": "sk_test_badinput_jp"}},
	}
}

// HostileWire: a JSON body of up to MaxBody bytes whose raw bytes are
// signed, so a cut one no longer verifies and a foreign one has no
// Stripe-Signature.
func (p *Provider) HostileWire() hostile.Wire {
	bad := hostile.Rejected(hostile.ReasonBadSignature)
	return hostile.Wire{
		Format: hostile.FormatJSON, MaxBody: MaxBody,
		Truncated: bad,
		Foreign:   map[hostile.Format]hostile.Want{hostile.FormatJSON: bad, hostile.FormatForm: bad, hostile.FormatText: bad},
		SignBody: func(acct providers.Account, _ events.Kind, body []byte) (http.Header, error) {
			return signed(acct, body), nil
		},
	}
}

// HostileCallback is a PaymentIntent (three in four) or a Payout event in
// the account's currency, of a type payhook maps.
func (p *Provider) HostileCallback(g hostile.Gen, acct providers.Account, orderID string) *hostile.Callback {
	amt := strconv.Itoa(100 + g.IntN(9999900))
	o := object{Kind: events.KindPayin, ID: "pi_" + g.Digits(24), Currency: strings.ToLower(acct.Currency),
		Amount: amt, AmountReceived: "0", OrderID: orderID}
	var typ string
	if g.IntN(4) == 0 {
		o.Kind, o.ID = events.KindPayout, "po_"+g.Digits(24)
		typ, o.Status = "payout.paid", "paid"
		if g.IntN(3) == 0 {
			typ, o.Status = "payout.failed", "failed"
			o.FailureCode, o.FailureMessage = "account_closed", "The bank account has been closed."
		}
	} else {
		switch g.IntN(4) {
		case 0:
			typ, o.Status = "payment_intent.payment_failed", "requires_payment_method"
			o.FailureCode, o.FailureMessage = "card_declined", "Your card was declined."
		case 1:
			typ, o.Status = "payment_intent.processing", "processing"
		default:
			typ, o.Status = "payment_intent.succeeded", "succeeded"
			o.AmountReceived, o.LatestCharge = amt, "ch_"+g.Digits(24)
		}
	}
	created := int64(1700000000 + g.IntN(50000000))
	return &hostile.Callback{Account: acct, Kind: o.Kind, Obj: eventObj("evt_"+g.Digits(24), typ, created, o.obj())}
}

// HostileSign signs c's body under acct at hostileSignedAt.
func (p *Provider) HostileSign(acct providers.Account, c *hostile.Callback) (http.Header, []byte, error) {
	body := c.Obj.Bytes()
	return signed(acct, body), body, nil
}

// signed is the headers of body signed under acct at hostileSignedAt.
func signed(acct providers.Account, body []byte) http.Header {
	return webhookHeader(hostileSignedAt, body, acct.Key("secret"))
}

// HostileMutations are stripe's own mutations.
func (p *Provider) HostileMutations() []hostile.Mutation {
	return hostile.Build(addPreserving, addSignature, addTampering, addEncodings,
		addStructure, addNumbers, addSemantics, addMerchant)
}

type mutateFunc = func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error)

// resigned lets f make the body's bytes, which are then validly signed:
// what the signature cannot catch, the decoder must.
func resigned(w hostile.Want, f func(g hostile.Gen, c *hostile.Callback) []byte) mutateFunc {
	return func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		body := f(g, c)
		return hostile.Result{Header: signed(c.Account, body), Body: body, Want: w}, nil
	}
}

// bodyAfterSigning signs c, then lets f change the body's bytes.
func bodyAfterSigning(w hostile.Want, f func(g hostile.Gen, c *hostile.Callback, body []byte) []byte) mutateFunc {
	return func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		body := c.Obj.Bytes()
		h := signed(c.Account, body)
		return hostile.Result{Header: h, Body: f(g, c, body), Want: w}, nil
	}
}

// headerAfterSigning signs c, then lets f rewrite the Stripe-Signature;
// f gets the signed time and the valid v1.
func headerAfterSigning(w hostile.Want, f func(g hostile.Gen, c *hostile.Callback, t, v1 string) string) mutateFunc {
	return func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		body := c.Obj.Bytes()
		h := signed(c.Account, body)
		h.Set(HeaderSignature, f(g, c, unix(hostileSignedAt), Signature(c.Account.Key("secret"), hostileSignedAt, body)))
		return hostile.Result{Header: h, Body: body, Want: w}, nil
	}
}

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// editObject lets f change the data.object of c's event.
func editObject(c *hostile.Callback, f func(o *hostile.Obj)) {
	data, err := hostile.ParseObj(c.Obj.Get("data"))
	if err != nil {
		return // a mutation already replaced data: nothing to edit
	}
	obj, err := hostile.ParseObj(data.Get("object"))
	if err != nil {
		return
	}
	f(obj)
	c.Obj.Set("data", string(data.Set("object", string(obj.Bytes())).Bytes()))
}

// setOrderID sets metadata.order_id.
func setOrderID(c *hostile.Callback, raw string) {
	editObject(c, func(o *hostile.Obj) { o.Set("metadata", `{"order_id":`+raw+`}`) })
}

// succeededPayin reports whether c is a payment_intent.succeeded, whose
// amount_received is read too.
func succeededPayin(c *hostile.Callback) bool {
	return c.Obj.Get("type") == `"payment_intent.succeeded"`
}

// rotatedOut is a secret the endpoint no longer has.
const rotatedOut = "whsec_rotated_out_0b1d"

func addPreserving(ms *hostile.Mutations) {
	ms.Add(hostile.ClassPreserving, "a second v1 under a rotated-out secret", headerAfterSigning(
		hostile.Valid("any one v1 matching the secret is enough: Stripe signs with both while a secret is rolled"),
		func(g hostile.Gen, c *hostile.Callback, t, v1 string) string {
			old := Signature(rotatedOut, hostileSignedAt, c.Obj.Bytes())
			if g.IntN(2) == 0 {
				return "t=" + t + ",v1=" + old + ",v1=" + v1
			}
			return "t=" + t + ",v1=" + v1 + ",v1=" + old
		}))
	ms.Add(hostile.ClassPreserving, "v0 signature beside v1", headerAfterSigning(hostile.Valid("schemes other than v1 are ignored"),
		func(g hostile.Gen, c *hostile.Callback, t, v1 string) string {
			return "t=" + t + ",v1=" + v1 + ",v0=" + Signature(c.Account.Key("secret"), hostileSignedAt, c.Obj.Bytes())
		}))
	ms.Add(hostile.ClassPreserving, "header elements reordered", headerAfterSigning(hostile.Valid("the header's elements are read by name"),
		func(g hostile.Gen, c *hostile.Callback, t, v1 string) string { return "v1=" + v1 + ",t=" + t }))
	ms.Add(hostile.ClassPreserving, "unknown scheme added", headerAfterSigning(hostile.Valid("unknown schemes are ignored"),
		func(g hostile.Gen, c *hostile.Callback, t, v1 string) string {
			return "t=" + t + "," + g.Pick([]string{"v9=abc", "scheme=x", "v2=" + v1}) + ",v1=" + v1
		}))
	ms.Add(hostile.ClassPreserving, "v1 in upper-case hex", headerAfterSigning(hostile.Valid("a v1 is compared as the bytes its hex spells"),
		func(g hostile.Gen, c *hostile.Callback, t, v1 string) string {
			return "t=" + t + ",v1=" + strings.ToUpper(v1)
		}))
}

func addSignature(ms *hostile.Mutations) {
	bad, malformed := hostile.Rejected(hostile.ReasonBadSignature), hostile.Rejected(hostile.ReasonMalformed)
	for _, v := range []struct {
		name   string
		secret func(c *hostile.Callback) string
	}{
		{"signed with a wrong secret", func(c *hostile.Callback) string { return "wrong-" + c.Account.Key("secret") }},
		{"signed with a rotated-out secret only", func(*hostile.Callback) string { return rotatedOut }},
		{"signed with an empty secret", func(*hostile.Callback) string { return "" }},
	} {
		ms.Add(hostile.ClassBadSignature, v.name, headerAfterSigning(bad, func(g hostile.Gen, c *hostile.Callback, t, _ string) string {
			return "t=" + t + ",v1=" + Signature(v.secret(c), hostileSignedAt, c.Obj.Bytes())
		}))
	}
	for _, v := range []struct {
		name string
		want hostile.Want
		f    func(g hostile.Gen, c *hostile.Callback, t, v1 string) string
	}{
		{"v0 scheme only", bad, func(g hostile.Gen, c *hostile.Callback, t, v1 string) string { return "t=" + t + ",v0=" + v1 }},
		{"v1 not 64 hex digits", bad, func(g hostile.Gen, c *hostile.Callback, t, v1 string) string {
			return "t=" + t + ",v1=" + g.Pick([]string{v1[:63], v1 + "0", "g" + v1[1:], "", v1[:32]})
		}},
		{"v1 one digit changed", bad, func(g hostile.Gen, c *hostile.Callback, t, v1 string) string {
			return "t=" + t + ",v1=" + v1[:9] + hostile.FlipHex(v1[9]) + v1[10:]
		}},
		{"v1 over the body alone (no t. prefix)", bad, func(g hostile.Gen, c *hostile.Callback, t, v1 string) string {
			return "t=" + t + ",v1=" + bodyOnlyMAC(c)
		}},
		{"t moved one second, v1 kept", bad, func(g hostile.Gen, c *hostile.Callback, t, v1 string) string {
			return "t=" + unix(hostileSignedAt.Add(time.Second)) + ",v1=" + v1
		}},
		{"t not a unix time", malformed, func(g hostile.Gen, c *hostile.Callback, t, v1 string) string {
			return "t=" + g.Pick([]string{"", "abc", "+" + t, "-5", t + ".0", "1e9", "99999999999999999999"}) + ",v1=" + v1
		}},
		{"t given twice", malformed, func(g hostile.Gen, c *hostile.Callback, t, v1 string) string {
			return "t=" + t + ",t=" + t + ",v1=" + v1
		}},
		{"no t", malformed, func(g hostile.Gen, c *hostile.Callback, t, v1 string) string { return "v1=" + v1 }},
		{"element without '='", malformed, func(g hostile.Gen, c *hostile.Callback, t, v1 string) string {
			return "t=" + t + "," + g.Pick([]string{"v1", "", " "}) + ",v1=" + v1
		}},
		{"header over 4096 bytes", malformed, func(g hostile.Gen, c *hostile.Callback, t, v1 string) string {
			return "t=" + t + ",v1=" + v1 + strings.Repeat(",v0="+v1, 70)
		}},
	} {
		ms.Add(hostile.ClassBadSignature, v.name, headerAfterSigning(v.want, v.f))
	}
	ms.Add(hostile.ClassBadSignature, "Stripe-Signature removed", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		body := c.Obj.Bytes()
		h := signed(c.Account, body)
		h.Del(HeaderSignature)
		return hostile.Result{Header: h, Body: body, Want: bad}, nil
	})
	ms.Add(hostile.ClassBadSignature, "Stripe-Signature given twice", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		body := c.Obj.Bytes()
		h := signed(c.Account, body)
		h.Add(HeaderSignature, h.Get(HeaderSignature))
		return hostile.Result{Header: h, Body: body, Want: malformed}, nil
	})
	// A valid signature at a t beyond the tolerance: a captured request
	// replayed later, or a clock far ahead.
	for _, v := range []struct {
		name string
		at   func(g hostile.Gen) time.Time
	}{
		{"timestamp older than the tolerance", func(g hostile.Gen) time.Time {
			return hostileSignedAt.Add(-DefaultTolerance - time.Duration(1+g.IntN(86400))*time.Second)
		}},
		{"timestamp further ahead than the tolerance", func(g hostile.Gen) time.Time {
			return hostileSignedAt.Add(time.Hour + time.Duration(g.IntN(86400))*time.Second)
		}},
	} {
		ms.Add(hostile.ClassBadSignature, v.name, func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
			body := c.Obj.Bytes()
			return hostile.Result{Header: webhookHeader(v.at(g), body, c.Account.Key("secret")), Body: body,
				Want: hostile.Rejected(hostile.ReasonTooOld)}, nil
		})
	}
}

// bodyOnlyMAC is the HMAC-SHA256 of the body alone under c's secret,
// without the "{t}." prefix that binds the signed time.
func bodyOnlyMAC(c *hostile.Callback) string {
	mac := hmac.New(sha256.New, []byte(c.Account.Key("secret")))
	mac.Write(c.Obj.Bytes())
	return hex.EncodeToString(mac.Sum(nil))
}

func bumpAmount(g hostile.Gen, c *hostile.Callback) {
	editObject(c, func(o *hostile.Obj) { o.Set("amount", hostile.BumpDigits(o.Get("amount"))) })
}

func flipType(g hostile.Gen, c *hostile.Callback) {
	flips := map[string]string{
		`"payment_intent.succeeded"`: `"payment_intent.payment_failed"`, `"payment_intent.payment_failed"`: `"payment_intent.succeeded"`,
		`"payment_intent.processing"`: `"payment_intent.succeeded"`, `"payout.paid"`: `"payout.failed"`, `"payout.failed"`: `"payout.paid"`,
	}
	c.Obj.Set("type", flips[c.Obj.Get("type")])
}

// addTampering changes the signed bytes after signing, on fresh callbacks
// and on replays of accepted ones: Stripe signs the raw body, so even a
// change that says the same thing breaks the signature.
func addTampering(ms *hostile.Mutations) {
	bad := hostile.Rejected(hostile.ReasonBadSignature)
	for _, v := range []struct {
		name string
		f    func(g hostile.Gen, c *hostile.Callback)
	}{
		{"amount changed", bumpAmount},
		{"type flipped", flipType},
		{"order id changed", func(g hostile.Gen, c *hostile.Callback) { setOrderID(c, hostile.Str("BI-TAMPERED-"+g.Digits(6))) }},
		{"keys reordered", func(g hostile.Gen, c *hostile.Callback) { c.Obj = c.Obj.Reversed() }},
		{"field added", func(g hostile.Gen, c *hostile.Callback) {
			c.Obj.Set(g.Pick([]string{"request", "note", "extra"}), "null")
		}},
	} {
		ms.Add(hostile.ClassTampered, v.name, func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
			h := signed(c.Account, c.Obj.Bytes())
			v.f(g, c)
			return hostile.Result{Header: h, Body: c.Obj.Bytes(), Want: bad}, nil
		})
		ms.Add(hostile.ClassReplayTampered, "replay: "+v.name, func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
			*c = *g.Original()
			h := c.Header.Clone()
			v.f(g, c)
			return hostile.Result{Header: h, Body: c.Obj.Bytes(), Want: bad}, nil
		})
	}
	ms.Add(hostile.ClassTampered, "whitespace between tokens", bodyAfterSigning(bad, func(g hostile.Gen, c *hostile.Callback, body []byte) []byte {
		return c.Obj.Render(g.Pick([]string{" ", "\n", "\t", " \r\n  "}))
	}))
	ms.Add(hostile.ClassTampered, "string written with \\u escapes", bodyAfterSigning(bad, func(g hostile.Gen, c *hostile.Callback, body []byte) []byte {
		return bytes.Replace(body, []byte(`"evt_`), []byte(`"\u0065vt_`), 1)
	}))
	ms.Add(hostile.ClassReplayTampered, "replay: t refreshed, v1 kept", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		*c = *g.Original()
		h := c.Header.Clone()
		sig := h.Get(HeaderSignature)
		h.Set(HeaderSignature, strings.Replace(sig, "t="+unix(hostileSignedAt), "t="+unix(hostileSignedAt.Add(time.Duration(1+g.IntN(60))*time.Second)), 1))
		return hostile.Result{Header: h, Body: c.Body, Want: bad}, nil
	})
}

// addEncodings: validly signed bodies in other encodings, with unicode
// edges, or in the format of another content type.
func addEncodings(ms *hostile.Mutations) {
	malformed := hostile.Rejected(hostile.ReasonMalformed)
	describe := func(c *hostile.Callback, s string) {
		editObject(c, func(o *hostile.Obj) { o.Set("description", hostile.Str(s)) })
	}
	ms.Add(hostile.ClassWrongEncoding, "latin-1 body", resigned(malformed, func(g hostile.Gen, c *hostile.Callback) []byte {
		describe(c, "Café Zoë")
		return hostile.Latin1(c.Obj.Bytes())
	}))
	ms.Add(hostile.ClassWrongEncoding, "UTF-16 body", resigned(malformed, func(g hostile.Gen, c *hostile.Callback) []byte {
		return hostile.UTF16(c.Obj.Bytes(), g.IntN(2) == 0, g.IntN(2) == 0)
	}))
	ms.Add(hostile.ClassWrongEncoding, "invalid UTF-8 in a string", resigned(malformed, func(g hostile.Gen, c *hostile.Callback) []byte {
		return bytes.Replace(c.Obj.Bytes(), []byte(`"type":"`), []byte(`"type":"`+g.Pick(hostile.InvalidUTF8)), 1)
	}))
	ms.Add(hostile.ClassWrongEncoding, "UTF-8 BOM before the object", resigned(malformed, func(g hostile.Gen, c *hostile.Callback) []byte {
		return append([]byte("\xef\xbb\xbf"), c.Obj.Bytes()...)
	}))

	ms.Add(hostile.ClassUnicodeEdge, "unicode edge in a free-text field", hostile.BeforeSigning(hostile.Valid("free text is data; the signature covers it"), func(g hostile.Gen, c *hostile.Callback) {
		describe(c, g.Pick(hostile.UnicodeEdges))
	}))
	ms.Add(hostile.ClassUnicodeEdge, "printable unicode edge in metadata.order_id", hostile.BeforeSigning(hostile.Valid("printable order ids are opaque signed data"), func(g hostile.Gen, c *hostile.Callback) {
		setOrderID(c, hostile.Str("BI-"+g.Digits(6)+g.Pick(hostile.IDEdgesOK)))
	}))
	ms.Add(hostile.ClassUnicodeEdge, "control or format character in metadata.order_id", hostile.BeforeSigning(hostile.Rejected(hostile.ReasonInvalidEvent), func(g hostile.Gen, c *hostile.Callback) {
		setOrderID(c, hostile.Str("BI-"+g.Digits(6)+g.Pick(hostile.IDEdgesBad)))
	}))
	ms.Add(hostile.ClassUnicodeEdge, "raw control character inside a string", resigned(malformed, func(g hostile.Gen, c *hostile.Callback) []byte {
		return bytes.Replace(c.Obj.Bytes(), []byte(`"type":"`), []byte(`"type":"`+g.Pick([]string{"\x00", "\n", "\x1b", "\t"})), 1)
	}))

	ms.Add(hostile.ClassContentType, "form-encoded body", resigned(malformed, func(g hostile.Gen, c *hostile.Callback) []byte {
		return c.Obj.AsForm().Render()
	}))
	ms.Add(hostile.ClassContentType, "XML body", resigned(malformed, func(g hostile.Gen, c *hostile.Callback) []byte {
		return []byte("<xml><id>evt_" + g.Digits(8) + "</id><type>payment_intent.succeeded</type></xml>")
	}))
}

// addStructure: keys given twice and nesting past the decoder's depth,
// validly signed.
func addStructure(ms *hostile.Mutations) {
	malformed := hostile.Rejected(hostile.ReasonMalformed)
	ms.Add(hostile.ClassDuplicateKey, "event key repeated", resigned(malformed, func(g hostile.Gen, c *hostile.Callback) []byte {
		k := g.Pick([]string{"type", "id", "created", "data"})
		return c.Obj.Add(k, c.Obj.Get(k)).Bytes()
	}))
	ms.Add(hostile.ClassDuplicateKey, "object key repeated", resigned(malformed, func(g hostile.Gen, c *hostile.Callback) []byte {
		editObject(c, func(o *hostile.Obj) {
			k := g.Pick([]string{"amount", "id", "currency", "metadata"})
			o.Add(k, o.Get(k))
		})
		return c.Obj.Bytes()
	}))
	ms.Add(hostile.ClassDeeplyNested, "nesting within the depth limit in an unread field", hostile.BeforeSigning(hostile.Valid("unread fields are data; the nesting is within the decoder's limit"), func(g hostile.Gen, c *hostile.Callback) {
		editObject(c, func(o *hostile.Obj) { o.Set("description", hostile.Nested(1+g.IntN(10), `{"a":`, "}", "1")) })
	}))
	ms.Add(hostile.ClassDeeplyNested, "deeply nested array in a field", hostile.BeforeSigning(malformed, func(g hostile.Gen, c *hostile.Callback) {
		editObject(c, func(o *hostile.Obj) {
			o.Set("description", hostile.Nested(g.PickInt([]int{maxDepth, 100, 10000, 30000}), "[", "]", "1"))
		})
	}))
	ms.Add(hostile.ClassDeeplyNested, "body is a deep array", resigned(malformed, func(g hostile.Gen, c *hostile.Callback) []byte {
		return []byte(hostile.Nested(20000, "[", "]", ""))
	}))
	ms.Add(hostile.ClassDeeplyNested, "unterminated deep nesting", resigned(malformed, func(g hostile.Gen, c *hostile.Callback) []byte {
		return []byte(`{"a":` + strings.Repeat("[", 30000))
	}))
}

// addNumbers: amounts and the created time out of range, validly signed.
func addNumbers(ms *hostile.Mutations) {
	hostile.AddMinorUnitEdges(ms, "amount", func(c *hostile.Callback, raw string) {
		editObject(c, func(o *hostile.Obj) {
			o.Set("amount", raw)
			if succeededPayin(c) {
				o.Set("amount_received", raw)
			}
		})
	}, func(raw string) hostile.Want {
		if raw == "-0" {
			return hostile.Valid("-0 is zero minor units, which is not negative")
		}
		if strings.HasPrefix(raw, `"`) {
			return hostile.Rejected(hostile.ReasonMissingField) // not a JSON number at all
		}
		return hostile.Rejected(hostile.ReasonBadAmount)
	})
	hostile.AddUnixTimeEdges(ms, "created", []string{"253402300800"}, func(c *hostile.Callback, raw string) { c.Obj.Set("created", raw) },
		hostile.Rejected(hostile.ReasonMissingField))
}

// addSemantics: validly signed events that say something Event refuses,
// and events of one kind posted to the other kind's URL.
func addSemantics(ms *hostile.Mutations) {
	hostile.AddEdits(ms, hostile.ClassSemantic, []hostile.Edit{
		{Name: "type removed", Reason: hostile.ReasonMissingField, F: func(g hostile.Gen, c *hostile.Callback) { c.Obj.Del("type") }},
		{Name: "type empty or not a string", Reason: hostile.ReasonMissingField, F: func(g hostile.Gen, c *hostile.Callback) {
			c.Obj.Set("type", g.Pick([]string{`""`, "1", "null", `["payment_intent.succeeded"]`}))
		}},
		{Name: "event id removed", Reason: hostile.ReasonMissingField, F: func(g hostile.Gen, c *hostile.Callback) { c.Obj.Del("id") }},
		{Name: "event id not an id", Reason: hostile.ReasonMalformed, F: func(g hostile.Gen, c *hostile.Callback) {
			c.Obj.Set("id", hostile.Str("evt_"+g.Pick([]string{"\u202e", "\x00", "\n"})+g.Digits(4)))
		}},
		{Name: "created removed", Reason: hostile.ReasonMissingField, F: func(g hostile.Gen, c *hostile.Callback) { c.Obj.Del("created") }},
		{Name: "data.object removed", Reason: hostile.ReasonMissingField, F: func(g hostile.Gen, c *hostile.Callback) {
			c.Obj.Set("data", g.Pick([]string{`{}`, `{"object":null}`, `{"object":"pi_1"}`, `"x"`, "null"}))
		}},
		{Name: "object id of another type", Reason: hostile.ReasonMalformed, F: func(g hostile.Gen, c *hostile.Callback) {
			editObject(c, func(o *hostile.Obj) {
				o.Set("id", hostile.Str(g.Pick([]string{"ch_", "cus_", "evt_", "PI_"})+g.Digits(20)))
			})
		}},
		{Name: "object id removed", Reason: hostile.ReasonMissingField, F: func(g hostile.Gen, c *hostile.Callback) { editObject(c, func(o *hostile.Obj) { o.Del("id") }) }},
		{Name: "currency removed", Reason: hostile.ReasonMissingField, F: func(g hostile.Gen, c *hostile.Callback) { editObject(c, func(o *hostile.Obj) { o.Del("currency") }) }},
		{Name: "currency not an ISO code", Reason: hostile.ReasonMalformed, F: func(g hostile.Gen, c *hostile.Callback) {
			editObject(c, func(o *hostile.Obj) {
				o.Set("currency", hostile.Str(g.Pick([]string{"dollars", "us", "", "u$d", "usdd"})))
			})
		}},
		{Name: "metadata.order_id empty or not a string", Reason: hostile.ReasonMalformed, F: func(g hostile.Gen, c *hostile.Callback) {
			setOrderID(c, g.Pick([]string{`""`, "12345", "null", "{}"}))
		}},
	})
	ms.Add(hostile.ClassSemantic, "amount_received removed from a succeeded PaymentIntent", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		if !succeededPayin(c) {
			return hostile.Result{}, hostile.ErrRetry
		}
		editObject(c, func(o *hostile.Obj) { o.Del("amount_received") })
		return hostile.Result{Want: hostile.Rejected(hostile.ReasonMissingField)}, nil
	})
	ms.Add(hostile.ClassSemantic, "metadata without order_id", hostile.BeforeSigning(hostile.Valid("the object id stands in for a missing metadata.order_id"), func(g hostile.Gen, c *hostile.Callback) {
		editObject(c, func(o *hostile.Obj) { o.Set("metadata", g.Pick([]string{"{}", `{"note":"x"}`})) })
	}))
	ms.Add(hostile.ClassSemantic, "body not an object", resigned(hostile.Rejected(hostile.ReasonMalformed), func(g hostile.Gen, c *hostile.Callback) []byte {
		return []byte(g.Pick([]string{"[]", "null", `"x"`, "42", "true"}))
	}))
	ms.Add(hostile.ClassSemantic, "data after the object", resigned(hostile.Rejected(hostile.ReasonMalformed), func(g hostile.Gen, c *hostile.Callback) []byte {
		return append(c.Obj.Bytes(), g.Pick([]string{"{}", " x", "\n{\"a\":1}"})...)
	}))
	ms.Add(hostile.ClassWrongKind, "event of the other kind posted to this kind's endpoint", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		other := events.KindPayout
		if c.Kind == events.KindPayout {
			other = events.KindPayin
		}
		return hostile.Result{Path: hostile.Path(Name, c.Account.ID, other), Want: hostile.Rejected(hostile.ReasonWrongKind)}, nil
	})
}

// addMerchant: events naming another account, posted to another account,
// and fields over their limits. Stripe puts no merchant id under the
// signature: the endpoint secret is what names the account.
func addMerchant(ms *hostile.Mutations) {
	ms.Add(hostile.ClassAccountMismatch, "event of a connected account", hostile.BeforeSigning(
		hostile.Valid("the endpoint secret names the account; a Connect event's account field is data"), func(g hostile.Gen, c *hostile.Callback) {
			c.Obj.Set("account", hostile.Str("acct_"+g.Digits(16)))
		}))
	ms.Add(hostile.ClassAccountMismatch, "livemode event on a test-mode account", hostile.BeforeSigning(
		hostile.Valid("live or test mode is the secret's, not a field payhook checks"), func(g hostile.Gen, c *hostile.Callback) {
			c.Obj.Set("livemode", "true")
		}))
	ms.Add(hostile.ClassCrossAccount, "callback of one account posted to the other account's URL", func(g hostile.Gen, c *hostile.Callback) (hostile.Result, error) {
		body := c.Obj.Bytes()
		to := g.OtherAccount(c.Account)
		return hostile.Result{Path: hostile.Path(Name, to.ID, c.Kind), Header: signed(c.Account, body), Body: body, Want: hostile.Rejected(hostile.ReasonBadSignature)}, nil
	})
	malformed := hostile.Rejected(hostile.ReasonMalformed)
	ms.Add(hostile.ClassHugeField, "metadata.order_id over 128 bytes", hostile.BeforeSigning(malformed, func(g hostile.Gen, c *hostile.Callback) {
		setOrderID(c, hostile.Str(strings.Repeat("9", g.PickInt([]int{maxIDLen + 1, 1000, 40000}))))
	}))
	ms.Add(hostile.ClassHugeField, "event id over 128 bytes", hostile.BeforeSigning(malformed, func(g hostile.Gen, c *hostile.Callback) {
		c.Obj.Set("id", hostile.Str("evt_"+strings.Repeat("1", g.PickInt([]int{maxIDLen, 1000, 40000}))))
	}))
	ms.Add(hostile.ClassHugeField, "object id over 128 bytes", hostile.BeforeSigning(malformed, func(g hostile.Gen, c *hostile.Callback) {
		editObject(c, func(o *hostile.Obj) {
			id := o.Get("id")
			o.Set("id", id[:4]+strings.Repeat("7", g.PickInt([]int{maxIDLen, 1000, 40000}))+`"`)
		})
	}))
}
