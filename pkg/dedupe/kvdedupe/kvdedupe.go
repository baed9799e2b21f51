// Package kvdedupe is a dedupe.Store and dedupe.References on NATS
// JetStream key-value buckets, for devstack and installs that run NATS only
// (config: redis.url empty).
//
// # Layout
//
// Bucket Config.Bucket (default "payhook_dedupe", TTL = the window, history
// 1) holds one entry per order under "o." + base64url(16-byte digest of
// provider, account, kind, order key) — KV keys allow only [-/_=.a-zA-Z0-9],
// so the parts are hashed, never used raw. Its value is a codec.Entry, the
// same bytes as in Redis: the order's state (status letter + 16 raw bytes of
// the event id that set it) and its other published event ids.
//
// Every Record that changes the entry rewrites it, so the bucket's TTL
// counts from the last change of the order (Redis: from the last Record; the
// difference is moot, as callers Record only what they just published).
//
// Record is a compare-and-set loop (Get, then Create or Update with the
// revision read, retried on a revision conflict), so replicas racing on one
// order never lose the terminal rule. It costs two round trips where Redis
// needs one; Check is one Get.
//
// Bucket Config.ReferenceBucket (default "payhook_refs", TTL =
// ReferenceTTL) holds the owner of each claimed reference under
// base64url(16-byte digest of account, reference).
package kvdedupe

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/pkg/dedupe"
	"github.com/payhook/payhook/pkg/dedupe/internal/codec"
	"github.com/payhook/payhook/pkg/events"
)

// Config tunes a Store. Zero fields take the defaults named.
type Config struct {
	// Bucket holds events and order states (default "payhook_dedupe").
	Bucket string
	// ReferenceBucket holds reference claims (default "payhook_refs").
	ReferenceBucket string
	// Window is the events bucket's TTL (default dedupe.DefaultWindow, 7 days).
	Window time.Duration
	// ReferenceTTL is the reference bucket's TTL (default dedupe.DefaultReferenceTTL, 180 days).
	ReferenceTTL time.Duration
	// Timeout bounds every operation (default dedupe.DefaultTimeout, 500 ms).
	Timeout time.Duration
	// Replicas of both buckets (default 1; 3 on a cluster).
	Replicas int
	// Storage of both buckets (default jetstream.FileStorage: survives restarts).
	Storage jetstream.StorageType
}

// Default bucket names.
const (
	DefaultBucket          = "payhook_dedupe"
	DefaultReferenceBucket = "payhook_refs"
)

// Store is the NATS key-value dedupe store.
type Store struct {
	cfg  Config
	kv   jetstream.KeyValue
	refs jetstream.KeyValue
}

var (
	_ dedupe.Store      = (*Store)(nil)
	_ dedupe.References = (*Store)(nil)
)

// New creates (or updates to cfg) both buckets and returns the store. It
// fails, wrapping dedupe.ErrUnavailable, when JetStream does not answer.
func New(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	if cfg.Bucket == "" {
		cfg.Bucket = DefaultBucket
	}
	if cfg.ReferenceBucket == "" {
		cfg.ReferenceBucket = DefaultReferenceBucket
	}
	if cfg.Window == 0 {
		cfg.Window = dedupe.DefaultWindow
	}
	if cfg.ReferenceTTL == 0 {
		cfg.ReferenceTTL = dedupe.DefaultReferenceTTL
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = dedupe.DefaultTimeout
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	switch {
	case cfg.Window < 100*time.Millisecond || cfg.ReferenceTTL < 100*time.Millisecond:
		return nil, errors.New("kvdedupe: window and reference TTL must be at least 100ms")
	case cfg.Timeout < 0 || cfg.Replicas < 0:
		return nil, errors.New("kvdedupe: negative timeout or replicas")
	case cfg.Bucket == cfg.ReferenceBucket:
		return nil, errors.New("kvdedupe: events and references need two buckets (different TTLs)")
	}
	s := &Store{cfg: cfg}
	var err error
	if s.kv, err = s.bucket(ctx, js, cfg.Bucket, cfg.Window, "payhook dedupe: published events and order states"); err != nil {
		return nil, err
	}
	if s.refs, err = s.bucket(ctx, js, cfg.ReferenceBucket, cfg.ReferenceTTL, "payhook dedupe: claimed bank references"); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) bucket(ctx context.Context, js jetstream.JetStream, name string, ttl time.Duration, desc string) (jetstream.KeyValue, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*s.cfg.Timeout) // creating a stream takes longer than a get
	defer cancel()
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:       name,
		Description:  desc,
		History:      1,
		TTL:          ttl,
		MaxValueSize: 1024,
		Storage:      s.cfg.Storage,
		Replicas:     s.cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: kvdedupe: bucket %s: %w", dedupe.ErrUnavailable, name, err)
	}
	return kv, nil
}

var b64 = base64.RawURLEncoding

func orderKey(o dedupe.Order) string {
	d := codec.Order(o)
	return "o." + b64.EncodeToString(d[:])
}

func refKey(account, reference string) string {
	d := codec.Reference(account, reference)
	return b64.EncodeToString(d[:])
}

// Check implements dedupe.Store: one Get.
func (s *Store) Check(ctx context.Context, id string, o dedupe.Order) (dedupe.Check, error) {
	if err := dedupe.ValidateCheck(id, o); err != nil {
		return dedupe.Check{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	e, _, err := s.get(ctx, orderKey(o))
	if err != nil {
		return dedupe.Check{}, err
	}
	c := dedupe.Check{Published: e.Published(codec.ID(id))}
	if c.Order, err = e.Order(); err != nil {
		return dedupe.Check{}, unavailable(err)
	}
	return c, nil
}

// get reads an order's entry and its revision (0 when absent).
func (s *Store) get(ctx context.Context, key string) (codec.Entry, uint64, error) {
	kve, err := s.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return codec.Entry{}, 0, nil
	case err != nil:
		return codec.Entry{}, 0, unavailable(err)
	}
	e, err := codec.ParseEntry(kve.Value())
	if err != nil {
		return codec.Entry{}, 0, unavailable(err)
	}
	return e, kve.Revision(), nil
}

// Record implements dedupe.Store.
func (s *Store) Record(ctx context.Context, id string, o dedupe.Order, status events.Status) error {
	_, err := s.RecordPrior(ctx, id, o, status)
	return err
}

// RecordPrior implements dedupe.Store: a compare-and-set loop on the order's
// entry. The prior state it returns is the one read in the round that
// wrote (or found nothing to write), so it is atomic with the write.
func (s *Store) RecordPrior(ctx context.Context, id string, o dedupe.Order, status events.Status) (dedupe.OrderState, error) {
	if err := dedupe.ValidateRecord(id, o, status); err != nil {
		return dedupe.OrderState{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	key := orderKey(o)
	for {
		e, rev, err := s.get(ctx, key)
		if err != nil {
			return dedupe.OrderState{}, err
		}
		before := e.Bytes()
		prior, err := e.Record(id, status)
		if err != nil {
			return dedupe.OrderState{}, unavailable(err)
		}
		after := e.Bytes()
		if rev != 0 && bytes.Equal(before, after) {
			// Nothing to change (a replica already recorded it). Skipping the
			// write keeps 50 racing replicas from retrying 50 times; the
			// window then counts from the last change, not the last call.
			return prior, nil
		}
		if rev == 0 {
			_, err = s.kv.Create(ctx, key, after)
		} else {
			_, err = s.kv.Update(ctx, key, after, rev)
		}
		switch {
		case err == nil:
			return prior, nil
		case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			// Another writer got there first: read again after a short
			// random pause (0–2 ms) so that racers spread out.
			select {
			case <-time.After(time.Duration(rand.Int64N(int64(2 * time.Millisecond)))):
			case <-ctx.Done():
				return dedupe.OrderState{}, unavailable(ctx.Err())
			}
		default:
			return dedupe.OrderState{}, unavailable(err)
		}
	}
}

// ClaimReference implements dedupe.References.
func (s *Store) ClaimReference(ctx context.Context, account, reference, merchantOrderID string) (string, bool, error) {
	if err := dedupe.ValidateReference(account, reference, merchantOrderID); err != nil {
		return "", false, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	key := refKey(account, reference)
	for {
		_, err := s.refs.Create(ctx, key, []byte(merchantOrderID))
		switch {
		case err == nil:
			return merchantOrderID, true, nil
		case !errors.Is(err, jetstream.ErrKeyExists):
			return "", false, unavailable(err)
		}
		kve, err := s.refs.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			continue // released or expired in between: try again
		case err != nil:
			return "", false, unavailable(err)
		}
		owner := string(kve.Value())
		return owner, owner == merchantOrderID, nil
	}
}

// ReleaseReference implements dedupe.References.
func (s *Store) ReleaseReference(ctx context.Context, account, reference, merchantOrderID string) error {
	if err := dedupe.ValidateReference(account, reference, merchantOrderID); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	key := refKey(account, reference)
	kve, err := s.refs.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil
	case err != nil:
		return unavailable(err)
	case string(kve.Value()) != merchantOrderID:
		return nil
	}
	err = s.refs.Delete(ctx, key, jetstream.LastRevision(kve.Revision()))
	if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
		return unavailable(err)
	}
	return nil // a mismatch: the claim changed hands in between and is not ours to drop
}

// Ping implements dedupe.Store: reads the events bucket's status.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	_, err := s.kv.Status(ctx)
	return unavailable(err)
}

// Close implements dedupe.Store; the NATS connection belongs to the caller.
func (s *Store) Close() error { return nil }

func unavailable(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: nats kv: %w", dedupe.ErrUnavailable, err)
}
