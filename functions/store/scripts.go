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
// The claim holds the record id and a fingerprint of the command, so the same claim
// with a different command is refused instead of answered with the wrong record.
//
// ARGV: id, type, text, createdAt, idempotency TTL in ms, record key prefix,
// doc before seq, doc after seq, command fingerprint
// Returns {created 1|0, id, seq, type, text, createdAt}, or {2, id} when the claim
// is held by a different command.
var createScript = redis.NewScript(`
local idem = KEYS[2]
if idem ~= '' then
  local prior = redis.call('GET', idem)
  if prior then
    local id, fp = string.match(prior, '^(%S+) (%S*)$')
    if id and fp ~= ARGV[9] then
      return {2, id}
    end
    local h = redis.call('HMGET', ARGV[6] .. (id or prior), 'id', 'seq', 'type', 'text', 'createdAt')
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
  redis.call('SET', idem, ARGV[1] .. ' ' .. ARGV[9], 'PX', ARGV[5])
end
return {1, ARGV[1], tostring(seq), ARGV[2], ARGV[3], ARGV[4]}
`)

// pageScript returns one page of record documents, newest first, in one round trip.
// With one index it takes the ids straight from it; with several (a type and words,
// or words) it walks the smallest downwards from the cursor and keeps the ids that
// every other index also holds, so a search costs what the page costs, not what the
// store holds. It only reads, so replicas run it (EVALSHA_RO). One script call costs
// Redis a little more than the same commands pipelined, and saves the function a
// whole round trip, which is the larger cost per request.
//
// KEYS: seq, index keys... (at least one)
// ARGV: upper bound ("+inf" or "(seq"), limit, scan budget, record key prefix
// Returns {replicaSeq, nextCursor ("" at the end), doc, doc, ...}.
var pageScript = redis.NewScript(`
local seq = redis.call('GET', KEYS[1]) or '0'
local n = #KEYS
local limit = tonumber(ARGV[2])
local ids = {}
local nextCursor = ''
if n == 2 then
  if ARGV[1] == '+inf' then
    ids = redis.call('ZRANGE', KEYS[2], 0, limit, 'REV')
  else
    ids = redis.call('ZRANGE', KEYS[2], ARGV[1], '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, limit + 1)
  end
  if #ids > limit then
    ids[#ids] = nil
    nextCursor = redis.call('ZSCORE', KEYS[2], ids[limit])
  end
else
  local main = 2
  local best = -1
  for i = 2, n do
    local c = redis.call('ZCARD', KEYS[i])
    if c == 0 then return {seq, ''} end
    if best < 0 or c < best then best = c; main = i end
  end
  local max = ARGV[1]
  local budget = tonumber(ARGV[3])
  local batch = math.max(4 * limit, 100)
  local last = nil
  local done = false
  while not done do
    local got = redis.call('ZRANGE', KEYS[main], max, '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, batch, 'WITHSCORES')
    for j = 1, #got, 2 do
      local id, score = got[j], got[j + 1]
      local ok = true
      for i = 2, n do
        if i ~= main and not redis.call('ZSCORE', KEYS[i], id) then ok = false; break end
      end
      if ok then
        if #ids == limit then
          nextCursor = last
          done = true
          break
        end
        ids[#ids + 1] = id
        last = score
      end
      max = '(' .. score
      budget = budget - 1
      if budget <= 0 then
        -- Out of budget: hand back a cursor below the last entry examined.
        nextCursor = score
        done = true
        break
      end
    end
    if #got < 2 * batch then done = true end
  end
end
local out = {seq, nextCursor}
for i = 1, #ids do
  local d = redis.call('HGET', ARGV[4] .. ids[i], 'doc')
  if d then out[#out + 1] = d end
end
return out
`)
