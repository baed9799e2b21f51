package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/pkg/events"
)

// The persisted schedule lives in JetStream (docs/reconciler.md "Why
// JetStream"):
//
//   - Stream PAYHOOK_RECONCILE, subjects payhook.reconcile.{provider}.{account}.{watch
//     id}, WorkQueuePolicy, at most one message per subject (DiscardOld):
//     exactly one message per open watch, holding the watch and its place in
//     the schedule. An acknowledged (or terminated) message is gone: the watch
//     is closed.
//   - One durable pull consumer, shared by every replica. JetStream hands each
//     message to one replica at a time; a message that is not due yet is
//     negatively acknowledged with the delay until it is (NakWithDelay), so the
//     server keeps the timer, across reconciler restarts.
//   - A state change (next step, retrigger sent, error backoff) publishes the
//     new state on the same subject with Nats-Expected-Last-Subject-Sequence =
//     the sequence of the message being handled. The stream's one-per-subject
//     limit drops the old message in the same step. If anyone else changed or
//     closed the watch meanwhile, the publish fails and the stale copy is
//     dropped: no watch is ever polled by two copies.
const (
	StreamReconcile  = "PAYHOOK_RECONCILE"
	SubjectReconcile = events.ReconcileSubjects

	// ConsumerSchedule is the durable consumer shared by replicas.
	ConsumerSchedule = "payhook-reconciler"
	// ConsumerIntake is the durable consumer of PAYHOOK_WATCH.
	ConsumerIntake = "payhook-reconciler-intake"

	// Header names on watch messages.
	headerOpenedAt = "Payhook-Opened-At"
)

// QueueConfig is the stream for cfg: file storage, cfg.Replicas, work-queue
// retention. No MaxAge: a watch ends by being acknowledged, never by age
// (its own schedule bounds it). MaxMsgsPerSubject 1 with DiscardOld makes a
// state change replace the previous one atomically.
func QueueConfig(cfg config.NATS) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              StreamReconcile,
		Subjects:          []string{SubjectReconcile},
		Description:       "payhook reconciler: one message per open watch, holding its schedule",
		Storage:           jetstream.FileStorage,
		Replicas:          max(cfg.Replicas, 1),
		Retention:         jetstream.WorkQueuePolicy,
		Discard:           jetstream.DiscardOld,
		MaxMsgsPerSubject: 1,
		MaxMsgSize:        MaxRequestBytes * 4,
		Duplicates:        2 * time.Minute,
	}
}

// ConsumerConfig is the shared durable consumer. Why each number:
//   - AckWait (default 1m) exceeds the poll timeout (20s) plus the rate-limit
//     wait (≤ 1s) and the publish timeout (5s), and InProgress is sent before
//     each query: a message is redelivered only when its replica died.
//   - MaxDeliver -1: a watch is redelivered once per step (and once more per
//     state change); a finite limit would silently drop long schedules.
//   - MaxAckPending -1: a message waiting out its NakWithDelay still counts as
//     pending, so every open watch is pending almost all the time; the
//     default 1000 would stall delivery at 1000 open watches.
//   - No BackOff: it applies to AckWait expiries, not to explicit delays, and
//     every delay here is explicit.
func ConsumerConfig(ackWait time.Duration) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       ConsumerSchedule,
		Description:   "payhook reconciler: watches due for a poll",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1,
		MaxAckPending: -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: SubjectReconcile,
	}
}

// IntakeConfig is the durable consumer of PAYHOOK_WATCH: every
// announcement is turned into a watch (or refused) once, by one replica.
func IntakeConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       ConsumerIntake,
		Description:   "payhook reconciler: order announcements to watch",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    -1,
		MaxAckPending: 1000,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: natsbus.SubjectWatch,
	}
}

// EnsureQueue creates or updates PAYHOOK_RECONCILE (natsbus.EnsureStreams
// creates the others, including PAYHOOK_WATCH, which must exist first).
func EnsureQueue(ctx context.Context, js jetstream.JetStream, cfg config.NATS) (jetstream.Stream, error) {
	s, err := js.CreateOrUpdateStream(ctx, QueueConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("%w: stream %s: %v", natsbus.ErrUnavailable, StreamReconcile, err)
	}
	return s, nil
}

// errSuperseded reports that a watch's subject no longer holds the message
// being handled: someone closed or changed the watch meanwhile.
var errSuperseded = errors.New("watch superseded")

// errExists reports that a watch is already open for the order.
var errExists = errors.New("watch already open")

func isWrongLastSeq(err error) bool {
	var ae *jetstream.APIError
	// Replicated streams answer a failed compare-and-set with the "constant" code.
	return errors.As(err, &ae) && (ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// putWatch publishes w on its subject, expecting the subject's last
// sequence to be lastSeq (0: no open watch). It returns errExists (lastSeq
// 0) or errSuperseded when that expectation fails, and an error wrapping
// natsbus.ErrUnavailable when JetStream did not store it.
func putWatch(ctx context.Context, js jetstream.JetStream, w *Watch, lastSeq uint64) error {
	b, err := encodeWatch(w)
	if err != nil {
		return err
	}
	if !js.Conn().IsConnected() {
		return fmt.Errorf("%w: not connected", natsbus.ErrUnavailable)
	}
	msg := &nats.Msg{Subject: w.Subject(), Data: b, Header: nats.Header{}}
	msg.Header.Set(headerOpenedAt, w.OpenedAt.UTC().Format(time.RFC3339Nano))
	_, err = js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(lastSeq), jetstream.WithExpectStream(StreamReconcile))
	switch {
	case err == nil:
		return nil
	case isWrongLastSeq(err) && lastSeq == 0:
		return errExists
	case isWrongLastSeq(err):
		return errSuperseded
	default:
		return fmt.Errorf("%w: publish watch: %v", natsbus.ErrUnavailable, err)
	}
}
