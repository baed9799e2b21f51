package mpurse_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/mpurse"
)

// TestSimulatedSide: the simulated callback's event is keyed as
// SimIdempotencyKey says, and SimPlain recovers the mpQueryId from a
// corrupted callback under both modes.
func TestSimulatedSide(t *testing.T) {
	p := mpurse.New()
	cbc := p.SimAccount("mp-cbc").With("aes_mode", "cbc").With("aes_iv", "0123456789abcdef")
	for _, acct := range []providers.Account{p.SimAccount("mp-ecb"), cbc} {
		t.Run(acct.ID, func(t *testing.T) {
			paid := events.MustMoney("1234.50", "INR")
			o := providers.SimOrder{Kind: events.KindPayin, Amount: paid, Paid: paid, Status: events.StatusSucceeded}
			p.SimIDs(&o, func(n int) string { return string(bytes.Repeat([]byte("7"), n)) })
			at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
			h, body, err := p.SimCallback(acct, o, at, false)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := p.Parse(acct, providers.Request{Kind: events.KindPayin, Header: h, Body: body, ReceivedAt: at})
			if err != nil {
				t.Fatal(err)
			}
			want := events.Event{Provider: mpurse.Name, Account: acct.ID, Kind: events.KindPayin, Status: events.StatusSucceeded,
				MerchantOrderID: o.MerchantOrderID, IdempotencyKey: p.SimIdempotencyKey(o)}
			if ev.ID() != want.ID() {
				t.Errorf("event id %s, want %s (key %q)", ev.ID(), want.ID(), p.SimIdempotencyKey(o))
			}
			_, bad, _ := p.SimCallback(acct, o, at, true)
			if _, err := p.Parse(acct, providers.Request{Kind: events.KindPayin, Header: h, Body: bad, ReceivedAt: at}); err == nil {
				t.Fatal("corrupted callback accepted")
			}
			if plain := p.SimPlain(acct, bad); !bytes.Contains(plain, []byte(o.MerchantOrderID)) {
				t.Errorf("SimPlain of the corrupted body does not name the order: %q", plain)
			}
			if !p.SimAcked(200, []byte("SUCCESS\n")) || p.SimAcked(200, []byte("success")) || p.SimAcked(500, []byte("SUCCESS")) {
				t.Error("SimAcked")
			}
		})
	}
}
