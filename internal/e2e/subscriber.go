package e2e

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Mode is how a Subscriber answers webhooks; switch it at runtime with SetMode.
type Mode struct {
	// Status is the HTTP status answered after verifying (default 204). A
	// non-2xx status is a refusal: nothing is recorded as delivered.
	Status int
	// Delay is slept before answering (the request's context cancels it), to
	// push a delivery past the dispatcher's timeout.
	Delay time.Duration
	// Hangup closes the connection without any answer.
	Hangup bool
}

// Modes a test switches between.
var (
	// Up answers 204 at once.
	Up = Mode{}
	// Down answers 503 (an outage the dispatcher must ride out).
	Down = Mode{Status: http.StatusServiceUnavailable}
)

// Slow answers 204 after d: with d past the subscriber's configured timeout
// every delivery times out at the dispatcher.
func Slow(d time.Duration) Mode { return Mode{Delay: d} }

// Delivery is one webhook request the Subscriber took (answered 2xx after a
// valid signature).
type Delivery struct {
	WebhookID  string
	ReceivedAt time.Time
	Header     http.Header
	Body       []byte
	// EventID, Type, Provider, Account, Kind, Status, MerchantOrderID are read
	// from the CloudEvent body (Status is the data's status; for a conflict
	// envelope Type ends in ".conflict").
	EventID, Type                   string
	Provider, Account, Kind, Status string
	MerchantOrderID, Origin         string
	Answered                        int // HTTP status answered
	Late                            bool
}

// Subscriber is an in-process merchant endpoint: it verifies each webhook
// with the Standard Webhooks library under its secret, records deliveries by
// webhook-id, and answers according to its Mode.
type Subscriber struct {
	// ID is the subscriber's id in the config; Secret its whsec_ secret.
	ID, Secret string
	// URL is where the dispatcher posts (…/hooks).
	URL string

	wh  *standardwebhooks.Webhook
	srv *httptest.Server

	mu         sync.Mutex
	mode       Mode
	deliveries []Delivery
	byID       map[string]int // webhook-id → 2xx answers
	requests   int
	refused    int
	badSig     int
	mismatched int // webhook-id different from the CloudEvent id
}

// NewSubscriber starts a subscriber on a free 127.0.0.1 port; Close stops it.
func NewSubscriber(id, secret string) (*Subscriber, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, err
	}
	s := &Subscriber{ID: id, Secret: secret, wh: wh, byID: map[string]int{}}
	s.srv = httptest.NewUnstartedServer(s)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.srv.Listener = ln
	s.srv.Start()
	s.URL = s.srv.URL + "/hooks"
	return s, nil
}

// Close stops the server.
func (s *Subscriber) Close() { s.srv.CloseClientConnections(); s.srv.Close() }

// SetMode switches how the following requests are answered.
func (s *Subscriber) SetMode(m Mode) {
	s.mu.Lock()
	s.mode = m
	s.mu.Unlock()
}

// ServeHTTP verifies and records one webhook.
func (s *Subscriber) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	m := s.mode
	s.requests++
	s.mu.Unlock()
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "unreadable", http.StatusBadRequest)
		return
	}
	if m.Hangup {
		s.count(&s.refused)
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	if m.Delay > 0 {
		select {
		case <-time.After(m.Delay):
		case <-r.Context().Done():
		}
	}
	if err := s.wh.Verify(body, r.Header); err != nil {
		s.count(&s.badSig)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	status := m.Status
	if status == 0 {
		status = http.StatusNoContent
	}
	if status < 200 || status > 299 {
		s.count(&s.refused)
		http.Error(w, http.StatusText(status), status)
		return
	}
	d := Delivery{WebhookID: r.Header.Get("webhook-id"), ReceivedAt: time.Now(), Header: r.Header.Clone(), Body: body,
		Answered: status, Late: r.Context().Err() != nil}
	var ce struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data struct {
			Provider        string `json:"provider"`
			Account         string `json:"account"`
			Kind            string `json:"kind"`
			Status          string `json:"status"`
			MerchantOrderID string `json:"merchant_order_id"`
			Origin          string `json:"origin"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &ce)
	d.EventID, d.Type = ce.ID, ce.Type
	d.Provider, d.Account, d.Kind, d.Status = ce.Data.Provider, ce.Data.Account, ce.Data.Kind, ce.Data.Status
	d.MerchantOrderID, d.Origin = ce.Data.MerchantOrderID, ce.Data.Origin
	s.mu.Lock()
	s.deliveries = append(s.deliveries, d)
	s.byID[d.WebhookID]++
	if d.EventID != d.WebhookID {
		s.mismatched++
	}
	s.mu.Unlock()
	w.WriteHeader(status)
}

func (s *Subscriber) count(n *int) {
	s.mu.Lock()
	*n++
	s.mu.Unlock()
}

// Deliveries returns every accepted delivery, in arrival order (redeliveries included).
func (s *Subscriber) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Delivery(nil), s.deliveries...)
}

// Counts returns, per webhook-id, how many times it was accepted (1 =
// delivered once; more = redelivered, allowed by at-least-once).
func (s *Subscriber) Counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.byID))
	for k, v := range s.byID {
		out[k] = v
	}
	return out
}

// Count is how many times webhook-id id was accepted.
func (s *Subscriber) Count(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byID[id]
}

// SubscriberStats are a Subscriber's totals.
type SubscriberStats struct {
	// Requests is every request received; Accepted those answered 2xx with a
	// valid signature; Unique the distinct webhook-ids among them.
	Requests, Accepted, Unique int
	// Redeliveries = Accepted - Unique.
	Redeliveries int
	// Refused requests answered non-2xx or hung up on by Mode; BadSignatures
	// failed Standard Webhooks verification; IDMismatch had a webhook-id
	// different from the CloudEvent's id.
	Refused, BadSignatures, IDMismatch int
}

// Stats returns the totals so far.
func (s *Subscriber) Stats() SubscriberStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := SubscriberStats{Requests: s.requests, Accepted: len(s.deliveries), Unique: len(s.byID),
		Refused: s.refused, BadSignatures: s.badSig, IDMismatch: s.mismatched}
	st.Redeliveries = st.Accepted - st.Unique
	return st
}

// Redelivered returns the webhook-ids accepted more than once, sorted.
func (s *Subscriber) Redelivered() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id, n := range s.byID {
		if n > 1 {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}
