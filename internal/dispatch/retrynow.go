package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/pkg/events"
)

// Retry now: an operator asks that the events of a subscriber waiting in
// backoff be attempted now rather than when their delay ends. Such an event
// is known only to the replica that attempted it last: that replica Nak'd
// it with a delay and remembers its last delivery (orderState.retryMsg). A
// plain Nak on the same ack subject makes JetStream redeliver it at once,
// and the redelivery is an attempt like any other (it counts toward
// max_attempts, and later events of its order still wait behind it).
//
// The request reaches every replica as a core NATS message on
// RetrySubject(subscriber); each replica that serves the subscriber
// answers on the request's reply subject with the events it made due.
// An event whose last attempt was made by a replica that has stopped since
// is not known to any running one: it is attempted when its delay ends.

// RetrySubject is the core NATS subject on which a retry-now request for
// subscriber id reaches every dispatcher replica.
func RetrySubject(id string) string { return events.DispatchRetrySubject(id) }

// RetryRequest is the body of POST /v1/subscribers/{id}/retry and of the
// message on RetrySubject: the events to attempt now, by id, or All.
type RetryRequest struct {
	EventIDs []string `json:"event_ids,omitempty"`
	All      bool     `json:"all,omitempty"`
	DryRun   bool     `json:"dry_run,omitempty"`
}

// RetryResult is what a retry-now request did.
type RetryResult struct {
	Subscriber string `json:"subscriber"`
	DryRun     bool   `json:"dry_run"`
	// Retried are the event ids made due now (with DryRun: that would be),
	// sorted.
	Retried []string `json:"retried"`
	// Replicas is how many dispatcher replicas serving the subscriber
	// answered.
	Replicas int `json:"replicas"`
}

// retryReply is one replica's answer.
type retryReply struct {
	Replica string   `json:"replica"`
	Retried []string `json:"retried"`
}

// ErrNoReplicaAnswered is a retry-now request no replica answered within
// the gather time. The replica that sends the request serves the
// subscriber itself, so at least its own answer is due: none means the
// request or the answers do not pass through NATS (the dispatcher's NATS
// user lacks publish or subscribe on payhook.dispatch.>, which NATS
// reports only asynchronously, or the connection is down). It is of the
// natsbus.ErrUnavailable class.
var ErrNoReplicaAnswered = fmt.Errorf("%w: no dispatcher replica answered the retry-now request, not even the one sending it", natsbus.ErrUnavailable)

// errBadRetry is a retry request naming neither events nor all.
var errBadRetry = errors.New("name events (event_ids) or all, not both")

// RetryNow asks every replica serving subscriber id to attempt now the
// events in backoff that req names, and gathers their answers for the
// retry gather time (WithRetryGather). It returns ErrNoReplicaAnswered
// when no answer came, not a result with no replicas.
func (d *Dispatcher) RetryNow(ctx context.Context, id string, req RetryRequest) (RetryResult, error) {
	res := RetryResult{Subscriber: id, DryRun: req.DryRun, Retried: []string{}}
	if d.roster().byID[id] == nil {
		return res, fmt.Errorf("%w: %q", ErrUnknownSubscriber, id)
	}
	if req.All == (len(req.EventIDs) > 0) {
		return res, errBadRetry
	}
	nc := d.js.Conn()
	reply := events.DispatchReplyPrefix + nuid.Next()
	answers, err := nc.SubscribeSync(reply)
	if err != nil {
		return res, fmt.Errorf("%w: retry: %v", natsbus.ErrUnavailable, err)
	}
	defer func() { _ = answers.Unsubscribe() }()
	body, err := json.Marshal(req)
	if err != nil {
		return res, err
	}
	if err := nc.PublishMsg(&nats.Msg{Subject: RetrySubject(id), Reply: reply, Data: body}); err != nil {
		return res, fmt.Errorf("%w: retry: %v", natsbus.ErrUnavailable, err)
	}
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := nc.FlushWithContext(fctx); err != nil {
		return res, fmt.Errorf("%w: retry: %v", natsbus.ErrUnavailable, err)
	}
	// Replicas answer as soon as they have looked; how many there are is
	// not known here, so every answer within the gather time counts.
	end := time.Now().Add(d.o.retryGather)
	for {
		wait := time.Until(end)
		if wait <= 0 {
			break
		}
		m, err := answers.NextMsg(wait)
		if err != nil {
			break // timeout: the gather time is over
		}
		var a retryReply
		if json.Unmarshal(m.Data, &a) != nil {
			continue
		}
		res.Replicas++
		res.Retried = append(res.Retried, a.Retried...)
	}
	if res.Replicas == 0 {
		return res, ErrNoReplicaAnswered
	}
	slices.Sort(res.Retried)
	res.Retried = slices.Compact(res.Retried)
	return res, nil
}

// serveRetries answers retry-now requests until ctx ends.
func (d *Dispatcher) serveRetries(ctx context.Context) {
	nc := d.js.Conn()
	replica, _ := os.Hostname()
	sub, err := nc.Subscribe(events.DispatchRetrySubjects, func(m *nats.Msg) {
		id, _ := events.ParseDispatchRetrySubject(m.Subject)
		w := d.roster().byID[id]
		if w == nil || m.Reply == "" {
			return // not served here: another replica answers
		}
		var req RetryRequest
		if err := json.Unmarshal(m.Data, &req); err != nil {
			return
		}
		var only map[string]bool
		if !req.All {
			only = map[string]bool{}
			for _, id := range req.EventIDs {
				only[id] = true
			}
		}
		ids := w.retryNow(nc, only, req.DryRun)
		if len(ids) > 0 && !req.DryRun {
			w.log.Info("retry now: events in backoff made due", "events", len(ids))
		}
		b, _ := json.Marshal(retryReply{Replica: replica, Retried: ids})
		_ = m.Respond(b)
	})
	if err != nil {
		d.log.Warn("retry-now requests not served", "err", err)
		return
	}
	<-ctx.Done()
	_ = sub.Unsubscribe()
}

// retryNow makes due the events of this worker waiting in JetStream for a
// retry whose id is in only (every one when only is nil), and returns their
// ids; with dry it only returns them.
func (w *worker) retryNow(nc *nats.Conn, only map[string]bool, dry bool) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	ids := []string{}
	for _, st := range w.orders {
		if st.busy || st.retrySeq == 0 || st.retryMsg == nil || (only != nil && !only[st.retryID]) {
			continue
		}
		ids = append(ids, st.retryID)
		if dry {
			continue
		}
		// The jetstream.Msg refuses a second reply, so the Nak goes to its
		// ack subject directly: "-NAK" without a delay queues the message
		// for redelivery now.
		if err := nc.Publish(st.retryMsg.Reply(), []byte("-NAK")); err != nil {
			w.log.Warn("retry now: nak failed; the event keeps its delay", "event_id", st.retryID, "err", err)
			continue
		}
		st.retryDue = time.Now()
		st.retryMsg = nil
	}
	return ids
}
