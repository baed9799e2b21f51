package fantian_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/fantian"
)

// FuzzFantianReply: any reply maps to nil (only for error_code "0000" under
// a 2xx status), a *providers.APIError, or ErrReply; never a panic.
func FuzzFantianReply(f *testing.F) {
	f.Add(200, []byte(`{"error_code":"0000"}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		err := fantian.ParseReply(status, body)
		if err == nil {
			// Accepted: a 2xx whose error_code is "0000" by encoding/json too
			// (which keeps the last of duplicate keys; ParseReply refuses them).
			var m map[string]any
			if status < 200 || status > 299 || json.Unmarshal(body, &m) != nil || m["error_code"] != "0000" {
				t.Fatalf("accepted status %d body %q", status, body)
			}
			return
		}
		var ae *providers.APIError
		if !errors.As(err, &ae) && !errors.Is(err, fantian.ErrReply) {
			t.Fatalf("unexpected error type: %v", err)
		}
		if fantian.NotMatched(err) && (ae == nil || ae.Code == "0000" || ae.Code == "0004") {
			t.Fatalf("NotMatched for %v", err)
		}
	})
}
