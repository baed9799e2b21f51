package events_test

import (
	"testing"

	"github.com/payhook/payhook/pkg/events"
)

// TestSubjects pins every subject builder to the strings of
// docs/interfaces.md "Streams and subjects": readers of the bus outside
// payhook filter on them.
func TestSubjects(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{events.Subject("jpglo", events.KindPayin, events.StatusSucceeded), "payhook.events.jpglo.payin.succeeded"},
		{events.EventFilter("jpglo", "", "failed"), "payhook.events.jpglo.*.failed"},
		{events.EventFilter(events.Any, events.Any, events.Any), "payhook.events.*.*.*"},
		{events.RawSubject("mrnpay", "accepted"), "payhook.raw.mrnpay.accepted"},
		{events.RawSubject(events.Any, "rejected"), events.RawRejectedSubjects},
		{events.DLQSubject("ledger"), "payhook.dlq.ledger"},
		{events.WatchSubject("fantian"), "payhook.watch.fantian"},
		{events.TraceSubject("o0123"), "payhook.trace.o0123"},
		{events.EventSubjects, "payhook.events.>"},
		{events.RawSubjects, "payhook.raw.>"},
		{events.DLQSubjects, "payhook.dlq.>"},
		{events.WatchSubjects, "payhook.watch.>"},
		{events.TraceSubjects, "payhook.trace.*"},
		{events.ReplaySubject("ledger"), "payhook.replay.ledger"},
		{events.ReplaySubjects, "payhook.replay.>"},
		{events.ReconcileSubject("jpglo", "glo-in", "w1"), "payhook.reconcile.jpglo.glo-in.w1"},
		{events.ReconcileSubject("jpglo", "glo-in", events.Any), "payhook.reconcile.jpglo.glo-in.*"},
		{events.LegacyReconcileSubject("jpglo", "w1"), "payhook.reconcile.jpglo.w1"},
		{events.ReconcileSubjects, "payhook.reconcile.>"},
		{events.DispatchRetrySubject("ledger"), "payhook.dispatch.retry.ledger"},
		{events.DispatchRetrySubjects, "payhook.dispatch.retry.*"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestParseDispatchRetrySubject(t *testing.T) {
	if id, ok := events.ParseDispatchRetrySubject(events.DispatchRetrySubject("ledger")); !ok || id != "ledger" {
		t.Errorf("got %q %v, want ledger true", id, ok)
	}
	if _, ok := events.ParseDispatchRetrySubject("payhook.dispatch.reply.x"); ok {
		t.Error("a reply subject parsed as a retry request")
	}
}

func TestParseSubject(t *testing.T) {
	for _, c := range []struct {
		subject                string
		provider, kind, status string
		ok                     bool
	}{
		{"payhook.events.jpglo.payin.succeeded", "jpglo", "payin", "succeeded", true},
		{"payhook.events.cashypro.payin.conflict", "cashypro", "payin", "conflict", true},
		{"payhook.events.jpglo.payin", "", "", "", false},
		{"payhook.events.jpglo.payin.succeeded.x", "", "", "", false},
		{"payhook.events..payin.succeeded", "", "", "", false},
		{"payhook.raw.jpglo.accepted", "", "", "", false},
		{"", "", "", "", false},
	} {
		p, k, s, ok := events.ParseSubject(c.subject)
		if p != c.provider || string(k) != c.kind || string(s) != c.status || ok != c.ok {
			t.Errorf("ParseSubject(%q) = %q %q %q %v, want %q %q %q %v", c.subject, p, k, s, ok, c.provider, c.kind, c.status, c.ok)
		}
	}
	if p, ok := events.ParseWatchSubject("payhook.watch.mrnpay"); p != "mrnpay" || !ok {
		t.Errorf("ParseWatchSubject = %q %v", p, ok)
	}
	if _, ok := events.ParseWatchSubject("payhook.events.mrnpay"); ok {
		t.Error("ParseWatchSubject accepted an event subject")
	}
}

// FuzzParseSubject: whatever subject arrives (anyone allowed to publish on
// the bus chooses it), parsing never panics, and a subject it accepts is
// exactly the one Subject builds from its tokens.
func FuzzParseSubject(f *testing.F) {
	for _, s := range []string{"payhook.events.jpglo.payin.succeeded", "payhook.events.a.b.c.d", "payhook.events...", "payhook.events.\xff.payin.failed", "payhook.watch.x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, subject string) {
		p, k, s, ok := events.ParseSubject(subject)
		if ok && events.Subject(p, k, s) != subject {
			t.Errorf("%q parsed to %q %q %q, which builds %q", subject, p, k, s, events.Subject(p, k, s))
		}
		if w, ok := events.ParseWatchSubject(subject); ok && events.WatchSubject(w) != subject {
			t.Errorf("%q: watch provider %q builds %q", subject, w, events.WatchSubject(w))
		}
	})
}
