import SluiceCore

/// The Lua that keeps global buckets in Redis: one function per algorithm, each serving leases, strict
/// decisions, peeks and returns, so a policy can move between leased and strict without a second format.
///
/// Every call reads the time from Redis (`TIME`), so sidecars' clocks never disagree about a window, and
/// touches one key per decision, whose hash tag keeps it in one Cluster slot. The arguments of one call are
/// `limit, period_ms, capacity, want, need, mode, holder, keep, lease_ms, window` where `mode` is
///
/// - `lease`: grant up to `want` (at least `need`, or nothing), shrinking to half of what is left as the
///   budget runs low, so the last of it is shared among the sidecars still asking;
/// - `strict`: take exactly `need` or nothing (one decision);
/// - `peek`: report whether `need` would pass, taking nothing;
/// - `return`: give back `keep` unused units of a lease (windows: only to the window `window` it came from);
/// - `refund`: give back `keep` units one decision took (windows: only to the window `window` it was
///   counted in; the token bucket: to the bucket);
/// - `reset`: delete the bucket (full again for the whole fleet).
///
/// Every decision answers `{allowed, granted, remaining, reset_ms, retry_ms, window, valid_ms}` (``ScriptReply``):
/// `valid_ms` is how long the grant may be spent (to the window's end; the holding's lifetime for the token bucket).
///
/// The script of an algorithm serves leases, returns and refunds, one per call. ``decisions`` serves strict
/// decisions and peeks, any number per call, in order, atomically: `KEYS` one per decision, and per decision
/// six arguments `algorithm (fw|sw|tb), limit, period_ms, capacity, need, mode (strict|peek)`; it answers
/// the seven values of each decision in one flat list. The decisions waiting together on one connection go
/// out as one such call.
///
/// A key's expiry is set when it is needed, not at every call: a window's key expires a second after its
/// window (or, sliding, the next one) ends, set at the window's first grant; a token bucket's key records the
/// expiry it was given (`x`) and is given a later one, a period beyond what it needs, only when the bucket's
/// refill time passes it. Each call is then two Redis commands, not three.
enum RedisScript: Int, CaseIterable, Sendable {
    case fixedWindow
    case slidingWindow
    case tokenBucket
    case decisions

    /// The script of `algorithm`.
    init(_ algorithm: Algorithm) {
        switch algorithm {
        case .fixedWindow: self = .fixedWindow
        case .slidingWindow: self = .slidingWindow
        case .tokenBucket: self = .tokenBucket
        }
    }

    /// The code of `algorithm` among the arguments of ``decisions``.
    static func code(_ algorithm: Algorithm) -> String {
        switch algorithm {
        case .fixedWindow: "fw"
        case .slidingWindow: "sw"
        case .tokenBucket: "tb"
        }
    }

    /// The script's source.
    var source: String {
        switch self {
        case .fixedWindow: Self.library + Self.single("fixed_window")
        case .slidingWindow: Self.library + Self.single("sliding_window")
        case .tokenBucket: Self.library + Self.single("token_bucket")
        case .decisions: Self.library + Self.decisionsBody
        }
    }

    private static func single(_ function: String) -> String {
        """
        local limit, period, cap, want, need = limits(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
        if not limit or not modes[ARGV[6]] then return redis.error_reply('ERR sluice: bad arguments') end
        if ARGV[6] == 'reset' then redis.call('DEL', KEYS[1]) return { 0, 0, 0, 0, 0, 0, 0 } end
        return { \(function)(KEYS[1], limit, period, cap, want, need, ARGV[6], ARGV[7] or '', tonumber(ARGV[8]) or 0, tonumber(ARGV[9]) or 0, tonumber(ARGV[10]) or -1, now()) }

        """
    }

    private static let library = """
        local function now()
          local t = redis.call('TIME')
          return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        end
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
        -- Each algorithm takes (key, limit, period_ms, capacity, want, need, mode, holder, keep, lease_ms, window, now)
        -- and returns allowed, granted, remaining, reset_ms, retry_ms, window, valid_ms.
        local function fixed_window(key, limit, period, cap, want, need, mode, holder, keep, lease_ms, asked, now)
          local window = math.floor(now / period)
          local left = (window + 1) * period - now
          local h = redis.call('HMGET', key, 'w', 'c')
          local c = tonumber(h[2]) or 0
          if tonumber(h[1]) ~= window then c = 0 end
          if mode == 'return' or mode == 'refund' then
            if asked == window and tonumber(h[1]) == window and c > 0 and keep > 0 then
              redis.call('HSET', key, 'c', c - math.min(c, keep))
            end
            return 0, 0, 0, 0, 0, window, 0
          end
          local avail = limit - c
          local granted = grant_of(avail, mode, want, need)
          if granted > 0 then
            c = c + granted
            redis.call('HSET', key, 'w', window, 'c', c)
            -- the window's first grant: the key lasts until a second after the window
            if tonumber(h[1]) ~= window then redis.call('PEXPIRE', key, left + 1000) end
          end
          local allowed, retry = 0, 0
          if granted > 0 or (mode == 'peek' and avail >= need) then allowed = 1
          elseif need > limit then retry = -1
          else retry = left end
          local reset = 0
          if c > 0 then reset = left end
          local shown = limit - c
          if mode == 'peek' and allowed == 1 then shown = shown - need end  -- what a take would leave
          return allowed, granted, shown, reset, retry, window, left
        end
        local function sliding_window(key, limit, period, cap, want, need, mode, holder, keep, lease_ms, asked, now)
          local window = math.floor(now / period)
          local left = (window + 1) * period - now
          local elapsed = now - window * period
          local h = redis.call('HMGET', key, 'w', 'c', 'p')
          local w, c, p = tonumber(h[1]), tonumber(h[2]) or 0, tonumber(h[3]) or 0
          if w == nil then c, p = 0, 0
          elseif w == window - 1 then p, c = c, 0
          elseif w < window - 1 then c, p = 0, 0 end
          if mode == 'return' or mode == 'refund' then
            if asked == window and w == window and c > 0 and keep > 0 then
              redis.call('HSET', key, 'c', c - math.min(c, keep))
            end
            return 0, 0, 0, 0, 0, window, 0
          end
          -- rounded up, so the estimate never undercounts
          local weighted = math.ceil(p * (period - elapsed) / period - 1e-9)
          local avail = limit - c - weighted
          local granted = grant_of(avail, mode, want, need)
          if granted > 0 then
            c = c + granted
            redis.call('HSET', key, 'w', window, 'c', c, 'p', p)
            -- the window's first grant: the key lasts until a second after the next window
            if w ~= window then redis.call('PEXPIRE', key, left + period + 1000) end
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
          return allowed, granted, math.max(0, shown), reset, retry, window, left
        end
        local function token_bucket(key, limit, period, cap, want, need, mode, holder, keep, lease_ms, asked, now)
          local rate = limit / period
          local h = redis.call('HGETALL', key)
          local tokens, ts, held, mine, own, expiry = nil, nil, 0, 0, nil, 0
          for i = 1, #h, 2 do
            local f, v = h[i], h[i + 1]
            if f == 't' then tokens = tonumber(v)
            elseif f == 'ts' then ts = tonumber(v)
            elseif f == 'x' then expiry = tonumber(v) or 0
            else
              -- a holding: 'h:<holder>' = '<tokens> <expiry_ms>'
              own = own or ('h:' .. holder)
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
          local reset = math.ceil((cap - tokens) / rate)
          -- the key must outlive the refill and any holding; when it would not, it gets a period more
          local needed, extend = now + reset + lease_ms + 1000, false
          if needed > expiry then expiry, extend = needed + period, true end
          if mode == 'lease' and mine > 0 then
            redis.call('HSET', key, 't', tokens, 'ts', ts, 'x', expiry, 'h:' .. holder, mine .. ' ' .. (now + lease_ms))
          else
            redis.call('HSET', key, 't', tokens, 'ts', ts, 'x', expiry)
            if mode == 'lease' or mode == 'return' then redis.call('HDEL', key, 'h:' .. holder) end
          end
          if extend then redis.call('PEXPIREAT', key, expiry) end
          if mode == 'return' or mode == 'refund' then return 0, 0, 0, 0, 0, 0, 0 end
          local allowed, retry = 0, 0
          if granted > 0 or (mode == 'peek' and tokens + 1e-9 >= need) then allowed = 1
          elseif need > cap then retry = -1
          else retry = math.max(1, math.ceil((need - tokens) / rate)) end
          local shown = math.floor(tokens + 1e-9)
          if mode == 'peek' and allowed == 1 then shown = shown - need end
          return allowed, granted, math.max(0, shown), reset, retry, 0, lease_ms
        end
        local algorithms = { fw = fixed_window, sw = sliding_window, tb = token_bucket }
        local modes = { lease = true, strict = true, peek = true, refund = true, ['return'] = true, reset = true }
        -- The numbers of one call, or nil when one is missing or out of range.
        local function limits(limit, period, cap, want, need)
          limit, period, cap, want, need = tonumber(limit), tonumber(period), tonumber(cap), tonumber(want), tonumber(need)
          if not limit or limit <= 0 or not period or period <= 0 or not cap or cap <= 0 or not want or not need or need < 0 then
            return nil
          end
          return limit, period, cap, want, need
        end

        """

    private static let decisionsBody = """
        local at, out, n = now(), {}, 0
        for i = 1, #KEYS do
          local base = (i - 1) * 6
          local run, mode = algorithms[ARGV[base + 1]], ARGV[base + 6]
          local limit, period, cap, want, need = limits(ARGV[base + 2], ARGV[base + 3], ARGV[base + 4], ARGV[base + 5], ARGV[base + 5])
          if not run or not limit or (mode ~= 'strict' and mode ~= 'peek') then return redis.error_reply('ERR sluice: bad arguments') end
          local a, b, c, d, e, f, g = run(KEYS[i], limit, period, cap, want, need, mode, '', 0, 0, -1, at)
          out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5], out[n + 6], out[n + 7] = a, b, c, d, e, f, g
          n = n + 7
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
    /// The integers of one reply.
    static let fields = 7

    /// Decodes `{allowed, granted, remaining, reset_ms, retry_ms, window, valid_ms}`, each read by `field`
    /// (nil when one is missing or not an integer).
    init?(field: (Int) -> Int64?) {
        guard let allowed = field(0), let granted = field(1), let remaining = field(2), let reset = field(3), let retry = field(4),
            let window = field(5), let valid = field(6)
        else { return nil }
        self.init(
            allowed: allowed == 1, granted: granted, remaining: remaining, resetMilliseconds: reset, retryMilliseconds: retry,
            window: window, validMilliseconds: valid
        )
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
