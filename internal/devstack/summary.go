package devstack

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/pkg/providers"
)

func printBanner(out io.Writer, st *Stack, a Addrs, o Options) {
	dedupe := "NATS key-value bucket"
	if o.RedisURL != "" {
		dedupe = "Redis " + o.RedisURL
	}
	fmt.Fprintf(out, `payhook devstack is up.

  NATS (JetStream)   %s   data in %s    watch events:  nats sub --server %s 'payhook.events.>'
  ingress            http://%s    callbacks: POST /v1/callbacks/{provider}/{account}/{kind}
  dispatcher         http://%s    admin: POST /v1/dlq/replay
  reconciler         http://%s    admin: POST /v1/watches, POST /v1/references
  demo subscriber    http://%s/hooks
  provider simulator http://%s    base_url per account: /{provider}/{account}; faults: GET/POST /faults
  dedupe             %s
  admin token        %s
  event signing      dev key in %s (public key %s)
  metrics            /metrics on ingress, dispatcher and reconciler

Accounts: `, st.NATSURL, o.DataDir, st.NATSURL, a.Ingress, a.Dispatcher, a.Reconciler, a.Subscriber, a.Sim, dedupe, AdminToken,
		filepath.Join(o.DataDir, EventKeyFile), st.Config.EventSigning.PublicKeys[0])
	var ids []string
	for _, acc := range st.Config.Accounts {
		ids = append(ids, acc.Provider+"/"+acc.ID)
	}
	fmt.Fprintf(out, "%s\nTraffic: %.1f orders/s with lost, duplicated and corrupted callbacks. Ctrl-C stops.\n\n", strings.Join(ids, ", "), o.Rate)
}

// Totals per provider, for the summary and tests.
type Totals struct {
	Orders, CallbacksSent, Accepted, Duplicates, Rejected, Recovered, Delivered int
	// UTRMatched: a provider that takes UTRs (fantian) sends no callbacks; its traffic is UTRs submitted
	// through the reconciler's POST /v1/references and matched (HTTP 200).
	UTRMatched int
}

// Totals reads the live counters of every part.
func (st *Stack) Totals() map[string]Totals {
	out := map[string]Totals{}
	stats := st.Sim.Stats()
	delivered := st.Subscriber.Delivered()
	st.mu.Lock()
	utrMatched := st.utr[fmt.Sprint(http.StatusOK)]
	st.mu.Unlock()
	provs := registry.All()
	for _, p := range provs.Names() {
		t := Totals{Orders: stats[p].OrdersCreated, CallbacksSent: stats[p].CallbacksSent, Delivered: delivered[p]}
		t.Accepted = int(sum(st.regs["ingress"], "payhook_ingress_callbacks_total", "provider", p, "verdict", "accepted"))
		t.Duplicates = int(sum(st.regs["ingress"], "payhook_ingress_callbacks_total", "provider", p, "verdict", "duplicate"))
		t.Rejected = int(sum(st.regs["ingress"], "payhook_ingress_callbacks_total", "provider", p, "verdict", "rejected"))
		t.Recovered = int(sum(st.regs["reconciler"], "payhook_reconciler_recovered_total", "provider", p))
		if _, ok := providers.Role[providers.ReferenceSubmitter](provs, p); ok {
			t.UTRMatched = utrMatched
		}
		out[p] = t
	}
	return out
}

// PrintSummary writes one table of the totals so far.
func (st *Stack) PrintSummary(out io.Writer) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\tprovider\torders\tcallbacks\tstored\tduplicates absorbed\trejected\trecovered by reconciler\tdelivered\tUTRs matched\t\n", time.Now().Format("15:04:05"))
	tot := st.Totals()
	provs := registry.All()
	names := provs.Names()
	sort.Strings(names)
	for _, p := range names {
		t := tot[p]
		utr := "-" // only payments confirmed by UTR (providers.ReferenceSubmitter)
		if _, ok := providers.Role[providers.ReferenceSubmitter](provs, p); ok {
			utr = fmt.Sprint(t.UTRMatched)
		}
		fmt.Fprintf(tw, "\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t\n", p, t.Orders, t.CallbacksSent, t.Accepted, t.Duplicates, t.Rejected, t.Recovered, t.Delivered, utr)
	}
	tw.Flush()
	repeats, bad := st.Subscriber.Counts()
	st.mu.Lock()
	utr := fmt.Sprint(st.utr)
	st.mu.Unlock()
	fmt.Fprintf(out, "  subscriber: %d redeliveries, %d bad signatures; UTR submissions by HTTP status: %s\n\n", repeats, bad, utr)
}

// sum adds the values of every series of metric name whose labels include
// the given name/value pairs.
func sum(reg *prometheus.Registry, name string, kv ...string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	var total float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(kv); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == kv[i] && l.GetValue() == kv[i+1] {
						found = true
					}
				}
				if !found {
					continue series
				}
			}
			if c := m.GetCounter(); c != nil {
				total += c.GetValue()
			} else if g := m.GetGauge(); g != nil {
				total += g.GetValue()
			}
		}
	}
	return total
}
