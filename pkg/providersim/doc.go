// Package providersim is an in-process fake of the five payment providers
// payhook talks to (fantian, mpurse, cashypro, mrnpay, jpglo), for tests, the
// devstack and the load generator.
//
// It creates orders, signs or encrypts their callbacks exactly as each provider's
// documentation describes (docs/providers.md) (with the provider packages' own helpers, so
// what the simulator signs is what payhook verifies), posts them to payhook's
// ingress, treats the reply the way the provider would, retries on the
// provider's schedule compressed by Config.TimeScale, and serves each
// provider's merchant-facing API (queries, mrnpay's callback=true resend,
// jpglo's appeal and replenish, fantian's UTR matching), checking the
// signature of every request.
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
//	base_url: http://127.0.0.1:8090/cashypro/cashy-in
//	→ POST http://127.0.0.1:8090/cashypro/cashy-in/api/payInQuery
//
// BaseURL(root, acct) builds it. The account is looked up by id and provider
// among Config.Accounts; an unknown pair is a 404. Endpoints:
//
//	cashypro  POST /api/payInQuery                      (headers MerchantId, Sign)
//	mrnpay    GET  /api/Payments/Query, /api/Payouts/Query  (?appKey=&mrn=&sign=&callback=)
//	jpglo     GET  /api/order/query/{mch_order_no}/     (?mch_id=&timestamp=&sign=)
//	jpglo     POST /api/order/inquiry/, /api/order/replenish/
//	fantian   POST /gateway/api/v1/payments/reference
//
// mpurse has no merchant API (the seed documents only its callback).
//
// # Callbacks
//
// Callbacks go to {Config.IngressURL}/v1/callbacks/{provider}/{account}/{kind}
// (docs/interfaces.md "Callbacks in"), or to OrderSpec.NotifyURL when set, or, for a
// jpglo appeal submitted through /api/order/inquiry/, to the request's notify_url.
// Which outcomes a provider calls back about follows the seeds: mrnpay's
// callbacks have no status field and are sent for successes only ("充值成功后的回调",
// "出款成功后的回调"); jpglo "通常只回调成功订单", so a failed jpglo pay-in is
// called back only when Config.CallbackFailures is set; fantian sends no
// callbacks at all (its only API is UTR matching).
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
