package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/natsbus"
	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providersim"
)

// traffic creates orders at rate, round-robin over the configured
// providers, with a realistic mix of faults; announces each one to the
// reconciler on payhook.watch.{provider} (as a merchant's order service
// would), and submits a UTR for every order of a provider that takes them
// (providers.ReferenceSubmitter). Callbacks are dropped only where the
// reconciler can find the order (a providers.Querier).
func (st *Stack) traffic(ctx context.Context, rate float64, reconcilerAddr string) error {
	nc, err := natsbus.Connect(config.NATS{URL: st.NATSURL}, "payhook-devstack-traffic", nil)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	provs := registry.All()
	accounts := map[string]providers.Account{}
	for _, a := range st.Config.Accounts {
		accounts[a.Provider] = a
	}
	var names []string
	for _, p := range provs.Names() {
		if _, ok := accounts[p]; ok {
			names = append(names, p)
		}
	}
	if len(names) == 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		prov := names[n%len(names)]
		acct := accounts[prov]
		_, queries := providers.Role[providers.Querier](provs, prov)
		_, resends := providers.Role[providers.Retriggerer](provs, prov)
		_, submits := providers.Role[providers.ReferenceSubmitter](provs, prov)
		// The simulator draws an amount in the provider's precision.
		spec := providersim.OrderSpec{Provider: prov, Account: acct.ID, Kind: events.KindPayin}
		if resends && slices.Contains(providersim.Kinds(prov), events.KindPayout) && rng.IntN(5) == 0 {
			spec.Kind = events.KindPayout // a provider that resends on query recovers payouts too
		}
		switch p := rng.Float64(); {
		case p < 0.10:
			spec.Faults.DropCallback = true // lost: the reconciler must find it
		case p < 0.25:
			spec.Faults.Duplicate = 2 // provider retries: absorbed by dedupe
		case p < 0.28:
			spec.Faults.CorruptSignature = true // rejected 4xx, recorded in PAYHOOK_RAW_REJECTED
		case p < 0.35 && providersim.SendsIntermediate(prov):
			spec.Intermediate = true // PAYING before SUCCESS
		}
		if !queries || submits {
			spec.Faults.DropCallback = false // nothing can recover these: no query endpoint
		}
		ord, err := st.Sim.CreateOrder(ctx, spec)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			continue
		}
		if submits {
			go st.submitUTR(ctx, reconcilerAddr, acct.ID, ord.MerchantOrderID, ord.Reference)
			continue
		}
		watch := map[string]string{"account": acct.ID, "kind": string(ord.Kind), "merchant_order_id": ord.MerchantOrderID}
		if n, ok := providers.Role[providers.WatchNeeds](provs, prov); ok && n.WatchNeeds().ProviderOrderID {
			watch["provider_order_id"] = ord.ProviderOrderID
		}
		w, _ := json.Marshal(watch)
		_, _ = js.Publish(ctx, events.WatchSubject(prov), w)
	}
}

func (st *Stack) submitUTR(ctx context.Context, reconcilerAddr, account, order, ref string) {
	if ref == "" {
		return
	}
	select {
	case <-ctx.Done():
		return
	case <-time.After(time.Second):
	}
	b, _ := json.Marshal(map[string]string{"account": account, "merchant_order_id": order, "reference": ref})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+reconcilerAddr+"/v1/references", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+AdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	result := "error"
	if err == nil {
		resp.Body.Close()
		result = fmt.Sprint(resp.StatusCode)
	}
	st.mu.Lock()
	st.utr[result]++
	st.mu.Unlock()
}
