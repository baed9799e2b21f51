package bench

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Subscriber is the built-in webhook receiver for end-to-end latency: the
// dispatcher delivers every event to each of its paths (/s/{id}); for each
// delivery whose order id was Tracked it records now − the callback's due
// time. It answers 204 at once and does not check signatures (the
// dispatcher's own tests do): the benchmark measures payhook, not the
// receiver.
type Subscriber struct {
	due        sync.Map // order id → time.Time the callback was due
	mu         sync.Mutex
	hist       *Histogram
	delivered  atomic.Int64 // every delivery
	tracked    atomic.Int64 // deliveries of tracked order ids
	badPayload atomic.Int64
}

// NewSubscriber returns a receiver with an empty histogram.
func NewSubscriber() *Subscriber { return &Subscriber{hist: &Histogram{}} }

// Track remembers when the callback for orderID was due.
func (s *Subscriber) Track(orderID string, due time.Time) { s.due.Store(orderID, due) }

// Reset starts a new measurement: a fresh histogram, nothing tracked.
// It returns the previous histogram.
func (s *Subscriber) Reset() *Histogram {
	s.due.Clear()
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hist
	s.hist = &Histogram{}
	s.tracked.Store(0)
	return h
}

// Tracked is the number of deliveries of tracked ids since Reset.
func (s *Subscriber) Tracked() int64 { return s.tracked.Load() }

// Delivered is the number of deliveries since the start.
func (s *Subscriber) Delivered() int64 { return s.delivered.Load() }

// ServeHTTP receives one webhook.
func (s *Subscriber) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/s/") {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	s.delivered.Add(1)
	var env struct {
		Data struct {
			MerchantOrderID string `json:"merchant_order_id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Data.MerchantOrderID == "" {
		s.badPayload.Add(1)
	} else if v, ok := s.due.Load(env.Data.MerchantOrderID); ok {
		s.mu.Lock()
		h := s.hist
		s.mu.Unlock()
		h.Record(now.Sub(v.(time.Time)))
		s.tracked.Add(1)
	}
	w.WriteHeader(http.StatusNoContent)
}
