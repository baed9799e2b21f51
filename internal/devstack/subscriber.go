package devstack

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/payhook/payhook/pkg/events"
)

// Subscriber is devstack's demo merchant endpoint: it verifies each webhook's
// Standard Webhooks signature and counts events per provider, telling first
// deliveries from redeliveries by webhook-id.
type Subscriber struct {
	wh *standardwebhooks.Webhook

	mu        sync.Mutex
	seen      map[string]bool
	delivered map[string]int // unique events by provider
	repeats   int
	badSig    int
}

// NewSubscriber verifies with secret (whsec_...).
func NewSubscriber(secret string) (*Subscriber, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, err
	}
	return &Subscriber{wh: wh, seen: map[string]bool{}, delivered: map[string]int{}}, nil
}

// ServeHTTP accepts POST /hooks.
func (s *Subscriber) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "unreadable", http.StatusBadRequest)
		return
	}
	if err := s.wh.Verify(body, r.Header); err != nil {
		s.mu.Lock()
		s.badSig++
		s.mu.Unlock()
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var ce events.CloudEvent
	_ = json.Unmarshal(body, &ce) // conflict envelopes also carry data.provider
	id := r.Header.Get("webhook-id")
	s.mu.Lock()
	if s.seen[id] {
		s.repeats++
	} else {
		s.seen[id] = true
		s.delivered[ce.Data.Provider]++
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// Delivered returns unique events received per provider.
func (s *Subscriber) Delivered() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.delivered))
	for k, v := range s.delivered {
		out[k] = v
	}
	return out
}

// Counts returns redeliveries of an already-seen webhook-id and bad signatures.
func (s *Subscriber) Counts() (repeats, badSignatures int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.repeats, s.badSig
}
