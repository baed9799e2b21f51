// Package security holds the tests of payhook's security review
// (docs/security.md, docs/reliability.md "Security review"): secrets and signatures compared in
// constant time, no secrets or payer data in logs or in replies to
// providers, admin APIs behind the bearer token, the IP allowlist honoured
// only through a configured trusted proxy header, the body limit, no
// credentials kept on PAYHOOK_RAW, and NATS: every service working under
// its own user of deploy/nats/auth.conf, no event published by any other
// user, and TLS with client certificates. The findings and results are in
// docs/reliability.md. The package has no code of its own: only tests.
package security
