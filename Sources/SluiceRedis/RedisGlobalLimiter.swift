public import Logging
public import SluiceCore
import Synchronization

/// Global policies through Redis: leased budgets decided locally, strict decisions by one script call each,
/// and each policy's `on_store_failure` while Redis is down, slow or refusing.
///
/// **Leased.** A bucket's first decision asks Redis for a slice of the global budget (one script call);
/// later decisions spend it here with no round trip, and a renewal goes out in the background once half of
/// the last slice is spent. Only a bucket with nothing left waits for Redis, never longer than ``timeout``.
/// The slice doubles while it lasts less than a quarter second and halves when it lasts over two, up to a
/// sixteenth of the capacity; Redis grants at most half of what is left, so the last of a budget is shared
/// among the sidecars still asking. Once Redis grants nothing, the bucket is denied here until the retry
/// time Redis gave (the window's end, or the next refill), so an exhausted key costs no round trip.
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

    private let settings: RedisSettings
    private let worker: RedisWorker
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
    ///   - settings: where Redis is.
    ///   - local: decides for policies whose `on_store_failure` is `local`.
    ///   - clock: the clock decisions use.
    ///   - logger: where connection changes are logged.
    public init(settings: RedisSettings, local: RateLimiter, clock: any SluiceClock, logger: Logger) {
        self.settings = settings
        self.timeout = settings.timeout
        leaseLifetime = max(2_000, 4 * settings.timeout.nanoseconds / 1_000_000)
        self.local = local
        self.clock = clock
        self.logger = logger
        leases = LeaseTable(capacity: settings.maximumLeases)
        var generator = SystemRandomNumberGenerator()
        holder = String(generator.next(), radix: 16)
        let table = leases
        worker = RedisWorker(settings: settings, logger: logger) { [clock] in table.sweep(now: clock.now().nanoseconds) }
        staleRenewal = 2 * settings.timeout.nanoseconds
    }

    /// Starts the Redis thread; it connects at once and keeps reconnecting with backoff.
    public func start() {
        if !worker.start() { logger.error("no thread for Redis: global policies follow on_store_failure") }
    }

    /// Waits up to `limit` for the first connection; returns whether Redis answers.
    public func waitUntilConnected(limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while !worker.isConnected, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(5)) }
        return worker.isConnected
    }

    /// Gives unused leases back to Redis, then stops the thread.
    public func shutdown() async {
        let returns = leases.drainForReturn(now: clock.now().nanoseconds).map { lease in
            RedisJob(script: RedisScript(lease.rateLimit.algorithm), key: lease.redisKey,
                     arguments: arguments(lease.rateLimit, want: 0, need: 0, mode: "return", keep: lease.remaining, window: lease.window),
                     deadline: Self.noDeadline(), completion: { _ in })
        }
        await worker.stop(final: returns)
    }

    public func status() -> GlobalLimiterStatus {
        GlobalLimiterStatus(
            isConnected: worker.isConnected, endpoint: settings.endpoint,
            localDecisions: counters.local.load(ordering: .relaxed), redisDecisions: counters.redis.load(ordering: .relaxed),
            fallbackDecisions: counters.fallback.load(ordering: .relaxed), leaseRequests: counters.leaseRequests.load(ordering: .relaxed),
            strictCalls: counters.strict.load(ordering: .relaxed), errors: worker.errors.load(ordering: .relaxed),
            reconnections: worker.reconnections.load(ordering: .relaxed), leases: leases.count
        )
    }

    public func decide(_ check: Check, policy: Policy, name: UnsafeRawBufferPointer, now: Timestamp, consume: Bool) -> GlobalDecision {
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
            if consume { return leased(check, policy: policy, name: name, now: now) }
            if let peeked = peekLease(check, now: now) {
                counters.local.add(1, ordering: .relaxed)
                return .decided(peeked, nil)
            }
        }
        // Strict, a peek, or a lease table that is full: one script call.
        return direct(check, policy: policy, key: redisKey(policy, name), mode: consume ? "strict" : "peek", now: now)
    }

    public func refund(_ check: Check, policy: Policy, name: UnsafeRawBufferPointer, charge: GlobalCharge, now: Timestamp) {
        if let localCharge = charge.local {
            local.refund(localCharge)  // the `local` failure behaviour decided: it goes back to this store
            return
        }
        let isWindow = check.rateLimit.algorithm != .tokenBucket
        if charge.fromLease {
            var refunded = false
            leases.update(check.key) { lease in
                guard lease.validUntil > now.nanoseconds else { return }
                // A window's slice is only for its window; a token-bucket lease that has since reported what it
                // holds to Redis (a renewal) counted this token as spent, so it goes back to Redis instead.
                guard isWindow ? lease.window == charge.window : lease.renewals == charge.renewals else { return }
                lease.remaining += check.cost
                refunded = true
            }
            if refunded { return }
        }
        guard worker.isConnected else { return }
        worker.submit(
            RedisJob(
                script: RedisScript(check.rateLimit.algorithm), key: redisKey(policy, name),
                arguments: arguments(check.rateLimit, want: 0, need: 0, mode: "refund", keep: check.cost, window: charge.window),
                deadline: Self.noDeadline(), completion: { _ in }
            )
        )
    }

    /// When a job sent now stops being worth sending: one timeout from now (someone waits for it).
    private func deadline() -> ContinuousClock.Instant { .now + timeout }

    /// The deadline of a job nobody waits for (returns, refunds): sent whenever the connection allows.
    private static func noDeadline() -> ContinuousClock.Instant { .now + .seconds(3600) }

    // MARK: Leased

    private func leased(_ check: Check, policy: Policy, name: UnsafeRawBufferPointer, now: Timestamp) -> GlobalDecision {
        let n = now.nanoseconds
        let connected = worker.isConnected
        var waiting: PendingDecision?
        let outcome: LeaseTable.Outcome = leases.withLease(check.key, create: { Lease(key: check.key, redisKey: redisKey(policy, name), rateLimit: check.rateLimit) }) { lease in
            if lease.renewing, n - lease.renewalSentAt > staleRenewal { lease.renewing = false }  // lost: ask again
            if lease.validUntil > n, lease.remaining >= check.cost {
                lease.remaining -= check.cost
                lease.lastUsed = n
                // The charge names the lease as it was before any renewal this decision starts.
                let charge = GlobalCharge(fromLease: true, window: lease.window, renewals: lease.renewals)
                let renewal = lease.remaining * 2 <= lease.lastGrant && !lease.renewing && connected ? startRenewal(&lease, need: 1, now: n) : nil
                return .decided(leaseDecision(lease, check: check, now: n, allowed: true), charge, renewal)
            }
            if lease.exhaustedUntil > n, check.cost >= lease.exhaustedNeed {
                return .decided(leaseDecision(lease, check: check, now: n, allowed: false), nil, nil)
            }
            guard connected else { return .unavailable }
            if lease.waiters.count >= Self.maximumWaitersPerLease {
                lease.waiters.removeAll { $0.pending.isAnswered }  // those the timeout answered
                guard lease.waiters.count < Self.maximumWaitersPerLease else { return .unavailable }
            }
            let pending = PendingDecision { [self] now in fallback(check, policy: policy, now: now, consume: true) }
            waiting = pending
            lease.waiters.append(Waiter(check: check, pending: pending))
            return .waiting(lease.renewing ? nil : startRenewal(&lease, need: check.cost, now: n))
        }
        switch outcome {
        case .decided(let decision, let charge, let renewal):
            counters.local.add(1, ordering: .relaxed)
            if let renewal { worker.submit(renewal) }
            return .decided(decision, decision.outcome == .allowed ? charge : nil)
        case .waiting(let renewal):
            counters.redis.add(1, ordering: .relaxed)
            if let renewal { worker.submit(renewal) }
            guard let waiting else {
                let (decision, charge) = fallback(check, policy: policy, now: now, consume: true)
                return .decided(decision, charge)
            }
            return .pending(waiting)
        case .unavailable:
            let (decision, charge) = fallback(check, policy: policy, now: now, consume: true)
            return .decided(decision, charge)
        case .full:
            return direct(check, policy: policy, key: redisKey(policy, name), mode: "strict", now: now)
        }
    }

    /// A PEEK answered from a valid lease or a known exhaustion, taking nothing; nil when Redis must be asked.
    private func peekLease(_ check: Check, now: Timestamp) -> Decision? {
        let n = now.nanoseconds
        var answer: Decision?
        leases.update(check.key) { lease in
            if lease.validUntil > n, lease.remaining >= check.cost {
                var decision = leaseDecision(lease, check: check, now: n, allowed: true)
                decision.remaining = min(decision.limit, max(0, lease.remaining - check.cost + lease.globalRemaining))
                answer = decision
            } else if lease.exhaustedUntil > n, check.cost >= lease.exhaustedNeed {
                answer = leaseDecision(lease, check: check, now: n, allowed: false)
            }
        }
        return answer
    }

    /// Marks `lease` as renewing and builds the request: `need` is the least that helps the caller.
    private func startRenewal(_ lease: inout Lease, need: Int64, now: Int64) -> RedisJob {
        lease.renewing = true
        lease.renewalSentAt = now
        lease.renewals += 1
        if lease.validUntil <= now { lease.remaining = 0 }  // an expired slice is gone
        let capacity = lease.rateLimit.capacity
        let largest = max(1, capacity / 16)
        if lease.lastGrant > 0 {
            let lasted = now - lease.grantedAt
            if lasted < 250_000_000 { lease.want = min(largest, lease.want * 2) } else if lasted > 2_000_000_000 { lease.want = max(1, lease.want / 2) }
        }
        let need = max(need, lease.waiters.reduce(1) { $1.pending.isAnswered ? $0 : max($0, $1.check.cost) })
        let want = max(lease.want, need)
        let keep = lease.remaining
        counters.leaseRequests.add(1, ordering: .relaxed)
        let key = lease.key
        let number = lease.renewals
        return RedisJob(
            script: RedisScript(lease.rateLimit.algorithm), key: lease.redisKey,
            arguments: arguments(lease.rateLimit, want: want, need: need, mode: "lease", keep: keep, window: lease.window),
            deadline: deadline(), completion: { [self] result in renewed(key, number: number, result: result, sentAt: now, need: need, keep: keep) }
        )
    }

    /// Applies a renewal's reply (on the Redis thread) and answers the waiters it can.
    private func renewed(_ key: BucketKey, number: Int64, result: Result<[Int64], RedisConnectionError>, sentAt: Int64, need: Int64, keep: Int64) {
        let now = clock.now().nanoseconds
        var answers: [(PendingDecision, Decision, GlobalCharge?)] = []
        var failed: [PendingDecision] = []
        var next: RedisJob?
        leases.update(key) { lease in
            guard lease.renewals == number else { return }  // a renewal given up as lost; a newer one is in flight
            lease.renewing = false
            guard case .success(let values) = result else {
                // Nothing was learned: the waiters follow the failure policy (their fallbacks know it).
                failed = lease.waiters.map(\.pending)
                lease.waiters.removeAll()
                return
            }
            let (allowed, granted, remaining, reset, retry, window, valid) = (values[0], values[1], values[2], values[3], values[4], values[5], values[6])
            if lease.rateLimit.algorithm == .tokenBucket {
                lease.remaining = min(lease.remaining, keep)  // Redis counts at most what we said we kept
            } else if window != lease.window {
                lease.remaining = 0  // a slice of an earlier window is dead
            }
            lease.window = window
            lease.remaining += granted
            lease.validUntil = sentAt + Self.nanoseconds(milliseconds: valid)
            lease.globalRemaining = remaining
            lease.resetAt = now + Self.nanoseconds(milliseconds: reset)
            lease.lastGrant = granted
            lease.grantedAt = now
            if allowed == 0, granted == 0, retry > 0 {
                lease.exhaustedUntil = sentAt + Self.nanoseconds(milliseconds: retry)
                lease.exhaustedNeed = need
            } else {
                lease.exhaustedUntil = 0
            }
            var still: [Waiter] = []
            for waiter in lease.waiters {
                if lease.validUntil > now, lease.remaining >= waiter.check.cost {
                    // Spend only for a waiter whose timeout has not answered it already.
                    guard waiter.pending.claim() else { continue }
                    lease.remaining -= waiter.check.cost
                    lease.lastUsed = now
                    let decision = leaseDecision(lease, check: waiter.check, now: now, allowed: true)
                    answers.append((waiter.pending, decision, GlobalCharge(fromLease: true, window: lease.window, renewals: lease.renewals)))
                } else if lease.exhaustedUntil > now, waiter.check.cost >= lease.exhaustedNeed {
                    guard waiter.pending.claim() else { continue }
                    answers.append((waiter.pending, leaseDecision(lease, check: waiter.check, now: now, allowed: false), nil))
                } else if !waiter.pending.isAnswered {
                    still.append(waiter)
                }
            }
            lease.waiters = still
            if !still.isEmpty, !lease.renewing { next = startRenewal(&lease, need: 1, now: now) }
        }
        for (pending, decision, charge) in answers { pending.deliver(decision, charge: decision.outcome == .allowed ? charge : nil) }
        if !failed.isEmpty {
            let failedAt = clock.now()
            for pending in failed { pending.expire(now: failedAt) }
        }
        if let next { worker.submit(next) }
    }

    private func leaseDecision(_ lease: Lease, check: Check, now: Int64, allowed: Bool) -> Decision {
        let capacity = check.rateLimit.capacity
        let reset = max(0, lease.resetAt - now)
        if allowed {
            let remaining = min(capacity, max(0, lease.remaining + lease.globalRemaining))
            return Decision(outcome: .allowed, limit: capacity, remaining: remaining, resetAfterNanoseconds: reset, retryAfterNanoseconds: 0).answering(check)
        }
        return Decision(
            outcome: .denied, limit: capacity, remaining: 0, resetAfterNanoseconds: max(reset, lease.exhaustedUntil - now),
            retryAfterNanoseconds: max(1, lease.exhaustedUntil - now)
        ).answering(check)
    }

    // MARK: Strict

    private func direct(_ check: Check, policy: Policy, key: [UInt8], mode: String, now: Timestamp) -> GlobalDecision {
        let consume = mode != "peek"
        guard worker.isConnected else {
            let (decision, charge) = fallback(check, policy: policy, now: now, consume: consume)
            return .decided(decision, charge)
        }
        counters.redis.add(1, ordering: .relaxed)
        counters.strict.add(1, ordering: .relaxed)
        let pending = PendingDecision { [self] now in fallback(check, policy: policy, now: now, consume: consume) }
        let capacity = check.rateLimit.capacity
        worker.submit(
            RedisJob(
                script: RedisScript(check.rateLimit.algorithm), key: key,
                arguments: arguments(check.rateLimit, want: check.cost, need: check.cost, mode: mode, keep: 0, window: -1),
                deadline: deadline(),
                completion: { [self] result in
                    guard case .success(let values) = result else { return pending.expire(now: clock.now()) }
                    let allowed = values[0] == 1
                    let outcome: Decision.Outcome = allowed ? .allowed : values[4] < 0 ? .exceedsCapacity : .denied
                    let decision = Decision(
                        outcome: outcome, limit: capacity, remaining: max(0, values[2]), resetAfterNanoseconds: Self.nanoseconds(milliseconds: values[3]),
                        retryAfterNanoseconds: allowed ? 0 : values[4] < 0 ? -1 : Self.nanoseconds(milliseconds: values[4])
                    ).answering(check)
                    if !pending.answer(decision, charge: allowed && consume ? GlobalCharge(fromLease: false, window: values[5]) : nil), allowed, consume {
                        // The timeout answered first (by the failure policy): give back what Redis took for nothing.
                        refund(check, key: key, window: values[5])
                    }
                }
            )
        )
        return .pending(pending)
    }

    /// Gives `check`'s cost back to Redis, to `window` (windows) or the bucket.
    private func refund(_ check: Check, key: [UInt8], window: Int64) {
        worker.submit(
            RedisJob(
                script: RedisScript(check.rateLimit.algorithm), key: key,
                arguments: arguments(check.rateLimit, want: 0, need: 0, mode: "refund", keep: check.cost, window: window),
                deadline: Self.noDeadline(), completion: { _ in }
            )
        )
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
            return (decision, charge.map { GlobalCharge(fromLease: false, window: -1, local: $0) })
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

    /// Milliseconds from a Redis reply as nanoseconds; a value too large for that (only a misbehaving
    /// server sends one) saturates instead of trapping.
    private static func nanoseconds(milliseconds: Int64) -> Int64 {
        let (product, overflow) = milliseconds.multipliedReportingOverflow(by: 1_000_000)
        return overflow ? (milliseconds < 0 ? .min / 2 : .max / 2) : product
    }

    // MARK: Keys and arguments

    /// `<prefix>{<policy>|<key>}:<fw|sw|tb>`. The braces make the bucket's key its own hash tag (one
    /// Cluster slot); `|` cannot appear in a policy name, so no two (policy, key) pairs share a name; the
    /// suffix keeps an algorithm change from reading another algorithm's state.
    private func redisKey(_ policy: Policy, _ name: UnsafeRawBufferPointer) -> [UInt8] {
        var key = Array(settings.keyPrefix.utf8)
        key.reserveCapacity(key.count + policy.name.utf8.count + name.count + 6)
        key.append(UInt8(ascii: "{"))
        key.append(contentsOf: policy.name.utf8)
        key.append(UInt8(ascii: "|"))
        key.append(contentsOf: name)
        key.append(UInt8(ascii: "}"))
        key.append(UInt8(ascii: ":"))
        switch policy.rateLimit.algorithm {
        case .fixedWindow: key.append(contentsOf: "fw".utf8)
        case .slidingWindow: key.append(contentsOf: "sw".utf8)
        case .tokenBucket: key.append(contentsOf: "tb".utf8)
        }
        return key
    }

    private func arguments(_ rateLimit: RateLimit, want: Int64, need: Int64, mode: String, keep: Int64, window: Int64) -> [RedisJob.Argument] {
        [
            .integer(rateLimit.limit), .integer(max(1, rateLimit.periodNanoseconds / 1_000_000)), .integer(rateLimit.capacity), .integer(want),
            .integer(need), .text(mode), .text(holder), .integer(keep), .integer(leaseLifetime), .integer(window),
        ]
    }
}

extension RedisScript {
    init(_ algorithm: Algorithm) {
        switch algorithm {
        case .fixedWindow: self = .fixedWindow
        case .slidingWindow: self = .slidingWindow
        case .tokenBucket: self = .tokenBucket
        }
    }
}

/// Relaxed counters for ``GlobalLimiterStatus``.
private final class Counters: Sendable {
    let local = Atomic<Int>(0)
    let redis = Atomic<Int>(0)
    let fallback = Atomic<Int>(0)
    let leaseRequests = Atomic<Int>(0)
    let strict = Atomic<Int>(0)
}
