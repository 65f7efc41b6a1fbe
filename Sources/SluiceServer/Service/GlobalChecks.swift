public import SluiceCore

/// The checks of one request when a global policy is among them: the global check is decided first (it
/// may wait for Redis), then the local ones, all or nothing; when a local check denies, the global
/// charge is given back. A request may hold one global check: two would need a cross-key transaction in
/// Redis for all-or-nothing, which leases cannot give.
public struct GlobalChecks: Sendable {
    /// How the global check starts.
    public enum Start: Sendable {
        /// Decided at once (a lease, a known exhaustion, or the failure policy).
        case decided(RateLimiter.MultiDecision)
        /// Waiting for Redis: call ``finish(_:charge:now:consume:)`` with its answer.
        case pending(PendingDecision)
    }

    let checks: [Check]
    let globalIndex: Int
    let policy: Policy
    /// The global check's key bytes, for its Redis key.
    let name: [UInt8]
    let limiter: RateLimiter
    let global: any GlobalLimiter

    /// Groups `checks` (their key bytes in `names`) if one is global; nil if none is.
    ///
    /// - Throws: a message when more than one check is global, or no Redis is configured.
    static func resolve(
        _ checks: [Check], names: (Int) -> [UInt8], policies: PolicySet, context: ServerContext
    ) throws(GlobalChecksError) -> GlobalChecks? {
        guard policies.hasGlobal else { return nil }
        let globals = checks.indices.filter { checks[$0].policyIndex >= 0 && policies.isGlobal[Int(checks[$0].policyIndex)] }
        guard let first = globals.first else { return nil }
        let policy = policies.policies[Int(checks[first].policyIndex)]
        guard globals.count == 1 else {
            let others = globals.dropFirst().map { policies.policies[Int(checks[$0].policyIndex)].name }
            throw GlobalChecksError(
                message: "a request may hold one global policy; '\(policy.name)' is combined with '\(others.joined(separator: "', '"))'"
            )
        }
        guard let global = context.global else {
            throw GlobalChecksError(message: "policy '\(policy.name)' is global but this server has no Redis configured")
        }
        return GlobalChecks(checks: checks, globalIndex: first, policy: policy, name: names(first), limiter: context.limiter, global: global)
    }

    /// Decides the global check, and the rest at once if it needs no wait.
    func start(now: Timestamp, consume: Bool = true) -> Start {
        let outcome = name.withUnsafeBytes { global.decide(checks[globalIndex], policy: policy, name: $0, now: now, consume: consume) }
        switch outcome {
        case .decided(let decision, let charge): return .decided(finish(decision, charge: charge, now: now, consume: consume))
        case .pending(let pending): return .pending(pending)
        }
    }

    /// Completes the request with the global check's decision (and what it took, `charge`): the local
    /// checks are decided now.
    func finish(_ decision: Decision, charge: GlobalCharge?, now: Timestamp, consume: Bool = true) -> RateLimiter.MultiDecision {
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
            name.withUnsafeBytes { global.refund(checks[globalIndex], policy: policy, name: $0, charge: charge, now: now) }
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

/// Why a request's global checks cannot be decided.
struct GlobalChecksError: Error {
    let message: String
}
