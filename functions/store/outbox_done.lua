-- Settles what a relay did with the entries it took, in one step; see outbox.go.
-- ARGV[2] entries were published: they leave the outbox. The next ARGV[3] were not
-- tried (the relay stopped before them): their delivery count goes back down. The
-- rest were refused too often: they move to the dead-letter stream, with the reason.
-- Publishing is settled whoever holds the lease now: an entry out is out.
local outboxKey, triesKey, deadKey, leaseKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local owner, published, untried = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local reason, deadMax, leaseMs = ARGV[4], ARGV[5], ARGV[6]
local first = 7 -- ARGV[7..]: entry id, record id, delivery count, per entry

local i = first
for _ = 1, published do
  redis.call('XDEL', outboxKey, ARGV[i])
  redis.call('HDEL', triesKey, ARGV[i])
  i = i + 3
end
for _ = 1, untried do
  if redis.call('HINCRBY', triesKey, ARGV[i], -1) <= 0 then redis.call('HDEL', triesKey, ARGV[i]) end
  i = i + 3
end
while i + 2 <= #ARGV do
  redis.call('XADD', deadKey, 'MAXLEN', '~', deadMax, '*', 'entry', ARGV[i], 'id', ARGV[i + 1],
    'attempts', ARGV[i + 2], 'reason', reason)
  redis.call('XDEL', outboxKey, ARGV[i])
  redis.call('HDEL', triesKey, ARGV[i])
  i = i + 3
end
if redis.call('GET', leaseKey) == owner then
  redis.call('PEXPIRE', leaseKey, leaseMs)
end
return redis.call('XLEN', outboxKey)
