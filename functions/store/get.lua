-- Returns one record's document and where this Redis has got in the record's
-- partition, in one read-only step; see get.go.
local seqKey, epochKey, docsKey, aliasKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, field, minSeq, wantEpoch = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]

local seq = redis.call('GET', seqKey) or '0'
local epoch = redis.call('GET', epochKey) or ''
if wantEpoch ~= '' and epoch ~= wantEpoch then return {seq, epoch, 'other', ''} end
if tonumber(seq) < minSeq then return {seq, epoch, 'behind', ''} end
local recordSeq = nil
if field == '' then
  -- An id stored by layout 1: the alias hash holds its seq.
  recordSeq = redis.call('HGET', aliasKey, id)
  if not recordSeq then return {seq, epoch, 'ok', ''} end
  field = struct.pack('>I4', tonumber(recordSeq))
else
  recordSeq = struct.unpack('>I4', field)
end
local doc = redis.call('HGET', docsKey, field)
if not doc then
  -- Every seq up to the partition's has its document; one missing means this Redis
  -- holds part of the partition (it is moving between shards).
  if tonumber(recordSeq) <= tonumber(seq) then return {seq, epoch, 'moving', ''} end
  return {seq, epoch, 'ok', ''}
end
-- The document must be this id's: after a failover that rolled seq back, the seq
-- may hold another record, whose id has another tag.
local head = '{"id":"' .. id .. '",'
if string.sub(doc, 1, #head) ~= head then return {seq, epoch, 'ok', ''} end
return {seq, epoch, 'ok', doc}
