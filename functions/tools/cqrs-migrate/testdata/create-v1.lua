-- Stores one record atomically: claims the idempotency key, takes the next seq, and
-- writes the record hash and every index, so a replica never sees half a record.
-- The caller (create.go) binds the arguments; their names here are theirs there.
local seqKey, claimKey, recordKey = KEYS[1], KEYS[2], KEYS[3]
local firstIndex = 4 -- KEYS[4..]: the all index, the type index, the word indexes
local id, recordType, text, createdAt = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local claimTTL, recordPrefix = ARGV[5], ARGV[6]
local docBefore, docAfter, fingerprint = ARGV[7], ARGV[8], ARGV[9]

if claimKey ~= '' then
  local prior = redis.call('GET', claimKey)
  if prior then
    -- A claim holds "<record id> <fingerprint of the command>".
    local priorID, priorPrint = string.match(prior, '^(%S+) (%S*)$')
    if priorID and priorPrint ~= fingerprint then
      return {2, priorID}
    end
    local h = redis.call('HMGET', recordPrefix .. (priorID or prior), 'id', 'seq', 'type', 'text', 'createdAt')
    if h[1] then
      return {0, h[1], h[2], h[3], h[4], h[5]}
    end
  end
end
local seq = redis.call('INCR', seqKey)
redis.call('HSET', recordKey, 'id', id, 'seq', seq, 'type', recordType, 'text', text, 'createdAt', createdAt,
  'doc', docBefore .. seq .. docAfter)
for i = firstIndex, #KEYS do
  redis.call('ZADD', KEYS[i], seq, id)
end
if claimKey ~= '' then
  redis.call('SET', claimKey, id .. ' ' .. fingerprint, 'PX', claimTTL)
end
return {1, id, tostring(seq), recordType, text, createdAt}
