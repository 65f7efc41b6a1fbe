import Synchronization

/// Decides the checks of global policies, whose budget the fleet shares.
///
/// The servers talk to Redis only through this protocol; `SluiceRedis` implements it, and the executable
/// is the one place the two meet.
public protocol GlobalLimiter: AnyObject, Sendable {
    /// Decides `check` of the global `policy` for the caller's key `name`.
    ///
    /// - Parameters:
    ///   - check: the check, resolved as for a local policy (its ``BucketKey`` names the bucket in this process).
    ///   - policy: the policy, global.
    ///   - name: the caller's key bytes (Redis keys are built from them).
    ///   - now: the time.
    ///   - consume: false to decide without consuming (PEEK).
    /// - Returns: ``GlobalDecision/decided(_:)`` when this process can answer at once (a lease, a known
    ///   exhaustion, Redis known to be down); ``GlobalDecision/pending(_:)`` when Redis must be asked. A pending
    ///   decision is answered by the limiter or, after ``timeout``, by the caller's ``PendingDecision/expire(now:)``.
    func decide(_ check: Check, policy: Policy, name: UnsafeRawBufferPointer, now: Timestamp, consume: Bool) -> GlobalDecision

    /// Gives back what an allowed `check` took, for a request that a later local check denied: `charge` says
    /// where it came from (a lease, or Redis and which window). A decision that took nothing global (a
    /// fallback, a shadow denial) has no charge and nothing is given back. Never waits.
    func refund(_ check: Check, policy: Policy, name: UnsafeRawBufferPointer, charge: GlobalCharge, now: Timestamp)

    /// The longest any decision waits for Redis; the caller expires pending decisions after it.
    var timeout: Duration { get }

    /// Counters and state for `INFO`, `/readyz` and `/metrics`.
    func status() -> GlobalLimiterStatus
}

/// A global decision: made now, or waiting for Redis.
public enum GlobalDecision: Sendable {
    /// Decided from this process's state; the charge when it took from the global budget.
    case decided(Decision, GlobalCharge?)
    /// Waiting for Redis; answered exactly once.
    case pending(PendingDecision)
}

/// Where an allowed global decision took its cost from, so a refund goes back exactly there.
public struct GlobalCharge: Sendable, Hashable {
    /// Taken from this process's lease (else from Redis directly, or from the local store).
    public var fromLease: Bool
    /// The window the cost was counted in (windows), or -1.
    public var window: Int64
    /// The lease's renewal count when it was charged: a token-bucket lease refunds into itself only if no
    /// renewal has since reported what it holds.
    public var renewals: Int64
    /// Set when the policy's `local` failure behaviour decided: the cost is in this process's store.
    public var local: LocalCharge?

    /// Creates a charge.
    public init(fromLease: Bool, window: Int64, renewals: Int64 = 0, local: LocalCharge? = nil) {
        self.fromLease = fromLease
        self.window = window
        self.renewals = renewals
        self.local = local
    }
}

/// A decision waiting for Redis, answered exactly once: by the reply, or by the failure policy when the
/// caller's timeout fires first.
///
/// Answering is two steps, ``claim()`` then ``deliver(_:charge:)``, so whoever answers can take budget only
/// once it knows its answer will be the one used (a reply that lost the race to the timeout takes nothing).
public final class PendingDecision: Sendable {
    private enum State: Sendable {
        case waiting((@Sendable (Decision, GlobalCharge?) -> Void)?)
        case claimed((@Sendable (Decision, GlobalCharge?) -> Void)?)
        case answered(Decision, GlobalCharge?)
    }

    private let state = Mutex(State.waiting(nil))
    private let fallback: @Sendable (Timestamp) -> (Decision, GlobalCharge?)

    /// Creates a pending decision; `fallback` decides by the policy's failure behaviour when time runs out
    /// (and says what it took, if anything).
    public init(fallback: @escaping @Sendable (Timestamp) -> (Decision, GlobalCharge?)) {
        self.fallback = fallback
    }

    /// Takes the right to answer; false if someone else has it.
    public func claim() -> Bool {
        state.withLock { state in
            guard case .waiting(let callback) = state else { return false }
            state = .claimed(callback)
            return true
        }
    }

    /// Answers, after a successful ``claim()``.
    public func deliver(_ decision: Decision, charge: GlobalCharge?) {
        let callback: (@Sendable (Decision, GlobalCharge?) -> Void)?? = state.withLock { state in
            guard case .claimed(let callback) = state else { return .none }
            state = .answered(decision, charge)
            return .some(callback)
        }
        if case .some(let waiting) = callback { waiting?(decision, charge) }
    }

    /// Claims and answers; returns whether this call answered.
    @discardableResult
    public func answer(_ decision: Decision, charge: GlobalCharge? = nil) -> Bool {
        guard claim() else { return false }
        deliver(decision, charge: charge)
        return true
    }

    /// Answers by the failure policy, unless Redis answered (or is answering) first.
    public func expire(now: Timestamp) {
        guard claim() else { return }
        let (decision, charge) = fallback(now)
        deliver(decision, charge: charge)
    }

    /// Whether an answer was given (or is being given).
    public var isAnswered: Bool {
        state.withLock { state in
            if case .waiting = state { return false }
            return true
        }
    }

    /// The answer and what it took, once given.
    public var answer: (decision: Decision, charge: GlobalCharge?)? {
        state.withLock { state in
            if case .answered(let decision, let charge) = state { return (decision, charge) }
            return nil
        }
    }

    /// The answer, once given.
    public var decision: Decision? { answer?.decision }

    /// Calls `callback` with the answer and its charge: now if already answered, else when it comes. One
    /// callback only.
    public func whenAnswered(_ callback: @escaping @Sendable (Decision, GlobalCharge?) -> Void) {
        let ready: (Decision, GlobalCharge?)? = state.withLock { state in
            switch state {
            case .answered(let decision, let charge): return (decision, charge)
            case .waiting:
                state = .waiting(callback)
                return nil
            case .claimed:
                state = .claimed(callback)
                return nil
            }
        }
        if let ready { callback(ready.0, ready.1) }
    }
}

/// What a global limiter reports about itself.
public struct GlobalLimiterStatus: Sendable, Hashable {
    /// Whether Redis answers now.
    public var isConnected: Bool
    /// Where Redis is, as `host:port/db`.
    public var endpoint: String
    /// Global decisions answered without waiting for Redis (from a lease or a known exhaustion).
    public var localDecisions: Int
    /// Global decisions that waited for Redis (no lease yet, or a strict policy).
    public var redisDecisions: Int
    /// Decisions made by a policy's `on_store_failure` because Redis was down, slow or refusing.
    public var fallbackDecisions: Int
    /// Lease requests sent (first leases and renewals).
    public var leaseRequests: Int
    /// Script calls for strict policies.
    public var strictCalls: Int
    /// Commands that failed: timeouts, dropped connections, error replies.
    public var errors: Int
    /// Successful connections after the first.
    public var reconnections: Int
    /// Buckets holding a lease now.
    public var leases: Int

    /// Creates a status.
    public init(
        isConnected: Bool, endpoint: String, localDecisions: Int, redisDecisions: Int, fallbackDecisions: Int,
        leaseRequests: Int, strictCalls: Int, errors: Int, reconnections: Int, leases: Int
    ) {
        self.isConnected = isConnected
        self.endpoint = endpoint
        self.localDecisions = localDecisions
        self.redisDecisions = redisDecisions
        self.fallbackDecisions = fallbackDecisions
        self.leaseRequests = leaseRequests
        self.strictCalls = strictCalls
        self.errors = errors
        self.reconnections = reconnections
        self.leases = leases
    }
}

extension Decision {
    /// This decision as the answer to `check`: its policy index, and shadow mode applied.
    @inlinable
    public func answering(_ check: Check) -> Decision {
        var decision = self
        decision.policyIndex = check.policyIndex
        decision.isShadowed = check.mode == .shadow && decision.outcome != .allowed
        return decision
    }
}
