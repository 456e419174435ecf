-- Takes the oldest entries of one partition's outbox for the relay that holds the
-- partition's lease, in one step; see outbox.go. The lease is taken when it is free
-- and renewed when the caller holds it; an entry's delivery count goes up as it is
-- taken, so an entry taken again after its relay died counts as redelivered.
local leaseKey, outboxKey, triesKey, docsKey, epochKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local owner, leaseMs, count = ARGV[1], ARGV[2], tonumber(ARGV[3])

local holder = redis.call('GET', leaseKey)
if holder and holder ~= owner then
  return {'held', holder}
end
redis.call('SET', leaseKey, owner, 'PX', leaseMs)
local out = {'ok', redis.call('GET', epochKey) or '', redis.call('XLEN', outboxKey)}
local entries = redis.call('XRANGE', outboxKey, '-', '+', 'COUNT', count)
for _, e in ipairs(entries) do
  local entryID, fields = e[1], e[2]
  local rid, ms = '', '0'
  for i = 1, #fields, 2 do
    if fields[i] == 'id' then rid = fields[i + 1] elseif fields[i] == 't' then ms = fields[i + 1] end
  end
  local seq = tonumber(string.match(entryID, '^(%d+)'))
  local tries = redis.call('HINCRBY', triesKey, entryID, 1)
  local doc = redis.call('HGET', docsKey, struct.pack('>I4', seq)) or ''
  out[#out + 1] = entryID
  out[#out + 1] = rid
  out[#out + 1] = ms
  out[#out + 1] = tostring(tries)
  out[#out + 1] = doc
end
return out
