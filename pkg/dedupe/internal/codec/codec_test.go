package codec

import (
	"bytes"
	"errors"
	"testing"

	"github.com/payhook/payhook/pkg/dedupe"
	"github.com/payhook/payhook/pkg/events"
)

func TestStateRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		status  events.Status
		id      string
		wantLen int
	}{
		{"payhook id pending", events.StatusPending, "evt_0123456789abcdef0123456789abcdef", 17},
		{"payhook id succeeded", events.StatusSucceeded, "evt_ffffffffffffffffffffffffffffffff", 17},
		{"payhook id failed", events.StatusFailed, "evt_00000000000000000000000000000000", 17},
		{"verbatim id", events.StatusSucceeded, "legacy-42", 10},
		{"upper-case hex is verbatim", events.StatusFailed, "evt_0123456789ABCDEF0123456789abcdef", 37},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := EncodeState(tc.status, tc.id)
			if len(b) != tc.wantLen {
				t.Fatalf("encoded %d bytes, want %d", len(b), tc.wantLen)
			}
			got, err := DecodeState(b)
			if err != nil {
				t.Fatal(err)
			}
			if want := (dedupe.OrderState{Status: tc.status, EventID: tc.id}); got != want {
				t.Fatalf("round trip = %+v, want %+v", got, want)
			}
		})
	}
}

func TestDecodeStateRejects(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":         nil,
		"letter only":   []byte("s"),
		"unknown":       append([]byte("x"), make([]byte, 16)...),
		"short raw id":  append([]byte("s"), make([]byte, 15)...),
		"long raw id":   append([]byte("s"), make([]byte, 17)...),
		"unknown upper": []byte("Xabc"),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeState(b); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestDigestsDistinct(t *testing.T) {
	o := dedupe.Order{Provider: "jpglo", Account: "a", Kind: events.KindPayin, Key: "bc"}
	split := dedupe.Order{Provider: "jpglo", Account: "ab", Kind: events.KindPayin, Key: "c"}
	if Order(o) == Order(split) {
		t.Fatal("length prefixes missing: (a, bc) and (ab, c) collide")
	}
	if Reference("a", "1") == Reference("a", "2") || Reference("a", "1") != Reference("a", "1") {
		t.Fatal("reference digests not a function of their input")
	}
	id := "evt_0123456789abcdef0123456789abcdef"
	raw := ID(id)
	if !bytes.Equal(raw[:2], []byte{0x01, 0x23}) {
		t.Fatalf("payhook id not kept as its own bytes: %x", raw)
	}
	if ID("other") == ID("other2") {
		t.Fatal("verbatim ids collide")
	}
}

func TestMayReplace(t *testing.T) {
	for _, tc := range []struct {
		cur  events.Status
		want bool
	}{{"", true}, {events.StatusPending, true}, {events.StatusSucceeded, false}, {events.StatusFailed, false}} {
		for _, next := range []events.Status{events.StatusPending, events.StatusSucceeded, events.StatusFailed} {
			if got := MayReplace(dedupe.OrderState{Status: tc.cur}, next); got != tc.want {
				t.Errorf("MayReplace(%q, %s) = %v, want %v", tc.cur, next, got, tc.want)
			}
		}
	}
}

// FuzzDecodeState: whatever a store hands back, decoding never panics and
// what decodes re-encodes to a value that decodes the same.
func FuzzDecodeState(f *testing.F) {
	f.Add(EncodeState(events.StatusSucceeded, "evt_0123456789abcdef0123456789abcdef"))
	f.Add(EncodeState(events.StatusPending, "legacy"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := DecodeState(b)
		if err != nil {
			return
		}
		again, err := DecodeState(EncodeState(st.Status, st.EventID))
		if err != nil || again != st {
			t.Fatalf("%x decoded to %+v, re-encoded to %+v, %v", b, st, again, err)
		}
	})
}

func TestEntryRecord(t *testing.T) {
	const (
		p = "evt_00000000000000000000000000000001"
		s = "evt_00000000000000000000000000000002"
		f = "evt_00000000000000000000000000000003"
	)
	type step struct {
		id     string
		status events.Status
	}
	tests := []struct {
		name      string
		steps     []step
		want      dedupe.OrderState
		published []string
		wantLen   int
		// lastPrior is what the last Record reports having found.
		lastPrior dedupe.OrderState
	}{
		{"one success", []step{{s, events.StatusSucceeded}},
			dedupe.OrderState{Status: events.StatusSucceeded, EventID: s}, []string{s}, 18, dedupe.OrderState{}},
		{"pending then success", []step{{p, events.StatusPending}, {s, events.StatusSucceeded}},
			dedupe.OrderState{Status: events.StatusSucceeded, EventID: s}, []string{p, s}, 34,
			dedupe.OrderState{Status: events.StatusPending, EventID: p}},
		{"success then late pending", []step{{s, events.StatusSucceeded}, {p, events.StatusPending}},
			dedupe.OrderState{Status: events.StatusSucceeded, EventID: s}, []string{p, s}, 34,
			dedupe.OrderState{Status: events.StatusSucceeded, EventID: s}},
		{"success then failure keeps success", []step{{s, events.StatusSucceeded}, {f, events.StatusFailed}},
			dedupe.OrderState{Status: events.StatusSucceeded, EventID: s}, []string{s, f}, 34,
			dedupe.OrderState{Status: events.StatusSucceeded, EventID: s}},
		{"failure then success keeps failure", []step{{f, events.StatusFailed}, {s, events.StatusSucceeded}},
			dedupe.OrderState{Status: events.StatusFailed, EventID: f}, []string{s, f}, 34,
			dedupe.OrderState{Status: events.StatusFailed, EventID: f}},
		{"repeats add nothing", []step{{p, events.StatusPending}, {p, events.StatusPending}, {s, events.StatusSucceeded}, {s, events.StatusSucceeded}, {p, events.StatusPending}},
			dedupe.OrderState{Status: events.StatusSucceeded, EventID: s}, []string{p, s}, 34,
			dedupe.OrderState{Status: events.StatusSucceeded, EventID: s}},
		{"verbatim ids are listed", []step{{"ext-1", events.StatusPending}, {"ext-2", events.StatusFailed}},
			dedupe.OrderState{Status: events.StatusFailed, EventID: "ext-2"}, []string{"ext-1", "ext-2"}, 1 + 6 + 32,
			dedupe.OrderState{Status: events.StatusPending, EventID: "ext-1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var e Entry
			var prior dedupe.OrderState
			for _, st := range tc.steps {
				var err error
				if prior, err = e.Record(st.id, st.status); err != nil {
					t.Fatal(err)
				}
			}
			if prior != tc.lastPrior {
				t.Errorf("last Record found %+v, want %+v", prior, tc.lastPrior)
			}
			b := e.Bytes()
			if len(b) != tc.wantLen {
				t.Errorf("%d bytes, want %d", len(b), tc.wantLen)
			}
			parsed, err := ParseEntry(b)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := parsed.Order(); err != nil || got != tc.want {
				t.Fatalf("Order = %+v, %v; want %+v", got, err, tc.want)
			}
			for _, id := range tc.published {
				if !parsed.Published(ID(id)) {
					t.Errorf("%s not published", id)
				}
			}
			if parsed.Published(ID("evt_00000000000000000000000000000009")) {
				t.Error("an unrecorded id counts as published")
			}
		})
	}
}

func TestEntryBoundsIDs(t *testing.T) {
	var e Entry
	for i := range 3 * MaxIDs {
		e.Record("ext-"+string(rune('A'+i)), events.StatusPending)
	}
	if len(e.IDs) != MaxIDs {
		t.Fatalf("%d ids kept, want %d", len(e.IDs), MaxIDs)
	}
}

func TestParseEntryRejects(t *testing.T) {
	for name, b := range map[string][]byte{
		"state longer than value": {5, 's'},
		"ragged ids":              append([]byte{0}, make([]byte, 15)...),
		"bad state":               {2, 'x', 'y'},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseEntry(b); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
		})
	}
}

// FuzzParseEntry: stored bytes never panic the parser, and what parses
// re-encodes to the same bytes.
func FuzzParseEntry(f *testing.F) {
	var e Entry
	e.Record("evt_0123456789abcdef0123456789abcdef", events.StatusPending)
	e.Record("evt_0123456789abcdef0123456789abcdee", events.StatusSucceeded)
	f.Add(e.Bytes())
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEntry(b)
		if err != nil || len(b) == 0 {
			return
		}
		if !bytes.Equal(e.Bytes(), b) {
			t.Fatalf("%x re-encoded as %x", b, e.Bytes())
		}
	})
}
