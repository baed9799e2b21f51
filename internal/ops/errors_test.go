package ops

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWriteFailure(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		status int
		body   string
	}{
		{"invalid", Fail(CodeInvalid, "since: required"), http.StatusBadRequest, `{"error":"since: required"}` + "\n"},
		{"wrapped not found", fmt.Errorf("subscriber x: %w", Fail(CodeNotFound, "unknown subscriber")), http.StatusNotFound, `{"error":"unknown subscriber"}` + "\n"},
		{"conflict", Fail(CodeConflict, "reference_in_use"), http.StatusConflict, `{"error":"reference_in_use"}` + "\n"},
		{"too many", Fail(CodeTooMany, "account_watch_cap: 10"), http.StatusTooManyRequests, `{"error":"account_watch_cap: 10"}` + "\n"},
		{"provider body", &Error{Code: CodeProvider, Message: "not_matched", Body: map[string]any{"error": "not_matched", "released": true}}, http.StatusBadGateway, `{"error":"not_matched","released":true}` + "\n"},
		{"unavailable", Fail(CodeUnavailable, "retry"), http.StatusServiceUnavailable, `{"error":"retry"}` + "\n"},
		{"unmapped", errors.New("nats: secret detail"), http.StatusInternalServerError, `{"error":"internal error"}` + "\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			WriteFailure(w, c.err)
			if w.Code != c.status || w.Body.String() != c.body || w.Header().Get("Content-Type") != "application/json" {
				t.Errorf("got %d %q (%s), want %d %q", w.Code, w.Body.String(), w.Header().Get("Content-Type"), c.status, c.body)
			}
		})
	}
}
