package redisdedupe

import (
	"context"

	"github.com/payhook/payhook/pkg/dedupe"
)

// ClaimReference implements dedupe.References.
func (s *Store) ClaimReference(ctx context.Context, account, reference, merchantOrderID string) (string, bool, error) {
	if err := dedupe.ValidateReference(account, reference, merchantOrderID); err != nil {
		return "", false, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	owner, err := claimScript.Run(ctx, s.rdb, []string{s.refKey(account, reference)},
		merchantOrderID, s.cfg.ReferenceTTL.Milliseconds()).Text()
	if err != nil {
		return "", false, unavailable(err)
	}
	return owner, owner == merchantOrderID, nil
}

// ReleaseReference implements dedupe.References.
func (s *Store) ReleaseReference(ctx context.Context, account, reference, merchantOrderID string) error {
	if err := dedupe.ValidateReference(account, reference, merchantOrderID); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	return unavailable(releaseScript.Run(ctx, s.rdb, []string{s.refKey(account, reference)}, merchantOrderID).Err())
}
