package providers

// Reason is why ingress refused a request: a short, stable token that never
// carries payload. The tokens are a wire contract, spelled the same in
// every place they appear: the "error" field of a 4xx or 503 reply, the
// reason label of payhook_ingress_rejected_total and
// payhook_ingress_rate_limited_total, the Payhook-Reason header of a raw
// record, and payhookctl reprocess --reason. New reasons may be added;
// none is ever renamed.
//
// Providers reject with the reasons of the first group (ingress also answers
// wrong_kind from the URL and too_old from accounts[].max_age); ingress
// decides the second group before or after a provider sees the request.
// Ingress's answer function is the one place a reason becomes an HTTP
// status. Each comment says that status (in parentheses) and what the
// reason means; the table of reasons in docs/operations.md is generated
// from these comments (go test ./pkg/providers -run TestReasonsDocumented).
type Reason string

// Reasons of a provider's Parse (a *RejectError).
const (
	// ReasonBadSignature (401): the signature is missing or does not match the raw body under the account's key.
	ReasonBadSignature Reason = "bad_signature"
	// ReasonUndecryptable (401): the body does not decrypt under the account's key into the provider's plaintext; every such failure gets the same reply bytes, so the reply is no padding oracle.
	ReasonUndecryptable Reason = "undecryptable"
	// ReasonNoKey (401): the account has no key to verify the callback with, so it is refused rather than checked against an empty key.
	ReasonNoKey Reason = "no_key"
	// ReasonBadConfig (401): the account's key material cannot be used (an AES key of the wrong length, an unknown sign rule): fix the account.
	ReasonBadConfig Reason = "bad_config"
	// ReasonMalformed (400): the body or a header is not in the provider's format (not JSON or form, a repeated key, an over-long or non-UTF-8 field).
	ReasonMalformed Reason = "malformed"
	// ReasonMissingField (400; 401 when the missing field is the signature): a field the provider always sends is absent or empty.
	ReasonMissingField Reason = "missing_field"
	// ReasonAccountMismatch (400): the callback verified, but names another merchant than the account of its URL.
	ReasonAccountMismatch Reason = "account_mismatch"
	// ReasonBadAmount (400): an amount is not a non-negative decimal (or integer of minor units) in range.
	ReasonBadAmount Reason = "bad_amount"
	// ReasonBadStatus (400): the order status is none of those the provider documents.
	ReasonBadStatus Reason = "bad_status"
	// ReasonWrongKind (404 from the URL, 400 from a verified body): the provider sends no callbacks of this kind, or the body is of another kind than its URL.
	ReasonWrongKind Reason = "wrong_kind"
	// ReasonTooOld (400): the provider's signed timestamp is older than the account's max_age, or for stripe more than 300 s from now either way: a possible replay.
	ReasonTooOld Reason = "too_old"
	// ReasonInvalidEvent (400): the callback verified, but makes no event that can be stored (an order id that is padded, unprintable or too long, an amount that is not a decimal, and the like).
	ReasonInvalidEvent Reason = "invalid_event"
	// ReasonInvalid (400): a provider refused the callback with an error that names no reason.
	ReasonInvalid Reason = "invalid"
)

// Reasons ingress decides itself, around the provider's Parse.
const (
	// ReasonUnknownRoute (404): not a request to /v1/callbacks/{provider}/{account}/{kind}.
	ReasonUnknownRoute Reason = "unknown_route"
	// ReasonMethodNotAllowed (405): a request to a callback URL that is not a POST.
	ReasonMethodNotAllowed Reason = "method_not_allowed"
	// ReasonUnknownProvider (404): the URL names no configured provider.
	ReasonUnknownProvider Reason = "unknown_provider"
	// ReasonUnknownAccount (404): the URL names no account of this provider.
	ReasonUnknownAccount Reason = "unknown_account"
	// ReasonIPNotAllowed (403): the client address is not in the account's allow_ips.
	ReasonIPNotAllowed Reason = "ip_not_allowed"
	// ReasonTooLarge (413): the body is over ingress.body_limit.
	ReasonTooLarge Reason = "too_large"
	// ReasonUnreadable (400): the body could not be read to its end.
	ReasonUnreadable Reason = "unreadable"
	// ReasonFutureTimestamp (400): the provider's signed timestamp is further ahead of ingress's clock than the allowed skew.
	ReasonFutureTimestamp Reason = "future_timestamp"
	// ReasonUnavailable (503): not a rejection: the callback, or the record of its refusal, could not be stored now, so the provider retries.
	ReasonUnavailable Reason = "unavailable"
	// ReasonRateLimited (429, with Retry-After): too many refused requests from this client address; only the reply says it, while counters and records keep the refusal's own reason.
	ReasonRateLimited Reason = "rate_limited"
)
