// Package codec holds the compact binary forms the dedupe stores share:
// 16-byte digests for event ids, orders and references, and the encoding of
// an order's state. Keeping ids as 16 raw bytes instead of 36 characters is
// most of what keeps a tracked event under 200 bytes in Redis.
package codec

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/payhook/payhook/pkg/dedupe"
	"github.com/payhook/payhook/pkg/events"
)

// Size is the length of every digest: 128 bits, so that collisions among
// even 10^12 tracked keys have probability ~10^-15.
const Size = 16

// ErrCorrupt reports a stored value this package did not write.
var ErrCorrupt = errors.New("corrupt dedupe value")

// ID returns the 16 bytes that stand for an event id: the id's own 16 bytes
// when it has payhook's "evt_" + 32 hex form, else a digest of it.
func ID(id string) [Size]byte {
	var out [Size]byte
	if dedupe.IsEventID(id) {
		_, _ = hex.Decode(out[:], []byte(id[4:]))
		return out
	}
	return digest("id", id)
}

// Order returns the digest of an order key.
func Order(o dedupe.Order) [Size]byte {
	return digest("order", o.Provider, o.Account, string(o.Kind), o.Key)
}

// Reference returns the digest of a bank reference within an account.
func Reference(account, reference string) [Size]byte {
	return digest("ref", account, reference)
}

func digest(parts ...string) [Size]byte {
	// Every lookup digests its key: the parts are gathered on the stack
	// (spilling to the heap only past 512 bytes) and hashed in one call.
	var buf [512]byte
	b := buf[:0]
	for _, p := range parts {
		// Length-prefix each part so ("a","bc") and ("ab","c") differ.
		b = strconv.AppendInt(b, int64(len(p)), 10)
		b = append(b, ':')
		b = append(b, p...)
	}
	sum := sha256.Sum256(b)
	var out [Size]byte
	copy(out[:], sum[:])
	return out
}

// Status letters: lower case when the id that follows is 16 raw bytes of an
// "evt_" id, upper case when the id follows verbatim.
var statusByte = map[events.Status]byte{
	events.StatusPending:   'p',
	events.StatusSucceeded: 's',
	events.StatusFailed:    'f',
}

// EncodeState renders (status, id) as a status letter and the id: 17 bytes
// for payhook's own ids.
func EncodeState(status events.Status, id string) []byte {
	b := statusByte[status]
	if dedupe.IsEventID(id) {
		raw := ID(id)
		return append([]byte{b}, raw[:]...)
	}
	return append([]byte{b - 'a' + 'A'}, id...)
}

// DecodeState parses what EncodeState wrote.
func DecodeState(b []byte) (dedupe.OrderState, error) {
	if len(b) < 2 {
		return dedupe.OrderState{}, fmt.Errorf("%w: state of %d bytes", ErrCorrupt, len(b))
	}
	letter, verbatim := b[0], false
	if letter >= 'A' && letter <= 'Z' {
		letter, verbatim = letter-'A'+'a', true
	}
	var st events.Status
	for s, l := range statusByte {
		if l == letter {
			st = s
		}
	}
	switch {
	case st == "":
		return dedupe.OrderState{}, fmt.Errorf("%w: status letter %q", ErrCorrupt, b[0])
	case verbatim:
		return dedupe.OrderState{Status: st, EventID: string(b[1:])}, nil
	case len(b) != 1+Size:
		return dedupe.OrderState{}, fmt.Errorf("%w: state of %d bytes", ErrCorrupt, len(b))
	}
	return dedupe.OrderState{Status: st, EventID: "evt_" + hex.EncodeToString(b[1:])}, nil
}

// MaxIDs bounds the extra published ids kept per order. payhook's ids are
// one per (order, status), so an order has at most 3; the bound only guards
// against callers inventing ids. The oldest is dropped first.
const MaxIDs = 8

// Entry is an order's stored value, the same bytes in Redis and NATS KV:
//
//	1 byte        length L of the state (0: none)
//	L bytes       EncodeState: status letter + event id (17 bytes for "evt_" ids)
//	16 bytes × n  the other published event ids of the order (ID form)
//
// The state's own id counts as published when it is a payhook id (its 16
// bytes are right there), so an order with one event costs 18 bytes; a
// verbatim id is also listed among the ids. The Lua script in redisdedupe
// mirrors Record byte for byte; the conformance suite holds both to it.
type Entry struct {
	State []byte
	IDs   [][Size]byte
}

// ParseEntry decodes an Entry; nil or empty means no entry.
func ParseEntry(b []byte) (Entry, error) {
	if len(b) == 0 {
		return Entry{}, nil
	}
	l := int(b[0])
	rest := b[1:]
	if len(rest) < l || (len(rest)-l)%Size != 0 {
		return Entry{}, fmt.Errorf("%w: entry of %d bytes", ErrCorrupt, len(b))
	}
	var e Entry
	if l > 0 {
		e.State = rest[:l]
		if _, err := DecodeState(e.State); err != nil {
			return Entry{}, err
		}
	}
	for ids := rest[l:]; len(ids) > 0; ids = ids[Size:] {
		e.IDs = append(e.IDs, [Size]byte(ids[:Size]))
	}
	return e, nil
}

// Bytes encodes e.
func (e Entry) Bytes() []byte {
	b := make([]byte, 0, 1+len(e.State)+len(e.IDs)*Size)
	b = append(b, byte(len(e.State)))
	b = append(b, e.State...)
	for _, id := range e.IDs {
		b = append(b, id[:]...)
	}
	return b
}

// stateID is the 16 bytes of the state's id when it is stored in that form.
func (e Entry) stateID() ([Size]byte, bool) {
	if len(e.State) == 1+Size && e.State[0] >= 'a' && e.State[0] <= 'z' {
		return [Size]byte(e.State[1:]), true
	}
	return [Size]byte{}, false
}

// Published reports whether the event id (ID form) was recorded.
func (e Entry) Published(id [Size]byte) bool {
	if sid, ok := e.stateID(); ok && sid == id {
		return true
	}
	for _, x := range e.IDs {
		if x == id {
			return true
		}
	}
	return false
}

// Order decodes the state; zero when none.
func (e Entry) Order() (dedupe.OrderState, error) {
	if len(e.State) == 0 {
		return dedupe.OrderState{}, nil
	}
	return DecodeState(e.State)
}

// Record marks id published and sets the state to (status, id) when the
// terminal rule (MayReplace) allows. It returns the state that stood before
// (zero when none): dedupe.Store.RecordPrior's answer. The Lua script in
// redisdedupe returns the same, as its encoded bytes.
func (e *Entry) Record(id string, status events.Status) (prior dedupe.OrderState, err error) {
	if prior, err = e.Order(); err != nil {
		return dedupe.OrderState{}, err
	}
	e.record(id, status)
	return prior, nil
}

func (e *Entry) record(id string, status events.Status) {
	raw := ID(id)
	if len(e.State) == 0 || e.State[0] == 'p' || e.State[0] == 'P' {
		if sid, ok := e.stateID(); ok && sid != raw {
			e.addID(sid) // the replaced state's id stays published
		}
		e.State = EncodeState(status, id)
		if _, ok := e.stateID(); ok {
			return
		}
	}
	if !e.Published(raw) {
		e.addID(raw)
	}
}

func (e *Entry) addID(id [Size]byte) {
	for _, x := range e.IDs {
		if x == id {
			return
		}
	}
	if len(e.IDs) == MaxIDs {
		e.IDs = e.IDs[1:]
	}
	e.IDs = append(e.IDs, id)
}

// MayReplace is the terminal rule: whether a recorded state (cur, possibly
// unknown) may be replaced by next. Only an unknown or pending state may be;
// a terminal one is kept, whether next is pending (stale) or the other
// terminal status (conflict: the first terminal status wins).
func MayReplace(cur dedupe.OrderState, next events.Status) bool {
	return !cur.Status.Terminal()
}
