package events

import "strings"

// Subjects on the bus (docs/interfaces.md "Streams and subjects"). Every
// payhook.events, payhook.raw, payhook.watch, payhook.dlq, payhook.replay,
// payhook.trace, payhook.reconcile and payhook.dispatch subject is built here, and every token read back from one is parsed
// here: the strings are a contract with every reader of the bus, spelled
// once.

// Any matches any one token of a subject filter.
const Any = "*"

// Filters of whole subject spaces, as streams and consumers name them.
const (
	EventSubjects       = "payhook.events.>"       // PAYHOOK_EVENTS
	RawSubjects         = "payhook.raw.>"          // PAYHOOK_RAW and PAYHOOK_RAW_REJECTED together
	RawRejectedSubjects = "payhook.raw.*.rejected" // PAYHOOK_RAW_REJECTED
	DLQSubjects         = "payhook.dlq.>"          // PAYHOOK_DLQ
	WatchSubjects       = "payhook.watch.>"        // PAYHOOK_WATCH
	TraceSubjects       = "payhook.trace.*"        // PAYHOOK_TRACE
	ReplaySubjects      = "payhook.replay.>"       // PAYHOOK_REPLAY (the dispatcher's)
	ReconcileSubjects   = "payhook.reconcile.>"    // PAYHOOK_RECONCILE (the reconciler's)
	// DispatchRetrySubjects is what every dispatcher replica listens on for
	// retry-now requests (core NATS, not a stream).
	DispatchRetrySubjects = "payhook.dispatch.retry.*"
)

const (
	eventPrefix     = "payhook.events."
	rawPrefix       = "payhook.raw."
	dlqPrefix       = "payhook.dlq."
	watchPrefix     = "payhook.watch."
	tracePrefix     = "payhook.trace."
	replayPrefix    = "payhook.replay."
	reconcilePrefix = "payhook.reconcile."
	retryPrefix     = "payhook.dispatch.retry."
	// DispatchReplyPrefix starts the reply subject of a retry-now request:
	// the dispatcher's NATS user may publish and subscribe under
	// payhook.dispatch.> only (deploy/nats/auth.conf).
	DispatchReplyPrefix = "payhook.dispatch.reply."
)

// Subject builds payhook.events.{provider}.{kind}.{status}.
func Subject(provider string, kind Kind, status Status) string {
	return eventPrefix + provider + "." + string(kind) + "." + string(status)
}

// EventFilter is the filter of the events of provider, kind and status,
// each Any (or "") for every one: payhook.events.{provider}.{kind}.{status}.
func EventFilter(provider, kind, status string) string {
	return eventPrefix + orAny(provider) + "." + orAny(kind) + "." + orAny(status)
}

// ParseSubject reads provider, kind and status back from an event subject
// payhook.events.{provider}.{kind}.{status}. ok is false for any other
// subject; the tokens are not checked against the known kinds and statuses.
func ParseSubject(subject string) (provider string, kind Kind, status Status, ok bool) {
	rest, found := strings.CutPrefix(subject, eventPrefix)
	if !found {
		return "", "", "", false
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", "", false
	}
	return parts[0], Kind(parts[1]), Status(parts[2]), true
}

// RawSubject is payhook.raw.{provider}.{result}: the raw record of a
// request to provider ("unknown" when none resolved) with that result (its
// verdict). Either may be Any in a filter.
func RawSubject(provider, result string) string { return rawPrefix + provider + "." + result }

// DLQSubject is payhook.dlq.{subscriber}: the dead letters of subscriber.
func DLQSubject(subscriber string) string { return dlqPrefix + subscriber }

// WatchSubject is payhook.watch.{provider}: where internal services announce
// an order of provider for the reconciler to chase.
func WatchSubject(provider string) string { return watchPrefix + provider }

// ParseWatchSubject returns the provider of a payhook.watch.{provider}
// subject: everything after the prefix, which the caller checks against its
// providers. ok is false for a subject outside payhook.watch.
func ParseWatchSubject(subject string) (provider string, ok bool) {
	return strings.CutPrefix(subject, watchPrefix)
}

// TraceSubject is payhook.trace.{key}: the index entries of one order or
// event, key as the trace index hashes it.
func TraceSubject(key string) string { return tracePrefix + key }

// ReplaySubject is payhook.replay.{subscriber}: dead letters re-published
// for subscriber to receive again.
func ReplaySubject(subscriber string) string { return replayPrefix + subscriber }

// DispatchRetrySubject is payhook.dispatch.retry.{subscriber}: a retry-now
// request for subscriber, to every dispatcher replica.
func DispatchRetrySubject(subscriber string) string { return retryPrefix + subscriber }

// ParseDispatchRetrySubject returns the subscriber of a
// payhook.dispatch.retry.{subscriber} subject; ok is false for any other.
func ParseDispatchRetrySubject(subject string) (subscriber string, ok bool) {
	return strings.CutPrefix(subject, retryPrefix)
}

// ReconcileSubject is payhook.reconcile.{provider}.{account}.{watch id}:
// where the reconciler keeps one open watch. A watch id of Any makes the
// filter of every watch of the account.
func ReconcileSubject(provider, account, watchID string) string {
	return reconcilePrefix + provider + "." + account + "." + watchID
}

// LegacyReconcileSubject is payhook.reconcile.{provider}.{watch id}, where
// a watch was kept before the account was part of the subject.
func LegacyReconcileSubject(provider, watchID string) string {
	return reconcilePrefix + provider + "." + watchID
}

func orAny(token string) string {
	if token == "" {
		return Any
	}
	return token
}
