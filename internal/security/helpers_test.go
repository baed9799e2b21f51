package security_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/ingress"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/internal/testenv"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/cashypro"
	"github.com/payhook/payhook/pkg/providers/jpglo"
	"github.com/payhook/payhook/pkg/providers/mpurse"
)

// jpgloPayin is a jpglo payment callback signed under secret with
// jpglo.Sign; ext is the user_ext JSON string (payer details).
func jpgloPayin(tb testing.TB, secret, orderID, ext string) (body []byte, sign string) {
	tb.Helper()
	f := map[string]any{
		"order_no": "2202171238509999", "mch_order_no": orderID, "status": "success",
		"apply_amount": json.Number("1000000"), "real_amount": json.Number("1000000"),
		"pay_type": "upi", "sub_pay_type": nil, "remark": "", "user_ext": ext,
		"timestamp": json.Number(strconv.FormatInt(time.Now().Unix(), 10)), // fresh: within the account's max_age
	}
	f["sign"] = jpglo.Sign(f, secret)
	b, err := json.Marshal(f)
	if err != nil {
		tb.Fatal(err)
	}
	return b, f["sign"].(string)
}

// mpursePayin is an mpurse callback body (base64 AES) for acct.
func mpursePayin(tb testing.TB, acct providers.Account, orderID, payerVA, rrn string) []byte {
	tb.Helper()
	plain, _ := json.Marshal(map[string]string{
		"mpQueryId": orderID, "payerVA": payerVA, "payerAmount": "120.00", "txnStatus": "TRANSACTION_SUCCESS",
		"payChannel": "UPI", "txnCompletionDate": "20261123100000", "partnerId": acct.Key("merchant_id"),
		"bankRRN": rrn, "receiverVA": "mpu.sec.receiver@icici", "errorMsg": "transaction success",
	})
	ct, err := mpurse.Encrypt(acct, plain)
	if err != nil {
		tb.Fatal(err)
	}
	return []byte(ct)
}

// cashyproPayin is a cashypro notification and its Sign header (cashypro.Sign).
func cashyproPayin(tb testing.TB, acct providers.Account, orderID, status string) (body []byte, sign string) {
	tb.Helper()
	// completionTime is signed, so it must be within the account's max_age: now, in WIB.
	now := time.Now().In(time.FixedZone("WIB", 7*3600)).Format("2006-01-02 15:04:05")
	body = []byte(`{"amount":20000.00,"completionTime":"` + now + `","fee":2500.0000,"mchOrderNo":"` + orderID +
		`","merchantId":"` + acct.Key("merchant_id") + `","nonceStr":"1733116026894","orderNo":"PAYIN` + orderID +
		`","orderStatus":"` + status + `","payCode":"OR.GPNQR","payType":"41","payUrl":"https://payurl.example/x"}`)
	sign, err := cashypro.Sign(body, acct.Key("secret"), acct.Key("sign_rule"))
	if err != nil {
		tb.Fatal(err)
	}
	return body, sign
}

type resp struct {
	status int
	body   string
}

func do(tb testing.TB, method, url string, body []byte, hdr ...string) resp {
	tb.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{r.StatusCode, string(b)}
}

func reasonOf(r resp) string {
	var e struct{ Error string }
	_ = json.Unmarshal([]byte(r.body), &e)
	return e.Error
}

// ingressOnly is a bare ingress (ingress.New) on a real embedded NATS, for
// the allowlist and body-limit tests.
type ingressOnly struct {
	url string
	js  jetstream.JetStream
}

func startIngress(t *testing.T, cfg *config.Config) *ingressOnly {
	t.Helper()
	ns := testenv.StartNATS(t)
	js, err := jetstream.New(ns.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := natsbus.EnsureStreams(context.Background(), js, cfg.NATS); err != nil {
		t.Fatal(err)
	}
	srv, err := ingress.New(ingress.Deps{Config: cfg, JS: js, Providers: registry.Inbound()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx, ln, 5*time.Second); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &ingressOnly{url: "http://" + ln.Addr().String(), js: js}
}

// rawRecords reads every record on PAYHOOK_RAW and PAYHOOK_RAW_REJECTED.
func rawRecords(t *testing.T, js jetstream.JetStream, want int) []ingress.RawRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []ingress.RawRecord
	testenv.Eventually(t, 10*time.Second, func() bool {
		n := uint64(0)
		for _, name := range natsbus.RawStreams {
			s, err := js.Stream(ctx, name)
			if err != nil {
				return false
			}
			info, err := s.Info(ctx)
			if err != nil {
				return false
			}
			n += info.State.Msgs
		}
		return n >= uint64(want)
	}, "raw records stored")
	for _, name := range natsbus.RawStreams {
		cons, err := js.OrderedConsumer(ctx, name, jetstream.OrderedConsumerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		for len(out) < want {
			batch, err := cons.Fetch(500, jetstream.FetchMaxWait(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for m := range batch.Messages() {
				n++
				rec, err := ingress.DecodeRawRecord(m.Headers(), m.Data())
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, rec)
			}
			if n == 0 {
				break
			}
		}
	}
	return out
}

func hasHeader(h map[string][]string, name string) bool {
	for k := range h {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}
