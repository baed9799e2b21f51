package redisdedupe

import (
	"github.com/redis/go-redis/v9"

	"github.com/payhook/payhook/pkg/dedupe"
	"github.com/payhook/payhook/pkg/dedupe/internal/codec"
)

// The scripts each touch one key, so they run unchanged on Redis Cluster.
var (
	// recordScript is codec.Entry.Record in Lua, byte for byte. KEYS[1]
	// order key; ARGV[1] event id (16 bytes); ARGV[2] encoded new state;
	// ARGV[3] window in ms; ARGV[4] codec.MaxIDs. Only an absent or pending
	// state ('p', or 'P' for a verbatim id) may be replaced: a terminal status
	// never goes back to pending and the first terminal status wins. Returns
	// the state it found (codec.EncodeState bytes; empty when none), which is
	// what RecordPrior reports.
	recordScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1]) or ''
local state, ids = '', ''
if #v > 0 then
  local l = string.byte(v, 1)
  state = string.sub(v, 2, 1 + l)
  ids = string.sub(v, 2 + l)
end
local function stateid(s)
  local c = string.byte(s, 1)
  if #s == 17 and c >= 97 and c <= 122 then return string.sub(s, 2) end
  return nil
end
local function listed(x)
  for i = 1, #ids, 16 do
    if string.sub(ids, i, i + 15) == x then return true end
  end
  return false
end
local function add(x)
  if listed(x) then return end
  if #ids >= 16 * tonumber(ARGV[4]) then ids = string.sub(ids, 17) end
  ids = ids .. x
end
local prior = state
local id = ARGV[1]
local c = string.byte(state, 1)
local done = false
if state == '' or c == 112 or c == 80 then
  local sid = stateid(state)
  if sid and sid ~= id then add(sid) end
  state = ARGV[2]
  done = stateid(state) ~= nil
end
if not done and stateid(state) ~= id then add(id) end
redis.call('SET', KEYS[1], string.char(#state) .. state .. ids, 'PX', ARGV[3])
return prior`)

	// claimScript: KEYS[1] reference key; ARGV[1] order id; ARGV[2] TTL in
	// ms. Returns the owner after the call.
	claimScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then return cur end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]`)

	// releaseScript: KEYS[1] reference key; ARGV[1] order id. Deletes only
	// the caller's own claim.
	releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)
)

func (s *Store) orderKey(o dedupe.Order) string {
	d := codec.Order(o)
	return s.cfg.Prefix + "o" + string(d[:])
}

func (s *Store) refKey(account, reference string) string {
	d := codec.Reference(account, reference)
	return s.cfg.Prefix + "r" + string(d[:])
}
