package redisdedupe

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/payhook/payhook/pkg/dedupe/internal/codec"
)

// op is one Check or Record on its way to Redis.
type op struct {
	ctx   context.Context
	key   string
	id    string // 16 bytes
	state []byte // Record only; nil for Check
	done  chan result
}

type result struct {
	// value is, for a Check, the order's entry (nil when none); for a
	// Record, the encoded state the script found (empty when none).
	value []byte
	err   error
}

func newOp(ctx context.Context, key, id string, state []byte) *op {
	return &op{ctx: ctx, key: key, id: id, state: state, done: make(chan result, 1)}
}

// run executes op directly, or hands it to the batch workers, and waits at
// most Timeout.
func (s *Store) run(ctx context.Context, o *op) result {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	o.ctx = ctx
	if s.queue == nil {
		return s.direct(o)
	}
	select {
	case s.queue <- o:
	case <-ctx.Done():
		return result{err: unavailable(ctx.Err())}
	case <-s.stop:
		return result{err: unavailable(errClosed)}
	}
	select {
	case r := <-o.done:
		return r
	case <-ctx.Done():
		return result{err: unavailable(ctx.Err())}
	case <-s.stop:
		return result{err: unavailable(errClosed)}
	}
}

var errClosed = errors.New("store closed")

func (s *Store) direct(o *op) result {
	if o.state == nil {
		return getResult(s.rdb.Get(o.ctx, o.key))
	}
	return scriptResult(recordScript.Run(o.ctx, s.rdb, []string{o.key}, s.recordArgs(o)...))
}

func (s *Store) recordArgs(o *op) []any {
	return []any{o.id, o.state, s.cfg.Window.Milliseconds(), codec.MaxIDs}
}

// getResult turns a GET into a result: a missing key is no entry, not an error.
func getResult(cmd *redis.StringCmd) result {
	b, err := cmd.Bytes()
	if errors.Is(err, redis.Nil) {
		return result{}
	}
	return result{value: b, err: unavailable(err)}
}

// scriptResult turns the record script's reply (the prior state) into a result.
func scriptResult(cmd *redis.Cmd) result {
	v, err := cmd.Text()
	if err != nil {
		return result{err: unavailable(err)}
	}
	return result{value: []byte(v)}
}

// worker gathers waiting ops into one pipeline at a time until Close.
func (s *Store) worker() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	batch := make([]*op, 0, s.cfg.Batch)
	for {
		batch = batch[:0]
		select {
		case o := <-s.queue:
			batch = append(batch, o)
		case <-s.stop:
			return
		}
		deadline := time.Now().Add(s.cfg.BatchDelay)
	gather:
		for len(batch) < s.cfg.Batch {
			select {
			case o := <-s.queue:
				batch = append(batch, o)
				continue
			default:
			}
			wait := time.Until(deadline)
			if wait <= 0 {
				break gather
			}
			timer.Reset(wait)
			select {
			case o := <-s.queue:
				batch = append(batch, o)
				timer.Stop()
			case <-timer.C:
				break gather
			}
		}
		s.pipeline(batch)
	}
}

// pipeline sends the live ops of batch in one round trip and answers each.
func (s *Store) pipeline(batch []*op) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	defer cancel()
	pipe := s.rdb.Pipeline()
	live := batch[:0]
	cmds := make([]redis.Cmder, 0, len(batch))
	for _, o := range batch {
		if err := o.ctx.Err(); err != nil { // the caller gave up already
			o.done <- result{err: unavailable(err)}
			continue
		}
		live = append(live, o)
		if o.state == nil {
			cmds = append(cmds, pipe.Get(ctx, o.key))
		} else {
			cmds = append(cmds, pipe.EvalSha(ctx, recordScript.Hash(), []string{o.key}, s.recordArgs(o)...))
		}
	}
	if len(live) == 0 {
		return
	}
	_, _ = pipe.Exec(ctx) // errors are per command
	for i, o := range live {
		switch cmd := cmds[i].(type) {
		case *redis.StringCmd:
			o.done <- getResult(cmd)
		case *redis.Cmd:
			if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") { // script cache flushed (restart): load it
				cmd = recordScript.Run(ctx, s.rdb, []string{o.key}, s.recordArgs(o)...)
			}
			o.done <- scriptResult(cmd)
		}
	}
}
