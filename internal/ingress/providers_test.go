package ingress_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/ingress"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/mpurse"
)

// End to end over HTTP with the real provider packages: a signed callback in
// each provider's own format lands as the exact CloudEvent on the exact subject.

const seedKey = "9ce23be4-a31b-498f-b951-ad7e771c3d73"

// receivedAt is ingress's clock in these tests (Deps.Now), so that the
// envelopes' time and received_at are fixed and the golden files exact.
var receivedAt = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

var update = flag.Bool("update", false, "rewrite testdata/events/*.json from what ingress publishes")

// wantGolden compares the last message on subject — its subject, its
// Nats-Msg-Id and the whole CloudEvent — with testdata/events/<name>.json,
// and requires Nats-Msg-Id to equal the CloudEvent id and that id to be
// want's. go test -run <test> -update rewrites the file.
func wantGolden(t *testing.T, js jetstream.JetStream, subject, name string, want events.Event) {
	t.Helper()
	s, err := js.Stream(context.Background(), natsbus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(context.Background(), subject)
	if err != nil {
		t.Fatalf("nothing on %s: %v", subject, err)
	}
	var head struct{ ID string }
	if err := json.Unmarshal(m.Data, &head); err != nil {
		t.Fatalf("%s: not JSON: %v", name, err)
	}
	msgID := m.Header.Get(jetstream.MsgIDHeader)
	if head.ID != want.ID() || msgID != head.ID {
		t.Errorf("%s: CloudEvent id %q, Nats-Msg-Id %q; want both %s", name, head.ID, msgID, want.ID())
	}
	got := indentJSON(t, name, mustJSON(t, map[string]any{
		"subject": m.Subject, "nats_msg_id": msgID, "cloudevent": json.RawMessage(m.Data),
	}))
	path := filepath.Join("testdata", "events", name+".json")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run %s -update writes it)", err, t.Name())
	}
	if wantText := indentJSON(t, path, b); got != wantText {
		t.Errorf("%s differs from %s:\n got  %s\n want %s", name, path, got, wantText)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// indentJSON renders a JSON document canonically (keys sorted, numbers as
// written, two-space indent), so that the golden files read well and
// compare exactly.
func indentJSON(t *testing.T, name string, b []byte) string {
	t.Helper()
	var v any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func serve(t *testing.T, accounts ...providers.Account) (string, jetstream.JetStream) {
	t.Helper()
	n := testenv.StartNATS(t)
	nc := n.Connect(t)
	js, _ := jetstream.New(nc)
	cfg := &config.Config{Accounts: accounts}
	cfg.Ingress.BodyLimit = 64 << 10
	cfg.Ingress.PublishTimeout = config.Duration(2 * time.Second)
	if err := natsbus.EnsureStreams(context.Background(), js, cfg.NATS); err != nil {
		t.Fatal(err)
	}
	srv, err := ingress.New(ingress.Deps{Config: cfg, JS: js, Providers: registry.Inbound(),
		Now: func() time.Time { return receivedAt }})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = srv.Serve(ctx, ln, time.Second) }()
	t.Cleanup(cancel)
	return "http://" + ln.Addr().String(), js
}

func post(t *testing.T, url, ctype, body string, hdr ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func lastEvent(t *testing.T, js jetstream.JetStream, subject string) (map[string]any, string) {
	t.Helper()
	s, err := js.Stream(context.Background(), natsbus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(context.Background(), subject)
	if err != nil {
		t.Fatalf("nothing on %s: %v", subject, err)
	}
	var ce map[string]any
	d := json.NewDecoder(strings.NewReader(string(m.Data)))
	d.UseNumber()
	if err := d.Decode(&ce); err != nil {
		t.Fatal(err)
	}
	return ce, m.Header.Get(jetstream.MsgIDHeader)
}

func TestJpgloSeedCallbacksEndToEnd(t *testing.T) {
	base, js := serve(t, providers.Account{ID: "glo-br", Provider: "jpglo", Keys: providers.Keys{"merchant_id": "1", "secret": seedKey}, Currency: "BRL"})
	payment := `{"order_no":"2202171238501159","mch_order_no":"111123456789","status":"success","apply_amount":10000000,"real_amount":10000000,"pay_type":"pix","sub_pay_type":null,"remark":null,"timestamp":1656945134,"sign":"DCB154D0C14F1B8803B1224A8DCC82D1"}`
	code, reply := post(t, base+"/v1/callbacks/jpglo/glo-br/payin", "application/json", payment)
	if code != 200 || reply != `{"status":0,"msg":"处理成功"}` {
		t.Fatalf("payment callback: %d %s", code, reply)
	}
	ce, msgID := lastEvent(t, js, "payhook.events.jpglo.payin.succeeded")
	want := events.Event{Provider: "jpglo", Account: "glo-br", Kind: "payin", Status: "succeeded", MerchantOrderID: "111123456789"}
	if ce["id"] != want.ID() || msgID != want.ID() || ce["type"] != "payhook.payin.succeeded" || ce["source"] != "payhook/jpglo/glo-br" {
		t.Errorf("envelope %v (msg id %s)", ce, msgID)
	}
	data := ce["data"].(map[string]any)
	for k, v := range map[string]any{"merchant_order_id": "111123456789", "provider_order_id": "2202171238501159", "occurred_at": "2022-07-04T14:32:14Z", "origin": "callback", "amount_mismatch": false} {
		if data[k] != v {
			t.Errorf("data.%s = %v, want %v", k, data[k], v)
		}
	}
	if amt := data["amount"].(map[string]any); amt["value"] != "100000.00" || amt["currency"] != "BRL" {
		t.Errorf("amount %v", amt)
	}
	if _, ok := data["provider_fields"].(map[string]any)["sign"]; ok {
		t.Error("signature kept in provider_fields")
	}
	wantGolden(t, js, "payhook.events.jpglo.payin.succeeded", "jpglo_payin", want)

	appeal := `{"mch_order_no":"1234567890","order_no":"2203240014034824","mch_inquiry_no":"111234567890","inquiry_order_no":"2205041133420031","status":"success","inquiry_amount":1000000,"user_remark":"I've paid!","reason":"已完成充值","timestamp":1651648963,"sign":"FE4117A73E8EA77784DE4FFF1FDAD64B"}`
	code, reply = post(t, base+"/v1/callbacks/jpglo/glo-br/appeal", "application/json", appeal)
	if code != 200 || reply != `{"status":0,"msg":"处理成功"}` {
		t.Fatalf("appeal callback: %d %s", code, reply)
	}
	ce, _ = lastEvent(t, js, "payhook.events.jpglo.appeal.succeeded")
	data = ce["data"].(map[string]any)
	if data["merchant_order_id"] != "1234567890" || data["amount"].(map[string]any)["value"] != "10000.00" {
		t.Errorf("appeal data %v", data)
	}
	wantGolden(t, js, "payhook.events.jpglo.appeal.succeeded", "jpglo_appeal", events.Event{
		Provider: "jpglo", Account: "glo-br", Kind: "appeal", Status: "succeeded", IdempotencyKey: "111234567890"})

	// Tampered amount, wrong signature, wrong kind, non-JSON: 4xx and nothing published.
	for name, c := range map[string]struct{ path, body string }{
		"tampered amount": {"/v1/callbacks/jpglo/glo-br/payin", strings.Replace(payment, `"real_amount":10000000`, `"real_amount":90000000`, 1)},
		"wrong signature": {"/v1/callbacks/jpglo/glo-br/payin", strings.Replace(payment, "DCB154", "DCB155", 1)},
		"wrong kind":      {"/v1/callbacks/jpglo/glo-br/payout", payment},
		"not json":        {"/v1/callbacks/jpglo/glo-br/payin", "mch_order_no=1"},
		"unknown account": {"/v1/callbacks/jpglo/glo-xx/payin", payment},
	} {
		if code, reply := post(t, base+c.path, "application/json", c.body); code < 400 || code > 499 {
			t.Errorf("%s: %d %s, want 4xx", name, code, reply)
		}
	}
	s, _ := js.Stream(context.Background(), natsbus.StreamEvents)
	info, _ := s.Info(context.Background())
	if info.State.Msgs != 2 {
		t.Errorf("%d events stored, want 2", info.State.Msgs)
	}
}

// mrnpay pay-in and payout form callbacks from the provider packages' testdata/vectors.json (signed outside the project).
func TestMrnpayFormCallbacksEndToEnd(t *testing.T) {
	base, js := serve(t, providers.Account{ID: "mrn-cn", Provider: "mrnpay", Keys: providers.Keys{"merchant_id": "app-1", "secret": "s3cr3t-mrn"}, Currency: "CNY"})
	payin := "amount=99.50&appKey=app-1&channel=2&mrn=M-1001&originAmount=100.00&sign=9f7ea95ba992ff15de124dfc35f2571b"
	code, reply := post(t, base+"/v1/callbacks/mrnpay/mrn-cn/payin", "application/x-www-form-urlencoded", payin)
	if code != 200 || reply != "success" {
		t.Fatalf("payin: %d %q", code, reply)
	}
	ce, _ := lastEvent(t, js, "payhook.events.mrnpay.payin.succeeded")
	d := ce["data"].(map[string]any)
	if d["merchant_order_id"] != "M-1001" || d["amount"].(map[string]any)["value"] != "99.50" ||
		d["requested_amount"].(map[string]any)["value"] != "100.00" || d["amount_mismatch"] != true {
		t.Errorf("payin data %v", d)
	}
	wantGolden(t, js, "payhook.events.mrnpay.payin.succeeded", "mrnpay_payin",
		events.Event{Provider: "mrnpay", Account: "mrn-cn", Kind: "payin", Status: "succeeded", MerchantOrderID: "M-1001"})
	payout := "amount=500&appKey=app-1&mrn=P-2001&sign=cc0f8c862e334898149b1ddb7b52893f"
	if code, reply := post(t, base+"/v1/callbacks/mrnpay/mrn-cn/payout", "application/x-www-form-urlencoded", payout); code != 200 || reply != "success" {
		t.Fatalf("payout: %d %q", code, reply)
	}
	ce, _ = lastEvent(t, js, "payhook.events.mrnpay.payout.succeeded")
	if d := ce["data"].(map[string]any); d["merchant_order_id"] != "P-2001" || d["amount"].(map[string]any)["value"] != "500" {
		t.Errorf("payout data %v", d)
	}
	wantGolden(t, js, "payhook.events.mrnpay.payout.succeeded", "mrnpay_payout",
		events.Event{Provider: "mrnpay", Account: "mrn-cn", Kind: "payout", Status: "succeeded", MerchantOrderID: "P-2001"})
	for name, body := range map[string]string{
		"tampered amount": strings.Replace(payin, "amount=99.50", "amount=100.00", 1),
		"wrong signature": strings.Replace(payin, "9f7ea9", "9f7ea8", 1),
	} {
		if code, _ := post(t, base+"/v1/callbacks/mrnpay/mrn-cn/payin", "application/x-www-form-urlencoded", body); code < 400 || code > 499 {
			t.Errorf("%s: %d, want 4xx", name, code)
		}
	}
	if code, _ := post(t, base+"/v1/callbacks/mrnpay/mrn-cn/appeal", "application/x-www-form-urlencoded", payin); code != 404 {
		t.Errorf("appeal kind for mrnpay: %d, want 404", code)
	}
}

// mpurse AES-128-ECB body and cashypro signed notification from the provider packages' testdata/vectors.json.
func TestMpurseAndCashyproEndToEnd(t *testing.T) {
	base, js := serve(t,
		providers.Account{ID: "mp-in", Provider: "mpurse", Keys: providers.Keys{"merchant_id": "Mct_test_10001_PartnerId", "aes_key": "mpurseKey16bytes", "aes_mode": "ecb"}, Currency: "INR"},
		providers.Account{ID: "cp-id", Provider: "cashypro", Keys: providers.Keys{"merchant_id": "1002001", "secret": "cashy-secret"}, Currency: "IDR"},
	)
	mp := "9e9da4vD426pIvBrwXMMFAdxrFLFYOow0WBTSDIG1agZ5jvM7H16gGb/8n0X0QM4guTR3NXEsUKg6BW0fOp8v+ER10HJBvLxvgCveKWjXFfBwkk72mZzBpTmcKVSoYmWC5flbI2p32SuMQaLbYX9Fc37VuEXRscoHMxq3xJgNFa3algkTC7z76hkV55v/jVofkar4pW4QvT17P06SrziWTmltE9nGiN4MXLqsvH7E2YpPyvek8shHMG7YlS72i94sloy+LlFS+IuWPvnV57JiEGKd3sNV6a/uuoP3jEHbzsAS+6zVl4Jwdkx7XIt8gUsyggQsWRt593BASTGniFiE8Sx+rd4zct5lL1+aAJOFpM5pmcaRAJyygVDyVmRkpAEHfQ/XZeqX+JtOFVHEN0ovXjLg0/rgktHyx4Qdv5pojA="
	if code, reply := post(t, base+"/v1/callbacks/mpurse/mp-in/payin", "text/plain", mp); code != 200 || reply != "SUCCESS" {
		t.Fatalf("mpurse: %d %q", code, reply)
	}
	ce, _ := lastEvent(t, js, "payhook.events.mpurse.payin.succeeded")
	if d := ce["data"].(map[string]any); d["reference"] != "1234567890" || d["amount"].(map[string]any)["value"] != "120.00" || d["occurred_at"] != "2019-07-06T06:40:00Z" {
		t.Errorf("mpurse data %v", d)
	}
	wantGolden(t, js, "payhook.events.mpurse.payin.succeeded", "mpurse_payin", events.Event{
		Provider: "mpurse", Account: "mp-in", Kind: "payin", Status: "succeeded", IdempotencyKey: "3131414131:1234567890"}) // mpQueryId:bankRRN
	if code, _ := post(t, base+"/v1/callbacks/mpurse/mp-in/payin", "text/plain", "not base64 at all!"); code < 400 || code > 499 {
		t.Errorf("mpurse garbage: %d, want 4xx", code)
	}
	cp := `{"amount":20000.00,"completionTime":"2024-12-02 12:07:06","fee":2500.0000,"mchOrderNo":"1386503284355244033","merchantId":"1002001","nonceStr":"1733116026894","orderNo":"PAYIN8551790545658687488","orderStatus":"SUCCESS","payCode":"OR.GPNQR..INOPROID_BS","payType":"41","payUrl":"https://payurl.com"}`
	code, _ := post(t, base+"/v1/callbacks/cashypro/cp-id/payin", "application/json", cp, "MerchantId", "1002001", "Sign", "3870005B2458A883ABCF810550090C59")
	if code != 200 {
		t.Fatalf("cashypro: %d", code)
	}
	ce, _ = lastEvent(t, js, "payhook.events.cashypro.payin.succeeded")
	if d := ce["data"].(map[string]any); d["merchant_order_id"] != "1386503284355244033" || d["amount"].(map[string]any)["value"] != "20000.00" {
		t.Errorf("cashypro data %v", d)
	}
	wantGolden(t, js, "payhook.events.cashypro.payin.succeeded", "cashypro_payin",
		events.Event{Provider: "cashypro", Account: "cp-id", Kind: "payin", Status: "succeeded", MerchantOrderID: "1386503284355244033"})
	if code, _ := post(t, base+"/v1/callbacks/cashypro/cp-id/payin", "application/json", strings.Replace(cp, "20000.00", "20001.00", 1), "MerchantId", "1002001", "Sign", "3870005B2458A883ABCF810550090C59"); code < 400 || code > 499 {
		t.Errorf("cashypro tampered: %d, want 4xx", code)
	}
}

// mpurse callbacks have no MAC, so on a CBC account a reply that differed
// between "bad padding" and "decrypts, but is not a JSON object" would be a
// padding oracle. Every decryption failure gets the same reply, byte for byte.
func TestMpurseDecryptFailuresReplyAlike(t *testing.T) {
	acct := providers.Account{ID: "mp-cbc", Provider: "mpurse", Keys: providers.Keys{"merchant_id": "Mct_test_10001_PartnerId", "aes_key": "mpurseKey16bytes", "aes_mode": "cbc", "aes_iv": "0123456789abcdef"}, Currency: "INR"}
	base, js := serve(t, acct)
	encrypt := func(plain []byte) []byte {
		t.Helper()
		ct, err := mpurse.Encrypt(acct, plain)
		if err != nil {
			t.Fatal(err)
		}
		return []byte(ct)
	}
	valid := encrypt([]byte(`{"mpQueryId":"Q-1","payerAmount":"120.00","txnStatus":"TRANSACTION_SUCCESS","partnerId":"Mct_test_10001_PartnerId","bankRRN":"1234567890"}`))
	raw, err := base64.StdEncoding.DecodeString(string(valid))
	if err != nil {
		t.Fatal(err)
	}
	// Flipping the top bit of the last byte of the next-to-last block flips
	// it in the last plaintext byte, the padding length: 1..16 becomes ≥ 0x81.
	raw[len(raw)-aes.BlockSize-1] ^= 0x80
	badPadding := []byte(base64.StdEncoding.EncodeToString(raw))
	cases := []struct {
		name, cause string
		body        []byte
	}{
		{"bad padding", "bad padding", badPadding},
		{"decrypts but not JSON", "plaintext is not a JSON object", encrypt([]byte("decrypts fine, but is no JSON"))},
		{"decrypts but not UTF-8", "plaintext is not UTF-8 text", encrypt([]byte{0xff, 0xfe, 0xfd, '{', '}'})},
		{"not whole blocks", "not whole AES blocks", []byte(base64.StdEncoding.EncodeToString(make([]byte, 20)))},
	}
	type reply struct {
		status int
		ctype  string
		body   string
	}
	var first reply
	for i, c := range cases {
		// The cases exercise what they claim (the cause stays inside).
		_, perr := registry.Inbound()["mpurse"].Parse(acct, providers.Request{Kind: events.KindPayin, Body: c.body, ReceivedAt: time.Now()})
		if !errors.Is(perr, providers.ErrDecrypt) || !strings.Contains(perr.Error(), c.cause) {
			t.Fatalf("%s: Parse says %v, want a decryption failure: %s", c.name, perr, c.cause)
		}
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/callbacks/mpurse/mp-cbc/payin", bytes.NewReader(c.body))
		req.Header.Set("Content-Type", "text/plain")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := reply{resp.StatusCode, resp.Header.Get("Content-Type"), string(b)}
		if got.status != http.StatusUnauthorized || strings.Contains(got.body, "padding") || strings.Contains(got.body, "JSON") {
			t.Errorf("%s: %+v, want 401 without the cause", c.name, got)
		}
		if i == 0 {
			first = got
		} else if got != first {
			t.Errorf("%s: reply %+v differs from the %s reply %+v", c.name, got, cases[0].name, first)
		}
	}
	t.Logf("every decryption failure: %d %s", first.status, first.body)
	s, _ := js.Stream(context.Background(), natsbus.StreamEvents)
	if info, _ := s.Info(context.Background()); info.State.Msgs != 0 {
		t.Errorf("%d events published for undecryptable callbacks", info.State.Msgs)
	}
}
