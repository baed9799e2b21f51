package mpurse_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/internal/vectorstest"
	"github.com/payhook/payhook/pkg/providers/mpurse"
	"github.com/payhook/payhook/pkg/providers/providertest"
)

// The requests below are built in the test with crypto/aes, not with the
// package's Encrypt, so a bug shared by both sides cannot hide.

var (
	receivedAt = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

	acct128    = providers.Account{ID: "mp-in", Provider: "mpurse", Keys: providers.Keys{"merchant_id": "Mct_test_10001_PartnerId", "aes_key": "mpurseKey16bytes", "aes_mode": "ecb"}, Currency: "INR"}
	acct192    = providers.Account{ID: "mp-192", Provider: "mpurse", Keys: providers.Keys{"merchant_id": "Mct_test_10001_PartnerId", "aes_key": "mpurse-aes-key-24-bytes!", "aes_mode": "ecb"}, Currency: "INR"}
	acct256cbc = providers.Account{ID: "mp-cbc", Provider: "mpurse", Keys: providers.Keys{"merchant_id": "Mct_test_10001_PartnerId", "aes_key": "mpurse-aes-key-for-cbc-32-bytes!", "aes_mode": "cbc", "aes_iv": "0123456789abcdef"}, Currency: "INR"}
)

// seedPlain is the seed's example plaintext, as one line.
const seedPlain = `{"mpQueryId":"3131414131","payerVA":"payer.example@paytm","bankRRN":"1234567890","payerAmount":"120.00","payChannel":"UPI","txnStatus":"TRANSACTION_SUCCESS","txnCompletionDate":"20190706121000","partnerId":"Mct_test_10001_PartnerId","receiverVA":"mpu.cpdf.user1234567@icici","errorMsg":"transaction success"}`

func seedFields() map[string]any {
	return map[string]any{
		"mpQueryId": "3131414131", "payerVA": "payer.example@paytm", "bankRRN": "1234567890",
		"payerAmount": "120.00", "payChannel": "UPI", "txnStatus": "TRANSACTION_SUCCESS",
		"txnCompletionDate": "20190706121000", "partnerId": "Mct_test_10001_PartnerId",
		"receiverVA": "mpu.cpdf.user1234567@icici", "errorMsg": "transaction success",
	}
}

// pad applies PKCS#7 with the given pad length (1..16 normally; tests pass bad ones).
func pad(plain []byte, n int, fill byte) []byte {
	out := append([]byte(nil), plain...)
	for i := 0; i < n; i++ {
		out = append(out, fill)
	}
	return out
}

func pkcs7(plain []byte) []byte {
	n := 16 - len(plain)%16
	return pad(plain, n, byte(n))
}

// rawEncrypt encrypts already padded bytes under acct's key and mode.
func rawEncrypt(tb testing.TB, acct providers.Account, padded []byte) []byte {
	tb.Helper()
	block, err := aes.NewCipher([]byte(acct.Key("aes_key")))
	if err != nil {
		tb.Fatal(err)
	}
	if len(padded)%16 != 0 {
		tb.Fatalf("rawEncrypt: %d bytes", len(padded))
	}
	out := make([]byte, len(padded))
	if acct.Key("aes_mode") == "cbc" {
		cipher.NewCBCEncrypter(block, []byte(acct.Key("aes_iv"))).CryptBlocks(out, padded)
		return out
	}
	for i := 0; i < len(padded); i += 16 {
		block.Encrypt(out[i:i+16], padded[i:i+16])
	}
	return out
}

// encBody is the body MPurse would send: BASE64(AES(PKCS#7(plain))).
func encBody(tb testing.TB, acct providers.Account, plain string) []byte {
	tb.Helper()
	return []byte(base64.StdEncoding.EncodeToString(rawEncrypt(tb, acct, pkcs7([]byte(plain)))))
}

// unpaddedBody is encBody with trailing JSON whitespace added to the
// plaintext until the ciphertext is a multiple of 3 bytes, so its base64 has
// no "=". providertest drops the body's last byte and expects a rejection;
// since we accept unpadded base64, dropping a lone "=" would leave the same
// ciphertext. Padded bodies are covered by TestVectors and TestBodyForms.
func unpaddedBody(tb testing.TB, acct providers.Account, plain string) []byte {
	tb.Helper()
	for len(pkcs7([]byte(plain)))%3 != 0 {
		plain += " "
	}
	b := encBody(tb, acct, plain)
	if bytes.Contains(b, []byte("=")) {
		tb.Fatal("unpaddedBody produced padding")
	}
	return b
}

func req(body []byte) providers.Request {
	return providers.Request{Kind: events.KindPayin, Body: body, RemoteAddr: "203.0.113.7:4000", ReceivedAt: receivedAt}
}

// eventID recomputes the documented event id independently of pkg/events.
func eventID(provider, account, kind, key, status string) string {
	h := sha256.New()
	for _, p := range []string{provider, account, kind, key, status} {
		fmt.Fprintf(h, "%d:%s|", len(p), p)
	}
	return "evt_" + hex.EncodeToString(h.Sum(nil)[:16])
}

func seedEvent(acctID string) events.Event {
	return events.Event{
		Provider: "mpurse", Account: acctID, Kind: events.KindPayin, Status: events.StatusSucceeded,
		MerchantOrderID: "3131414131", ProviderOrderID: "3131414131", Reference: "1234567890",
		Amount:         events.Money{Value: "120.00", Currency: "INR"},
		OccurredAt:     time.Date(2019, 7, 6, 6, 40, 0, 0, time.UTC), // 12:10 IST is 06:40 UTC
		ReceivedAt:     receivedAt,
		Origin:         events.OriginCallback,
		ProviderFields: seedFields(),
		IdempotencyKey: "3131414131:1234567890",
	}
}

// plainWith renders the seed plaintext with fields replaced (nil value: removed).
func plainWith(changes map[string]any) string {
	m := map[string]any{}
	for k, v := range seedFields() {
		m[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func validCases(t *testing.T) []providertest.Valid {
	failPlain := `{"mpQueryId":"MPQ-77","payerVA":"someone@okaxis","bankRRN":"","payerAmount":"99.5","payChannel":"UPI","txnStatus":"TRANSACTION_FAILURE","partnerId":"Mct_test_10001_PartnerId","receiverVA":"mpu.cpdf.user1@icici","errorMsg":"user declined"}`
	unicodePlain := `{"mpQueryId":"Q-ünï","payerVA":"राहुल.शर्मा@upi","bankRRN":"998877665544","payerAmount":120.50,"payChannel":"UPI","txnStatus":"TRANSACTION_SUCCESS","txnCompletionDate":"20261231235959","partnerId":"Mct_test_10001_PartnerId","receiverVA":"mpu.cpdf.user1@icici","errorMsg":"成功 \u2713"}`
	return []providertest.Valid{
		{
			Name: "seed example aes-128-ecb", Account: acct128,
			Request: req(unpaddedBody(t, acct128, seedPlain)),
			Want:    seedEvent("mp-in"),
			WantID:  eventID("mpurse", "mp-in", "payin", "3131414131:1234567890", "succeeded"),
		},
		{
			Name: "failure aes-192-ecb without completion date or RRN", Account: acct192,
			Request: req(unpaddedBody(t, acct192, failPlain)),
			Want: events.Event{
				Provider: "mpurse", Account: "mp-192", Kind: events.KindPayin, Status: events.StatusFailed,
				MerchantOrderID: "MPQ-77", ProviderOrderID: "MPQ-77",
				Amount:     events.Money{Value: "99.5", Currency: "INR"},
				OccurredAt: receivedAt, ReceivedAt: receivedAt, Origin: events.OriginCallback,
				ProviderFields: map[string]any{"mpQueryId": "MPQ-77", "payerVA": "someone@okaxis", "bankRRN": "",
					"payerAmount": "99.5", "payChannel": "UPI", "txnStatus": "TRANSACTION_FAILURE",
					"partnerId": "Mct_test_10001_PartnerId", "receiverVA": "mpu.cpdf.user1@icici", "errorMsg": "user declined"},
				IdempotencyKey: "MPQ-77:",
			},
			WantID: eventID("mpurse", "mp-192", "payin", "MPQ-77:", "failed"),
		},
		{
			Name: "unicode names, numeric amount, aes-256-cbc", Account: acct256cbc,
			Request: req(unpaddedBody(t, acct256cbc, unicodePlain)),
			Want: events.Event{
				Provider: "mpurse", Account: "mp-cbc", Kind: events.KindPayin, Status: events.StatusSucceeded,
				MerchantOrderID: "Q-ünï", ProviderOrderID: "Q-ünï", Reference: "998877665544",
				Amount:     events.Money{Value: "120.50", Currency: "INR"},
				OccurredAt: time.Date(2026, 12, 31, 18, 29, 59, 0, time.UTC), ReceivedAt: receivedAt,
				Origin: events.OriginCallback,
				ProviderFields: map[string]any{"mpQueryId": "Q-ünï", "payerVA": "राहुल.शर्मा@upi", "bankRRN": "998877665544",
					"payerAmount": "120.50", "payChannel": "UPI", "txnStatus": "TRANSACTION_SUCCESS",
					"txnCompletionDate": "20261231235959", "partnerId": "Mct_test_10001_PartnerId",
					"receiverVA": "mpu.cpdf.user1@icici", "errorMsg": "成功 ✓"},
				IdempotencyKey: "Q-ünï:998877665544",
			},
		},
	}
}

func invalidCases(t *testing.T) []providertest.Invalid {
	seedCT := rawEncrypt(t, acct128, pkcs7([]byte(seedPlain)))
	b64 := func(b []byte) []byte { return []byte(base64.StdEncoding.EncodeToString(b)) }
	body := func(changes map[string]any) providers.Request { return req(encBody(t, acct128, plainWith(changes))) }
	withAcct := func(mod func(*providers.Account)) providers.Account {
		a := acct128
		mod(&a)
		return a
	}
	badPad := []byte(seedPlain[:304]) // 19 whole blocks: a whole block of padding follows
	payout := req(encBody(t, acct128, seedPlain))
	payout.Kind = events.KindPayout
	huge := strings.Repeat("9", 400) + ".00"
	deep := strings.Repeat(`{"a":`, 20) + "1" + strings.Repeat("}", 20)

	return []providertest.Invalid{
		{Name: "empty body", Account: acct128, Request: req(nil), Sentinel: providers.ErrMalformed, Reason: "malformed"},
		{Name: "whitespace only", Account: acct128, Request: req([]byte(" \r\n\t")), Sentinel: providers.ErrMalformed, Reason: "malformed"},
		{Name: "latin-1 bytes, not base64", Account: acct128, Request: req([]byte("caf\xe9 na\xefve \xa3120")), Sentinel: providers.ErrMalformed, Reason: "malformed"},
		{Name: "plaintext JSON sent unencrypted", Account: acct128, Request: req([]byte(seedPlain)), Sentinel: providers.ErrMalformed, Reason: "malformed"},
		{Name: "url-safe alphabet", Account: acct128, Request: req([]byte(base64.URLEncoding.EncodeToString(seedCT))), Reason: "malformed"},
		{Name: "form-encoded body", Account: acct128, Request: req(append([]byte("data="), b64(seedCT)...)), Reason: "malformed"},
		{Name: "ciphertext not whole blocks", Account: acct128, Request: req(b64(seedCT[:len(seedCT)-3])), Sentinel: providers.ErrDecrypt, Reason: "undecryptable"},
		{Name: "truncated by one block", Account: acct128, Request: req(b64(seedCT[:len(seedCT)-16])), Sentinel: providers.ErrDecrypt, Reason: "undecryptable"},
		{Name: "one block only", Account: acct128, Request: req(b64(seedCT[:16])), Sentinel: providers.ErrDecrypt, Reason: "undecryptable"},
		{Name: "bad padding bytes", Account: acct128, Request: req(b64(rawEncrypt(t, acct128, pad(badPad, 16, 15)))), Sentinel: providers.ErrDecrypt, Reason: "undecryptable"},
		{Name: "zero padding", Account: acct128, Request: req(b64(rawEncrypt(t, acct128, pad(badPad, 16, 0)))), Sentinel: providers.ErrDecrypt, Reason: "undecryptable"},
		{Name: "padding longer than a block", Account: acct128, Request: req(b64(rawEncrypt(t, acct128, pad(badPad, 16, 17)))), Sentinel: providers.ErrDecrypt, Reason: "undecryptable"},
		{Name: "no padding at all", Account: acct128, Request: req(b64(rawEncrypt(t, acct128, []byte(seedPlain[:304])))), Sentinel: providers.ErrDecrypt, Reason: "undecryptable"},
		{Name: "wrong key", Account: withAcct(func(a *providers.Account) { *a = a.With("aes_key", "anotherKey16byte") }), Request: req(b64(seedCT)), Sentinel: providers.ErrDecrypt, Reason: "undecryptable"},
		{Name: "right key wrong mode", Account: withAcct(func(a *providers.Account) { *a = a.With("aes_mode", "cbc").With("aes_iv", "fedcba9876543210") }), Request: req(b64(seedCT)), Sentinel: providers.ErrDecrypt, Reason: "undecryptable"},
		{Name: "wrong key length 15", Account: withAcct(func(a *providers.Account) { *a = a.With("aes_key", "mpurseKey15byte") }), Request: req(b64(seedCT)), Sentinel: providers.ErrDecrypt, Reason: providers.ReasonBadConfig},
		{Name: "empty key", Account: withAcct(func(a *providers.Account) { *a = a.With("aes_key", "") }), Request: req(b64(seedCT)), Reason: providers.ReasonBadConfig},
		{Name: "unknown mode", Account: withAcct(func(a *providers.Account) { *a = a.With("aes_mode", "gcm") }), Request: req(b64(seedCT)), Reason: providers.ReasonBadConfig},
		{Name: "cbc without iv", Account: withAcct(func(a *providers.Account) { *a = a.With("aes_mode", "cbc") }), Request: req(b64(seedCT)), Reason: providers.ReasonBadConfig},
		{Name: "plaintext not JSON", Account: acct128, Request: req(encBody(t, acct128, "hello, this is not json")), Sentinel: providers.ErrDecrypt, Reason: "undecryptable"},
		{Name: "plaintext JSON array", Account: acct128, Request: req(encBody(t, acct128, `["mpQueryId"]`)), Sentinel: providers.ErrDecrypt, Reason: "undecryptable"},
		{Name: "plaintext with data after the object", Account: acct128, Request: req(encBody(t, acct128, seedPlain+`{}`)), Sentinel: providers.ErrDecrypt, Reason: "undecryptable"},
		{Name: "plaintext latin-1 bytes", Account: acct128, Request: req(encBody(t, acct128, strings.Replace(seedPlain, "payer.example", "pay\xe9r", 1))), Sentinel: providers.ErrDecrypt, Reason: "undecryptable"},
		{Name: "duplicate keys", Account: acct128, Request: req(encBody(t, acct128, strings.Replace(seedPlain, `"payerAmount":"120.00"`, `"payerAmount":"120.00","payerAmount":"1.00"`, 1))), Sentinel: providers.ErrMalformed, Reason: "malformed"},
		{Name: "duplicate nested keys", Account: acct128, Request: req(encBody(t, acct128, strings.Replace(seedPlain, `"payChannel":"UPI"`, `"payChannel":"UPI","extra":{"a":1,"a":2}`, 1))), Reason: "malformed"},
		{Name: "nested too deep", Account: acct128, Request: req(encBody(t, acct128, strings.Replace(seedPlain, `"payChannel":"UPI"`, `"payChannel":"UPI","extra":`+deep, 1))), Reason: "malformed"},
		{Name: "400-digit amount", Account: acct128, Request: body(map[string]any{"payerAmount": huge}), Sentinel: providers.ErrMalformed, Reason: "bad_amount"},
		{Name: "400-digit numeric amount", Account: acct128, Request: req(encBody(t, acct128, strings.Replace(seedPlain, `"120.00"`, huge, 1))), Reason: "bad_amount"},
		{Name: "amount with exponent", Account: acct128, Request: req(encBody(t, acct128, strings.Replace(seedPlain, `"120.00"`, `1.2e2`, 1))), Reason: "bad_amount"},
		{Name: "amount negative", Account: acct128, Request: body(map[string]any{"payerAmount": "-120.00"}), Reason: "bad_amount"},
		{Name: "amount tampered with a letter", Account: acct128, Request: body(map[string]any{"payerAmount": "12O.00"}), Reason: "bad_amount"},
		{Name: "amount with currency", Account: acct128, Request: body(map[string]any{"payerAmount": "₹120.00"}), Reason: "bad_amount"},
		{Name: "amount empty", Account: acct128, Request: body(map[string]any{"payerAmount": ""}), Reason: "missing_field"},
		{Name: "amount missing", Account: acct128, Request: body(map[string]any{"payerAmount": nil}), Reason: "missing_field"},
		{Name: "amount is an object", Account: acct128, Request: body(map[string]any{"payerAmount": map[string]any{"v": 1}}), Reason: "malformed"},
		{Name: "mpQueryId missing", Account: acct128, Request: body(map[string]any{"mpQueryId": nil}), Reason: "missing_field"},
		{Name: "mpQueryId is a bool", Account: acct128, Request: body(map[string]any{"mpQueryId": true}), Reason: "malformed"},
		{Name: "bankRRN missing on success", Account: acct128, Request: body(map[string]any{"bankRRN": nil}), Reason: "missing_field"},
		{Name: "txnStatus tampered", Account: acct128, Request: body(map[string]any{"txnStatus": "TRANSACTION_PENDING"}), Reason: "bad_status"},
		{Name: "txnStatus lower case", Account: acct128, Request: body(map[string]any{"txnStatus": "transaction_success"}), Reason: "bad_status"},
		{Name: "txnStatus missing", Account: acct128, Request: body(map[string]any{"txnStatus": nil}), Reason: "missing_field"},
		{Name: "partnerId tampered", Account: acct128, Request: body(map[string]any{"partnerId": "Mct_test_10002_PartnerId"}), Sentinel: providers.ErrAccount, Reason: "account_mismatch"},
		{Name: "partnerId missing", Account: acct128, Request: body(map[string]any{"partnerId": nil}), Reason: "missing_field"},
		{Name: "account mismatch", Account: withAcct(func(a *providers.Account) { *a = a.With("merchant_id", "someone-else") }), Request: body(nil), Sentinel: providers.ErrAccount, Reason: "account_mismatch"},
		{Name: "wrong kind", Account: acct128, Request: payout, Sentinel: providers.ErrKind, Reason: "wrong_kind"},
		{Name: "appeal kind", Account: acct128, Request: func() providers.Request { r := body(nil); r.Kind = events.KindAppeal; return r }(), Sentinel: providers.ErrKind, Reason: "wrong_kind"},
		{Name: "body too large", Account: acct128, Request: req(bytes.Repeat([]byte("A"), mpurse.MaxBody+4)), Reason: "malformed"},
	}
}

func TestConformance(t *testing.T) {
	providertest.Run(t, mpurse.New(), validCases(t), invalidCases(t))
}

// TestTamperedBlocks flips one byte in every ciphertext block of the seed
// callback, under each mode: no tampered body is accepted.
func TestTamperedBlocks(t *testing.T) {
	for _, acct := range []providers.Account{acct128, acct192, acct256cbc} {
		ct := rawEncrypt(t, acct, pkcs7([]byte(seedPlain)))
		for blk := 0; blk < len(ct)/16; blk++ {
			for _, off := range []int{0, 7, 15} {
				t.Run(fmt.Sprintf("%s/block%d/byte%d", acct.ID, blk, off), func(t *testing.T) {
					mut := append([]byte(nil), ct...)
					mut[blk*16+off] ^= 0x20
					_, err := mpurse.New().Parse(acct, req([]byte(base64.StdEncoding.EncodeToString(mut))))
					if err == nil {
						t.Fatal("tampered ciphertext accepted")
					}
					if r := providers.ReasonOf(err); r != "undecryptable" && r != "malformed" {
						t.Errorf("reason %q", r)
					}
				})
			}
		}
	}
}

// TestBodyForms: padding optional, surrounding whitespace and MIME line breaks ignored.
func TestBodyForms(t *testing.T) {
	ct := rawEncrypt(t, acct128, pkcs7([]byte(seedPlain)))
	std := base64.StdEncoding.EncodeToString(ct)
	if !strings.HasSuffix(std, "=") {
		t.Fatal("test needs a padded encoding")
	}
	var mime strings.Builder
	for i := 0; i < len(std); i += 76 {
		mime.WriteString(std[i:min(i+76, len(std))])
		mime.WriteString("\r\n")
	}
	cases := []struct{ name, body string }{
		{"padded", std},
		{"unpadded", base64.RawStdEncoding.EncodeToString(ct)},
		{"trailing newline", std + "\n"},
		{"surrounding whitespace", " \t\r\n" + std + "\r\n "},
		{"mime lines", mime.String()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := mpurse.New().Parse(acct128, req([]byte(c.body)))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if want := seedEvent("mp-in"); !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
		})
	}
	t.Run("wrong padding count", func(t *testing.T) {
		if _, err := mpurse.New().Parse(acct128, req([]byte(std+"="))); err == nil {
			t.Fatal("three padding characters accepted")
		}
	})
	t.Run("non-zero trailing bits", func(t *testing.T) {
		// The last character before "=" carries 2 unused bits; setting them
		// yields another spelling of the same bytes, which strict decoding refuses.
		b := []byte(std)
		i := len(b) - 2
		if b[i-1] == '=' {
			i--
		}
		alt := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", b[i]) | 1
		b[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[alt]
		if _, err := mpurse.New().Parse(acct128, req(b)); err == nil {
			t.Fatal("non-canonical base64 accepted")
		}
	})
}

type vector struct {
	Name, Key, Mode, IV, Plaintext, Body string
}

// TestVectors decrypts every mpurse vector (computed outside the project
// with openssl) and re-encrypts its plaintext to the same body.
func TestVectors(t *testing.T) {
	vs := vectorstest.Local[vector](t, "mpurse")
	if len(vs) != 3 {
		t.Fatalf("%d vectors, want the three AES variants", len(vs))
	}
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			acct := providers.Account{ID: "mp-vec", Keys: providers.Keys{"merchant_id": "Mct_test_10001_PartnerId", "aes_key": v.Key, "aes_mode": v.Mode, "aes_iv": v.IV}, Currency: "INR"}
			// Independent check of the vector itself.
			if got := string(encBody(t, acct, v.Plaintext)); got != v.Body {
				t.Fatalf("test's own AES does not reproduce the vector")
			}
			plain, err := mpurse.Decrypt(acct, []byte(v.Body))
			if err != nil {
				t.Fatalf("Decrypt: %v", err)
			}
			if string(plain) != v.Plaintext {
				t.Errorf("Decrypt = %q", plain)
			}
			got, err := mpurse.New().Parse(acct, req([]byte(v.Body)))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if want := seedEvent("mp-vec"); !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
			enc, err := mpurse.Encrypt(acct, []byte(v.Plaintext))
			if err != nil {
				t.Fatalf("Encrypt: %v", err)
			}
			if enc != v.Body {
				t.Errorf("Encrypt = %s, want the vector body", enc)
			}
		})
	}
}

// TestVectorsMatchShared keeps testdata/vectors.json equal to the shared file when it is present.
func TestVectorsMatchShared(t *testing.T) {
	vectorstest.Shared[vector](t, "mpurse") // errors when testdata/vectors.json differs from it
}

func TestEncryptRoundTrip(t *testing.T) {
	for _, acct := range []providers.Account{acct128, acct192, acct256cbc} {
		for _, n := range []int{0, 1, 15, 16, 17, 300} {
			plain := bytes.Repeat([]byte{'x'}, n)
			enc, err := mpurse.Encrypt(acct, plain)
			if err != nil {
				t.Fatalf("%s/%d: Encrypt: %v", acct.ID, n, err)
			}
			if want := string(encBody(t, acct, string(plain))); enc != want {
				t.Errorf("%s/%d: Encrypt differs from crypto/aes", acct.ID, n)
			}
			got, err := mpurse.Decrypt(acct, []byte(enc))
			if err != nil || !bytes.Equal(got, plain) {
				t.Errorf("%s/%d: Decrypt = %q, %v", acct.ID, n, got, err)
			}
		}
	}
	if _, err := mpurse.Encrypt(providers.Account{Keys: providers.Keys{"aes_key": "short"}}, []byte("{}")); providers.ReasonOf(err) != providers.ReasonBadConfig {
		t.Errorf("Encrypt with a 5-byte key: %v", err)
	}
}

func TestCheckAccount(t *testing.T) {
	cases := []struct {
		name string
		acct providers.Account
		ok   bool
	}{
		{"ecb 128", acct128, true},
		{"ecb 192", acct192, true},
		{"cbc 256", acct256cbc, true},
		{"default mode", providers.Account{Keys: providers.Keys{"aes_key": "mpurseKey16bytes"}}, true},
		{"key 31 bytes", providers.Account{Keys: providers.Keys{"aes_key": strings.Repeat("k", 31)}}, false},
		{"cbc iv 8 bytes", providers.Account{Keys: providers.Keys{"aes_key": "mpurseKey16bytes", "aes_mode": "cbc", "aes_iv": "01234567"}}, false},
		{"mode ctr", providers.Account{Keys: providers.Keys{"aes_key": "mpurseKey16bytes", "aes_mode": "ctr"}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := mpurse.CheckAccount(c.acct)
			if (err == nil) != c.ok {
				t.Errorf("CheckAccount = %v, want ok=%v", err, c.ok)
			}
		})
	}
}

func TestAck(t *testing.T) {
	r := mpurse.New().Ack(events.KindPayin)
	if r.Status != 200 || string(r.Body) != "SUCCESS" || !strings.HasPrefix(r.ContentType, "text/plain") {
		t.Errorf("Ack = %+v", r)
	}
	if k := mpurse.New().Kinds(); len(k) != 1 || k[0] != events.KindPayin {
		t.Errorf("Kinds = %v", k)
	}
}

// TestVerifyThenEvent: a zero Callback (not from Verify) never decodes, and
// errors carry no plaintext.
func TestVerifyThenEvent(t *testing.T) {
	if _, err := (&mpurse.Callback{}).Event(); err == nil {
		t.Error("zero Callback decoded")
	}
	var nilCB *mpurse.Callback
	if _, err := nilCB.Event(); err == nil {
		t.Error("nil Callback decoded")
	}
	cb, err := mpurse.New().Verify(acct128, req(encBody(t, acct128, plainWith(map[string]any{"payerAmount": "abc-secret-ish"}))))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	_, err = cb.Event()
	var re *providers.RejectError
	if !errors.As(err, &re) || re.Reason != "bad_amount" {
		t.Fatalf("Event: %v", err)
	}
	for _, leak := range []string{"abc-secret-ish", "payer.example", "mpurseKey16bytes"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error %q leaks %q", err, leak)
		}
	}
}

// An unreadable txnCompletionDate does not refuse a verified payment: the
// event's occurred_at falls back to when it was received.
func TestUnreadableCompletionDateFallsBackToReceived(t *testing.T) {
	for _, when := range []string{"2019-07-06 12:10:00", "20191306121000", "00000101000000"} {
		req := req(encBody(t, acct128, plainWith(map[string]any{"txnCompletionDate": when})))
		ev, err := mpurse.New().Parse(acct128, req)
		if err != nil {
			t.Fatalf("%s: Parse: %v", when, err)
		}
		if !ev.OccurredAt.Equal(req.ReceivedAt) {
			t.Errorf("%s: occurred_at %s, want received_at %s", when, ev.OccurredAt, req.ReceivedAt)
		}
	}
}
