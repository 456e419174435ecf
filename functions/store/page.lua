-- Returns one page of one partition's record documents, newest first, in one round
-- trip; see page.go. It only reads, so replicas run it (EVALSHA_RO). Its work is
-- bounded twice, whatever the query: by a budget of units and by a time of its own,
-- read from this Redis' clock; either ends the page early with a cursor.
local seqKey, epochKey, docsKey = KEYS[1], KEYS[2], KEYS[3]
local firstIndex = 4 -- KEYS[4..]: the indexes every record of the page must be in
local before, limit, budget = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local maxMicros, minSeq, wantEpoch = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local W = 4       -- bytes per index entry: one seq, big-endian; entries ascend
local chunk = 64  -- entries read at once from an index
local CHUNK_COST = 4 -- units a chunk read costs: it costs Redis about four entry steps

local seq = redis.call('GET', seqKey) or '0'
local epoch = redis.call('GET', epochKey) or ''
if wantEpoch ~= '' and epoch ~= wantEpoch then
  -- Another history (or none yet): no page of it answers this request.
  return {seq, epoch, 'other', ''}
end
if tonumber(seq) < minSeq then
  -- This Redis has not applied minSeq yet: its page would not do, so do no work.
  return {seq, epoch, 'behind', ''}
end
if before == 0 then before = nil end

local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local deadline = now() + maxMicros
local sinceClock = 0 -- units spent since the clock was last read
-- spend takes n units; it is false once the budget or the time is used up. The clock
-- is read every 32 units, so the time bound is overrun by at most that much work.
local function spend(n)
  budget = budget - n
  sinceClock = sinceClock + n
  if sinceClock >= 32 then
    sinceClock = 0
    if now() >= deadline then budget = 0 end
  end
  return budget > 0
end

-- An index L is {key, pos}: pos is the highest position still to look at; L.raw
-- caches the entries at positions L.lo, L.lo + 1, ... as read, decoded on use.

-- at returns the entry at position p of L, reading the chunk that ends at p when it
-- is not cached.
local function at(L, p)
  local lo = L.lo
  if not (lo and p >= lo and p < lo + L.n) then
    lo = p - chunk + 1
    if lo < 0 then lo = 0 end
    spend(CHUNK_COST)
    L.raw = redis.call('GETRANGE', L.key, lo * W, p * W + W - 1)
    L.lo, L.n = lo, #L.raw / W
  end
  return (struct.unpack('>I4', L.raw, (p - lo) * W + 1))
end

-- seek moves L down to its highest entry at or below target and returns it, or nil
-- when L holds none. Entries are distinct seqs from 1 up, so the entry at position i
-- is at least i + 1: no position above target - 1 can hold one. Below that it
-- gallops down (1, 2, 4, ... entries) and then halves the gap.
local function seek(L, target)
  local hi = L.pos
  if hi > target - 1 then hi = target - 1 end
  if hi < 0 then L.pos = -1; return nil end
  local e = at(L, hi)
  if e <= target then L.pos = hi; return e end
  local step, lo = 1, nil
  while true do
    local q = hi - step
    if q < 0 then q = 0 end
    if at(L, q) <= target then lo = q; break end
    if q == 0 then L.pos = -1; return nil end
    hi = q
    step = step * 2
  end
  while hi - lo > 1 do
    local mid = math.floor((lo + hi) / 2)
    if at(L, mid) <= target then lo = mid else hi = mid end
  end
  L.pos = lo
  return at(L, lo)
end

local fields = {} -- the page's entries as stored (4 bytes each): the documents' fields
local nextCursor = ''
local status = 'ok'
if #KEYS == firstIndex then
  -- One index: the page is the limit + 1 entries below the cursor.
  local L = {key = KEYS[firstIndex], n = 0}
  L.pos = redis.call('STRLEN', L.key) / W - 1
  local top = L.pos >= 0
  if top and before then top = seek(L, before - 1) end
  if top then
    local p = L.pos
    local from = math.max(0, p - limit)
    local s = redis.call('GETRANGE', L.key, from * W, p * W + W - 1)
    for j = #s - W + 1, 1, -W do
      fields[#fields + 1] = string.sub(s, j, j + W - 1)
    end
    if #fields > limit then
      fields[#fields] = nil
      nextCursor = tostring((struct.unpack('>I4', fields[limit])))
    end
  end
else
  -- Several indexes: walk the smallest one down from the cursor; each entry is
  -- sought in the others, and an index that misses it says where the next candidate
  -- can be (its own next entry below), so runs that cannot match are skipped whole.
  -- Each entry walked and each index probed costs a unit, each read more; when the
  -- units or the time run out, the page ends with a cursor below what was examined,
  -- and says it was cut.
  local lists = {}
  for i = firstIndex, #KEYS do
    local n = redis.call('STRLEN', KEYS[i]) / W
    if n == 0 then return {seq, epoch, 'ok', ''} end
    lists[#lists + 1] = {key = KEYS[i], pos = n - 1, size = n, n = 0}
  end
  spend(#lists)
  table.sort(lists, function(a, b) return a.size < b.size end)
  local main = table.remove(lists, 1)
  local others = lists
  local target = before and (before - 1) or math.huge
  local last = nil -- the last match, as a number
  while true do
    local cand = seek(main, target)
    if not cand then break end
    local below, ended = nil, false
    for k = 1, #others do
      local e = seek(others[k], cand)
      if not e then ended = true; break end
      if e ~= cand then
        below = e
        -- An index that misses moves to the front: it is the likeliest to miss again.
        if k > 1 then table.insert(others, 1, table.remove(others, k)) end
        break
      end
    end
    if ended then break end -- an index holds nothing at or below cand: no more matches
    if below == nil then
      if #fields == limit then
        nextCursor = tostring(last)
        break
      end
      last = cand
      fields[#fields + 1] = struct.pack('>I4', cand)
      target = cand - 1
    else
      target = below -- nothing in (below, cand] is in every index
    end
    if not spend(1 + #others) then
      if target >= 1 then
        nextCursor = tostring(target + 1)
        if #fields < limit then status = 'cut' end
      end
      break
    end
  end
end
local out = {seq, epoch, status, nextCursor}
if #fields > 0 then
  local docs = redis.call('HMGET', docsKey, unpack(fields))
  for i = 1, #docs do
    if not docs[i] then
      -- Every entry has its document, written by the same script; one missing means
      -- this Redis holds part of the partition (it is moving between shards).
      return {seq, epoch, 'moving', ''}
    end
    out[#out + 1] = docs[i]
  end
end
return out
