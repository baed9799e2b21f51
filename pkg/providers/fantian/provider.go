package fantian

import (
	"context"
	"fmt"

	"github.com/payhook/payhook/pkg/providers"
)

// Name is the provider's name in URLs, subjects and config.
const Name = "fantian"

// Provider is fantian's registration: it takes UTR submissions
// (providers.ReferenceSubmitter) and checks its accounts' keys
// (providers.Credentials). Fantian sends no callbacks and has no query.
type Provider struct {
	client *Client
}

// New returns the provider with a default Client.
func New() *Provider { return &Provider{client: NewClient(nil)} }

var (
	_ providers.ReferenceSubmitter = (*Provider)(nil)
	_ providers.Credentials        = (*Provider)(nil)
)

// Name returns "fantian".
func (p *Provider) Name() string { return Name }

// CallbackIdentity: fantian sends no callbacks, but two accounts with one
// platform_id and secret are one merchant configured twice.
func (p *Provider) CallbackIdentity(acct providers.Account) (id, what string) {
	return acct.Key("merchant_id") + "\x00" + acct.Key("secret"), "merchant_id and secret"
}

// CheckAccount checks an account's fantian keys: merchant_id (platform_id,
// at most 7 characters) and secret are required; sign_rule is optional
// (default, sorted-lower or sorted-upper).
func (p *Provider) CheckAccount(acct providers.Account) error {
	if err := providers.CheckKeys(acct, []string{"merchant_id", "secret"}, "sign_rule"); err != nil {
		return err
	}
	if !ValidRule(acct.Key("sign_rule")) {
		return providers.KeyErrorf("sign_rule", "want default, sorted-lower or sorted-upper for fantian, got %q", acct.Key("sign_rule"))
	}
	return nil
}

// CheckReference refuses, before a reference is claimed for it, an order id
// fantian would refuse: payment_cl_id is String(32) of printable ASCII
// without spaces, '&' or '=' (what fantian signs unambiguously).
func (p *Provider) CheckReference(merchantOrderID, reference string) error {
	if checkField("payment_cl_id", merchantOrderID, MaxOrderID) != nil {
		return fmt.Errorf("merchant_order_id must be 1 to %d printable ASCII characters without spaces, '&' or '='", MaxOrderID)
	}
	if checkField("payment_reference", reference, MaxReference) != nil {
		return fmt.Errorf("reference must be 1 to %d printable ASCII characters without spaces, '&' or '='", MaxReference)
	}
	return nil
}

// SubmitReference is Client.SubmitReference on the default client.
func (p *Provider) SubmitReference(ctx context.Context, acct providers.Account, merchantOrderID, reference string) error {
	return p.client.SubmitReference(ctx, acct, merchantOrderID, reference)
}

// NotMatched is the package's NotMatched.
func (p *Provider) NotMatched(err error) bool { return NotMatched(err) }

// DemoAccount is the test account devstack and the end-to-end suites
// configure: the merchant id of the seed's example and a test secret.
func (p *Provider) DemoAccount() providers.Account {
	return providers.Account{ID: "fantian-in", Provider: Name, Currency: "INR", Keys: providers.Keys{"merchant_id": "PF0002", "secret": "fantian-secret"}}
}
