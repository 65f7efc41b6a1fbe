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

/// One script call waiting to be sent: a worker pipelines whatever is queued into one batch.
struct RedisJob: Sendable {
    /// The script to run (its SHA is filled in by the worker).
    let script: RedisScript
    /// `KEYS[1]` as a RESP bulk string.
    let encodedKey: [UInt8]
    /// The ten arguments as RESP bulk strings.
    let encodedArguments: [UInt8]
    /// The key's Cluster slot.
    let slot: Int
    /// A strict decision (or peek): one that can share a batch script call with others waiting at the same moment.
    let isDecision: Bool
    /// Send `ASKING` first: the slot is being imported by the node this job is queued on (a Cluster `ASK`).
    var asking = false
    /// Redirections followed so far (Cluster `MOVED`/`ASK`, `TRYAGAIN`); bounded.
    var redirects = 0
    /// Past this, the job is failed unsent: whoever waited has been answered by the failure policy.
    let deadline: ContinuousClock.Instant
    /// Called once, on a worker thread, with the script's reply or the failure.
    let completion: @Sendable (Result<ScriptReply, RedisConnectionError>) -> Void

    /// The most redirections one job follows before it fails.
    static let maximumRedirects = 5

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
        slot = ClusterSlot.of(key)
        isDecision = call.mode == .strict || call.mode == .peek
        var encodedKey: [UInt8] = []
        RESPEncoding.appendBulk(key, to: &encodedKey)
        self.encodedKey = encodedKey
        var encoded: [UInt8] = []
        encoded.reserveCapacity(holder.utf8.count + 140)
        let periodMilliseconds = max(1, rateLimit.periodNanoseconds / 1_000_000)
        for value in [rateLimit.limit, periodMilliseconds, rateLimit.capacity, call.want, call.need] {
            RESPEncoding.appendBulk(RESPEncoding.decimal(value), to: &encoded)
        }
        RESPEncoding.appendBulk(call.mode.rawValue.utf8, to: &encoded)
        RESPEncoding.appendBulk(holder.utf8, to: &encoded)
        for value in [call.keep, leaseLifetime, call.window] {
            RESPEncoding.appendBulk(RESPEncoding.decimal(value), to: &encoded)
        }
        encodedArguments = encoded
    }

    /// The algorithm code of ``RedisScript/batch`` as a RESP bulk string.
    var encodedBatchCode: [UInt8] {
        var encoded: [UInt8] = []
        let code: String =
            switch script {
            case .fixedWindow: "fw"
            case .slidingWindow: "sw"
            case .tokenBucket, .batch: "tb"
            }
        RESPEncoding.appendBulk(code.utf8, to: &encoded)
        return encoded
    }
}
