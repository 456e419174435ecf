-- Returns one page of record documents, newest first, in one round trip; see page.go.
-- It only reads, so replicas run it (EVALSHA_RO). Its work is bounded by a budget of
-- Redis calls, whatever the query.
local seqKey = KEYS[1]
local firstIndex = 2 -- KEYS[2..]: the indexes every record of the page must be in
local upper, limit, budget = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local recordPrefix, minSeq = ARGV[4], tonumber(ARGV[5])

local seq = redis.call('GET', seqKey) or '0'
if tonumber(seq) < minSeq then
  -- This Redis has not applied minSeq yet: its page would not do, so do no work.
  return {seq, '', '0'}
end
local ids = {}
local nextCursor = ''
local cut = '0'
if #KEYS == firstIndex then
  -- One index: the page is a range of it, at most limit + 1 entries.
  local index = KEYS[firstIndex]
  if upper == '+inf' then
    ids = redis.call('ZRANGE', index, 0, limit, 'REV')
  else
    ids = redis.call('ZRANGE', index, upper, '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, limit + 1)
  end
  if #ids > limit then
    ids[#ids] = nil
    nextCursor = redis.call('ZSCORE', index, ids[limit])
  end
else
  -- Several indexes: walk the smallest one downwards from the cursor and keep the
  -- ids that every other index also holds. Each entry walked and each index probed
  -- spends one unit of the budget; when it runs out, the page ends early with a
  -- cursor below the last entry walked, and says it was cut.
  local size, others = {}, {}
  local main = nil
  for i = firstIndex, #KEYS do
    local key = KEYS[i]
    size[key] = redis.call('ZCARD', key)
    if size[key] == 0 then return {seq, '', '0'} end
    if main == nil or size[key] < size[main] then main = key end
  end
  for i = firstIndex, #KEYS do
    if KEYS[i] ~= main then others[#others + 1] = KEYS[i] end
  end
  -- Probe the smallest index first: it is the likeliest to miss. An index that
  -- misses moves to the front, so a word that rules most entries out is asked first.
  table.sort(others, function(a, b) return size[a] < size[b] end)
  budget = budget - #KEYS
  local batch = math.max(4 * limit, 100)
  local max = upper
  local last = nil
  local done = false
  while not done do
    local want = math.max(1, math.min(batch, budget))
    local got = redis.call('ZRANGE', main, max, '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, want, 'WITHSCORES')
    budget = budget - 1
    local more = #got == 2 * want -- the index may hold more entries below these
    for j = 1, #got, 2 do
      local id, score = got[j], got[j + 1]
      budget = budget - 1
      local missed = nil
      for k = 1, #others do
        budget = budget - 1
        if not redis.call('ZSCORE', others[k], id) then missed = k; break end
      end
      if missed == nil then
        if #ids == limit then
          nextCursor = last
          done = true
          break
        end
        ids[#ids + 1] = id
        last = score
      elseif missed > 1 then
        table.insert(others, 1, table.remove(others, missed))
      end
      max = '(' .. score
      if budget <= 0 and (j + 1 < #got or more) then
        cut = '1'
        nextCursor = score
        done = true
        break
      end
    end
    if not more then done = true end
  end
end
local out = {seq, nextCursor, cut}
for i = 1, #ids do
  local d = redis.call('HGET', recordPrefix .. ids[i], 'doc')
  if d then out[#out + 1] = d end
end
return out
