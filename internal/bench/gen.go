package bench

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/cashypro"
	"github.com/payhook/payhook/pkg/providers/jpglo"
	"github.com/payhook/payhook/pkg/providers/mpurse"
	"github.com/payhook/payhook/pkg/providers/mrnpay"
)

// Accounts are the merchant accounts the benchmark configures, one per
// provider that sends callbacks (fantian sends none), then the demo account
// of every provider with its own simulated side (providers.Simulated). The
// secrets are throwaway values for the benchmark's own NATS and Redis.
func Accounts() []providers.Account {
	return append([]providers.Account{
		{ID: "glo-in", Provider: jpglo.Name, Keys: providers.Keys{"merchant_id": "1", "secret": "bench-jpglo-9ce23be4-a31b-498f"}, Currency: "INR"},
		{ID: "mrn-in", Provider: mrnpay.Name, Keys: providers.Keys{"merchant_id": "benchAppKey", "secret": "bench-mrnpay-key"}, Currency: "CNY"},
		{ID: "mp-in", Provider: mpurse.Name, Keys: providers.Keys{"merchant_id": "BENCHPARTNER", "aes_key": "bench-mpurse-aes-key-32-bytes!!!", "aes_mode": "ecb"}, Currency: "INR"},
		{ID: "cashy-in", Provider: cashypro.Name, Keys: providers.Keys{"merchant_id": "M2024BENCH", "secret": "bench-cashypro-secret"}, Currency: "IDR"},
	}, simulatedAccounts()...)
}

// simulated are the registered providers with their own simulated side;
// the generator signs their callbacks through it.
var simulated = providers.With[providers.Simulated](registry.All())

func simulatedAccounts() []providers.Account {
	var out []providers.Account
	for _, name := range registry.All().Names() {
		if sp, ok := simulated[name]; ok {
			a := sp.SimAccount(name + "-bench")
			a.Provider = name
			out = append(out, a)
		}
	}
	return out
}

// Target is one kind of callback in the mix.
type Target struct {
	Provider string
	Kind     events.Kind
	Weight   int
}

// DefaultMix is the share of each callback, roughly a busy Indian/Indonesian
// merchant: pay-ins dominate, jpglo appeals and mrnpay payouts are rare.
// Every provider with its own simulated side adds its pay-ins at weight 10.
var DefaultMix = func() []Target {
	mix := []Target{
		{jpglo.Name, events.KindPayin, 35},
		{jpglo.Name, events.KindAppeal, 5},
		{mrnpay.Name, events.KindPayin, 15},
		{mrnpay.Name, events.KindPayout, 5},
		{mpurse.Name, events.KindPayin, 20},
		{cashypro.Name, events.KindPayin, 20},
	}
	for _, name := range registry.All().Names() {
		if _, ok := simulated[name]; ok {
			mix = append(mix, Target{name, events.KindPayin, 10})
		}
	}
	return mix
}()

// Callback is one provider callback ready to send.
type Callback struct {
	Provider string
	Account  string
	Kind     events.Kind
	// Path is /v1/callbacks/{provider}/{account}/{kind}.
	Path   string
	Header http.Header
	Body   []byte
	// OrderID is the merchant order id the event will carry (data.merchant_order_id).
	OrderID string
}

// Generator makes correctly signed or encrypted callbacks with unique order
// ids. It is safe for concurrent use.
type Generator struct {
	accts  map[string]providers.Account
	table  []Target // one entry per weight unit
	prefix string
	seq    atomic.Uint64
	now    func() time.Time
}

// NewGenerator builds a generator over accts (one per provider) drawing
// from mix; targets whose provider has no account are dropped. runID makes
// order ids unique across runs sharing a store.
func NewGenerator(accts []providers.Account, mix []Target, runID string) (*Generator, error) {
	g := &Generator{accts: map[string]providers.Account{}, prefix: runID, now: time.Now}
	for _, a := range accts {
		g.accts[a.Provider] = a
	}
	for _, t := range mix {
		if _, ok := g.accts[t.Provider]; !ok {
			continue
		}
		for range t.Weight {
			g.table = append(g.table, t)
		}
	}
	if len(g.table) == 0 {
		return nil, fmt.Errorf("bench: empty callback mix")
	}
	return g, nil
}

// Targets lists the distinct targets in the mix with their weights.
func (g *Generator) Targets() []Target {
	var out []Target
	for _, t := range g.table {
		if n := len(out); n > 0 && out[n-1].Provider == t.Provider && out[n-1].Kind == t.Kind {
			out[n-1].Weight++
			continue
		}
		out = append(out, Target{t.Provider, t.Kind, 1})
	}
	return out
}

// Next returns the next callback of the mix. The choice is a hash of a
// sequence number, so a run's mix is reproducible and evenly spread.
func (g *Generator) Next() (Callback, error) {
	n := g.seq.Add(1)
	t := g.table[splitmix(n)%uint64(len(g.table))]
	return g.Make(t.Provider, t.Kind, n)
}

// Make builds callback number n for provider and kind.
func (g *Generator) Make(provider string, kind events.Kind, n uint64) (Callback, error) {
	a, ok := g.accts[provider]
	if !ok {
		return Callback{}, fmt.Errorf("bench: no %s account", provider)
	}
	id := g.prefix + strconv.FormatUint(n, 10)
	cb := Callback{Provider: provider, Account: a.ID, Kind: kind, OrderID: id,
		Path: "/v1/callbacks/" + provider + "/" + a.ID + "/" + string(kind), Header: http.Header{}}
	amt := 10000 + splitmix(n^0x5bd1e995)%990000 // minor units, 100.00 .. 9999.99
	now := g.now()
	var err error
	switch sp, sim := simulated[provider]; {
	case sim:
		cb.Header, cb.Body, err = simulatedCallback(sp, a, kind, id, n, amt, now)
	case provider == jpglo.Name && kind == events.KindPayin:
		cb.Body = jpgloPayin(a, id, n, amt, now)
		cb.Header.Set("Content-Type", "application/json")
	case provider == jpglo.Name && kind == events.KindAppeal:
		cb.Body = jpgloAppeal(a, id, n, amt, now)
		cb.Header.Set("Content-Type", "application/json")
	case provider == mrnpay.Name && kind == events.KindPayin:
		paid := amt
		if n%50 == 0 { // 2 %: the payer paid a little less than asked
			paid -= 100
		}
		cb.Body = mrnpay.BuildPayinCallback(a.Key("merchant_id"), a.Key("secret"), id, strconv.Itoa(int(1+n%15)), decimal2(paid), decimal2(amt))
		cb.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	case provider == mrnpay.Name && kind == events.KindPayout:
		cb.Body = mrnpay.BuildPayoutCallback(a.Key("merchant_id"), a.Key("secret"), id, strconv.FormatUint(amt/100, 10))
		cb.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	case provider == mpurse.Name && kind == events.KindPayin:
		cb.Body, err = mpursePayin(a, id, n, amt, now)
		cb.Header.Set("Content-Type", "text/plain")
	case provider == cashypro.Name && kind == events.KindPayin:
		var sign string
		cb.Body, sign = cashyproPayin(a, id, n, amt, now)
		cb.Header.Set("Content-Type", "application/json")
		cb.Header.Set(cashypro.HeaderMerchantID, a.Key("merchant_id"))
		cb.Header.Set(cashypro.HeaderSign, sign)
	default:
		return Callback{}, fmt.Errorf("bench: %s sends no %s callbacks", provider, kind)
	}
	return cb, err
}

// splitmix is SplitMix64's finalizer: a cheap, well-spread hash.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func md5Upper(s string) string {
	sum := md5.Sum([]byte(s))
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// decimal2 renders minor units with two decimals: 123456 → "1234.56".
func decimal2(minor uint64) string {
	s := strconv.FormatUint(minor, 10)
	for len(s) < 3 {
		s = "0" + s
	}
	return s[:len(s)-2] + "." + s[len(s)-2:]
}

// jpgloPayin is seed 004 "支付回调": flat JSON, amounts in 分, signed over
// the sorted non-null fields (jpglo.Sign's rule, written out here so the
// generator does not pay for reflection; TestGeneratedCallbacksVerify
// checks it against the provider's Parse).
func jpgloPayin(a providers.Account, id string, n, amt uint64, now time.Time) []byte {
	orderNo := strconv.FormatUint(2202171238500000+n, 10)
	a1 := strconv.FormatUint(amt, 10)
	ts := strconv.FormatInt(now.Unix(), 10)
	user := strconv.FormatUint(100000+n%900000, 10)
	sign := md5Upper("apply_amount=" + a1 + "&mch_order_no=" + id + "&order_no=" + orderNo +
		"&pay_type=upi&real_amount=" + a1 + "&remark=&status=success&timestamp=" + ts +
		`&user_ext={"user_id":"` + user + `"}&key=` + a.Key("secret"))
	return []byte(`{"order_no":"` + orderNo + `","mch_order_no":"` + id + `","status":"success","apply_amount":` + a1 +
		`,"real_amount":` + a1 + `,"pay_type":"upi","sub_pay_type":null,"remark":"","user_ext":"{\"user_id\":\"` + user +
		`\"}","timestamp":` + ts + `,"sign":"` + sign + `"}`)
}

// jpgloAppeal is seed 004 "申诉回调".
func jpgloAppeal(a providers.Account, id string, n, amt uint64, now time.Time) []byte {
	orderNo := strconv.FormatUint(2203240014030000+n, 10)
	inq := "INQ" + id
	inqOrder := strconv.FormatUint(2205041133420000+n, 10)
	a1 := strconv.FormatUint(amt, 10)
	ts := strconv.FormatInt(now.Unix(), 10)
	sign := md5Upper("inquiry_amount=" + a1 + "&inquiry_order_no=" + inqOrder + "&mch_inquiry_no=" + inq +
		"&mch_order_no=" + id + "&order_no=" + orderNo + "&reason=已完成充值&status=success&timestamp=" + ts +
		"&user_remark=I've paid!&key=" + a.Key("secret"))
	return []byte(`{"mch_order_no":"` + id + `","order_no":"` + orderNo + `","mch_inquiry_no":"` + inq +
		`","inquiry_order_no":"` + inqOrder + `","status":"success","inquiry_amount":` + a1 +
		`,"user_remark":"I've paid!","reason":"已完成充值","timestamp":` + ts + `,"sign":"` + sign + `"}`)
}

var (
	ist = time.FixedZone("IST", 5*3600+1800)
	wib = time.FixedZone("WIB", 7*3600)
)

// mpursePayin is seed 001: BASE64(AES(json)) via mpurse.Encrypt.
func mpursePayin(a providers.Account, id string, n, amt uint64, now time.Time) ([]byte, error) {
	rrn := strconv.FormatUint(400000000000+n, 10)
	plain := `{"mpQueryId":"` + id + `","payerVA":"payer` + strconv.FormatUint(n%10000, 10) + `@paytm","bankRRN":"` + rrn +
		`","payerAmount":"` + decimal2(amt) + `","payChannel":"UPI","txnStatus":"TRANSACTION_SUCCESS","txnCompletionDate":"` +
		now.In(ist).Format("20060102150405") + `","partnerId":"` + a.Key("merchant_id") +
		`","receiverVA":"mpu.cpdf.bench@icici","errorMsg":"transaction success"}`
	ct, err := mpurse.Encrypt(a, []byte(plain))
	if err != nil {
		return nil, fmt.Errorf("bench: mpurse account %s: %w", a.ID, err)
	}
	return []byte(ct), nil
}

// cashyproPayin is seed 002 "代收订单结果通知": keys in alphabetical order as
// the seed prints them, amount and fee as JSON numbers, and the Sign header
// over the sorted non-empty fields (cashypro.Sign's default rule, written
// out; the test checks it against Parse).
func cashyproPayin(a providers.Account, id string, n, amt uint64, now time.Time) ([]byte, string) {
	amount := strconv.FormatUint(amt/100, 10) + ".00" // IDR: whole rupiah, written with 2 decimals
	fee := strconv.FormatUint(amt/100*85/1000, 10) + ".0000"
	orderNo := "CP" + strconv.FormatUint(1000000000+n, 10)
	chn := "QR" + strconv.FormatUint(n, 10)
	when := now.In(wib).Format("2006-01-02 15:04:05")
	nonce := strconv.FormatUint(splitmix(n), 36)
	payURL := "https://pay.example/" + orderNo
	sign := md5Upper("amount=" + amount + "&channelOrderNo=" + chn + "&completionTime=" + when + "&fee=" + fee +
		"&mchOrderNo=" + id + "&merchantId=" + a.Key("merchant_id") + "&nonceStr=" + nonce + "&orderNo=" + orderNo +
		"&orderStatus=SUCCESS&payCode=OR.GPNQR.BENCH&payType=QRIS&payUrl=" + payURL + "&key=" + a.Key("secret"))
	body := `{"amount":` + amount + `,"channelOrderNo":"` + chn + `","completionTime":"` + when + `","fee":` + fee +
		`,"mchOrderNo":"` + id + `","merchantId":"` + a.Key("merchant_id") + `","nonceStr":"` + nonce + `","orderNo":"` + orderNo +
		`","orderStatus":"SUCCESS","payCode":"OR.GPNQR.BENCH","payType":"QRIS","payUrl":"` + payURL + `"}`
	return []byte(body), sign
}

// simulatedCallback is a succeeded callback of a provider with its own
// simulated side, amt minor units (two fraction digits) in the account's
// currency, signed at now.
func simulatedCallback(sp providers.Simulated, a providers.Account, kind events.Kind, id string, n, amt uint64, now time.Time) (http.Header, []byte, error) {
	m, err := events.MoneyFromMinor(strconv.FormatUint(amt, 10), 2, a.Currency)
	if err != nil {
		return nil, nil, err
	}
	if exp := sp.SimExponent(kind, a.Currency); exp != 2 {
		if m, err = events.MoneyFromMinor(strconv.FormatUint(amt, 10), exp, a.Currency); err != nil {
			return nil, nil, err
		}
	}
	o := providers.SimOrder{Kind: kind, MerchantOrderID: id, Amount: m, Paid: m, Status: events.StatusSucceeded, CompletedAt: now}
	sp.SimIDs(&o, func(k int) string { return fmt.Sprintf("%0*d", k, splitmix(n)%1e15)[:k] })
	return sp.SimCallback(a, o, now, false)
}
