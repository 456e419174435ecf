-- Returns one page of record documents, newest first, in one round trip; see page.go.
-- It only reads, so replicas run it (EVALSHA_RO). Its work is bounded by a budget,
-- whatever the query.
local seqKey = KEYS[1]
local firstIndex = 2 -- KEYS[2..]: the indexes every record of the page must be in
local before, limit, budget = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local docPrefix, minSeq = ARGV[4], tonumber(ARGV[5])
local W = 4       -- bytes per index entry: one seq, big-endian; entries ascend
local chunk = 64  -- entries read at once from an index

local seq = redis.call('GET', seqKey) or '0'
if tonumber(seq) < minSeq then
  -- This Redis has not applied minSeq yet: its page would not do, so do no work.
  return {seq, '', '0'}
end
if before == 0 then before = nil end

-- An index L is {key, pos}: pos is the highest position still to look at, and
-- L.vals caches the entries at positions L.lo, L.lo + 1, ...

-- at returns the entry at position p of L, reading the chunk that ends at p when it
-- is not cached. Each read spends one unit of the budget.
local function at(L, p)
  local lo = L.lo
  if lo and p >= lo and p < lo + #L.vals then return L.vals[p - lo + 1] end
  local from = p - chunk + 1
  if from < 0 then from = 0 end
  budget = budget - 1
  local s = redis.call('GETRANGE', L.key, from * W, p * W + W - 1)
  local vals = {}
  for j = 1, #s, W do
    vals[#vals + 1] = struct.unpack('>I4', s, j)
  end
  L.lo, L.vals = from, vals
  return vals[p - from + 1]
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

local ids = {} -- the page's entries as stored (4 bytes each), which end their documents' keys
local nextCursor = ''
local cut = '0'
if #KEYS == firstIndex then
  -- One index: the page is the limit + 1 entries below the cursor.
  local L = {key = KEYS[firstIndex]}
  L.pos = redis.call('STRLEN', L.key) / W - 1
  local top = L.pos >= 0
  if top and before then top = seek(L, before - 1) end
  if top then
    local p = L.pos
    local from = math.max(0, p - limit)
    local s = redis.call('GETRANGE', L.key, from * W, p * W + W - 1)
    -- The entries themselves end the documents' keys: no decoding but for the cursor.
    for j = #s - W + 1, 1, -W do
      ids[#ids + 1] = string.sub(s, j, j + W - 1)
    end
    if #ids > limit then
      ids[#ids] = nil
      nextCursor = tostring((struct.unpack('>I4', ids[limit])))
    end
  end
else
  -- Several indexes: walk the smallest one down from the cursor; each entry is
  -- sought in the others, and an index that misses it says where the next candidate
  -- can be (its own next entry below), so runs that cannot match are skipped whole.
  -- Each entry walked, each index probed and each read spends one unit of the
  -- budget; when it runs out, the page ends with a cursor below what was examined,
  -- and says it was cut.
  local lists = {}
  for i = firstIndex, #KEYS do
    local n = redis.call('STRLEN', KEYS[i]) / W
    if n == 0 then return {seq, '', '0'} end
    lists[#lists + 1] = {key = KEYS[i], pos = n - 1, n = n}
  end
  budget = budget - #lists
  table.sort(lists, function(a, b) return a.n < b.n end)
  local main = table.remove(lists, 1)
  local others = lists
  local target = before and (before - 1) or math.huge
  local last = nil -- the last match, as a number
  while true do
    local cand = seek(main, target)
    if not cand then break end
    budget = budget - 1
    local below, ended = nil, false
    for k = 1, #others do
      budget = budget - 1
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
      if #ids == limit then
        nextCursor = tostring(last)
        break
      end
      last = cand
      ids[#ids + 1] = struct.pack('>I4', cand)
      target = cand - 1
    else
      target = below -- nothing in (below, cand] is in every index
    end
    if budget <= 0 then
      if target >= 1 then
        nextCursor = tostring(target + 1)
        if #ids < limit then cut = '1' end
      end
      break
    end
  end
end
local out = {seq, nextCursor, cut}
if #ids > 0 then
  local keys = {}
  for i = 1, #ids do keys[i] = docPrefix .. ids[i] end
  local docs = redis.call('MGET', unpack(keys))
  for i = 1, #docs do
    if docs[i] then out[#out + 1] = docs[i] end
  end
end
return out
