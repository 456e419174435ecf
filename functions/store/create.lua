-- Stores one record in one partition atomically: checks the claim and every limit,
-- then writes the epoch (once), the next seq, the document, one entry per index, the
-- claim and the outbox entry, so a replica never sees half a record and a refused
-- create changes nothing. The caller (create.go) binds the arguments; their names
-- here are theirs there. Every key it touches is in KEYS.
local seqKey, epochKey, partsKey, docsKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local claimKey, aliasKey, outboxKey = KEYS[5], KEYS[6], KEYS[7]
local allKey = KEYS[8] -- KEYS[8..]: the all index, the type index, the word indexes
local tag, fields, claimTTL, fingerprint = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local newEpoch, parts, maxBulk = ARGV[5], ARGV[6], tonumber(ARGV[7])
local outboxCap, idPrefix, hasClaim = tonumber(ARGV[8]), ARGV[9], ARGV[10] == '1'
local maxSeq = 4294967295 -- an index entry holds 4 bytes

-- The document of the record with id, or nil: the id's seq finds it (an id stored by
-- layout 1, through the alias hash), and its id must be this one.
local function docOf(id)
  local seq = string.match(id, '^' .. idPrefix .. '([1-9]%d*)%-')
  if not seq then seq = redis.call('HGET', aliasKey, id) end
  if not seq then return nil end
  local doc = redis.call('HGET', docsKey, struct.pack('>I4', tonumber(seq)))
  local head = '{"id":"' .. id .. '"'
  if doc and string.sub(doc, 1, #head) == head then return doc end
  return nil
end

local epoch = redis.call('GET', epochKey)
if hasClaim then
  local prior = redis.call('GET', claimKey)
  if prior then
    -- A claim holds "<record id> <fingerprint of the command>".
    local priorID, priorPrint = string.match(prior, '^(%S+) (%S*)$')
    if priorID and priorPrint ~= fingerprint then
      return {2, priorID}
    end
    local doc = docOf(priorID or prior)
    if doc then return {0, doc, epoch or ''} end
  end
end

-- Every limit before the first write: a create that cannot finish changes nothing.
local storedParts = redis.call('GET', partsKey)
if storedParts and storedParts ~= parts then
  return redis.error_reply('CQRSPARTS ' .. storedParts .. ' ' .. parts)
end
local seq = tonumber(redis.call('GET', seqKey) or '0') + 1
if seq > maxSeq then
  return redis.error_reply('CQRSLIMIT the partition holds its maximum of ' .. maxSeq .. ' records')
end
-- Every index is at most as long as the all index, which every record is in.
if redis.call('STRLEN', allKey) + 4 > maxBulk then
  return redis.error_reply('CQRSLIMIT an index of the partition has reached the largest string Redis takes (proto-max-bulk-len ' .. maxBulk .. ')')
end
if outboxCap > 0 and redis.call('XLEN', outboxKey) >= outboxCap then
  return redis.error_reply('CQRSOUTBOX the outbox holds ' .. outboxCap .. ' unpublished events')
end

-- rfc3339 formats a time (seconds and microseconds since 1970) as RFC 3339 in UTC
-- with six fractional digits: fixed width, so text order is time order.
-- (rfc3339 begins)
local function rfc3339(secs, usecs)
  local days = math.floor(secs / 86400)
  local sod = secs - days * 86400
  -- The civil date from days since 1970-01-01 (H. Hinnant's algorithm).
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local day = doy - math.floor((153 * mp + 2) / 5) + 1
  local month = mp < 10 and mp + 3 or mp - 9
  local year = yoe + era * 400 + (month <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%06dZ', year, month, day,
    math.floor(sod / 3600), math.floor(sod % 3600 / 60), sod % 60, usecs)
end
-- (rfc3339 ends)

-- The create time is this Redis' clock: one clock orders a partition's records.
local t = redis.call('TIME')
local createdAt = rfc3339(tonumber(t[1]), tonumber(t[2]))
local createdMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

if not epoch then
  epoch = newEpoch
  redis.call('SET', epochKey, epoch)
end
if not storedParts then redis.call('SET', partsKey, parts) end
redis.call('SET', seqKey, seq)
local id = idPrefix .. seq .. '-' .. tag
local entry = struct.pack('>I4', seq)
redis.call('HSET', docsKey, entry, '{"id":"' .. id .. '","seq":' .. seq .. ',' .. fields .. ',"createdAt":"' .. createdAt .. '"}')
for i = 8, #KEYS do
  redis.call('APPEND', KEYS[i], entry)
end
if hasClaim then
  redis.call('SET', claimKey, id .. ' ' .. fingerprint, 'PX', claimTTL)
end
if outboxCap > 0 then
  -- The entry's id is the seq, so entries go out in seq order and find their
  -- document; it holds the record id and the create time (for the oldest's age).
  redis.call('XADD', outboxKey, seq .. '-0', 'id', id, 't', createdMs)
end
return {1, seq, epoch, createdAt}
