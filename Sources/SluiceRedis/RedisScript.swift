import SluiceCore

/// The Lua that keeps global buckets in Redis: one function per algorithm, each serving leases, strict
/// decisions, peeks and returns, so a policy can move between leased and strict without a second format.
///
/// Every call reads the time from Redis (`TIME`), so sidecars' clocks never disagree about a window, and
/// touches one key per decision, whose hash tag keeps it in one Cluster slot. Arguments of one decision:
/// `limit, period_ms, capacity, want, need, mode, holder, keep, lease_ms, window` where `mode` is
///
/// - `lease`: grant up to `want` (at least `need`, or nothing), shrinking to half of what is left as the
///   budget runs low, so the last of it is shared among the sidecars still asking;
/// - `strict`: take exactly `need` or nothing (one decision);
/// - `peek`: report whether `need` would pass, taking nothing;
/// - `return`: give back `keep` unused units of a lease (windows: only to the window `window` it came from);
/// - `refund`: give back `keep` units one decision took (windows: only to the window `window` it was
///   counted in; the token bucket: to the bucket).
///
/// Every decision answers `{allowed, granted, remaining, reset_ms, retry_ms, window, valid_ms}` (``ScriptReply``):
/// `valid_ms` is how long the grant may be spent (to the window's end; the holding's lifetime for the token bucket).
///
/// A script per algorithm takes one decision (`KEYS[1]`, the ten arguments); ``batch`` takes many, in order,
/// atomically (`KEYS[i]`, and for each an algorithm code then its ten arguments) and answers one reply each:
/// the strict decisions waiting together go out as one call.
enum RedisScript: Int, CaseIterable, Sendable {
    case fixedWindow
    case slidingWindow
    case tokenBucket
    case batch

    /// The script of `algorithm`.
    init(_ algorithm: Algorithm) {
        switch algorithm {
        case .fixedWindow: self = .fixedWindow
        case .slidingWindow: self = .slidingWindow
        case .tokenBucket: self = .tokenBucket
        }
    }

    /// The script's source.
    var source: String {
        switch self {
        case .fixedWindow: Self.library + "return fixed_window(KEYS[1], ARGV, now())\n"
        case .slidingWindow: Self.library + "return sliding_window(KEYS[1], ARGV, now())\n"
        case .tokenBucket: Self.library + "return token_bucket(KEYS[1], ARGV, now())\n"
        case .batch: Self.library + Self.batchBody
        }
    }

    private static let library = """
        local function now()
          local t = redis.call('TIME')
          return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        end
        -- Arguments, for each call: a = {limit, period_ms, capacity, want, need, mode, holder, keep, lease_ms, window}.
        local function grant_of(avail, mode, want, need)
          if mode == 'strict' then
            if avail >= need then return need end
            return 0
          elseif mode == 'lease' then
            if avail < need or avail <= 0 then return 0 end
            return math.min(avail, math.max(need, math.min(want, math.floor(avail / 2))))
          end
          return 0
        end
        local function checked(a)
          local limit, period, cap = tonumber(a[1]), tonumber(a[2]), tonumber(a[3])
          local want, need, mode = tonumber(a[4]), tonumber(a[5]), a[6]
          if not limit or limit <= 0 or not period or period <= 0 or not cap or cap <= 0 or not want or not need or need < 0 then
            return nil
          end
          return limit, period, cap, want, need, mode
        end
        local function fixed_window(key, a, now)
          local limit, period, cap, want, need, mode = checked(a)
          if not limit then return redis.error_reply('ERR sluice: bad arguments') end
          local window = math.floor(now / period)
          local left = (window + 1) * period - now
          local h = redis.call('HMGET', key, 'w', 'c')
          local c = tonumber(h[2]) or 0
          if tonumber(h[1]) ~= window then c = 0 end
          if mode == 'return' or mode == 'refund' then
            local keep = tonumber(a[8]) or 0
            if tonumber(a[10]) == window and tonumber(h[1]) == window and c > 0 and keep > 0 then
              redis.call('HSET', key, 'c', c - math.min(c, keep))
            end
            return {0, 0, 0, 0, 0, window, 0}
          end
          local avail = limit - c
          local granted = grant_of(avail, mode, want, need)
          if granted > 0 then
            c = c + granted
            redis.call('HSET', key, 'w', window, 'c', c)
            redis.call('PEXPIRE', key, left + 1000)
          end
          local allowed, retry = 0, 0
          if granted > 0 or (mode == 'peek' and avail >= need) then allowed = 1
          elseif need > limit then retry = -1
          else retry = left end
          local reset = 0
          if c > 0 then reset = left end
          local shown = limit - c
          if mode == 'peek' and allowed == 1 then shown = shown - need end  -- what a take would leave
          return {allowed, granted, shown, reset, retry, window, left}
        end
        local function sliding_window(key, a, now)
          local limit, period, cap, want, need, mode = checked(a)
          if not limit then return redis.error_reply('ERR sluice: bad arguments') end
          local window = math.floor(now / period)
          local left = (window + 1) * period - now
          local elapsed = now - window * period
          local h = redis.call('HMGET', key, 'w', 'c', 'p')
          local w, c, p = tonumber(h[1]), tonumber(h[2]) or 0, tonumber(h[3]) or 0
          if w == nil then c, p = 0, 0
          elseif w == window - 1 then p, c = c, 0
          elseif w < window - 1 then c, p = 0, 0 end
          if mode == 'return' or mode == 'refund' then
            local keep = tonumber(a[8]) or 0
            if tonumber(a[10]) == window and w == window and c > 0 and keep > 0 then
              redis.call('HSET', key, 'c', c - math.min(c, keep))
            end
            return {0, 0, 0, 0, 0, window, 0}
          end
          -- rounded up, so the estimate never undercounts
          local weighted = math.ceil(p * (period - elapsed) / period - 1e-9)
          local avail = limit - c - weighted
          local granted = grant_of(avail, mode, want, need)
          if granted > 0 then
            c = c + granted
            redis.call('HSET', key, 'w', window, 'c', c, 'p', p)
            redis.call('PEXPIRE', key, left + period + 1000)
          end
          local allowed, retry = 0, 0
          if granted > 0 or (mode == 'peek' and avail >= need) then allowed = 1
          elseif need > limit then retry = -1
          elseif c + need > limit then
            -- only the next window can take it, once this one's count has decayed enough
            retry = left + math.max(1, math.ceil(period - (limit - need) * period / c))
          else
            retry = math.max(1, period - math.floor((limit - need - c) * period / p) - elapsed)
          end
          local reset = 0
          if c > 0 then reset = left + period elseif p > 0 then reset = left end
          local shown = limit - c - weighted
          if mode == 'peek' and allowed == 1 then shown = shown - need end
          return {allowed, granted, math.max(0, shown), reset, retry, window, left}
        end
        local function token_bucket(key, a, now)
          local limit, period, cap, want, need, mode = checked(a)
          if not limit then return redis.error_reply('ERR sluice: bad arguments') end
          local holder, keep, lease_ms = a[7], tonumber(a[8]) or 0, tonumber(a[9]) or 0
          local rate = limit / period
          local own = 'h:' .. holder
          local h = redis.call('HGETALL', key)
          local tokens, ts, held, mine = nil, nil, 0, 0
          for i = 1, #h, 2 do
            local f, v = h[i], h[i + 1]
            if f == 't' then tokens = tonumber(v)
            elseif f == 'ts' then ts = tonumber(v)
            else
              local n, d = string.match(v, '^(%d+) (%d+)$')
              n, d = tonumber(n) or 0, tonumber(d) or 0
              if d <= now then redis.call('HDEL', key, f)
              elseif f == own then mine = n
              else held = held + n end
            end
          end
          if tokens == nil or ts == nil then tokens, ts = cap, now end
          if now > ts then tokens = tokens + (now - ts) * rate; ts = now end
          if mode == 'refund' then
            tokens = tokens + math.max(0, keep)
          else
            -- the holder still has at most `keep` of what it held; the rest it spent
            mine = math.min(mine, math.max(0, keep))
            if mode == 'return' then tokens = tokens + mine; mine = 0 end
          end
          tokens = math.max(0, math.min(tokens, cap - held - mine))
          local granted = 0
          if mode ~= 'return' and mode ~= 'refund' then granted = grant_of(math.floor(tokens + 1e-9), mode, want, need) end
          tokens = tokens - granted
          if mode == 'lease' then mine = mine + granted end
          if mode == 'lease' and mine > 0 then
            redis.call('HSET', key, 't', tokens, 'ts', ts, own, mine .. ' ' .. (now + lease_ms))
          else
            redis.call('HSET', key, 't', tokens, 'ts', ts)
            if mode == 'lease' or mode == 'return' then redis.call('HDEL', key, own) end
          end
          local reset = math.ceil((cap - tokens) / rate)
          redis.call('PEXPIRE', key, reset + lease_ms + 1000)
          if mode == 'return' or mode == 'refund' then return {0, 0, 0, 0, 0, 0, 0} end
          local allowed, retry = 0, 0
          if granted > 0 or (mode == 'peek' and tokens + 1e-9 >= need) then allowed = 1
          elseif need > cap then retry = -1
          else retry = math.max(1, math.ceil((need - tokens) / rate)) end
          local shown = math.floor(tokens + 1e-9)
          if mode == 'peek' and allowed == 1 then shown = shown - need end
          return {allowed, granted, math.max(0, shown), reset, retry, 0, lease_ms}
        end

        """

    private static let batchBody = """
        local algorithms = { fw = fixed_window, sw = sliding_window, tb = token_bucket }
        local at, out = now(), {}
        for i = 1, #KEYS do
          local base = (i - 1) * 11
          local run = algorithms[ARGV[base + 1]]
          if not run then return redis.error_reply('ERR sluice: unknown algorithm') end
          out[i] = run(KEYS[i], { unpack(ARGV, base + 2, base + 11) }, at)
        end
        return out
        """
}

/// What every script answers, decoded from its seven integers.
struct ScriptReply: Sendable, Hashable {
    /// Whether the request (a strict decision, a peek) passed, or a lease was granted.
    var allowed: Bool
    /// Units granted to a lease (or taken by a strict decision).
    var granted: Int64
    /// What the bucket has left besides this grant (a peek: what a take would leave).
    var remaining: Int64
    /// Milliseconds until the bucket is full again.
    var resetMilliseconds: Int64
    /// Milliseconds until `need` would pass; -1 when it never can; 0 when allowed.
    var retryMilliseconds: Int64
    /// The window the grant belongs to (windows), else 0.
    var window: Int64
    /// Milliseconds the grant may be spent: to its window's end, or the holding's lifetime.
    var validMilliseconds: Int64
}

extension ScriptReply {
    /// Decodes `{allowed, granted, remaining, reset_ms, retry_ms, window, valid_ms}`; nil for any other shape.
    init?(_ values: [Int64]) {
        guard values.count == 7 else { return nil }
        allowed = values[0] == 1
        granted = values[1]
        remaining = values[2]
        resetMilliseconds = values[3]
        retryMilliseconds = values[4]
        window = values[5]
        validMilliseconds = values[6]
    }
}

extension Int64 {
    /// Milliseconds from a Redis reply as nanoseconds; a value too large for that (only a misbehaving server
    /// sends one) saturates instead of trapping.
    static func nanoseconds(milliseconds: Int64) -> Int64 {
        let (product, overflow) = milliseconds.multipliedReportingOverflow(by: 1_000_000)
        return overflow ? (milliseconds < 0 ? .min / 2 : .max / 2) : product
    }
}
