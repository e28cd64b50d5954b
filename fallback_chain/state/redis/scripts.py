"""The Lua scripts behind the Redis stores: each check-and-change runs as one script, so it is
atomic across every worker. Times are seconds as floats, passed as strings (Lua numbers come
back from Redis truncated to integers). ``ARGV[1]`` is "now" from an injected clock, or empty
to use the Redis server's own clock (one clock for every machine)."""

from __future__ import annotations

NOW = """
local function now_s()
  if ARGV[1] ~= '' then return tonumber(ARGV[1]) end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
"""

# KEYS: breaker hash, probe lease. ARGV: now, reset_timeout_s, lease_ms, token.
# Returns {admission (0 reject, 1 pass, 2 probe), state, seconds until a probe, changed-from,
# failures counted so far}.
BREAKER_ADMIT = NOW + """
local now = now_s()
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'closed' then
  return {1, 'closed', '0', '', tonumber(redis.call('HGET', KEYS[1], 'failures') or '0')}
end
local changed = ''
if state == 'open' then
  local opened = tonumber(redis.call('HGET', KEYS[1], 'opened_at') or '0')
  local wait = opened + tonumber(ARGV[2]) - now
  if wait > 0 then return {0, 'open', tostring(wait), '', 0} end
  redis.call('HSET', KEYS[1], 'state', 'half-open')
  changed = 'open'
end
if redis.call('SET', KEYS[2], ARGV[4], 'NX', 'PX', ARGV[3]) then
  return {2, 'half-open', '0', changed, 0}
end
return {0, 'half-open', '0', changed, 0}
"""

# KEYS: breaker hash, probe lease. ARGV: now, admission, healthy ('1', '0' or ''), fail_max,
# token. Returns {} or {old, new} when the state changed.
BREAKER_RECORD = NOW + """
local admission = tonumber(ARGV[2])
if admission == 2 and redis.call('GET', KEYS[2]) == ARGV[5] then
  redis.call('DEL', KEYS[2])
end
local healthy = ARGV[3]
if admission == 0 or healthy == '' then return {} end
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if healthy == '1' then
  if state == 'closed' then
    redis.call('HSET', KEYS[1], 'failures', 0)
    return {}
  end
  if admission == 2 or state == 'half-open' then
    redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0)
    return {state, 'closed'}
  end
  return {}
end
if state == 'closed' then
  local n = redis.call('HINCRBY', KEYS[1], 'failures', 1)
  if n >= tonumber(ARGV[4]) then
    redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', tostring(now_s()), 'failures', 0)
    return {'closed', 'open'}
  end
elseif state == 'half-open' and admission == 2 then
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', tostring(now_s()))
  return {'half-open', 'open'}
end
return {}
"""

# KEYS: breaker hash, probe lease. Returns the state before.
BREAKER_RESET = """
local old = redis.call('HGET', KEYS[1], 'state') or 'closed'
redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0)
redis.call('DEL', KEYS[2])
return old
"""

# KEYS: cooldown. ARGV: now. Returns the seconds left ('0' when none).
COOLDOWN_REMAINING = NOW + """
local v = redis.call('GET', KEYS[1])
if not v then return '0' end
local left = tonumber(v) - now_s()
if left <= 0 then return '0' end
return tostring(left)
"""

# KEYS: cooldown. ARGV: now, seconds. Never shortens a running cooldown; the key expires with
# it. Returns the seconds left.
COOLDOWN_START = NOW + """
local now = now_s()
local untilv = now + tonumber(ARGV[2])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur > untilv then untilv = cur end
redis.call('SET', KEYS[1], tostring(untilv), 'PX', math.ceil((untilv - now) * 1000) + 1000)
return tostring(untilv - now)
"""

# KEYS: GCRA theoretical arrival time, in-flight leases (sorted set scored by expiry).
# ARGV: now, images, interval_s ('' for no rate), burst_images, max_in_flight ('' for none),
# lease id, lease_s. Returns '0' (granted), seconds until the rate allows it, or 'slot'.
CAPACITY_ACQUIRE = NOW + """
local now = now_s()
if ARGV[5] ~= '' then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then return 'slot' end
end
if ARGV[3] ~= '' then
  local interval = tonumber(ARGV[3])
  local images = tonumber(ARGV[2])
  local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
  if tat < now then tat = now end
  tat = tat + images * interval
  local burst = math.max(tonumber(ARGV[4]), images)
  local allow_at = tat - burst * interval
  if allow_at > now + 1e-9 then return tostring(allow_at - now) end
  redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil((tat - now) * 1000) + 1000)
end
if ARGV[5] ~= '' then redis.call('ZADD', KEYS[2], now + tonumber(ARGV[7]), ARGV[6]) end
return '0'
"""

# KEYS: GCRA time, in-flight leases. ARGV: images x interval_s ('' for none), lease id ('').
CAPACITY_REFUND = """
if ARGV[1] ~= '' then
  local tat = redis.call('GET', KEYS[1])
  if tat then redis.call('SET', KEYS[1], tostring(tonumber(tat) - tonumber(ARGV[1])), 'KEEPTTL') end
end
if ARGV[2] ~= '' then redis.call('ZREM', KEYS[2], ARGV[2]) end
return 1
"""

# KEYS: one hash per period (fields spent, reserved). ARGV: amount, then one cap per key,
# then the keys' lifetime in seconds. Returns 0, or the 1-based index of the key that does not
# fit (then nothing changes).
BUDGET_RESERVE = """
local amount = tonumber(ARGV[1])
for i, k in ipairs(KEYS) do
  local cap = tonumber(ARGV[i + 1])
  local spent = tonumber(redis.call('HGET', k, 'spent') or '0')
  local reserved = tonumber(redis.call('HGET', k, 'reserved') or '0')
  local used = spent + reserved
  if used >= cap or used + amount > cap then return i end
end
local ttl = ARGV[#KEYS + 2]
for _, k in ipairs(KEYS) do
  redis.call('HINCRBY', k, 'reserved', amount)
  redis.call('EXPIRE', k, ttl)
end
return 0
"""

# KEYS: the reservation's period hashes. ARGV: reserved, actual, lifetime in seconds.
# Returns the new spent totals.
BUDGET_SETTLE = """
local out = {}
for i, k in ipairs(KEYS) do
  if redis.call('HINCRBY', k, 'reserved', -tonumber(ARGV[1])) < 0 then
    redis.call('HSET', k, 'reserved', 0)
  end
  out[i] = redis.call('HINCRBY', k, 'spent', ARGV[2])
  redis.call('EXPIRE', k, ARGV[3])
end
return out
"""
