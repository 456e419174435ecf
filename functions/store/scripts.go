package store

import "github.com/redis/go-redis/v9"

// createScript claims the idempotency key, takes the next seq and writes the record
// hash and every index in one atomic step, so replicas never see a partial record.
//
// The hash also holds doc, the record as the read side serves it (JSON), so a page
// is a few HGETs and no decoding: the read model, precomputed at write time. The
// caller sends doc in two halves around the seq, which only the script knows.
//
// KEYS: seq, idem claim ("" for none), record hash, all index, type index, word indexes...
// ARGV: id, type, text, createdAt, idempotency TTL in ms, record key prefix,
// doc before seq, doc after seq
// Returns {created 1|0, id, seq, type, text, createdAt}.
var createScript = redis.NewScript(`
local idem = KEYS[2]
if idem ~= '' then
  local prior = redis.call('GET', idem)
  if prior then
    local h = redis.call('HMGET', ARGV[6] .. prior, 'id', 'seq', 'type', 'text', 'createdAt')
    if h[1] then
      return {0, h[1], h[2], h[3], h[4], h[5]}
    end
  end
end
local seq = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[3], 'id', ARGV[1], 'seq', seq, 'type', ARGV[2], 'text', ARGV[3], 'createdAt', ARGV[4],
  'doc', ARGV[7] .. seq .. ARGV[8])
for i = 4, #KEYS do
  redis.call('ZADD', KEYS[i], seq, ARGV[1])
end
if idem ~= '' then
  redis.call('SET', idem, ARGV[1], 'PX', ARGV[5])
end
return {1, ARGV[1], tostring(seq), ARGV[2], ARGV[3], ARGV[4]}
`)

// searchScript finds one page of record ids for a search, newest first. It walks
// the smallest of the given indexes downwards from the cursor and keeps the ids that
// every other index also holds, so a search costs what the page costs, not what the
// store holds. It only reads, so replicas run it (EVALSHA_RO).
//
// KEYS: seq, index keys... (at least two)
// ARGV: upper bound ("+inf" or "(seq"), limit, scan budget
// Returns {replicaSeq, nextCursor ("" at the end), id, id, ...}.
var searchScript = redis.NewScript(`
local seq = redis.call('GET', KEYS[1]) or '0'
local n = #KEYS
local main = 2
local best = -1
for i = 2, n do
  local c = redis.call('ZCARD', KEYS[i])
  if c == 0 then return {seq, ''} end
  if best < 0 or c < best then best = c; main = i end
end
local max = ARGV[1]
local limit = tonumber(ARGV[2])
local budget = tonumber(ARGV[3])
local batch = math.max(4 * limit, 100)
local out = {seq, ''}
local found = 0
local last = nil
while true do
  local got = redis.call('ZRANGE', KEYS[main], max, '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, batch, 'WITHSCORES')
  for j = 1, #got, 2 do
    local id, score = got[j], got[j + 1]
    local ok = true
    for i = 2, n do
      if i ~= main and not redis.call('ZSCORE', KEYS[i], id) then ok = false; break end
    end
    if ok then
      if found == limit then
        out[2] = last
        return out
      end
      found = found + 1
      out[#out + 1] = id
      last = score
    end
    max = '(' .. score
    budget = budget - 1
    if budget <= 0 then
      -- Out of budget: hand back a cursor below the last entry examined.
      out[2] = score
      return out
    end
  end
  if #got < 2 * batch then return out end
end
`)
