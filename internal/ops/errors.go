package ops

import (
	"errors"
	"net/http"
)

// Code classifies why an admin request failed. Each Code has exactly one
// HTTP status (Status): an admin API maps its own errors to Codes, in one
// function per API, and never picks a status by hand.
type Code int

// Codes of admin API failures, with the status each is answered with.
const (
	CodeInvalid     Code = iota + 1 // 400: the body or a parameter is wrong; the message says which
	CodeNotFound                    // 404: the named subscriber, account or record is not there
	CodeConflict                    // 409: the request contradicts the current state (a configured subscriber, a reference claimed by another order)
	CodeTooMany                     // 429: a cap is reached (watches per account)
	CodeProvider                    // 502: the provider refused or did not answer; the body is the provider's own error
	CodeUnavailable                 // 503: NATS or a store failed now; retry
)

var codeStatus = map[Code]int{
	CodeInvalid:     http.StatusBadRequest,
	CodeNotFound:    http.StatusNotFound,
	CodeConflict:    http.StatusConflict,
	CodeTooMany:     http.StatusTooManyRequests,
	CodeProvider:    http.StatusBadGateway,
	CodeUnavailable: http.StatusServiceUnavailable,
}

// Status is the HTTP status of c; 500 for a Code that is not one of the above.
func (c Code) Status() int {
	if s, ok := codeStatus[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Error is an admin request's failure: its Code, and what the client reads.
// The answer is {"error": Message}, or Body as JSON when Body is set (the
// reconciler's 502 carries the provider's code and message). Neither ever
// carries a secret.
type Error struct {
	Code    Code
	Message string
	Body    any
}

func (e *Error) Error() string { return e.Message }

// Fail returns the failure of code with message.
func Fail(code Code, message string) *Error { return &Error{Code: code, Message: message} }

// WriteFailure answers err: an *Error (or one wrapped in err) with its
// Code's status and body; any other error is 500 {"error":"internal
// error"}, so that an error an API forgot to map leaks no detail.
func WriteFailure(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		WriteError(w, http.StatusInternalServerError, "internal error")
		return
	}
	if e.Body != nil {
		WriteJSON(w, e.Code.Status(), e.Body)
		return
	}
	WriteError(w, e.Code.Status(), e.Message)
}
