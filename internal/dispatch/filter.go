package dispatch

import (
	"slices"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/pkg/events"
)

// FilterSubjects turns a subscriber filter into consumer filter subjects:
// the product of providers × kinds × statuses ("*" for an empty list; at most
// 5×3×4 = 60 subjects). Accounts are not in the subject and are filtered in
// code. An empty statuses list matches every status token, "conflict"
// included; a non-empty list gets conflict events when it names "conflict"
// or a terminal status (see statuses).
func FilterSubjects(f config.Filter) []string {
	if len(f.Providers) == 0 && len(f.Kinds) == 0 && len(f.Statuses) == 0 {
		return []string{natsbus.SubjectEvents}
	}
	or := func(l []string) []string {
		if len(l) == 0 {
			return []string{"*"}
		}
		return l
	}
	var out []string
	for _, p := range or(f.Providers) {
		for _, k := range or(f.Kinds) {
			for _, s := range or(statuses(f.Statuses)) {
				out = append(out, events.EventFilter(p, k, s))
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// statuses is the status tokens a filter's statuses list subscribes to. A
// conflict (a terminal status contradicted by the other one, e.g. a late
// success after a failure) concerns every subscriber that follows terminal
// statuses: a ledger listening for [succeeded, failed] must learn that a
// failed order was paid after all. So naming a terminal status adds
// "conflict".
func statuses(l []string) []string {
	if len(l) == 0 || slices.Contains(l, string(events.StatusConflict)) {
		return l
	}
	if slices.Contains(l, string(events.StatusSucceeded)) || slices.Contains(l, string(events.StatusFailed)) {
		return append(slices.Clone(l), string(events.StatusConflict))
	}
	return l
}

// Match reports whether an event on subject with data e passes filter f. The
// status is the subject's last token; conflict events match an empty
// statuses list or one naming "conflict" or a terminal status.
func Match(f config.Filter, subject string, e events.Event) bool {
	provider, kind, status, ok := events.ParseSubject(subject)
	if !ok {
		return false
	}
	in := func(l []string, v string) bool { return len(l) == 0 || slices.Contains(l, v) }
	return in(f.Providers, provider) && in(f.Kinds, string(kind)) && in(statuses(f.Statuses), string(status)) && in(f.Accounts, e.Account)
}
