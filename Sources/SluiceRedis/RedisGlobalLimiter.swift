public import Logging
public import SluiceConfig
public import SluiceCore
import Synchronization

/// Global policies through Redis: leased budgets decided locally, strict decisions by one script call each,
/// and each policy's `on_store_failure` while Redis is down, slow or refusing.
///
/// **Leased.** A bucket's first decision asks Redis for a slice of the global budget (one script call);
/// later decisions spend it here with no round trip, and a renewal goes out in the background once half of
/// the last slice is spent. Only a bucket with nothing left waits for Redis, never longer than ``timeout``.
/// The next slice is sized to last a second at the rate the last was spent, moving at most by half or double a
/// step (while half a slice goes in under a quarter second, at least double and at most eightfold); never more
/// than a sixteenth of the capacity. Redis grants at most half of what is left, so the last of a budget is shared
/// among the sidecars still asking. Once Redis grants nothing, the bucket is denied here until the retry
/// time Redis gave (the window's end, or the next refill), so an exhausted key costs no round trip.
/// The bookkeeping of one bucket is ``Lease``; this class runs it against Redis.
/// - Windows (fixed and sliding): a slice is counted in Redis when granted and may be spent only until
///   its window ends. The fleet never admits more than the limit; unused slices are lost with their window
///   (returned early on shutdown).
/// - Token bucket: a slice is held, not spent: Redis refills the bucket only up to the capacity minus the
///   tokens sidecars hold, so the fleet never admits more than one bucket would. Each renewal reports what
///   is still held; a holding expires after ``leaseLifetime`` unless renewed (a dead sidecar's tokens
///   count as spent).
///
/// **Strict.** Every decision is one `EVALSHA`; decisions queued together from all connections go out as
/// one pipelined batch.
public final class RedisGlobalLimiter: GlobalLimiter {
    public let timeout: Duration
    /// How long a token-bucket holding lives in Redis without a renewal, in ms: 2 s, or four timeouts if
    /// longer, so a slow reply never arrives after its own grant expired.
    let leaseLifetime: Int64
    /// The most decisions waiting for one bucket's lease; beyond it, decisions follow the failure policy.
    static let maximumWaitersPerLease = 4096

    private let settings: SluiceConfiguration.Redis
    /// Sends each script call to the node of its key.
    private let router: any RedisRouter
    /// Decides for policies whose `on_store_failure` is `local`, in the process's own store.
    private let local: RateLimiter
    private let clock: any SluiceClock
    private let logger: Logger
    private let leases: LeaseTable
    /// This process's name in token-bucket holdings.
    private let holder: String
    /// A renewal in flight longer than this (ns) is taken as lost, and sent again.
    private let staleRenewal: Int64
    private let counters = Counters()

    /// Creates a limiter; ``start()`` connects.
    ///
    /// - Parameters:
    ///   - settings: where Redis is (the configuration's `redis` section).
    ///   - store: where a policy whose `on_store_failure` is `local` decides while Redis is unavailable.
    ///   - clock: the clock decisions use.
    ///   - logger: where connection changes are logged.
    public init(settings: SluiceConfiguration.Redis, store: BucketStore, clock: any SluiceClock, logger: Logger) {
        self.settings = settings
        timeout = settings.timeout
        leaseLifetime = max(2_000, 4 * settings.timeoutNanoseconds / 1_000_000)
        local = RateLimiter(store: store)
        self.clock = clock
        self.logger = logger
        leases = LeaseTable(capacity: settings.maxLeases)
        var generator = SystemRandomNumberGenerator()
        holder = String(generator.next(), radix: 16)
        let table = leases
        let sweep: @Sendable () -> Void = { [clock] in table.sweep(now: clock.now().nanoseconds) }
        switch settings.deployment {
        case .cluster(let seeds): router = ClusterRouter(seeds: seeds, settings: settings, logger: logger, tick: sweep)
        case .single, .sentinel: router = SingleNodeRouter(settings: settings, logger: logger, tick: sweep)
        }
        staleRenewal = 2 * settings.timeoutNanoseconds
    }

    /// Starts the Redis thread; it connects at once and keeps reconnecting with backoff.
    public func start() {
        if !router.start() { logger.error("no thread for Redis: global policies follow on_store_failure") }
    }

    /// Waits up to `limit` for the first connection; returns whether Redis answers.
    public func waitUntilConnected(limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while !router.isConnected, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(5)) }
        return router.isConnected
    }

    /// Returns once every call to Redis queued before it (refunds, returns, renewals) has been answered or
    /// has failed: what a caller waits on to see the effect of a background call.
    public func settle() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            router.afterQueuedJobs { continuation.resume() }
        }
    }

    /// Gives unused leases back to Redis, then stops the thread.
    public func shutdown() async {
        let now = clock.now().nanoseconds
        let returns = leases.drainForReturn(now: now).map { lease in
            job(lease.redisKey, lease.rateLimit, ScriptCall(mode: .returnUnused, keep: lease.returnable(now: now), window: lease.window))
        }
        await router.stop(final: returns)
    }

    public func status() -> GlobalLimiterStatus {
        let routing = router.status
        let leased = leases.counts
        return GlobalLimiterStatus(
            isConnected: routing.isConnected, endpoint: settings.endpoint,
            localDecisions: counters.local.load(ordering: .relaxed) + leased.decided, redisDecisions: counters.redis.load(ordering: .relaxed),
            fallbackDecisions: counters.fallback.load(ordering: .relaxed), leaseRequests: counters.leaseRequests.load(ordering: .relaxed),
            strictCalls: counters.strict.load(ordering: .relaxed), errors: routing.errors, reconnections: routing.reconnections,
            leases: leased.leases, authenticationFailed: routing.authenticationFailed
        )
    }

    public func decide(_ check: Check, policy: Policy, key: UnsafeRawBufferPointer, now: Timestamp, consume: Bool) -> GlobalDecision {
        let rateLimit = check.rateLimit
        guard check.cost <= rateLimit.capacity else {
            counters.local.add(1, ordering: .relaxed)
            return .decided(
                Decision(outcome: .exceedsCapacity, limit: rateLimit.capacity, remaining: 0, resetAfterNanoseconds: 0, retryAfterNanoseconds: -1)
                    .answering(check), nil
            )
        }
        guard let global = policy.global else { return .decided(local.decide(check, at: now, consume: consume), nil) }
        if global.sync == .leased {
            if consume { return leased(check, policy: policy, key: key, now: now) }
            if let peeked = peekLease(check, now: now) {
                counters.local.add(1, ordering: .relaxed)
                return .decided(peeked, nil)
            }
        }
        // Strict, a peek, or a lease table that is full: one script call.
        return direct(check, policy: policy, redisKey: redisKey(policy, key), mode: consume ? .strict : .peek, now: now)
    }

    public func refund(_ check: Check, policy: Policy, key: UnsafeRawBufferPointer, charge: GlobalCharge, now: Timestamp) {
        if let localCharge = charge.local {
            local.refund(localCharge)  // the `local` failure behaviour decided: it goes back to this store
            return
        }
        if charge.fromLease {
            var refunded = false
            leases.update(check.key, now: now.nanoseconds) { refunded = $0.refund(check.cost, charge: charge, now: now.nanoseconds) }
            if refunded { return }
        }
        refundToRedis(check, redisKey: redisKey(policy, key), window: charge.window)
    }

    /// When a job sent now stops being worth sending: one timeout from now (someone waits for it).
    private func deadline() -> ContinuousClock.Instant { .now + timeout }

    /// The deadline of a job nobody waits for (returns, refunds): sent whenever the connection allows.
    private static func noDeadline() -> ContinuousClock.Instant { .now + .seconds(3600) }

    /// A script call on `redisKey`; `completion` runs on the Redis thread.
    private func job(
        _ redisKey: [UInt8], _ rateLimit: RateLimit, _ call: ScriptCall, deadline: ContinuousClock.Instant = noDeadline(),
        completion: @escaping @Sendable (Result<ScriptReply, RedisConnectionError>) -> Void = { _ in }
    ) -> RedisJob {
        RedisJob(key: redisKey, rateLimit: rateLimit, call: call, holder: holder, leaseLifetime: leaseLifetime, deadline: deadline, completion: completion)
    }

    // MARK: Leased

    private func leased(_ check: Check, policy: Policy, key: UnsafeRawBufferPointer, now: Timestamp) -> GlobalDecision {
        let time = now.nanoseconds
        if let spent = leases.spendWithoutLock(check, now: time) {
            // Half of the slice is spent: the lock sees whether a renewal is to start (it is not while one flies).
            if spent.renewalDue, let renewal = renewalIfDue(check.key, now: time) { send(renewal, aheadOfNeed: true) }
            return .decided(spent.decision, spent.charge)
        }
        let connected = router.isConnected
        var waiting: PendingDecision?
        // The closures are written as arguments, so they are not escaping: a closure kept in a `let` first was
        // built as an escaping one, copying the check and the policy into a context on every leased decision.
        let outcome: LeaseTable.Outcome = leases.withLease(
            check.key, now: time, create: { Lease(key: check.key, redisKey: redisKey(policy, key), rateLimit: check.rateLimit) }
        ) { lease in
            switch lease.spend(check, now: time, staleAfter: staleRenewal, connected: connected) {
            case .allowed(let decision, let charge, let renewal): return .decided(decision, charge, renewal)
            case .exhausted(let decision): return .decided(decision, nil, nil)
            case .needsRedis:
                guard connected, lease.hasRoomForWaiter(limit: Self.maximumWaitersPerLease) else { return .unavailable }
                let pending = PendingDecision { [self] now in fallback(check, policy: policy, now: now, consume: true) }
                waiting = pending
                return .waiting(lease.wait(Waiter(check: check, pending: pending), now: time))
            }
        }
        switch outcome {
        case .decided(let decision, let charge, let renewal):
            // Counted by the lease table (``LeaseTable/counts``).
            if let renewal { send(renewal, aheadOfNeed: true) }
            return .decided(decision, charge)
        case .waiting(let renewal):
            counters.redis.add(1, ordering: .relaxed)
            if let renewal { send(renewal) }
            guard let waiting else {
                let (decision, charge) = fallback(check, policy: policy, now: now, consume: true)
                return .decided(decision, charge)
            }
            return .pending(waiting)
        case .unavailable:
            let (decision, charge) = fallback(check, policy: policy, now: now, consume: true)
            return .decided(decision, charge)
        case .full:
            return direct(check, policy: policy, redisKey: redisKey(policy, key), mode: .strict, now: now)
        }
    }

    /// The renewal `key`'s lease is due, if it is: after a spend from its cell left half of the last grant.
    private func renewalIfDue(_ key: BucketKey, now: Int64) -> Renewal? {
        let connected = router.isConnected
        var renewal: Renewal?
        leases.update(key, now: now) { renewal = $0.renewalIfDue(now: now, staleAfter: staleRenewal, connected: connected) }
        return renewal
    }

    /// A PEEK answered from a valid lease or a known exhaustion, taking nothing; nil when Redis must be asked.
    private func peekLease(_ check: Check, now: Timestamp) -> Decision? {
        var answer: Decision?
        leases.update(check.key, now: now.nanoseconds) { answer = $0.peek(check, now: now.nanoseconds) }
        return answer
    }

    /// Sends `renewal`; its reply is applied on the Redis thread. A renewal `aheadOfNeed` (half of the slice
    /// is left, nobody waits) goes with the next batch: ``JobQueue/gathering(timeout:)`` later at most.
    private func send(_ renewal: Renewal, aheadOfNeed: Bool = false) {
        counters.leaseRequests.add(1, ordering: .relaxed)
        var renewalJob = job(renewal.redisKey, renewal.rateLimit, renewal.call, deadline: deadline()) { [self] result in renewed(renewal, result: result) }
        renewalJob.gathered = aheadOfNeed
        router.submit(renewalJob)
    }

    /// Applies a renewal's reply (on the Redis thread), answers the waiters it can, and sends the next renewal
    /// if waiters remain.
    private func renewed(_ renewal: Renewal, result: Result<ScriptReply, RedisConnectionError>) {
        let now = clock.now()
        var settled = Lease.Settled()
        var failed: [PendingDecision] = []
        leases.update(renewal.key, now: now.nanoseconds) { lease in
            switch result {
            case .success(let reply): settled = lease.apply(reply, of: renewal, now: now.nanoseconds)
            case .failure: failed = lease.fail(renewal)  // the waiters follow the failure policy (their fallbacks know it)
            }
        }
        for answer in settled.answers { answer.pending.deliver(answer.decision, charge: answer.charge) }
        for pending in failed { pending.expire(now: now) }
        if let next = settled.next { send(next) }
    }

    // MARK: Strict

    private func direct(_ check: Check, policy: Policy, redisKey: [UInt8], mode: ScriptCall.Mode, now: Timestamp) -> GlobalDecision {
        let consume = mode != .peek
        guard router.isConnected else {
            let (decision, charge) = fallback(check, policy: policy, now: now, consume: consume)
            return .decided(decision, charge)
        }
        counters.redis.add(1, ordering: .relaxed)
        counters.strict.add(1, ordering: .relaxed)
        let pending = PendingDecision { [self] now in fallback(check, policy: policy, now: now, consume: consume) }
        let capacity = check.rateLimit.capacity
        let call = ScriptCall(mode: mode, want: check.cost, need: check.cost)
        router.submit(
            job(redisKey, check.rateLimit, call, deadline: deadline()) { [self] result in
                guard case .success(let reply) = result else { return pending.expire(now: clock.now()) }
                let outcome: Decision.Outcome = reply.allowed ? .allowed : reply.retryMilliseconds < 0 ? .exceedsCapacity : .denied
                let decision = Decision(
                    outcome: outcome, limit: capacity, remaining: max(0, reply.remaining),
                    resetAfterNanoseconds: .nanoseconds(milliseconds: reply.resetMilliseconds),
                    retryAfterNanoseconds: reply.allowed ? 0 : reply.retryMilliseconds < 0 ? -1 : .nanoseconds(milliseconds: reply.retryMilliseconds)
                ).answering(check)
                let charge = reply.allowed && consume ? GlobalCharge(fromLease: false, window: reply.window) : nil
                if !pending.answer(decision, charge: charge), charge != nil {
                    // The timeout answered first (by the failure policy): give back what Redis took for nothing.
                    refundToRedis(check, redisKey: redisKey, window: reply.window)
                }
            }
        )
        return .pending(pending)
    }

    public func reset(_ check: Check, policy: Policy, key: [UInt8]) async -> Bool {
        leases.update(check.key, now: clock.now().nanoseconds) { $0.forget() }
        guard router.isConnected else { return false }
        let redisKey: [UInt8] = key.withUnsafeBytes { self.redisKey(policy, $0) }
        return await withCheckedContinuation { continuation in
            router.submit(
                job(redisKey, check.rateLimit, ScriptCall(mode: .reset), deadline: deadline()) { result in
                    if case .success = result { continuation.resume(returning: true) } else { continuation.resume(returning: false) }
                }
            )
        }
    }

    /// Gives `check`'s cost back to Redis: to `window` (windows) or to the bucket.
    private func refundToRedis(_ check: Check, redisKey: [UInt8], window: Int64) {
        guard router.isConnected else { return }
        router.submit(job(redisKey, check.rateLimit, ScriptCall(mode: .refund, keep: check.cost, window: window)))
    }

    // MARK: Failure

    /// The decision by the policy's `on_store_failure`, counted, and (for `local`) what it took from this
    /// process's store, so a request denied by a later check can give it back.
    private func fallback(_ check: Check, policy: Policy, now: Timestamp, consume: Bool) -> (Decision, GlobalCharge?) {
        counters.fallback.add(1, ordering: .relaxed)
        let capacity = check.rateLimit.capacity
        switch policy.global?.onStoreFailure ?? .local {
        case .local:
            let (decision, charge) = local.decideHolding(check, at: now, consume: consume)
            return (decision, charge.map { GlobalCharge(local: $0) })
        case .allow:
            return (Decision(outcome: .allowed, limit: capacity, remaining: capacity, resetAfterNanoseconds: 0, retryAfterNanoseconds: 0).answering(check), nil)
        case .deny:
            return (
                Decision(
                    outcome: .denied, limit: capacity, remaining: 0, resetAfterNanoseconds: 1_000_000_000, retryAfterNanoseconds: 1_000_000_000
                ).answering(check), nil
            )
        }
    }

    // MARK: Keys

    /// `<prefix>{<policy>|<key>}:<fw|sw|tb>`. The braces make the bucket's key its own hash tag (one
    /// Cluster slot); `|` cannot appear in a policy name, so no two (policy, key) pairs share a name; the
    /// suffix keeps an algorithm change from reading another algorithm's state.
    private func redisKey(_ policy: Policy, _ key: UnsafeRawBufferPointer) -> [UInt8] {
        var redisKey = Array(settings.keyPrefix.utf8)
        redisKey.reserveCapacity(redisKey.count + policy.name.utf8.count + key.count + 6)
        redisKey.append(UInt8(ascii: "{"))
        redisKey.append(contentsOf: policy.name.utf8)
        redisKey.append(UInt8(ascii: "|"))
        redisKey.append(contentsOf: key)
        redisKey.append(UInt8(ascii: "}"))
        redisKey.append(UInt8(ascii: ":"))
        switch policy.rateLimit.algorithm {
        case .fixedWindow: redisKey.append(contentsOf: "fw".utf8)
        case .slidingWindow: redisKey.append(contentsOf: "sw".utf8)
        case .tokenBucket: redisKey.append(contentsOf: "tb".utf8)
        }
        return redisKey
    }
}

/// Relaxed counters for ``GlobalLimiterStatus``: independent monotonic counts, read only for reporting.
private final class Counters: Sendable {
    let local = Atomic<Int>(0)
    let redis = Atomic<Int>(0)
    let fallback = Atomic<Int>(0)
    let leaseRequests = Atomic<Int>(0)
    let strict = Atomic<Int>(0)
}
