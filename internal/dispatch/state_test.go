package dispatch

import "testing"

func TestDecodePause(t *testing.T) {
	for _, tc := range []struct {
		name, in, reason, by string
	}{
		{"record", `{"at":"2026-11-23T10:00:00Z","reason":"ledger maintenance","by":"operator"}`, "ledger maintenance", "operator"},
		{"410", `{"at":"2026-11-23T10:00:00Z","reason":"410 Gone","by":"dispatcher"}`, "410 Gone", "dispatcher"},
		{"plain text by hand", `db migration`, "db migration", "unknown"},
		{"empty by hand", ``, "paused (no reason given)", "unknown"},
		{"json without reason", `{"at":"2026-11-23T10:00:00Z"}`, `{"at":"2026-11-23T10:00:00Z"}`, "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := decodePause([]byte(tc.in))
			if p.Reason != tc.reason || p.By != tc.by {
				t.Errorf("got %+v", p)
			}
		})
	}
}

// FuzzDecodePause: a pause key holds whatever someone wrote; reading it
// never panics and gives a bounded, non-empty reason.
func FuzzDecodePause(f *testing.F) {
	f.Add([]byte(`{"reason":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := decodePause(b)
		if p.Reason == "" || len(p.Reason) > maxPauseReason {
			t.Fatalf("reason %q", p.Reason)
		}
	})
}
