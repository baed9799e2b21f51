package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"time"
)

// sender posts generated callbacks to one target.
type sender struct {
	gen  *Generator
	acks map[string][]byte // provider/kind → expected reply body; nil: any 200
	cl   *Client
}

func newSender(base string, gen *Generator, acks map[string][]byte, conns int) (*sender, error) {
	cl, err := NewClient(base, conns, 30*time.Second)
	if err != nil {
		return nil, err
	}
	return &sender{gen: gen, acks: acks, cl: cl}, nil
}

// do returns the Do that sends the next generated callback; with sub set,
// each callback's due time is tracked for end-to-end latency.
func (s *sender) do(sub *Subscriber) Do {
	return func(ctx context.Context, _ int64, due time.Time) error {
		cb, err := s.gen.Next()
		if err != nil {
			return err
		}
		if sub != nil {
			sub.Track(cb.OrderID, due)
		}
		resp, err := s.cl.Post(ctx, cb.Path, cb.Header, cb.Body)
		if err != nil {
			return err
		}
		if resp.Status != http.StatusOK {
			return fmt.Errorf("%s/%s: HTTP %d", cb.Provider, cb.Kind, resp.Status)
		}
		if s.acks != nil && !bytes.Equal(resp.Body, s.acks[cb.Provider+"/"+string(cb.Kind)]) {
			return fmt.Errorf("%s/%s: reply is not the provider's ack", cb.Provider, cb.Kind)
		}
		return nil
	}
}
