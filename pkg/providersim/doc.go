// Package providersim is an in-process fake of the payment providers
// payhook talks to, for tests, the devstack and the load generator.
//
// It simulates every registered provider with a simulated side of its own
// (providers.Simulated, in pkg/providers/<name>/sim.go) and names none: it
// creates orders, has the provider's side sign or encrypt their callbacks
// with the provider package's own code (so what the simulator signs is what
// payhook verifies), posts them to payhook's ingress, treats the reply the
// way the provider would (SimAcked), retries on the provider's schedule
// (SimRetries) compressed by Config.TimeScale, and serves each provider's
// merchant-facing API (SimServe, or SimServeDesk with the simulator's
// providers.SimDesk for resends, orders the provider's staff complete, and
// reference matching), which checks the signature of every request.
//
// # Routing: one base_url per simulated account
//
// Sim.Handler serves every account of every provider under
//
//	/{provider}/{account-id}/<the provider's own path>
//
// so an account's base_url in payhook's config is the simulator's root URL
// followed by /{provider}/{account-id}, for example
//
//	base_url: http://127.0.0.1:8090/{provider}/{account-id}
//	→ POST http://127.0.0.1:8090/{provider}/{account-id}/<its query path>
//
// BaseURL(root, acct) builds it. The account is looked up by id and provider
// among Config.Accounts; an unknown pair, or a path the provider does not
// serve, is a 404. Each provider's endpoints are documented on its
// SimServe (docs/providers.md lists them).
//
// # Callbacks
//
// Callbacks go to {Config.IngressURL}/v1/callbacks/{provider}/{account}/{kind}
// (docs/interfaces.md "Callbacks in"), or to OrderSpec.NotifyURL when set, or,
// for an order opened through the provider's API with a notify URL, there.
// Which outcomes a provider calls back about is its own
// (providers.SimSelective: some call back only successes, failures too
// with Config.CallbackFailures); a provider that is not providers.Inbound
// sends none, and one that takes references credits a paid order only once
// its reference is matched.
//
// # Faults
//
// Faults are drawn for each order when it is created: OrderSpec.Faults names
// them for one order (drop its callbacks, duplicate, reorder success/fail,
// corrupt the signature, delay, fail or hang its queries with a 5xx or no
// answer); Config.Faults, replaced at run time with Sim.SetFaults, is a
// probability per fault for every order (FaultMix). FaultsHandler serves the
// mix as JSON for a running simulator (GET and POST /faults in
// cmd/providersim and devstack).
package providersim
