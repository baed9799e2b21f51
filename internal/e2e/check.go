package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/payhook/payhook/internal/ingress"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providersim"
)

// Report is one check of the books. Lists hold event ids (or order ids
// where they say so), sorted.
type Report struct {
	Orders   int
	Expected int
	// On PAYHOOK_EVENTS, among events about the books' orders.
	Missing    []string // expected, not there
	Duplicated []string // there more than once
	Unexpected []string // there, not expected (a second event for one fact, an event that should not exist)
	BadIDs     []string // Nats-Msg-Id differs from the CloudEvent id
	// At the subscribers, by subscriber id (each against its filter).
	Undelivered         map[string][]string // expected, never delivered
	UnexpectedDelivered map[string][]string // delivered, not expected
	Redeliveries        map[string]int      // extra deliveries of a webhook-id (allowed, counted, unless ExactlyOnce)
	Redelivered         map[string][]string // the webhook-ids accepted more than once
	BadSignatures       int                 // webhooks that failed verification, all subscribers
	IDMismatches        int                 // webhook-id different from the CloudEvent id
	// ExactlyOnce: the books were made with ExactlyOnce, so any redelivery
	// unbalances them.
	ExactlyOnce bool
	// AckedMissing: order ids with a terminal callback the provider got
	// acknowledged whose event is not on PAYHOOK_EVENTS.
	AckedMissing []string
	// CorruptAcked: order ids whose corrupted callback was acknowledged.
	CorruptAcked []string
	// Refused is how many callback attempts ingress answered 4xx; RawRejected
	// how many PAYHOOK_RAW_REJECTED records were found for them; RawMissing
	// the order ids with fewer records than refusals; NoReason the order ids
	// with a rejected record without a reason.
	Refused     int
	RawRejected int
	RawMissing  []string
	NoReason    []string
	// Err is a failure to read a stream.
	Err error
}

// OK reports whether the books balance.
func (r Report) OK() bool {
	if r.Err != nil || len(r.Missing)+len(r.Duplicated)+len(r.Unexpected)+len(r.BadIDs)+len(r.AckedMissing)+
		len(r.CorruptAcked)+len(r.RawMissing)+len(r.NoReason)+r.BadSignatures+r.IDMismatches > 0 {
		return false
	}
	for _, ids := range r.Undelivered {
		if len(ids) > 0 {
			return false
		}
	}
	for _, ids := range r.UnexpectedDelivered {
		if len(ids) > 0 {
			return false
		}
	}
	return !r.ExactlyOnce || r.redeliveries() == 0
}

func (r Report) redeliveries() int {
	n := 0
	for _, v := range r.Redeliveries {
		n += v
	}
	return n
}

// String summarises the report, listing every problem.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d orders, %d expected events; %d callback attempts refused, %d rejected records on PAYHOOK_RAW_REJECTED",
		r.Orders, r.Expected, r.Refused, r.RawRejected)
	fmt.Fprintf(&b, "; %d redeliveries", r.redeliveries())
	if r.ExactlyOnce {
		b.WriteString(" (exactly once required)")
	}
	list := func(name string, ids []string) {
		if len(ids) > 0 {
			fmt.Fprintf(&b, "\n  %s (%d): %s", name, len(ids), strings.Join(ids, ", "))
		}
	}
	if r.Err != nil {
		fmt.Fprintf(&b, "\n  error: %v", r.Err)
	}
	list("missing on PAYHOOK_EVENTS", r.Missing)
	list("more than once on PAYHOOK_EVENTS", r.Duplicated)
	list("unexpected on PAYHOOK_EVENTS", r.Unexpected)
	list("Nats-Msg-Id differs from CloudEvent id", r.BadIDs)
	for _, sub := range sortedKeys(r.Undelivered) {
		list("not delivered to "+sub, r.Undelivered[sub])
	}
	for _, sub := range sortedKeys(r.UnexpectedDelivered) {
		list("unexpected deliveries to "+sub, r.UnexpectedDelivered[sub])
	}
	if r.ExactlyOnce {
		for _, sub := range sortedKeys(r.Redelivered) {
			list("redelivered to "+sub, r.Redelivered[sub])
		}
	}
	if r.BadSignatures > 0 || r.IDMismatches > 0 {
		fmt.Fprintf(&b, "\n  webhooks with bad signatures: %d, with webhook-id ≠ CloudEvent id: %d", r.BadSignatures, r.IDMismatches)
	}
	list("orders acknowledged to the provider without their event", r.AckedMissing)
	list("orders whose corrupted callback was acknowledged", r.CorruptAcked)
	list("orders with refused callbacks missing on PAYHOOK_RAW_REJECTED", r.RawMissing)
	list("orders with rejected records without a reason", r.NoReason)
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// envelope is what the checker reads of an event or conflict CloudEvent.
type envelope struct {
	ID   string `json:"id"`
	Data struct {
		Provider        string `json:"provider"`
		Account         string `json:"account"`
		Kind            string `json:"kind"`
		MerchantOrderID string `json:"merchant_order_id"`
	} `json:"data"`
}

func scopeKey(provider, account, kind, merchantOrderID string) string {
	return provider + "|" + account + "|" + kind + "|" + merchantOrderID
}

// Check reads PAYHOOK_EVENTS, PAYHOOK_RAW_REJECTED and the subscribers once and
// balances the books against them. Each subscriber must get exactly the
// expected events its filter matches.
func (b *Books) Check(ctx context.Context) Report {
	orders := b.Orders()
	exp := b.Expected()
	r := Report{Orders: len(orders), Undelivered: map[string][]string{}, UnexpectedDelivered: map[string][]string{},
		Redeliveries: map[string]int{}, Redelivered: map[string][]string{}, ExactlyOnce: b.exactlyOnce}
	for _, x := range exp {
		if !x.Optional {
			r.Expected++
		}
	}
	scope := map[string]bool{}
	for _, o := range orders {
		scope[scopeKey(o.Provider, o.Account, string(o.Kind), o.MerchantOrderID)] = true
	}
	onEvents, err := b.checkEvents(ctx, exp, scope, &r)
	if err != nil {
		r.Err = err
		return r
	}
	b.checkSubscribers(exp, scope, &r)
	checkAcks(orders, onEvents, &r)
	if err := b.checkRaw(ctx, orders, &r); err != nil {
		r.Err = err
	}
	sort.Strings(r.Missing)
	sort.Strings(r.Duplicated)
	sort.Strings(r.Unexpected)
	sort.Strings(r.BadIDs)
	return r
}

// checkEvents reads PAYHOOK_EVENTS and notes in r the expected events
// missing, the unexpected, the duplicated and those stored under another
// message id. It returns how often each in-scope event id is stored.
func (b *Books) checkEvents(ctx context.Context, exp map[string]Expectation, scope map[string]bool, r *Report) (map[string]int, error) {
	msgs, err := b.c.ReadStream(ctx, "PAYHOOK_EVENTS")
	if err != nil {
		return nil, err
	}
	onEvents := map[string]int{}
	for _, m := range msgs {
		var env envelope
		if err := json.Unmarshal(m.Data, &env); err != nil {
			continue
		}
		if !scope[scopeKey(env.Data.Provider, env.Data.Account, env.Data.Kind, env.Data.MerchantOrderID)] {
			continue
		}
		if m.MsgID != env.ID {
			r.BadIDs = append(r.BadIDs, env.ID)
		}
		onEvents[env.ID]++
	}
	for id, x := range exp {
		if onEvents[id] == 0 && !x.Optional {
			r.Missing = append(r.Missing, id)
		}
	}
	for id, n := range onEvents {
		if _, ok := exp[id]; !ok {
			r.Unexpected = append(r.Unexpected, id)
		}
		if n > 1 {
			r.Duplicated = append(r.Duplicated, id)
		}
	}
	return onEvents, nil
}

// checkSubscribers notes in r, per subscriber, the expected events its
// filter matches that it did not get, those it got unexpectedly, its
// redeliveries and the signatures and ids it refused.
func (b *Books) checkSubscribers(exp map[string]Expectation, scope map[string]bool, r *Report) {
	for i, s := range b.c.subs {
		if b.only != nil && !slices.Contains(b.only, s.ID) {
			continue
		}
		filter := b.c.Config.Subscribers[i].Filter
		st := s.Stats()
		r.BadSignatures += st.BadSignatures
		r.IDMismatches += st.IDMismatch
		counts := map[string]int{}
		for _, d := range s.Deliveries() {
			if scope[scopeKey(d.Provider, d.Account, d.Kind, d.MerchantOrderID)] {
				counts[d.WebhookID]++
			}
		}
		var undelivered, unexpected, redelivered []string
		for id, x := range exp {
			if counts[id] == 0 && !x.Optional && x.Matches(filter) {
				undelivered = append(undelivered, id)
			}
		}
		redeliv := 0
		for id, n := range counts {
			if x, ok := exp[id]; !ok || !x.Matches(filter) {
				unexpected = append(unexpected, id)
			}
			if n > 1 {
				redeliv += n - 1
				redelivered = append(redelivered, fmt.Sprintf("%s (%d times)", id, n))
			}
		}
		sort.Strings(undelivered)
		sort.Strings(unexpected)
		sort.Strings(redelivered)
		r.Undelivered[s.ID], r.UnexpectedDelivered[s.ID], r.Redeliveries[s.ID] = undelivered, unexpected, redeliv
		r.Redelivered[s.ID] = redelivered
	}
}

// checkAcks notes in r the callbacks payhook acknowledged without storing
// their event or although they did not verify: never acknowledge what is
// not stored; never acknowledge what does not verify.
func checkAcks(orders []providersim.Order, onEvents map[string]int, r *Report) {
	for _, o := range orders {
		for _, d := range o.Deliveries {
			if !d.Acked {
				continue
			}
			if d.Corrupt {
				r.CorruptAcked = append(r.CorruptAcked, o.ID)
				continue
			}
			if d.Status == providersim.Pending {
				continue // a PAYING after the final status is acknowledged as stale, not published
			}
			if onEvents[o.EventID(events.Status(d.Status))] == 0 {
				r.AckedMissing = append(r.AckedMissing, o.ID)
			}
		}
	}
	r.AckedMissing = slices.Compact(r.AckedMissing)
	r.CorruptAcked = slices.Compact(r.CorruptAcked)
}

// checkRaw matches every refused (4xx) callback attempt of the books'
// orders with a rejected record on PAYHOOK_RAW_REJECTED carrying a reason. A record
// belongs to an order when its path is the order's callback path and its
// body names the order (an encrypted body, providers.SimOpaque, as far as
// its provider can recover it).
func (b *Books) checkRaw(ctx context.Context, orders []providersim.Order, r *Report) error {
	refused := map[string]int{}
	providersIn := map[string]bool{}
	for _, o := range orders {
		for _, d := range o.Deliveries {
			for _, a := range d.Attempts {
				if a.HTTPStatus >= 400 && a.HTTPStatus < 500 {
					refused[o.ID]++
					r.Refused++
					providersIn[o.Provider] = true
				}
			}
		}
	}
	if len(refused) == 0 {
		return nil
	}
	var subjects []string
	for p := range providersIn {
		subjects = append(subjects, events.RawSubject(p, "rejected"))
	}
	sort.Strings(subjects)
	msgs, err := b.c.ReadStream(ctx, natsbus.StreamRawRejected, subjects...)
	if err != nil {
		return err
	}
	byPath := map[string][]providersim.Order{}
	for _, o := range orders {
		if refused[o.ID] > 0 {
			p := "/v1/callbacks/" + o.Provider + "/" + o.Account + "/" + string(o.Kind)
			byPath[p] = append(byPath[p], o)
		}
	}
	found := map[string]int{}
	noReason := map[string]bool{}
	for _, m := range msgs {
		rec, err := ingress.DecodeRawRecord(m.Header, m.Data)
		if err != nil {
			continue
		}
		cands := byPath[rec.Path]
		if len(cands) == 0 {
			continue
		}
		body := string(rec.Body)
		if op, ok := providers.Role[providers.SimOpaque](registry.All(), cands[0].Provider); ok {
			body = string(op.SimPlain(b.account(cands[0].Account), rec.Body))
		}
		for _, o := range cands {
			if strings.Contains(body, o.MerchantOrderID) {
				found[o.ID]++
				r.RawRejected++
				if rec.Reason == "" || rec.Verdict != "rejected" {
					noReason[o.ID] = true
				}
				break
			}
		}
	}
	for id, n := range refused {
		if found[id] < n {
			r.RawMissing = append(r.RawMissing, fmt.Sprintf("%s (%d refused, %d recorded)", id, n, found[id]))
		}
	}
	for id := range noReason {
		r.NoReason = append(r.NoReason, id)
	}
	sort.Strings(r.RawMissing)
	sort.Strings(r.NoReason)
	return nil
}
