import SluiceCore

/// What one script call asks of a bucket, besides its limit (see ``RedisScript`` for each mode).
struct ScriptCall: Sendable, Hashable {
    /// What the script is to do.
    enum Mode: String, Sendable, Hashable {
        /// Grant a slice of up to `want` (at least `need`, or nothing).
        case lease
        /// Take exactly `need`, or nothing: one decision.
        case strict
        /// Say whether `need` would pass, taking nothing.
        case peek
        /// Give back `keep` units one decision took (windows: to window `window` only).
        case refund
        /// Give back `keep` unused units of a lease (windows: to window `window` only).
        case returnUnused = "return"
    }

    var mode: Mode
    /// The slice wanted (leases).
    var want: Int64 = 0
    /// The least that helps: a lease smaller than this is no use; a strict or peeked decision's cost.
    var need: Int64 = 0
    /// Units held by this process (token-bucket renewals), or given back (refunds and returns).
    var keep: Int64 = 0
    /// The window a refund or return belongs to; -1 when none.
    var window: Int64 = -1
}

/// One script call waiting to be sent: the worker pipelines whatever is queued into one batch.
struct RedisJob: Sendable {
    /// The script to run (its SHA is filled in by the worker).
    let script: RedisScript
    /// `KEYS[1]` and the `ARGV`, already as RESP bulk strings, and how many they are.
    let encoded: [UInt8]
    let count: Int
    /// Past this, the job is failed unsent: whoever waited has been answered by the failure policy.
    let deadline: ContinuousClock.Instant
    /// Called once, on the worker thread, with the script's reply or the failure.
    let completion: @Sendable (Result<ScriptReply, RedisConnectionError>) -> Void

    /// A call of `rateLimit`'s script on `key`, as `holder`, whose token-bucket holdings live `leaseLifetime` ms.
    ///
    /// The script's arguments are `limit, period_ms, capacity, want, need, mode, holder, keep, lease_ms, window`.
    init(
        key: [UInt8], rateLimit: RateLimit, call: ScriptCall, holder: String, leaseLifetime: Int64, deadline: ContinuousClock.Instant,
        completion: @escaping @Sendable (Result<ScriptReply, RedisConnectionError>) -> Void
    ) {
        script = RedisScript(rateLimit.algorithm)
        self.deadline = deadline
        self.completion = completion
        var encoded: [UInt8] = []
        encoded.reserveCapacity(key.count + holder.utf8.count + 160)
        RESPEncoding.appendBulk(key, to: &encoded)
        let periodMilliseconds = max(1, rateLimit.periodNanoseconds / 1_000_000)
        for value in [rateLimit.limit, periodMilliseconds, rateLimit.capacity, call.want, call.need] {
            RESPEncoding.appendBulk(RESPEncoding.decimal(value), to: &encoded)
        }
        RESPEncoding.appendBulk(call.mode.rawValue.utf8, to: &encoded)
        RESPEncoding.appendBulk(holder.utf8, to: &encoded)
        for value in [call.keep, leaseLifetime, call.window] {
            RESPEncoding.appendBulk(RESPEncoding.decimal(value), to: &encoded)
        }
        self.encoded = encoded
        count = 11
    }
}
