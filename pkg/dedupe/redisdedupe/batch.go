package redisdedupe

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/payhook/payhook/pkg/dedupe/internal/codec"
)

// op is one Check or Record on its way to Redis.
type op struct {
	// ctx bounds a direct call; a batched op keeps its caller's context,
	// and deadline is when that caller stops waiting for it.
	ctx      context.Context
	deadline time.Time
	key      string
	id       string // 16 bytes
	state    []byte // Record only; nil for Check
	done     chan result
	timer    *time.Timer // the caller's wait, batched only
}

type result struct {
	// value is, for a Check, the order's entry (nil when none); for a
	// Record, the encoded state the script found (empty when none).
	value []byte
	err   error
}

// ops recycles batched ops with their channel and timer: every callback
// makes two. An op goes back only once its result was received, so the
// one send the worker makes per op can never reach its next user.
var ops = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &op{done: make(chan result, 1), timer: t}
}}

// run executes a Check (state nil) or Record of key directly, or hands it
// to the batch workers, and waits at most Timeout.
func (s *Store) run(ctx context.Context, key, id string, state []byte) result {
	if s.queue == nil {
		ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
		return s.direct(&op{ctx: ctx, key: key, id: id, state: state})
	}
	// A timer rather than context.WithTimeout: the worker only needs to
	// know whether the caller still waits (deadline), and a pooled timer
	// costs no allocation. Since Go 1.23, Stop and Reset leave no stale
	// tick in the channel.
	o := ops.Get().(*op)
	o.ctx, o.key, o.id, o.state = ctx, key, id, state
	o.deadline = time.Now().Add(s.cfg.Timeout)
	o.timer.Reset(s.cfg.Timeout)
	select {
	case s.queue <- o:
	case <-o.timer.C:
		return result{err: unavailable(context.DeadlineExceeded)}
	case <-ctx.Done():
		return result{err: unavailable(ctx.Err())}
	case <-s.stop:
		return result{err: unavailable(errClosed)}
	}
	select {
	case r := <-o.done:
		if !o.timer.Stop() {
			// Only under GODEBUG asynctimerchan=1 can a tick still wait
			// here; it must not time out the op's next use.
			select {
			case <-o.timer.C:
			default:
			}
		}
		o.ctx, o.state = nil, nil
		ops.Put(o)
		return r
	case <-o.timer.C:
		return result{err: unavailable(context.DeadlineExceeded)}
	case <-ctx.Done():
		return result{err: unavailable(ctx.Err())}
	case <-s.stop:
		return result{err: unavailable(errClosed)}
	}
}

// gone is why a batched op's caller no longer waits for it (its context
// ended or its deadline passed before now), or nil.
func (o *op) gone(now time.Time) error {
	if err := o.ctx.Err(); err != nil {
		return err
	}
	if !now.Before(o.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

var errClosed = errors.New("store closed")

func (s *Store) direct(o *op) result {
	if o.state == nil {
		return getResult(s.rdb.Get(o.ctx, o.key))
	}
	return scriptResult(recordScript.Run(o.ctx, s.rdb, []string{o.key}, s.recordArgs(o)...))
}

func (s *Store) recordArgs(o *op) []any {
	return []any{o.id, o.state, s.windowMS, codec.MaxIDs}
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
		// One timer per batch rather than per op waited for: it ends the
		// gathering BatchDelay after the batch's first op. Ops already
		// waiting are taken first, even past it.
		waiting := s.cfg.BatchDelay > 0
		if waiting {
			timer.Reset(s.cfg.BatchDelay)
		}
	gather:
		for len(batch) < s.cfg.Batch {
			select {
			case o := <-s.queue:
				batch = append(batch, o)
				continue
			default:
			}
			if !waiting {
				break
			}
			select {
			case o := <-s.queue:
				batch = append(batch, o)
			case <-timer.C:
				waiting = false
				break gather
			}
		}
		if waiting && !timer.Stop() {
			// Only under GODEBUG asynctimerchan=1 can a tick still wait here.
			select {
			case <-timer.C:
			default:
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
	now := time.Now()
	for _, o := range batch {
		if err := o.gone(now); err != nil { // the caller gave up already
			o.done <- result{err: unavailable(err)}
			continue
		}
		live = append(live, o)
		if o.state == nil {
			cmds = append(cmds, pipe.Get(ctx, o.key))
		} else {
			// EVALSHA written out, as EvalSha sends it (the key, argument
			// 3, named for Redis Cluster's routing as EvalSha names it),
			// with the constant arguments boxed once (FromClient): one
			// argument slice per record instead of three.
			cmd := redis.NewCmd(ctx, "evalsha", s.recordSHA, 1, o.key, o.id, o.state, s.windowMS, codec.MaxIDs)
			cmd.SetFirstKeyPos(3)
			_ = pipe.Process(ctx, cmd) // queued; its error is the command's, read below
			cmds = append(cmds, cmd)
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
			// HasErrorPrefix allocates even for a nil error: ask it only about an error.
			if err := cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") { // script cache flushed (restart): load it
				cmd = recordScript.Run(ctx, s.rdb, []string{o.key}, s.recordArgs(o)...)
			}
			o.done <- scriptResult(cmd)
		}
	}
}
