package fantian_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/fantian"
	"github.com/payhook/payhook/pkg/providers/internal/vectorstest"
)

const secret = "fantian-secret"

var acct = providers.Account{ID: "ft-in", Provider: "fantian", Keys: providers.Keys{"merchant_id": "PF0002", "secret": secret}, Currency: "INR"}

// testSign is the assumed rule written out by hand for the three fields,
// already in sorted order, with crypto/md5.
func testSign(platform, order, ref, key string, upper bool) string {
	s := fmt.Sprintf("payment_cl_id=%s&payment_reference=%s&platform_id=%s&key=%s", order, ref, platform, key)
	sum := md5.Sum([]byte(s))
	h := hex.EncodeToString(sum[:])
	if upper {
		h = strings.ToUpper(h)
	}
	return h
}

// fakeFantian is the seed's endpoint: it checks method, path, content type,
// field lengths and the signature, and answers {"error_code":"0004",...}
// on a bad signature exactly as the seed shows, or with the scripted reply.
type fakeFantian struct {
	t      *testing.T
	upper  bool
	status int
	reply  string
	delay  time.Duration

	mu    sync.Mutex
	got   []map[string]string
	rawCT string
}

func (f *fakeFantian) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost || r.URL.Path != "/gateway/api/v1/payments/reference" {
		f.t.Errorf("fake fantian: %s %s", r.Method, r.URL.Path)
		w.WriteHeader(404)
		return
	}
	var m map[string]string
	if err := json.Unmarshal(body, &m); err != nil {
		f.t.Errorf("fake fantian: body %v", err)
		w.WriteHeader(400)
		return
	}
	f.mu.Lock()
	f.got = append(f.got, m)
	f.rawCT = r.Header.Get("Content-Type")
	f.mu.Unlock()
	if len(m) != 4 || len(m["platform_id"]) > 7 || len(m["payment_cl_id"]) > 32 || len(m["payment_reference"]) > 64 {
		f.t.Errorf("fake fantian: fields %v", m)
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	if m["sign"] != testSign(m["platform_id"], m["payment_cl_id"], m["payment_reference"], secret, f.upper) {
		_, _ = io.WriteString(w, `{ "error_code": "0004", "error_msg": "验签错误!" }`)
		return
	}
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-r.Context().Done():
			return
		}
	}
	if f.status != 0 {
		w.WriteHeader(f.status)
	}
	_, _ = io.WriteString(w, f.reply)
}

func start(t *testing.T, f *fakeFantian) providers.Account {
	t.Helper()
	f.t = t
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	a := acct
	a.BaseURL = srv.URL + "/" // a trailing slash must not double up
	return a
}

func TestSubmitReferenceMatched(t *testing.T) {
	f := &fakeFantian{reply: `{ "error_code": "0000" }`}
	a := start(t, f)
	if err := fantian.NewClient(nil).SubmitReference(context.Background(), a, "DEVPM00014581", "testpaymentreference"); err != nil {
		t.Fatalf("SubmitReference: %v", err)
	}
	want := map[string]string{"platform_id": "PF0002", "payment_cl_id": "DEVPM00014581", "payment_reference": "testpaymentreference", "sign": "32ddadcbe0c168b1081cb86ba6ecd7d1"}
	if len(f.got) != 1 || !reflect.DeepEqual(f.got[0], want) {
		t.Errorf("sent %v, want %v", f.got, want)
	}
	if f.rawCT != "application/json;charset=utf-8" {
		t.Errorf("Content-Type %q", f.rawCT)
	}
}

func TestSubmitReferenceUpperRule(t *testing.T) {
	f := &fakeFantian{reply: `{"error_code":"0000"}`, upper: true}
	a := start(t, f)
	a = a.With("sign_rule", "sorted-upper")
	if err := fantian.NewClient(nil).SubmitReference(context.Background(), a, "ORD-1", "412345678901"); err != nil {
		t.Fatalf("SubmitReference: %v", err)
	}
	// And the default rule against a fake expecting upper case gets the seed's 0004.
	a = a.With("sign_rule", "")
	err := fantian.NewClient(nil).SubmitReference(context.Background(), a, "ORD-1", "412345678901")
	var ae *providers.APIError
	if !errors.As(err, &ae) || ae.Code != "0004" || ae.Message != "验签错误!" {
		t.Fatalf("err = %#v", err)
	}
}

func TestSubmitReferenceErrors(t *testing.T) {
	cases := []struct {
		name       string
		fake       *fakeFantian
		acct       func(*providers.Account)
		wantCode   string
		wantHTTP   int
		temporary  bool
		notMatched bool
		wantIs     error
	}{
		{name: "bad signature from the seed (wrong secret)", fake: &fakeFantian{reply: `{"error_code":"0000"}`}, acct: func(a *providers.Account) { *a = a.With("secret", "other") }, wantCode: "0004", wantHTTP: 200},
		{name: "unknown code", fake: &fakeFantian{reply: `{"error_code":"0007","error_msg":"系统繁忙"}`}, wantCode: "0007", wantHTTP: 200},
		{name: "no match message", fake: &fakeFantian{reply: `{"error_code":"0012","error_msg":"UTR不匹配"}`}, wantCode: "0012", wantHTTP: 200, notMatched: true},
		{name: "english no match message", fake: &fakeFantian{reply: `{"error_code":"1003","error_msg":"Reference Not Found"}`}, wantCode: "1003", wantHTTP: 200, notMatched: true},
		{name: "sign message is not a no-match", fake: &fakeFantian{reply: `{"error_code":"0099","error_msg":"sign not match"}`}, wantCode: "0099", wantHTTP: 200},
		{name: "http 503", fake: &fakeFantian{status: 503, reply: `busy`}, wantCode: "http_503", wantHTTP: 503, temporary: true},
		{name: "http 500 with an error body", fake: &fakeFantian{status: 500, reply: `{"error_code":"9999","error_msg":"订单不匹配"}`}, wantCode: "9999", wantHTTP: 500, temporary: true},
		{name: "http 400", fake: &fakeFantian{status: 400, reply: ``}, wantCode: "http_400", wantHTTP: 400},
		{name: "not JSON", fake: &fakeFantian{reply: `<html>ok</html>`}, wantIs: fantian.ErrReply},
		{name: "no error_code", fake: &fakeFantian{reply: `{"error_msg":"?"}`}, wantIs: fantian.ErrReply},
		{name: "numeric error_code", fake: &fakeFantian{reply: `{"error_code":0}`}, wantIs: fantian.ErrReply},
		{name: "empty reply", fake: &fakeFantian{reply: ``}, wantIs: fantian.ErrReply},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := start(t, c.fake)
			if c.acct != nil {
				c.acct(&a)
			}
			err := fantian.NewClient(nil).SubmitReference(context.Background(), a, "DEVPM00014581", "testpaymentreference")
			if err == nil {
				t.Fatal("no error")
			}
			if fantian.NotMatched(err) != c.notMatched {
				t.Errorf("NotMatched = %v", !c.notMatched)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error leaks the secret: %v", err)
			}
			if c.wantIs != nil {
				if !errors.Is(err, c.wantIs) {
					t.Errorf("err = %v, want %v", err, c.wantIs)
				}
				return
			}
			var ae *providers.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want *providers.APIError", err)
			}
			if ae.Code != c.wantCode || ae.HTTP != c.wantHTTP || ae.Temporary != c.temporary || ae.Provider != "fantian" || ae.Op != fantian.OpSubmitReference {
				t.Errorf("err = %#v", ae)
			}
		})
	}
}

func TestSubmitReferenceValidation(t *testing.T) {
	f := &fakeFantian{reply: `{"error_code":"0000"}`}
	a := start(t, f)
	long := func(n int) string { return strings.Repeat("9", n) }
	cases := []struct {
		name, order, ref string
		acct             func(*providers.Account)
		wantIs           error
	}{
		{name: "order id at the limit", order: long(32), ref: long(64)},
		{name: "order id too long", order: long(33), ref: "1", wantIs: fantian.ErrInvalid},
		{name: "reference too long", order: "o", ref: long(65), wantIs: fantian.ErrInvalid},
		{name: "platform id too long", order: "o", ref: "1", acct: func(a *providers.Account) { *a = a.With("merchant_id", "PF00002X") }, wantIs: fantian.ErrInvalid},
		{name: "empty reference", order: "o", ref: "", wantIs: fantian.ErrInvalid},
		{name: "empty order", order: "", ref: "1", wantIs: fantian.ErrInvalid},
		{name: "empty merchant id", order: "o", ref: "1", acct: func(a *providers.Account) { *a = a.With("merchant_id", "") }, wantIs: fantian.ErrInvalid},
		{name: "space in reference", order: "o", ref: "4123 4567", wantIs: fantian.ErrInvalid},
		{name: "unicode in reference", order: "o", ref: "४१२३", wantIs: fantian.ErrInvalid},
		{name: "ampersand smuggling a field", order: "o", ref: "1&platform_id=X", wantIs: fantian.ErrInvalid},
		{name: "punctuation allowed", order: "ORD-1_2.3", ref: "UTR/412345678901"},
		{name: "unknown rule", order: "o", ref: "1", acct: func(a *providers.Account) { *a = a.With("sign_rule", "sha1") }, wantIs: fantian.ErrSignRule},
		{name: "no base url", order: "o", ref: "1", acct: func(a *providers.Account) { a.BaseURL = "" }, wantIs: fantian.ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			aa := a
			if c.acct != nil {
				c.acct(&aa)
			}
			before := len(f.got)
			err := fantian.NewClient(nil).SubmitReference(context.Background(), aa, c.order, c.ref)
			if c.wantIs == nil {
				if err != nil {
					t.Fatalf("SubmitReference: %v", err)
				}
				return
			}
			if !errors.Is(err, c.wantIs) {
				t.Fatalf("err = %v, want %v", err, c.wantIs)
			}
			if len(f.got) != before {
				t.Error("refused submission was sent")
			}
		})
	}
}

func TestSubmitReferenceCancelAndTimeout(t *testing.T) {
	t.Run("context cancelled", func(t *testing.T) {
		a := start(t, &fakeFantian{reply: `{"error_code":"0000"}`, delay: 5 * time.Second})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		err := fantian.NewClient(nil).SubmitReference(ctx, a, "o", "1")
		if !errors.Is(err, context.Canceled) || fantian.NotMatched(err) {
			t.Errorf("err = %v", err)
		}
	})
	transport := func(t *testing.T, err error, msg string) {
		t.Helper()
		var ae *providers.APIError
		if !errors.As(err, &ae) || ae.Code != "transport" || ae.Message != msg || !ae.Temporary || ae.Provider != "fantian" || ae.Op != fantian.OpSubmitReference {
			t.Errorf("err = %#v, want a temporary transport APIError %q", err, msg)
		}
		var ne net.Error
		if errors.As(err, &ne) || strings.Contains(err.Error(), "127.0.0.1") || fantian.NotMatched(err) {
			t.Errorf("err %q wraps the net error, names the URL or reads as not matched", err)
		}
	}
	t.Run("client timeout", func(t *testing.T) {
		a := start(t, &fakeFantian{reply: `{"error_code":"0000"}`, delay: 5 * time.Second})
		err := fantian.NewClient(&http.Client{Timeout: 50 * time.Millisecond}).SubmitReference(context.Background(), a, "o", "1")
		transport(t, err, "timeout")
	})
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		a := acct
		a.BaseURL = srv.URL
		srv.Close()
		err := fantian.NewClient(nil).SubmitReference(context.Background(), a, "o", "1")
		transport(t, err, "request failed")
	})
}

func TestSign(t *testing.T) {
	p := map[string]string{"payment_cl_id": "DEVPM00014581", "payment_reference": "testpaymentreference", "platform_id": "PF0002"}
	cases := []struct{ name, rule, want string }{
		{"default", "", testSign("PF0002", "DEVPM00014581", "testpaymentreference", secret, false)},
		{"default named", "default", testSign("PF0002", "DEVPM00014581", "testpaymentreference", secret, false)},
		{"sorted-lower", "sorted-lower", testSign("PF0002", "DEVPM00014581", "testpaymentreference", secret, false)},
		{"sorted-upper", "sorted-upper", testSign("PF0002", "DEVPM00014581", "testpaymentreference", secret, true)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := fantian.Sign(p, secret, c.rule); got != c.want {
				t.Errorf("Sign = %s, want %s", got, c.want)
			}
		})
	}
	t.Run("sign field and empty values skipped", func(t *testing.T) {
		q := map[string]string{"sign": "c81634c1769044eac9e9628a2292f557", "extra": ""}
		for k, v := range p {
			q[k] = v
		}
		if fantian.Sign(q, secret, "") != fantian.Sign(p, secret, "") {
			t.Error("sign or empty field was signed")
		}
	})
}

type vector struct {
	Name, Key, String, Sign string
	Params                  map[string]string
}

func TestVectors(t *testing.T) {
	for _, v := range vectorstest.Local[vector](t, "fantian") {
		t.Run(v.Name, func(t *testing.T) {
			sum := md5.Sum([]byte(v.String))
			if hex.EncodeToString(sum[:]) != v.Sign {
				t.Fatal("vector string does not hash to its sign")
			}
			if got := fantian.Sign(v.Params, v.Key, ""); got != v.Sign {
				t.Errorf("Sign = %s, want %s", got, v.Sign)
			}
		})
	}
}

func TestVectorsMatchShared(t *testing.T) {
	vectorstest.Shared[vector](t, "fantian") // errors when testdata/vectors.json differs from it
}

func TestNotMatched(t *testing.T) {
	api := func(http int, code, msg string) error {
		return &providers.APIError{Provider: "fantian", Op: fantian.OpSubmitReference, HTTP: http, Code: code, Message: msg}
	}
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain error", errors.New("订单不匹配"), false},
		{"matched code", api(200, "0000", "不匹配"), false},
		{"bad signature", api(200, "0004", "验签错误!"), false},
		{"unknown code, no message", api(200, "0005", ""), false},
		{"unknown code, vague message", api(200, "0005", "处理失败"), false},
		{"不匹配", api(200, "0005", "UTR与订单不匹配"), true},
		{"未匹配", api(200, "0006", "未匹配到订单"), true},
		{"查无", api(200, "0006", "查无此交易"), true},
		{"english", api(200, "E12", "UTR No Match"), true},
		{"wrapped", fmt.Errorf("reconciler: %w", api(200, "0005", "not match")), true},
		{"signature wording", api(200, "0005", "签名不匹配"), false},
		{"non-2xx", api(502, "0005", "不匹配"), false},
		{"other provider", &providers.APIError{Provider: "jpglo", HTTP: 200, Code: "5001", Message: "not found"}, false},
		{"context", context.Canceled, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := fantian.NotMatched(c.err); got != c.want {
				t.Errorf("NotMatched = %v, want %v", got, c.want)
			}
		})
	}
}

func TestParseReply(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		ok     bool
	}{
		{"seed success", 200, "{\n \"error_code\": \"0000\"\n}", true},
		{"success 201", 201, `{"error_code":"0000"}`, true},
		{"success with msg", 200, `{"error_code":"0000","error_msg":""}`, true},
		{"seed error", 200, `{"error_code":"0004","error_msg":"验签错误!"}`, false},
		{"success code under http 500", 500, `{"error_code":"0000"}`, false},
		{"trailing garbage", 200, `{"error_code":"0000"} x`, false},
		{"array", 200, `[{"error_code":"0000"}]`, false},
		{"null code", 200, `{"error_code":null}`, false},
		{"duplicate code", 200, `{"error_code":"0004","error_code":"0000"}`, false},
		{"extra fields", 200, `{"error_code":"0000","data":{"x":[1,2]}}`, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := fantian.ParseReply(c.status, []byte(c.body)); (err == nil) != c.ok {
				t.Errorf("ParseReply = %v, want ok=%v", err, c.ok)
			}
		})
	}
}
