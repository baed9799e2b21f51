package providersim

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/cashypro"
	"github.com/payhook/payhook/pkg/providers/fantian"
	"github.com/payhook/payhook/pkg/providers/jpglo"
	"github.com/payhook/payhook/pkg/providers/mpurse"
	"github.com/payhook/payhook/pkg/providers/mrnpay"
)

// Test accounts: the keys are the providers' published test keys (the provider packages' testdata/vectors.json).
var (
	accJpglo    = providers.Account{ID: "glo-in", Provider: jpglo.Name, Keys: providers.Keys{"merchant_id": "1", "secret": "9ce23be4-a31b-498f-b951-ad7e771c3d73"}, Currency: "INR"}
	accMrnpay   = providers.Account{ID: "mrn-cn", Provider: mrnpay.Name, Keys: providers.Keys{"merchant_id": "app-1", "secret": "s3cr3t-mrn"}, Currency: "CNY"}
	accMpurse   = providers.Account{ID: "mp-in", Provider: mpurse.Name, Keys: providers.Keys{"merchant_id": "Mct_test_10001_PartnerId", "aes_key": "mpurseKey16bytes", "aes_mode": "ecb"}, Currency: "INR"}
	accMpurseCB = providers.Account{ID: "mp-cbc", Provider: mpurse.Name, Keys: providers.Keys{"merchant_id": "Mct_cbc", "aes_key": "mpurse-aes-key-24-bytes!", "aes_mode": "cbc", "aes_iv": "0123456789abcdef"}, Currency: "INR"}
	accCashy    = providers.Account{ID: "cashy-id", Provider: cashypro.Name, Keys: providers.Keys{"merchant_id": "1002001", "secret": "cashy-secret"}, Currency: "IDR"}
	accFantian  = providers.Account{ID: "ft-in", Provider: fantian.Name, Keys: providers.Keys{"merchant_id": "PF0002", "secret": "fantian-secret"}, Currency: "INR"}
	allAccounts = []providers.Account{accJpglo, accMrnpay, accMpurse, accMpurseCB, accCashy, accFantian}
)

var inbound = map[string]providers.Inbound{
	jpglo.Name:    jpglo.New(),
	mrnpay.Name:   mrnpay.New(),
	mpurse.Name:   mpurse.New(),
	cashypro.Name: cashypro.New(),
}

// received is one request the fake ingress got.
type received struct {
	Provider, Account string
	Kind              events.Kind
	Body              []byte
	Event             events.Event // zero when rejected
	Err               error
}

// fakeIngress plays payhook's ingress: it verifies every callback with the
// provider package's Parse and answers with its Ack, or refuses.
type fakeIngress struct {
	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	accounts map[string]providers.Account
	got      []received
	// failNext makes the next n verified callbacks answer 503.
	failNext int
	// reply, when set, answers verified callbacks instead of the Ack.
	reply func(w http.ResponseWriter)
}

func newIngress(t testing.TB, accts ...providers.Account) *fakeIngress {
	t.Helper()
	in := &fakeIngress{t: t, accounts: map[string]providers.Account{}}
	for _, a := range accts {
		in.accounts[a.Provider+"/"+a.ID] = a
	}
	in.srv = httptest.NewServer(http.HandlerFunc(in.serve))
	t.Cleanup(in.srv.Close)
	return in
}

func (in *fakeIngress) serve(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v1/callbacks/"), "/")
	if len(parts) != 3 || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	rec := received{Provider: parts[0], Account: parts[1], Kind: events.Kind(parts[2]), Body: body}
	acct, ok := in.accounts[parts[0]+"/"+parts[1]]
	p := inbound[parts[0]]
	if !ok || p == nil {
		http.NotFound(w, r)
		return
	}
	ev, err := p.Parse(acct, providers.Request{Kind: rec.Kind, Header: r.Header, Body: body, RemoteAddr: r.RemoteAddr, ReceivedAt: time.Now()})
	rec.Event, rec.Err = ev, err
	in.mu.Lock()
	in.got = append(in.got, rec)
	fail := err == nil && in.failNext > 0
	if fail {
		in.failNext--
	}
	reply := in.reply
	in.mu.Unlock()
	switch {
	case err != nil:
		http.Error(w, string(providers.ReasonOf(err)), http.StatusBadRequest)
	case fail:
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	case reply != nil:
		reply(w)
	default:
		a := p.Ack(rec.Kind)
		w.Header().Set("Content-Type", a.ContentType)
		w.WriteHeader(a.Status)
		_, _ = w.Write(a.Body)
	}
}

func (in *fakeIngress) received() []received {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]received(nil), in.got...)
}

func (in *fakeIngress) set(f func(in *fakeIngress)) {
	in.mu.Lock()
	defer in.mu.Unlock()
	f(in)
}

// newSim starts a simulator posting to in, with its handler served, every
// account's BaseURL pointing at it; it is closed at cleanup.
func newSim(t testing.TB, in *fakeIngress, cfg Config) (*Sim, *httptest.Server, map[string]providers.Account) {
	t.Helper()
	cfg.IngressURL = in.srv.URL
	if cfg.Accounts == nil {
		cfg.Accounts = allAccounts
	}
	if cfg.TimeScale == 0 {
		cfg.TimeScale = 1e-6
	}
	if cfg.Seed == 0 {
		cfg.Seed = 42
	}
	sim := New(cfg)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(func() {
		sim.Close()
		srv.Close()
	})
	accts := map[string]providers.Account{}
	for _, a := range cfg.Accounts {
		a.BaseURL = BaseURL(srv.URL, a)
		accts[a.ID] = a
	}
	return sim, srv, accts
}

// eventually polls cond every 2 ms for up to 5 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// settled waits until the order's every delivery is acked or given up, and
// at least n deliveries exist.
func settled(t testing.TB, sim *Sim, id string, n int) Order {
	t.Helper()
	var o Order
	eventually(t, "order "+id+" settled", func() bool {
		var ok bool
		o, ok = sim.Order(id)
		if !ok || len(o.Deliveries) < n {
			return false
		}
		for _, d := range o.Deliveries {
			if !d.Acked && !d.GaveUp {
				return false
			}
		}
		return true
	})
	return o
}
