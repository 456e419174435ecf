-- Returns one page of record documents, newest first, in one round trip; see page.go.
-- It only reads, so replicas run it (EVALSHA_RO).
local seqKey = KEYS[1]
local firstIndex = 2 -- KEYS[2..]: the indexes every record of the page must be in
local upper, limit, budget, recordPrefix = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]

local seq = redis.call('GET', seqKey) or '0'
local ids = {}
local nextCursor = ''
if #KEYS == firstIndex then
  -- One index: the page is a range of it.
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
  -- Several indexes: walk the smallest downwards from the cursor and keep the ids
  -- that every other index also holds.
  local main = firstIndex
  local best = -1
  for i = firstIndex, #KEYS do
    local c = redis.call('ZCARD', KEYS[i])
    if c == 0 then return {seq, ''} end
    if best < 0 or c < best then best = c; main = i end
  end
  local max = upper
  local batch = math.max(4 * limit, 100)
  local last = nil
  local done = false
  while not done do
    local got = redis.call('ZRANGE', KEYS[main], max, '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, batch, 'WITHSCORES')
    for j = 1, #got, 2 do
      local id, score = got[j], got[j + 1]
      local ok = true
      for i = firstIndex, #KEYS do
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
  local d = redis.call('HGET', recordPrefix .. ids[i], 'doc')
  if d then out[#out + 1] = d end
end
return out
