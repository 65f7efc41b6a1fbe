/// Why the checks of a request cannot be decided as asked.
public struct RequestError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of request was refused.
    public struct Code: Hashable, Sendable {
        enum Base: Hashable, Sendable { case severalGlobalPolicies, noGlobalLimiter }
        let base: Base
        /// The request holds more than one global policy: all or nothing across two shared budgets would need
        /// a cross-key transaction, which leases cannot give.
        public static let severalGlobalPolicies = Code(base: .severalGlobalPolicies)
        /// A global policy was asked of a limiter with no shared store (no Redis configured).
        public static let noGlobalLimiter = Code(base: .noGlobalLimiter)
    }

    /// The kind of refusal.
    public let code: Code
    /// What was wrong, for the client.
    public let message: String

    public var description: String { message }
}

extension RateLimiter {
    /// A request's checks, decided now or waiting for the shared store.
    public enum RequestOutcome: Sendable {
        /// Decided (from this process's state: the store, a lease, a known exhaustion, or the failure policy).
        case decided(MultiDecision)
        /// The global check waits for the shared store; ``PendingRequest/finish(_:charge:now:)`` completes it.
        case pending(PendingRequest)
    }

    /// Decides the checks of one request all or nothing, whatever their scope: the one rule every interface
    /// (line protocol, HTTP, gRPC) follows.
    ///
    /// Without a global check this is ``decide(_:at:consume:)-(some RandomAccessCollection<Check>,_,_)``.
    /// With one, the global check is decided first (it may wait for the shared store), the local ones after,
    /// and when a local check denies, what the global one took is given back where it came from.
    ///
    /// - Parameters:
    ///   - checks: the checks, at least one, resolved against `policies`.
    ///   - policies: the set the checks name, which says which are global.
    ///   - keyBytes: the caller's key of check `i`, asked only for a global check (its shared key is built from it).
    ///   - now: the time.
    ///   - consume: false to decide without consuming.
    /// - Returns: the decisions, or the pending global check.
    /// - Throws: ``RequestError`` when the request holds two global policies, or a global one without a
    ///   ``global`` limiter.
    public func decide(
        request checks: [Check], policies: PolicySet, keyBytes: (Int) -> [UInt8], at now: Timestamp, consume: Bool = true
    ) throws(RequestError) -> RequestOutcome {
        guard policies.hasGlobal, let first = checks.firstIndex(where: { policies.isGlobal(checks: $0) }) else {
            return .decided(decide(checks, at: now, consume: consume))
        }
        let policy = policies.policies[Int(checks[first].policyIndex)]
        if let second = checks[(first + 1)...].firstIndex(where: { policies.isGlobal(checks: $0) }) {
            let other = policies.policies[Int(checks[second].policyIndex)].name
            throw RequestError(
                code: .severalGlobalPolicies, message: "a request may hold one global policy; '\(policy.name)' is combined with '\(other)'"
            )
        }
        guard let global else {
            throw RequestError(code: .noGlobalLimiter, message: "policy '\(policy.name)' is global but this server has no Redis configured")
        }
        let request = GlobalRequest(
            checks: checks, globalIndex: first, policy: policy, key: keyBytes(first), limiter: self, global: global, consume: consume
        )
        let outcome = request.key.withUnsafeBytes { global.decide(checks[first], policy: policy, key: $0, now: now, consume: consume) }
        switch outcome {
        case .decided(let decision, let charge): return .decided(request.finish(decision, charge: charge, now: now))
        case .pending(let pending): return .pending(PendingRequest(decision: pending, request: request))
        }
    }
}

extension PolicySet {
    /// Whether `check` names a global policy (an inline limit never does).
    @inlinable
    func isGlobal(checks check: Check) -> Bool { check.policyIndex >= 0 && isGlobal[Int(check.policyIndex)] }
}

/// A request whose global check waits for the shared store: once its ``decision`` is answered (by the store,
/// or by the failure policy after the timeout), ``finish(_:charge:now:)`` decides the local checks.
public struct PendingRequest: Sendable {
    /// The global check's answer, to wait for.
    public let decision: PendingDecision
    let request: GlobalRequest

    /// Completes the request with the global check's `decision` and what it took (`charge`): the local checks
    /// are decided now, and when one denies, the global charge goes back.
    ///
    /// - Returns: every check's decision, in request order.
    public func finish(_ decision: Decision, charge: GlobalCharge?, now: Timestamp) -> RateLimiter.MultiDecision {
        request.finish(decision, charge: charge, now: now)
    }
}

/// The checks of a request holding one global check: the global check decides first, the locals after.
struct GlobalRequest: Sendable {
    let checks: [Check]
    let globalIndex: Int
    let policy: Policy
    /// The global check's key bytes, for its key in the shared store.
    let key: [UInt8]
    let limiter: RateLimiter
    let global: any GlobalLimiter
    let consume: Bool

    func finish(_ decision: Decision, charge: GlobalCharge?, now: Timestamp) -> RateLimiter.MultiDecision {
        guard checks.count > 1 else { return RateLimiter.MultiDecision(isAllowed: decision.isAllowed, decisions: [decision], decidingIndex: 0) }
        var locals = checks
        locals.remove(at: globalIndex)
        guard decision.isAllowed else {
            // Nothing local is charged: show what each would answer.
            var decisions = locals.map { limiter.decide($0, at: now, consume: false) }
            decisions.insert(decision, at: globalIndex)
            return RateLimiter.MultiDecision(isAllowed: false, decisions: decisions, decidingIndex: globalIndex)
        }
        let result = limiter.decide(locals, at: now, consume: consume)
        var decisions = result.decisions
        var shown = decision
        if !result.isAllowed, consume, let charge {
            key.withUnsafeBytes { global.refund(checks[globalIndex], policy: policy, key: $0, charge: charge, now: now) }
            shown.remaining = min(shown.limit, shown.remaining + checks[globalIndex].cost)
        }
        decisions.insert(shown, at: globalIndex)
        if !result.isAllowed {
            let deciding = result.decidingIndex >= globalIndex ? result.decidingIndex + 1 : result.decidingIndex
            return RateLimiter.MultiDecision(isAllowed: false, decisions: decisions, decidingIndex: deciding)
        }
        return RateLimiter.MultiDecision(isAllowed: true, decisions: decisions, decidingIndex: RateLimiter.mostRestrictive(decisions, checks: checks))
    }
}
