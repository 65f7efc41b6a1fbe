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
        /// Delete the bucket: it is full again, for every sidecar.
        case reset
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
    /// The script to run (its SHA is filled in by the worker): the algorithm's, or ``RedisScript/decisions``.
    let script: RedisScript
    /// `KEYS[1]` as a RESP bulk string.
    let encodedKey: [UInt8]
    /// The arguments as RESP bulk strings: the ten of an algorithm's script, or a decision's six of
    /// ``RedisScript/decisions``.
    let encodedArguments: [UInt8]
    /// The key's Cluster slot.
    let slot: Int
    /// Send `ASKING` first: the slot is being imported by the node this job is queued on (a Cluster `ASK`).
    var asking = false
    /// Redirections followed so far (Cluster `MOVED`/`ASK`); past ``maximumRedirects`` each is paced.
    var redirects = 0
    /// Waits so far: resends after `TRYAGAIN` or `CLUSTERDOWN` (a slot in the middle of a move) and paced
    /// redirections; bounded apart from redirections (a move can outlast five of them), and by the deadline.
    var waits = 0
    /// Nobody waits for it yet (a lease renewed ahead of need): it may wait ``JobQueue/gathering`` for other
    /// jobs to share a batch with.
    var gathered = false
    /// Past this, the job is failed unsent: whoever waited has been answered by the failure policy.
    let deadline: ContinuousClock.Instant
    /// Called once, on a worker thread, with the script's reply or the failure.
    let completion: @Sendable (Result<ScriptReply, RedisConnectionError>) -> Void

    /// The most redirections one job follows at once. Past them each further one is paced: sent ``pace`` later
    /// and counted as a wait. Nodes that disagree for a moment about who owns a slot (a move ended in another
    /// order than the manual's) send `MOVED` to each other until the cluster bus settles it, which takes
    /// milliseconds to a second; resent at once, a job spent its redirections in microseconds and failed.
    static let maximumRedirects = 5
    /// The most waits (`TRYAGAIN`/`CLUSTERDOWN` resends, and redirections past ``maximumRedirects``), ``pace``
    /// apart: about a second, before a job fails; its deadline bounds it too.
    static let maximumWaits = 50
    /// How long a wait is.
    static let pace = Duration.milliseconds(20)

    /// Whether this job's next resend waits ``pace`` (see ``maximumRedirects``).
    var isPaced: Bool { redirects > Self.maximumRedirects }

    /// A strict decision (or peek): it shares a ``RedisScript/decisions`` call with the others waiting at the
    /// same moment.
    var isDecision: Bool { script == .decisions }

    /// A call of `rateLimit`'s script on `key`, as `holder`, whose token-bucket holdings live `leaseLifetime` ms;
    /// strict decisions and peeks become one decision of ``RedisScript/decisions``.
    init(
        key: [UInt8], rateLimit: RateLimit, call: ScriptCall, holder: String, leaseLifetime: Int64, deadline: ContinuousClock.Instant,
        completion: @escaping @Sendable (Result<ScriptReply, RedisConnectionError>) -> Void
    ) {
        self.deadline = deadline
        self.completion = completion
        slot = ClusterSlot.of(key)
        var encodedKey: [UInt8] = []
        encodedKey.reserveCapacity(key.count + 8)
        RESPEncoding.appendBulk(key, to: &encodedKey)
        self.encodedKey = encodedKey
        let periodMilliseconds = max(1, rateLimit.periodNanoseconds / 1_000_000)
        var encoded: [UInt8] = []
        if call.mode == .strict || call.mode == .peek {
            script = .decisions
            encoded.reserveCapacity(80)
            RESPEncoding.appendBulk(RedisScript.code(rateLimit.algorithm).utf8, to: &encoded)
            RESPEncoding.appendBulk(decimal: rateLimit.limit, to: &encoded)
            RESPEncoding.appendBulk(decimal: periodMilliseconds, to: &encoded)
            RESPEncoding.appendBulk(decimal: rateLimit.capacity, to: &encoded)
            RESPEncoding.appendBulk(decimal: call.need, to: &encoded)
            RESPEncoding.appendBulk(call.mode.rawValue.utf8, to: &encoded)
        } else {
            script = RedisScript(rateLimit.algorithm)
            encoded.reserveCapacity(holder.utf8.count + 140)
            RESPEncoding.appendBulk(decimal: rateLimit.limit, to: &encoded)
            RESPEncoding.appendBulk(decimal: periodMilliseconds, to: &encoded)
            RESPEncoding.appendBulk(decimal: rateLimit.capacity, to: &encoded)
            RESPEncoding.appendBulk(decimal: call.want, to: &encoded)
            RESPEncoding.appendBulk(decimal: call.need, to: &encoded)
            RESPEncoding.appendBulk(call.mode.rawValue.utf8, to: &encoded)
            RESPEncoding.appendBulk(holder.utf8, to: &encoded)
            RESPEncoding.appendBulk(decimal: call.keep, to: &encoded)
            RESPEncoding.appendBulk(decimal: leaseLifetime, to: &encoded)
            RESPEncoding.appendBulk(decimal: call.window, to: &encoded)
        }
        encodedArguments = encoded
    }

    /// How many arguments ``encodedArguments`` holds.
    var argumentCount: Int { isDecision ? 6 : 10 }
}
