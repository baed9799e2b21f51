package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/payhook/payhook/internal/registry"
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providersim"
)

// Watch announces o to the reconciler the way an order service does: a
// JSON message on payhook.watch.{provider}, stored by JetStream.
func (c *Cluster) Watch(ctx context.Context, o providersim.Order) error {
	b, _ := json.Marshal(watchOf(o))
	_, err := c.js.Publish(ctx, events.WatchSubject(o.Provider), b)
	return err
}

// WatchAPI announces o through the reconciler's POST /v1/watches; it
// returns the HTTP status and body.
func (c *Cluster) WatchAPI(ctx context.Context, o providersim.Order) (int, []byte, error) {
	w := watchOf(o)
	w["provider"] = o.Provider
	return c.Admin(ctx, Reconciler, "/v1/watches", w)
}

// watchOf is the announcement of o: with provider_order_id when the
// provider's query needs it (providers.WatchNeeds).
func watchOf(o providersim.Order) map[string]string {
	w := map[string]string{"account": o.Account, "kind": string(o.Kind), "merchant_order_id": o.MerchantOrderID}
	if n, ok := providers.Role[providers.WatchNeeds](registry.All(), o.Provider); ok && n.WatchNeeds().ProviderOrderID {
		w["provider_order_id"] = o.ProviderOrderID
	}
	return w
}

// SubmitReference posts a UTR to the reconciler's POST /v1/references.
func (c *Cluster) SubmitReference(ctx context.Context, account, merchantOrderID, reference string) (int, []byte, error) {
	return c.Admin(ctx, Reconciler, "/v1/references", map[string]string{
		"account": account, "merchant_order_id": merchantOrderID, "reference": reference})
}

// Admin POSTs body as JSON to path on service s with the admin bearer token.
func (c *Cluster) Admin(ctx context.Context, s Service, path string, body any) (int, []byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL(s)+path, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.AdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, rb, err
}

// Get GETs path on service s (e.g. "/readyz") and returns the status and body.
func (c *Cluster) Get(ctx context.Context, s Service, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL(s)+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}
