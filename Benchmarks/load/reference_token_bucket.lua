-- The reference distributed limiter the strict mode is measured against: the common Redis+Lua token
-- bucket, called with EVALSHA directly (as ../shared/anchors/redis_lua_token_bucket.sh measures it).
-- Token bucket, one Redis hash per bucket: fields t (tokens, may be fractional), ts (ms of last refill).
-- KEYS[1] = bucket key
-- ARGV[1] = rate      (tokens per second, > 0)
-- ARGV[2] = capacity  (max tokens, > 0)
-- ARGV[3] = now_ms    (caller's clock in ms; "0" = use the Redis server clock)
-- ARGV[4] = cost      (tokens this request takes, default 1)
-- returns {allowed (1/0), remaining (floor of tokens left), retry_after_ms (0 if allowed, -1 if never)}
local rate = tonumber(ARGV[1])
local cap  = tonumber(ARGV[2])
local now  = tonumber(ARGV[3])
local cost = tonumber(ARGV[4]) or 1
if not rate or rate <= 0 or not cap or cap <= 0 or not now or cost < 0 then
  return redis.error_reply("token_bucket: bad arguments")
end
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local h = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens, ts = tonumber(h[1]), tonumber(h[2])
if tokens == nil or ts == nil then
  tokens, ts = cap, now                       -- new (or expired) bucket starts full
elseif now > ts then                          -- refill; a clock that went backwards refills nothing
  tokens = math.min(cap, tokens + (now - ts) * rate / 1000)
  ts = now
end

local allowed, retry = 0, 0
if cost > cap then
  retry = -1                                  -- can never succeed
elseif tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  retry = math.ceil((cost - tokens) * 1000 / rate)
end

redis.call('HSET', KEYS[1], 't', tokens, 'ts', ts)
-- keep the key until the bucket would be full again (then it is equivalent to a missing key)
redis.call('PEXPIRE', KEYS[1], math.ceil((cap - tokens) * 1000 / rate) + 1000)
return {allowed, math.floor(tokens), retry}
