// Package e2e runs payhook end to end, the way it runs in production: the
// three binaries (cmd/ingress, cmd/dispatcher, cmd/reconciler) as separate
// processes, a real nats-server process with JetStream on disk, optionally a
// real redis-server, the provider simulator (pkg/providersim) posting signed
// callbacks and answering queries, and in-process subscribers that verify
// every webhook with the Standard Webhooks library.
//
// It is a harness for test packages (this package's own end-to-end suite,
// and the reliability suite in internal/reliability):
//
//	func TestMain(m *testing.M) { os.Exit(e2e.Main(m)) } // builds the binaries once
//
//	c := e2e.Start(t, e2e.Options{Redis: true})     // everything up, torn down by t.Cleanup
//	b := c.NewBooks(e2e.ExactlyOnce)                // or NewBooks(): at-least-once deliveries
//	o, _ := b.CreateWatched(ctx, providersim.OrderSpec{Provider: "jpglo", Account: "glo-in",
//		Faults: providersim.Faults{DropCallback: true}})
//	c.Kill(e2e.Ingress); _ = c.StartService(e2e.Ingress) // crash and restart
//	b.Wait(t, time.Minute)                                // the books balance, or t fails with what is wrong
//
// The books (Books, Expect, Report) are the oracle: from the simulator's
// orders and their faults they derive the events payhook must publish, then
// check PAYHOOK_EVENTS (each exactly once, by Nats-Msg-Id), every subscriber
// (each delivered with a valid signature, nothing else about those orders;
// exactly once with NewBooks(ExactlyOnce), which this package's scenarios
// use, otherwise at least once with redeliveries of a webhook-id counted, as
// a suite that crashes the dispatcher mid-delivery needs), PAYHOOK_RAW_REJECTED (every
// refused callback recorded with a reason) and that nothing acknowledged to
// a provider is missing.
//
// Every child runs in its own process group, is killed by t.Cleanup, and on
// Linux also by the kernel if the test binary dies first (Pdeathsig).
// Logs of every run of a service are kept in Cluster.Dir/<service>.log and
// printed (tail) when the test fails.
package e2e
