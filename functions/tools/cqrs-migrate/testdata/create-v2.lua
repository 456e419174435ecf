-- Stores one record atomically: claims the idempotency key, takes the next seq, stores
-- the record's document under it and appends the seq to every index, so a replica
-- never sees half a record. The caller (create.go) binds the arguments; their names
-- here are theirs there.
local seqKey, claimKey = KEYS[1], KEYS[2]
local firstIndex = 3 -- KEYS[3..]: the all index, the type index, the word indexes
local tag, docTail, claimTTL = ARGV[1], ARGV[2], ARGV[3]
local docPrefix, aliasKey, fingerprint = ARGV[4], ARGV[5], ARGV[6]
local maxSeq = 4294967295 -- an index entry holds 4 bytes

-- The document of the record with id, or nil: the id's seq finds it (an id stored by
-- the old layout, through the alias hash), and its id must be this one.
local function docOf(id)
  local seq = string.match(id, '^([1-9]%d*)%-')
  if not seq then seq = redis.call('HGET', aliasKey, id) end
  if not seq then return nil end
  local doc = redis.call('GET', docPrefix .. struct.pack('>I4', tonumber(seq)))
  local head = '{"id":"' .. id .. '"'
  if doc and string.sub(doc, 1, #head) == head then return doc end
  return nil
end

if claimKey ~= '' then
  local prior = redis.call('GET', claimKey)
  if prior then
    -- A claim holds "<record id> <fingerprint of the command>".
    local priorID, priorPrint = string.match(prior, '^(%S+) (%S*)$')
    if priorID and priorPrint ~= fingerprint then
      return {2, priorID}
    end
    local doc = docOf(priorID or prior)
    if doc then return {0, doc} end
  end
end
local seq = redis.call('INCR', seqKey)
if seq > maxSeq then
  redis.call('DECR', seqKey)
  return redis.error_reply('ERR the store holds its maximum number of records')
end
local id = seq .. '-' .. tag
local entry = struct.pack('>I4', seq)
redis.call('SET', docPrefix .. entry, '{"id":"' .. id .. '","seq":' .. seq .. docTail)
for i = firstIndex, #KEYS do
  redis.call('APPEND', KEYS[i], entry)
end
if claimKey ~= '' then
  redis.call('SET', claimKey, id .. ' ' .. fingerprint, 'PX', claimTTL)
end
return {1, seq}
