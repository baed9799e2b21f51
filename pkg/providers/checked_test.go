package providers_test

import (
	"errors"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
)

func TestChecked(t *testing.T) {
	good := events.Event{Provider: "cashypro", Account: "a1", Kind: events.KindPayin, Status: events.StatusSucceeded,
		MerchantOrderID: "M-1", ProviderOrderID: "  P-1 ", Amount: events.Money{Value: "10.00", Currency: "INR"},
		ReceivedAt: time.Unix(0, 0).UTC(), Origin: events.OriginCallback}
	ev, err := providers.Checked(good, nil)
	if err != nil {
		t.Fatalf("valid event refused: %v", err)
	}
	if ev.ProviderOrderID != "P-1" {
		t.Fatalf("provider order id %q, want it trimmed as the publisher does", ev.ProviderOrderID)
	}
	for name, mutate := range map[string]func(*events.Event){
		"blank merchant order id":  func(e *events.Event) { e.MerchantOrderID = " " },
		"padded merchant order id": func(e *events.Event) { e.MerchantOrderID = " M-1" },
		"control character":        func(e *events.Event) { e.MerchantOrderID = "M\x00-1" },
		"amount not a decimal":     func(e *events.Event) { e.Amount.Value = "1e3" },
	} {
		bad := good
		mutate(&bad)
		_, err := providers.Checked(bad, nil)
		var re *providers.RejectError
		if !errors.As(err, &re) || re.Reason != providers.ReasonInvalidEvent || !errors.Is(err, providers.ErrMalformed) {
			t.Errorf("%s: %v, want a %s rejection", name, err, providers.ReasonInvalidEvent)
		}
	}
	parseErr := providers.Reject("bad_signature", providers.ErrSignature, "no")
	if _, err := providers.Checked(good, parseErr); err != parseErr {
		t.Errorf("Parse's own error not passed through: %v", err)
	}
}
