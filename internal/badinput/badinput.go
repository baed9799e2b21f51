// Package badinput generates a deterministic corpus of hostile callback
// requests for the providers that call payhook back: jpglo, mrnpay, mpurse
// and cashypro in full, and every provider with its own simulated side
// (stripe) with the mutations that side supports (simulated.go): malformed, tampered, replayed-with-tampering,
// oversized, wrongly encoded, unicode-edge, wrong content type, truncated,
// duplicated-key, deeply nested, huge-number, wrong-kind, unknown-account
// and wrong-provider-URL requests (docs/reliability.md "Bad input at scale").
//
// Every case starts from a validly signed (or encrypted) callback built with
// the provider package's own exported helpers (jpglo.Sign, mrnpay.SignPayin,
// mpurse.Encrypt, cashypro.Sign) and is then mutated. The generator knows
// what each mutation must do to the request: either it is rejected with one
// of a small set of reasons (usually exactly one, when the mutation class
// determines it), or it is explicitly classified as still valid
// (Want.Valid), with the reason it still verifies in Want.Why — reordered
// JSON keys, an added null field, a content type the decoders do not read,
// an exact replay, unicode in a signed free-text field.
//
// The same seed always yields the same corpus, byte for byte.
package badinput

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/cashypro"
	"github.com/payhook/payhook/pkg/providers/jpglo"
	"github.com/payhook/payhook/pkg/providers/mpurse"
	"github.com/payhook/payhook/pkg/providers/mrnpay"
)

// Class is a mutation class.
type Class string

// The mutation classes.
const (
	ClassValid           Class = "valid"              // an unmutated, validly signed callback (the originals)
	ClassPreserving      Class = "preserving"         // a mutation that keeps the signed content: must still be accepted
	ClassTruncated       Class = "truncated"          // the body cut short (including empty)
	ClassTampered        Class = "tampered"           // a signed value changed without re-signing
	ClassReplayTampered  Class = "replay_tampered"    // an accepted callback replayed with a change
	ClassBadSignature    Class = "bad_signature"      // signed with the wrong key, or the signature damaged
	ClassOversized       Class = "oversized"          // body over the ingress body limit
	ClassHugeField       Class = "huge_field"         // a validly signed field far longer than the provider allows
	ClassWrongEncoding   Class = "wrong_encoding"     // latin-1, UTF-16, invalid UTF-8, BOM
	ClassUnicodeEdge     Class = "unicode_edge"       // RTL marks, zero-width joiners, combining chars, emoji, NUL
	ClassContentType     Class = "wrong_content_type" // body in the format another content type names
	ClassDuplicateKey    Class = "duplicate_key"      // a key (or header) given twice
	ClassDeeplyNested    Class = "deeply_nested"      // nesting far past any decoder's depth limit
	ClassHugeNumber      Class = "huge_number"        // amounts out of range, exponents, negatives, fractions of minor units
	ClassSemantic        Class = "semantic"           // validly signed but a required field missing, of the wrong type or status
	ClassAccountMismatch Class = "account_mismatch"   // validly signed for the account but naming another merchant
	ClassCrossAccount    Class = "cross_account"      // a callback for one account posted to another of the same provider
	ClassWrongKind       Class = "wrong_kind"         // a kind the provider does not send, or a body of the other kind
	ClassUnknownAccount  Class = "unknown_account"    // an account that does not exist or belongs to another provider
	ClassWrongProvider   Class = "wrong_provider"     // another provider's callback, or an unknown provider, in the URL
)

// Reject reasons ingress and the providers answer with ({"error": reason}).
const (
	ReasonBadSignature    = "bad_signature"
	ReasonUndecryptable   = "undecryptable"
	ReasonMalformed       = "malformed"
	ReasonMissingField    = "missing_field"
	ReasonAccountMismatch = "account_mismatch"
	ReasonBadAmount       = "bad_amount"
	ReasonBadStatus       = "bad_status"
	ReasonWrongKind       = "wrong_kind"
	ReasonUnknownAccount  = "unknown_account"
	ReasonUnknownProvider = "unknown_provider"
	ReasonTooLarge        = "too_large"
	ReasonIPNotAllowed    = "ip_not_allowed"
	ReasonInvalidEvent    = providers.ReasonInvalidEvent
	ReasonUnreadable      = "unreadable"
	ReasonNoKey           = "no_key"
	ReasonBadConfig       = "bad_config"
	ReasonInvalid         = "invalid"
)

// ReasonStatus is every known reject reason with the HTTP statuses ingress
// may answer it with (missing_field is 401 when the missing field is the
// signature, 400 otherwise; wrong_kind is 404 from the URL, 400 when a
// verified body turns out to be of the other kind).
var ReasonStatus = map[string][]int{
	ReasonBadSignature:    {401},
	ReasonUndecryptable:   {401},
	ReasonNoKey:           {401},
	ReasonBadConfig:       {401},
	ReasonMissingField:    {400, 401},
	ReasonMalformed:       {400},
	ReasonAccountMismatch: {400},
	ReasonBadAmount:       {400},
	ReasonBadStatus:       {400},
	ReasonInvalidEvent:    {400},
	ReasonUnreadable:      {400},
	ReasonInvalid:         {400},
	ReasonWrongKind:       {400, 404},
	ReasonUnknownAccount:  {404},
	ReasonUnknownProvider: {404},
	ReasonTooLarge:        {413},
	ReasonIPNotAllowed:    {403},
}

// Want is what ingress must do with a case.
type Want struct {
	// Valid cases must be acknowledged (HTTP 200, the provider's own reply).
	Valid bool
	// Why says why a Valid mutation still verifies; empty for rejections.
	Why string
	// Reasons are the reject reasons the mutation allows; the first is the
	// usual one. One reason when the class determines it.
	Reasons []string
}

// Case is one request of the corpus.
type Case struct {
	// N numbers the case within its corpus (originals first). Send it in
	// HeaderCase so the raw record can be matched to the case.
	N        int
	Class    Class
	Variant  string // the specific mutation, e.g. "jpglo payin: real_amount changed"
	Provider string // the provider whose callback the request was built from
	Account  string // the account it was built for
	Kind     events.Kind
	Path     string // /v1/callbacks/{provider}/{account}/{kind}
	Header   http.Header
	Body     []byte
	Want     Want
}

// HeaderCase carries Case.N on the wire.
const HeaderCase = "X-Badinput-Case"

// Corpus is a generated corpus.
type Corpus struct {
	Seed      uint64
	BodyLimit int64
	// Accounts to configure ingress with (two per provider).
	Accounts []providers.Account
	// Originals are valid callbacks to send (and see accepted) before Cases:
	// the replay_tampered and preserving replay cases reuse them.
	Originals []Case
	Cases     []Case
}

// Accounts are the corpus's merchant accounts, two per provider, with
// throwaway secrets.
func Accounts() []providers.Account {
	return append([]providers.Account{
		{ID: "glo-in", Provider: jpglo.Name, Keys: providers.Keys{"merchant_id": "1", "secret": "badinput-jpglo-secret-5d1f"}, Currency: "INR"},
		{ID: "glo-br", Provider: jpglo.Name, Keys: providers.Keys{"merchant_id": "2", "secret": "badinput-jpglo-br-secret-88aa"}, Currency: "BRL"},
		{ID: "mrn-cn", Provider: mrnpay.Name, Keys: providers.Keys{"merchant_id": "bi-appkey-1", "secret": "badinput-mrnpay-secret-1"}, Currency: "CNY"},
		{ID: "mrn-2", Provider: mrnpay.Name, Keys: providers.Keys{"merchant_id": "bi-appkey-2", "secret": "badinput-mrnpay-secret-2"}, Currency: "CNY"},
		{ID: "mp-in", Provider: mpurse.Name, Keys: providers.Keys{"merchant_id": "BIPARTNER1", "aes_key": "badinput-mpurse-aes-key-32bytes!", "aes_mode": "ecb"}, Currency: "INR"},
		{ID: "mp-cbc", Provider: mpurse.Name, Keys: providers.Keys{"merchant_id": "BIPARTNER2", "aes_key": "bi-mpurse-cbc-16", "aes_mode": "cbc", "aes_iv": "bi-mpurse-iv-16b"}, Currency: "INR"},
		{ID: "cp-id", Provider: cashypro.Name, Keys: providers.Keys{"merchant_id": "BI1002001", "secret": "badinput-cashypro-secret-1"}, Currency: "IDR"},
		{ID: "cp-2", Provider: cashypro.Name, Keys: providers.Keys{"merchant_id": "BI1002002", "secret": "badinput-cashypro-secret-2"}, Currency: "IDR"},
	}, simulatedAccounts()...)
}

// Inbound lists the providers the corpus covers.
var Inbound = []string{jpglo.Name, mrnpay.Name, mpurse.Name, cashypro.Name}

// originalsPerProvider is how many valid callbacks per provider are sent first.
const originalsPerProvider = 40

// Generate builds a corpus from seed with at least n cases that must be
// rejected, plus the valid (semantics-preserving) cases the same passes over
// the mutation table make; it always ends on a whole pass, so every mutation
// is represented equally. bodyLimit is the ingress body limit the oversized
// cases must exceed.
func Generate(seed uint64, n int, bodyLimit int64) (*Corpus, error) {
	g := &gen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), seed: seed, limit: bodyLimit,
		byProv: map[string][]providers.Account{}}
	c := &Corpus{Seed: seed, BodyLimit: bodyLimit, Accounts: Accounts()}
	for _, a := range c.Accounts {
		g.byProv[a.Provider] = append(g.byProv[a.Provider], a)
	}
	g.originals = map[string][]*base{}
	for _, p := range append(slices.Clone(Inbound), Simulated...) {
		for range originalsPerProvider {
			b := g.newBase(p)
			hdr, body, err := g.sign(b)
			if err != nil {
				return nil, err
			}
			b.hdr, b.body = hdr, body
			g.originals[p] = append(g.originals[p], b)
			c.Originals = append(c.Originals, g.finish(len(c.Originals), ClassValid, "original", b, b.path(), hdr, body, valid("an unmutated signed callback")))
		}
	}
	table := mutations()
	bad := 0
	for i := 0; bad < n || i%len(table) != 0; i++ {
		m := table[i%len(table)]
		b := g.newBase(m.prov)
		r, err := m.fn(g, b)
		if err != nil {
			return nil, fmt.Errorf("badinput: %s %s: %w", m.prov, m.name, err)
		}
		if r.path == "" {
			r.path = b.path()
		}
		if r.hdr == nil {
			r.hdr, r.body, err = g.sign(b)
			if err != nil {
				return nil, fmt.Errorf("badinput: %s %s: %w", m.prov, m.name, err)
			}
		}
		if !r.want.Valid {
			bad++
		}
		c.Cases = append(c.Cases, g.finish(len(c.Originals)+len(c.Cases), m.class, m.prov+" "+string(b.kind)+": "+m.name, b, r.path, r.hdr, r.body, r.want))
	}
	return c, nil
}

func (g *gen) finish(n int, class Class, variant string, b *base, path string, hdr http.Header, body []byte, w Want) Case {
	h := hdr.Clone()
	h.Set(HeaderCase, strconv.Itoa(n))
	return Case{N: n, Class: class, Variant: variant, Provider: b.prov, Account: b.acct.ID, Kind: b.kind,
		Path: path, Header: h, Body: body, Want: w}
}

func valid(why string) Want           { return Want{Valid: true, Why: why} }
func rejected(reasons ...string) Want { return Want{Reasons: reasons} }

// String is "valid (why)" or "rejected reason|reason", for messages.
func (w Want) String() string {
	if w.Valid {
		return "valid (" + w.Why + ")"
	}
	return "rejected " + strings.Join(w.Reasons, "|")
}

// gen is the generator's state: one random source, so one seed is one corpus.
type gen struct {
	rng       *rand.Rand
	seed      uint64
	limit     int64
	seq       int
	byProv    map[string][]providers.Account
	originals map[string][]*base
}

// base is a callback before signing: a JSON object (jpglo, cashypro, and
// mpurse's plaintext) or a form (mrnpay).
type base struct {
	prov string
	acct providers.Account
	kind events.Kind
	obj  *obj
	form []kv
	sim  *providers.SimOrder // a provider with its own simulated side
	// hdr and body are the signed request, for originals.
	hdr  http.Header
	body []byte
}

func (b *base) path() string {
	return "/v1/callbacks/" + b.prov + "/" + b.acct.ID + "/" + string(b.kind)
}

// result is what a mutation makes. A nil hdr means "sign the (mutated) base".
type result struct {
	path string
	hdr  http.Header
	body []byte
	want Want
}

type kv struct{ k, v string }

// obj is a JSON object as ordered keys and raw (already encoded) values, so
// mutations control the exact bytes.
type obj struct {
	k []string
	v []string
}

func (o *obj) clone() *obj {
	return &obj{k: append([]string(nil), o.k...), v: append([]string(nil), o.v...)}
}

func (o *obj) idx(k string) int {
	for i, x := range o.k {
		if x == k {
			return i
		}
	}
	return -1
}

// set replaces k's raw value, or appends k.
func (o *obj) set(k, raw string) *obj {
	if i := o.idx(k); i >= 0 {
		o.v[i] = raw
	} else {
		o.k, o.v = append(o.k, k), append(o.v, raw)
	}
	return o
}

func (o *obj) get(k string) string {
	if i := o.idx(k); i >= 0 {
		return o.v[i]
	}
	return ""
}

func (o *obj) del(k string) *obj {
	if i := o.idx(k); i >= 0 {
		o.k = append(o.k[:i:i], o.k[i+1:]...)
		o.v = append(o.v[:i:i], o.v[i+1:]...)
	}
	return o
}

// render writes the object with sep after each comma and colon.
func (o *obj) render(sep string) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i := range o.k {
		if i > 0 {
			b.WriteString("," + sep)
		}
		b.WriteString(str(o.k[i]))
		b.WriteString(":" + sep)
		b.WriteString(o.v[i])
	}
	b.WriteByte('}')
	return b.Bytes()
}

func (o *obj) bytes() []byte { return o.render("") }

// str is s as a JSON string (no HTML escaping, so the bytes stay readable).
func str(s string) string {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	_ = e.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

func renderForm(f []kv) []byte {
	parts := make([]string, len(f))
	for i, p := range f {
		parts[i] = url.QueryEscape(p.k) + "=" + url.QueryEscape(p.v)
	}
	return []byte(strings.Join(parts, "&"))
}

func formGet(f []kv, k string) string {
	for _, p := range f {
		if p.k == k {
			return p.v
		}
	}
	return ""
}

func formSet(f []kv, k, v string) []kv {
	for i := range f {
		if f[i].k == k {
			f[i].v = v
			return f
		}
	}
	return append(f, kv{k, v})
}

func formDel(f []kv, k string) []kv {
	out := f[:0:0]
	for _, p := range f {
		if p.k != k {
			out = append(out, p)
		}
	}
	return out
}

// --- bases -----------------------------------------------------------------

func (g *gen) pick(s []string) string { return s[g.rng.IntN(len(s))] }

func (g *gen) pickInt(s []int) int { return s[g.rng.IntN(len(s))] }

func (g *gen) digits(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + g.rng.IntN(10))
	}
	if b[0] == '0' {
		b[0] = '1'
	}
	return string(b)
}

// newBase makes a fresh valid callback of prov with a unique order id.
func (g *gen) newBase(prov string) *base {
	g.seq++
	accts := g.byProv[prov]
	acct := accts[g.rng.IntN(len(accts))]
	id := fmt.Sprintf("BI%d-%s-%06d", g.seed%1000, prov[:2], g.seq)
	ts := 1700000000 + g.rng.Int64N(50000000)
	amt := 10000 + g.rng.Int64N(9990000) // minor units
	b := &base{prov: prov, acct: acct}
	if _, ok := simulatedSides[prov]; ok {
		g.newSimBase(b, id, amt)
		return b
	}
	switch prov {
	case jpglo.Name:
		if g.rng.IntN(5) == 0 {
			b.kind = events.KindAppeal
			b.obj = (&obj{}).
				set("mch_order_no", str(id)).set("order_no", str("2203"+g.digits(12))).
				set("mch_inquiry_no", str("INQ"+id)).set("inquiry_order_no", str("2205"+g.digits(12))).
				set("status", str(g.pick([]string{"success", "success", "fail"}))).
				set("inquiry_amount", strconv.FormatInt(amt, 10)).
				set("user_remark", str("I've paid!")).set("reason", str("已完成充值")).
				set("timestamp", strconv.FormatInt(ts, 10))
		} else {
			b.kind = events.KindPayin
			ext := `{"user_id":"` + g.digits(6) + `","real_name":"Asha Verma","phone":"9876543210","email":"asha@example.com"}`
			b.obj = (&obj{}).
				set("order_no", str("2202"+g.digits(12))).set("mch_order_no", str(id)).
				set("status", str(g.pick([]string{"success", "success", "success", "fail"}))).
				set("apply_amount", strconv.FormatInt(amt, 10)).set("real_amount", strconv.FormatInt(amt, 10)).
				set("pay_type", str(g.pick([]string{"upi", "upi_gpay", "pix", "qris", "bankcard"}))).
				set("sub_pay_type", "null").set("remark", str("")).set("user_ext", str(ext)).
				set("timestamp", strconv.FormatInt(ts, 10))
		}
	case mrnpay.Name:
		if g.rng.IntN(4) == 0 {
			b.kind = events.KindPayout
			b.form = []kv{{"amount", strconv.FormatInt(amt/100, 10)}, {"appKey", acct.Key("merchant_id")}, {"mrn", id}}
		} else {
			b.kind = events.KindPayin
			b.form = []kv{{"amount", dec2(amt)}, {"appKey", acct.Key("merchant_id")}, {"channel", strconv.Itoa(1 + g.rng.IntN(15))},
				{"mrn", id}, {"originAmount", dec2(amt)}}
		}
	case mpurse.Name:
		b.kind = events.KindPayin
		b.obj = (&obj{}).
			set("mpQueryId", str(id)).set("payerVA", str("payer"+g.digits(4)+"@paytm")).
			set("payerAmount", str(dec2(amt))).set("txnStatus", str(g.pick([]string{"TRANSACTION_SUCCESS", "TRANSACTION_SUCCESS", "TRANSACTION_FAILURE"}))).
			set("payChannel", str("UPI")).set("txnCompletionDate", str("2026"+fmt.Sprintf("%02d%02d%02d%02d%02d", 1+g.rng.IntN(12), 1+g.rng.IntN(28), g.rng.IntN(24), g.rng.IntN(60), g.rng.IntN(60)))).
			set("partnerId", str(acct.Key("merchant_id"))).set("bankRRN", str(g.digits(12))).
			set("receiverVA", str("mpu.bi@icici")).set("errorMsg", str("transaction success"))
	case cashypro.Name:
		b.kind = events.KindPayin
		idr := strconv.FormatInt(amt/100*100, 10) // whole rupiah
		b.obj = (&obj{}).
			set("amount", idr+".00").set("channelOrderNo", str("QR"+g.digits(10))).
			set("completionTime", str(fmt.Sprintf("2025-%02d-%02d %02d:%02d:%02d", 1+g.rng.IntN(12), 1+g.rng.IntN(28), g.rng.IntN(24), g.rng.IntN(60), g.rng.IntN(60)))).
			set("fee", strconv.FormatInt(amt/1000, 10)+".0000").set("mchOrderNo", str(id)).
			set("merchantId", str(acct.Key("merchant_id"))).set("nonceStr", str(g.digits(13))).
			set("orderNo", str("PAYIN"+g.digits(19))).
			set("orderStatus", str(g.pick([]string{"SUCCESS", "SUCCESS", "SUCCESS", "FAIL", "PAYING"}))).
			set("payCode", str("OR.GPNQR.BI")).set("payType", str("41")).set("payUrl", str("https://payurl.example/"+g.digits(8)))
	}
	return b
}

func dec2(minor int64) string {
	s := strconv.FormatInt(minor, 10)
	for len(s) < 3 {
		s = "0" + s
	}
	return s[:len(s)-2] + "." + s[len(s)-2:]
}

// sign renders b as its provider would send it, validly signed or encrypted.
func (g *gen) sign(b *base) (http.Header, []byte, error) {
	return signAs(b, b.acct)
}

// signAs signs b's content under acct's keys (acct may be another account).
func signAs(b *base, acct providers.Account) (http.Header, []byte, error) {
	h := http.Header{}
	if sp, ok := simulatedSides[b.prov]; ok {
		return sp.SimCallback(acct, *b.sim, simSignedAt, false)
	}
	switch b.prov {
	case jpglo.Name:
		o := b.obj.clone().del("sign")
		s, err := jpgloSign(o.bytes(), acct.Key("secret"))
		if err != nil {
			return nil, nil, err
		}
		h.Set("Content-Type", "application/json")
		return h, o.set("sign", str(s)).bytes(), nil
	case mrnpay.Name:
		f := formDel(append([]kv(nil), b.form...), "sign")
		h.Set("Content-Type", "application/x-www-form-urlencoded")
		return h, renderForm(append(f, kv{"sign", mrnpaySign(b.kind, f, acct.Key("secret"))})), nil
	case mpurse.Name:
		ct, err := mpurse.Encrypt(acct, b.obj.bytes())
		if err != nil {
			return nil, nil, err
		}
		h.Set("Content-Type", "text/plain")
		return h, []byte(ct), nil
	case cashypro.Name:
		body := b.obj.bytes()
		s, err := cashypro.Sign(body, acct.Key("secret"), acct.Key("sign_rule"))
		if err != nil {
			return nil, nil, err
		}
		h.Set("Content-Type", "application/json")
		h.Set(cashypro.HeaderMerchantID, acct.Key("merchant_id"))
		h.Set(cashypro.HeaderSign, s)
		return h, body, nil
	}
	return nil, nil, fmt.Errorf("no signer for %s", b.prov)
}

// jpgloSign decodes body as jpglo's Verify does (numbers exact) and signs it
// with jpglo.Sign.
func jpgloSign(body []byte, secret string) (string, error) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return "", err
	}
	return jpglo.Sign(m, secret), nil
}

func mrnpaySign(kind events.Kind, f []kv, secret string) string {
	if kind == events.KindPayout {
		return mrnpay.SignPayout(formGet(f, "amount"), formGet(f, "appKey"), formGet(f, "mrn"), secret)
	}
	return mrnpay.SignPayin(formGet(f, "amount"), formGet(f, "appKey"), formGet(f, "channel"), formGet(f, "mrn"), formGet(f, "originAmount"), secret)
}

// --- byte-level helpers --------------------------------------------------------

func toLatin1(b []byte) []byte {
	var out []byte
	for _, r := range string(b) {
		if r < 256 {
			out = append(out, byte(r))
		} else {
			out = append(out, '?')
		}
	}
	return out
}

func toUTF16(b []byte, bigEndian, bom bool) []byte {
	u := utf16.Encode([]rune(string(b)))
	if bom {
		u = append([]uint16{0xFEFF}, u...)
	}
	out := make([]byte, 0, 2*len(u))
	for _, x := range u {
		if bigEndian {
			out = append(out, byte(x>>8), byte(x))
		} else {
			out = append(out, byte(x), byte(x>>8))
		}
	}
	return out
}

const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// flipB64 replaces one base64 character in the first three quarters of s
// (never the last quantum, whose spare bits strict decoding checks) with
// another alphabet character: the ciphertext changes, the encoding stays valid.
func (g *gen) flipB64(s []byte) []byte {
	out := append([]byte(nil), s...)
	i := g.rng.IntN(len(out) * 3 / 4)
	c := out[i]
	for out[i] == c {
		out[i] = b64[g.rng.IntN(64)]
	}
	return out
}

func ciphertext(body []byte) []byte {
	ct, err := base64.StdEncoding.DecodeString(string(body))
	if err != nil {
		panic("badinput: generated mpurse body is not base64: " + err.Error())
	}
	return ct
}

func nested(depth int, open, close, inner string) string {
	return strings.Repeat(open, depth) + inner + strings.Repeat(close, depth)
}

// sortedObj returns o with keys in reverse byte order (a reordering that
// changes no signed content, as both sorted signing rules sort by name).
func sortedObj(o *obj) *obj {
	idx := make([]int, len(o.k))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return o.k[idx[a]] > o.k[idx[b]] })
	out := &obj{}
	for _, i := range idx {
		out.k, out.v = append(out.k, o.k[i]), append(out.v, o.v[i])
	}
	return out
}
