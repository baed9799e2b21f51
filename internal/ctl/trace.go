package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/reconcile"
	"github.com/payhook/payhook/internal/trace"
	"github.com/payhook/payhook/pkg/events"
)

// TraceResult is payhookctl trace's document.
type TraceResult struct {
	Provider        string                 `json:"provider"`
	Account         string                 `json:"account"`
	MerchantOrderID string                 `json:"merchant_order_id"`
	Raw             []TraceRaw             `json:"raw"`
	Events          []TraceEvent           `json:"events"`
	Deliveries      []Delivery             `json:"deliveries"`
	Watch           *reconcile.WatchRecord `json:"watch"`
}

// TraceRaw is one inbound request that carried one of the order's events,
// that verified as being about the order and was refused (verdict
// rejected, with its reason: too_old, future_timestamp, invalid_event), or
// that was refused before it verified and whose bytes claim the order
// (bad_signature, malformed, ...): Verified is false for those alone, as
// anyone can claim any order.
type TraceRaw struct {
	Time    time.Time `json:"time"`
	Verdict string    `json:"verdict"`
	Reason  string    `json:"reason,omitempty"`
	Status  int       `json:"status"`
	EventID string    `json:"event_id"`
	Stream  string    `json:"stream"`
	Seq     uint64    `json:"seq"`
	// Verified: the order id comes from bytes that verified under the
	// account's key; false when only unverified bytes claim it.
	Verified bool `json:"verified"`
}

// TraceEvent is one of the order's events as stored on PAYHOOK_EVENTS.
// Amount and ProviderFields come from the stored event: the callback as
// ingress decoded it (an mpurse body decrypted), its secrets and signature
// removed; absent when the event is past the stream's retention.
type TraceEvent struct {
	ID             string         `json:"id"`
	Kind           string         `json:"kind"`
	Status         string         `json:"status"`
	Origin         string         `json:"origin"`
	Time           time.Time      `json:"time"`
	Seq            uint64         `json:"seq"`
	Amount         *events.Money  `json:"amount,omitempty"`
	Reference      string         `json:"reference,omitempty"`
	ProviderFields map[string]any `json:"provider_fields,omitempty"`
}

// Delivery is the delivery of one event to one subscriber.
type Delivery struct {
	Subscriber   string         `json:"subscriber"`
	EventID      string         `json:"event_id"`
	Delivered    bool           `json:"delivered"`
	DeadLettered bool           `json:"dead_lettered"`
	Attempts     []TraceAttempt `json:"attempts"`
}

// TraceAttempt is one delivery attempt.
type TraceAttempt struct {
	Time       time.Time `json:"time"`
	Attempt    int       `json:"attempt"`
	HTTPStatus int       `json:"http_status,omitempty"`
	LatencyMS  float64   `json:"latency_ms"`
	Error      string    `json:"error,omitempty"`
	Outcome    string    `json:"outcome"`
}

func traceCommand(ctx context.Context, g *common, args []string) error {
	ctx, done, pos, err := g.start(ctx, g.flags("trace"), args, 3)
	if err != nil {
		return err
	}
	defer done()
	provider, account, order := pos[0], pos[1], pos[2]
	if !g.hasAccount(provider, account) {
		return usageErr(fmt.Sprintf("no account %q of provider %q in the config", account, provider))
	}
	res, err := Trace(ctx, g, provider, account, order)
	if err != nil {
		return err
	}
	return g.emit(res, func(w io.Writer) { printTrace(w, res) })
}

// Trace gathers what is known of one order: its index entries, the raw
// requests of each of its events, and its watch record. It is one read per
// source in the order the output shows them, kept together so that what a
// trace consults is visible in one place.
func Trace(ctx context.Context, g *common, provider, account, order string) (TraceResult, error) {
	res := TraceResult{Provider: provider, Account: account, MerchantOrderID: order,
		Raw: []TraceRaw{}, Events: []TraceEvent{}, Deliveries: []Delivery{}}
	entries, err := trace.Lookup(ctx, g.js, trace.OrderIndexKey(provider, account, order))
	if err != nil {
		return res, err
	}
	seenEvent := map[uint64]bool{}
	seenRaw := map[[2]any]bool{}
	byDelivery := map[[2]string]*Delivery{}
	for _, e := range entries {
		switch e.Type {
		case trace.TypeRaw:
			// A refusal of a request that verified (too_old, ...), or of
			// one whose unverified bytes claim the order: indexed under the
			// order, not under an event that was never stored.
			k := [2]any{e.RawStream, e.RawSeq}
			if seenRaw[k] {
				continue
			}
			seenRaw[k] = true
			res.Raw = append(res.Raw, TraceRaw{Time: e.At, Verdict: e.Verdict, Reason: e.Reason, Status: e.Status, EventID: e.EventID, Stream: e.RawStream, Seq: e.RawSeq,
				Verified: !e.Unverified})
		case trace.TypeEvent:
			if seenEvent[e.EventSeq] {
				continue
			}
			seenEvent[e.EventSeq] = true
			res.Events = append(res.Events, TraceEvent{ID: e.EventID, Kind: e.Kind, Status: e.EventStatus, Origin: e.Origin, Time: e.At, Seq: e.EventSeq})
		case trace.TypeAttempt:
			k := [2]string{e.Subscriber, e.EventID}
			d := byDelivery[k]
			if d == nil {
				d = &Delivery{Subscriber: e.Subscriber, EventID: e.EventID}
				byDelivery[k] = d
			}
			d.Attempts = append(d.Attempts, TraceAttempt{Time: e.At, Attempt: e.Attempt, HTTPStatus: e.HTTPStatus, LatencyMS: e.LatencyMS, Error: e.Error, Outcome: e.Outcome})
			d.Delivered = d.Delivered || e.Outcome == "delivered"
			d.DeadLettered = d.DeadLettered || e.Outcome == "dead_lettered"
		}
	}
	for _, d := range byDelivery {
		res.Deliveries = append(res.Deliveries, *d)
	}
	slices.SortFunc(res.Deliveries, func(a, b Delivery) int { return a.Attempts[0].Time.Compare(b.Attempts[0].Time) })
	var ids []string
	for _, e := range res.Events {
		if !slices.Contains(ids, e.ID) {
			ids = append(ids, e.ID)
		}
	}
	for _, id := range ids {
		raws, err := trace.Lookup(ctx, g.js, trace.EventIndexKey(id))
		if err != nil {
			return res, err
		}
		for _, r := range raws {
			k := [2]any{r.RawStream, r.RawSeq}
			if r.Type != trace.TypeRaw || seenRaw[k] {
				continue
			}
			seenRaw[k] = true
			res.Raw = append(res.Raw, TraceRaw{Time: r.At, Verdict: r.Verdict, Reason: r.Reason, Status: r.Status, EventID: r.EventID, Stream: r.RawStream, Seq: r.RawSeq,
				Verified: !r.Unverified})
		}
	}
	slices.SortFunc(res.Raw, func(a, b TraceRaw) int { return a.Time.Compare(b.Time) })
	if err := eventBodies(ctx, g.js, res.Events); err != nil {
		return res, err
	}

	// The watch: of the kinds the events name first, then every kind.
	kinds := []string{}
	for _, e := range res.Events {
		if !slices.Contains(kinds, e.Kind) {
			kinds = append(kinds, e.Kind)
		}
	}
	for _, k := range []events.Kind{events.KindPayin, events.KindPayout, events.KindAppeal} {
		if !slices.Contains(kinds, string(k)) {
			kinds = append(kinds, string(k))
		}
	}
	for _, k := range kinds {
		kind := events.Kind(k)
		if !kind.Valid() {
			continue
		}
		rec, err := g.watchRecord(ctx, watchRef{id: reconcile.WatchID(provider, account, kind, order), provider: provider, account: account})
		if errors.Is(err, reconcile.ErrWatchNotFound) {
			continue
		}
		if err != nil {
			return res, err
		}
		res.Watch = &rec
		break
	}
	return res, nil
}

// eventBodies fills in each event's amount and decoded provider fields
// from its message on PAYHOOK_EVENTS (one read by sequence each).
func eventBodies(ctx context.Context, js jetstream.JetStream, evs []TraceEvent) error {
	if len(evs) == 0 {
		return nil
	}
	st, err := js.Stream(ctx, natsbus.StreamEvents)
	if err != nil {
		return fmt.Errorf("%w: stream %s: %v", natsbus.ErrUnavailable, natsbus.StreamEvents, err)
	}
	for i := range evs {
		m, err := st.GetMsg(ctx, evs[i].Seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // past retention
		}
		if err != nil {
			return fmt.Errorf("%w: event %d: %v", natsbus.ErrUnavailable, evs[i].Seq, err)
		}
		var ce events.CloudEvent
		if json.Unmarshal(m.Data, &ce) != nil || ce.ID != evs[i].ID {
			continue
		}
		amt := ce.Data.Amount
		evs[i].Amount, evs[i].Reference, evs[i].ProviderFields = &amt, ce.Data.Reference, ce.Data.ProviderFields
	}
	return nil
}

func printTrace(w io.Writer, r TraceResult) {
	fmt.Fprintf(w, "ORDER %s/%s %s\n\n", r.Provider, r.Account, r.MerchantOrderID)
	fmt.Fprintln(w, "RAW REQUESTS\tVERDICT\tREASON\tSTATUS\tORDER ID\tEVENT")
	unverified := false
	for _, x := range r.Raw {
		order := "verified"
		if !x.Verified {
			order, unverified = "claimed, unverified", true
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\n", ts(x.Time), x.Verdict, dash(x.Reason), x.Status, order, dash(x.EventID))
	}
	switch {
	case len(r.Raw) == 0:
		fmt.Fprintln(w, "(none indexed: a request that did not verify and claims no readable order is on PAYHOOK_RAW_REJECTED, see payhookctl reprocess)")
	case unverified:
		fmt.Fprintln(w, "(claimed, unverified: the order id is in bytes that did not verify; anyone can send those. See payhookctl reprocess)")
	}
	fmt.Fprintln(w, "\nEVENTS\tKIND\tSTATUS\tORIGIN\tAMOUNT\tID")
	for _, e := range r.Events {
		amt := "-"
		if e.Amount != nil {
			amt = e.Amount.Value + " " + e.Amount.Currency
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", ts(e.Time), e.Kind, e.Status, e.Origin, amt, e.ID)
	}
	if len(r.Events) == 0 {
		fmt.Fprintln(w, "(none)")
	}
	fmt.Fprintln(w, "\nDELIVERIES\tSUBSCRIBER\tATTEMPT\tHTTP\tLATENCY\tOUTCOME\tERROR")
	for _, d := range r.Deliveries {
		for _, a := range d.Attempts {
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%.1fms\t%s\t%s\n", ts(a.Time), d.Subscriber, a.Attempt, a.HTTPStatus, a.LatencyMS, a.Outcome, dash(a.Error))
		}
	}
	if len(r.Deliveries) == 0 {
		fmt.Fprintln(w, "(none)")
	}
	fmt.Fprintln(w)
	if r.Watch == nil {
		fmt.Fprintln(w, "WATCH\t(none: the order was never announced, or its record is past reconciler.watch_retention)")
		return
	}
	fmt.Fprintln(w, "WATCH")
	printWatch(w, *r.Watch)
}
