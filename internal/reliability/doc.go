// Package reliability is payhook's process-level fault-injection suite
// (docs/reliability.md "Fault scenarios"). Its tests drive the three real binaries as child processes
// through the end-to-end harness (internal/e2e): a real nats-server (or a
// 3-node JetStream cluster of them, everything at R3), a real
// redis-server, the provider simulator sending a steady mix of all five
// providers with duplicates, dropped callbacks (watched) and corrupt
// signatures, and Standard-Webhooks-verifying subscribers. Each scenario
// injects one fault while that traffic runs — kill -9 of a service, a NATS
// or Redis outage, a cluster node killed, restarted in lame duck or frozen,
// a subscriber that is down or slow, a provider query
// endpoint that fails or hangs, SIGTERM under load — and then balances the
// books: every accepted callback is exactly one event on PAYHOOK_EVENTS and
// delivered by webhook-id, every refused one is on PAYHOOK_RAW_REJECTED with its
// reason, nothing acknowledged to a provider is missing, and every callback
// that was refused for a transient reason (503, connection error) lands on
// a provider retry.
//
// The package holds no production code; docs/reliability.md ("Fault
// scenarios") lists each scenario with its measured result.
package reliability
