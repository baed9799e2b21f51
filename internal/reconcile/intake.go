package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/pkg/events"
)

// Open opens a watch for req, announced at openedAt (source "subject" or
// "api"). It returns the watch id, and created false when a watch for the
// order was already open (the announcement is idempotent). req must be
// valid (Request.Validate). Errors wrap natsbus.ErrUnavailable.
func (r *Reconciler) Open(ctx context.Context, req Request, openedAt time.Time, source string) (string, bool, error) {
	w := &Watch{
		ID:       WatchID(req.Provider, req.Account, req.Kind, req.MerchantOrderID),
		Provider: req.Provider, Account: req.Account, Kind: req.Kind,
		MerchantOrderID: req.MerchantOrderID, ProviderOrderID: req.ProviderOrderID,
		Source: source, OpenedAt: openedAt.UTC(),
	}
	if req.ExpiresAt != nil {
		w.ExpiresAt = req.ExpiresAt.UTC()
	}
	if req.Amount != "" {
		m, err := req.money(r.accounts[req.Account])
		if err != nil {
			return "", false, fmt.Errorf("%w: amount", ErrInvalidRequest) // Validate lets none through
		}
		w.Amount = &m
	}
	r.schedules[w.Provider].open(w)
	if err := r.admit(ctx, w); err != nil {
		if errors.Is(err, ErrTooManyWatches) {
			r.m.rejected.WithLabelValues(source, RejectedAccountCap).Inc()
		}
		return "", false, err
	}
	err := putWatch(ctx, r.js, w, 0)
	switch {
	case errors.Is(err, errExists):
		return w.ID, false, nil
	case err != nil:
		return "", false, err
	}
	r.opened(w.Account)
	r.m.opened.WithLabelValues(w.Provider, source).Inc()
	r.record(w, StateOpen, "")
	r.poke()
	r.log.Info("watch opened", append(w.attrs(), "source", source)...)
	return w.ID, true, nil
}

// handleIntake turns one payhook.watch.{provider} message into a watch.
func (r *Reconciler) handleIntake(ctx context.Context, msg jetstream.Msg) {
	provider, _ := events.ParseWatchSubject(msg.Subject())
	req, err := ParseRequest(msg.Data())
	if err == nil {
		if req.Provider != "" && req.Provider != provider {
			err = fmt.Errorf("%w: provider %q in the body, %q in the subject", ErrInvalidRequest, truncate(req.Provider, 32), truncate(provider, 32))
		}
		req.Provider = provider
	}
	if err == nil {
		err = req.Validate(r.accounts, r.provs)
	}
	if err != nil {
		r.m.rejected.WithLabelValues("subject", "invalid").Inc()
		r.log.Warn("watch announcement refused", "subject", truncate(msg.Subject(), 64), "err", err)
		_ = msg.TermWithReason("invalid watch")
		return
	}
	openedAt := r.now()
	if md, err := msg.Metadata(); err == nil && md.Timestamp.Before(openedAt) {
		openedAt = md.Timestamp
	}
	// An announcement delivered late (the reconciler was down, or its intake
	// consumer is new on an old stream) is still chased in full: its first
	// poll is due at once, since callbacks are lost in outages too.
	octx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, _, err := r.Open(octx, req, openedAt, "subject"); errors.Is(err, ErrTooManyWatches) {
		r.log.Warn("watch announcement refused: the account's open watches are at reconciler.max_watches_per_account",
			"provider", provider, "account", req.Account, "order_id", req.MerchantOrderID)
		_ = msg.TermWithReason("account watch cap")
		return
	} else if err != nil {
		r.log.Warn("watch not opened; retrying", "provider", provider, "order_id", req.MerchantOrderID, "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	_ = msg.Ack()
}
