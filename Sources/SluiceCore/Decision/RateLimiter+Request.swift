/// Why the checks of a request cannot be decided as asked.
public struct RequestError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of request was refused.
    public struct Code: Hashable, Sendable {
        enum Base: Hashable, Sendable { case noGlobalLimiter }
        let base: Base
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
        /// Global checks wait for the shared store; once each is answered, ``PendingRequest/finish(now:)``
        /// completes the request.
        case pending(PendingRequest)
    }

    /// Decides the checks of one request all or nothing, whatever their scope: the one rule every interface
    /// (line protocol, HTTP, gRPC) follows.
    ///
    /// Without a global check this is ``decide(_:at:consume:)-(some RandomAccessCollection<Check>,_,_)``.
    /// With global checks, they are all asked of the shared store at once (each may wait for it); once every
    /// one is answered, the local checks are decided. If any check denies, what the others took is given back
    /// where it came from, so a denied request consumes nothing. While a charge is outstanding a concurrent
    /// request may see less budget than it will end up having: the error is always toward denying.
    ///
    /// - Parameters:
    ///   - checks: the checks, at least one, resolved against `policies`.
    ///   - policies: the set the checks name, which says which are global.
    ///   - keyBytes: the caller's key of check `i`, asked only for a global check (its shared key is built from it).
    ///   - now: the time.
    ///   - consume: false to decide without consuming.
    /// - Returns: the decisions, or the request waiting for the shared store.
    /// - Throws: ``RequestError`` when a global policy is asked of a limiter without a ``global`` limiter.
    public func decide(
        request checks: [Check], policies: PolicySet, keyBytes: (Int) -> [UInt8], at now: Timestamp, consume: Bool = true
    ) throws(RequestError) -> RequestOutcome {
        guard policies.hasGlobal else { return .decided(decide(checks, at: now, consume: consume)) }
        let globalIndices = checks.indices.filter { policies.isGlobal(checks: checks[$0]) }
        guard let first = globalIndices.first else { return .decided(decide(checks, at: now, consume: consume)) }
        guard let global else {
            let name = policies.policies[Int(checks[first].policyIndex)].name
            throw RequestError(code: .noGlobalLimiter, message: "policy '\(name)' is global but this server has no Redis configured")
        }
        var request = GlobalRequest(checks: checks, limiter: self, global: global, consume: consume)
        var waits: [PendingDecision] = []
        // Once one is denied at once, the rest are only looked at: charging them would be given back anyway.
        var denied = false
        for index in globalIndices {
            let policy = policies.policies[Int(checks[index].policyIndex)]
            let key = keyBytes(index)
            switch key.withUnsafeBytes({ global.decide(checks[index], policy: policy, key: $0, now: now, consume: consume && !denied) }) {
            case .decided(let decision, let charge):
                denied = denied || !decision.isAllowed
                request.globals.append(GlobalRequest.Global(index: index, policy: policy, key: key, answer: .decided(decision, charge)))
            case .pending(let pending):
                request.globals.append(GlobalRequest.Global(index: index, policy: policy, key: key, answer: .pending(pending)))
                waits.append(pending)
            }
        }
        guard waits.isEmpty else { return .pending(PendingRequest(waits: waits, request: request, policies: policies)) }
        return .decided(request.finish(now: now))
    }
}

extension RateLimiter {
    /// One check's decision, made now or waiting for the shared store.
    public enum SingleOutcome: Sendable {
        case decided(Decision)
        /// The check is global and waits; ``PendingRequest/finish(now:)`` gives its decision as the only one.
        case pending(PendingRequest)
    }

    /// Decides one check, local or global: ``decide(request:policies:keyBytes:at:consume:)`` for a request of
    /// one check, without allocating when it is decided at once (a local check, a lease, a known exhaustion).
    ///
    /// - Parameter key: the caller's key bytes (a global check's shared key is built from them).
    public func decide(
        _ check: Check, policies: PolicySet, key: UnsafeRawBufferPointer, at now: Timestamp, consume: Bool = true
    ) throws(RequestError) -> SingleOutcome {
        guard policies.isGlobal(checks: check) else { return .decided(decide(check, at: now, consume: consume)) }
        let policy = policies.policies[Int(check.policyIndex)]
        guard let global else {
            throw RequestError(code: .noGlobalLimiter, message: "policy '\(policy.name)' is global but this server has no Redis configured")
        }
        switch global.decide(check, policy: policy, key: key, now: now, consume: consume) {
        case .decided(let decision, _): return .decided(decision)
        case .pending(let pending):
            var request = GlobalRequest(checks: [check], limiter: self, global: global, consume: consume)
            request.globals = [GlobalRequest.Global(index: 0, policy: policy, key: Array(key), answer: .pending(pending))]
            return .pending(PendingRequest(waits: [pending], request: request, policies: policies))
        }
    }
}

extension PolicySet {
    /// Whether `check` names a global policy (an inline limit never does).
    @inlinable
    func isGlobal(checks check: Check) -> Bool { check.policyIndex >= 0 && isGlobal[Int(check.policyIndex)] }
}

/// A request whose global checks wait for the shared store: once each of ``waits`` is answered (by the
/// store, or by the failure policy after the timeout), ``finish(now:)`` decides the rest.
public struct PendingRequest: Sendable {
    /// The global checks' answers to wait for, each answered exactly once.
    public let waits: [PendingDecision]
    let request: GlobalRequest
    /// The policies the request was decided against (its decisions' indices are theirs).
    public let policies: PolicySet

    /// Completes the request once every one of ``waits`` is answered: the local checks are decided now, and
    /// if any check denies, every charge goes back.
    ///
    /// - Returns: every check's decision, in request order.
    public func finish(now: Timestamp) -> RateLimiter.MultiDecision { request.finish(now: now) }
}

/// The checks of a request holding global checks: the globals are decided first, the locals after.
struct GlobalRequest: Sendable {
    /// One global check and its answer.
    struct Global: Sendable {
        enum Answer: Sendable {
            case decided(Decision, GlobalCharge?)
            case pending(PendingDecision)
        }

        let index: Int
        let policy: Policy
        /// The caller's key bytes, for the key in the shared store.
        let key: [UInt8]
        let answer: Answer

        /// The decision and what it took; a pending one must be answered by now.
        var decided: (decision: Decision, charge: GlobalCharge?) {
            switch answer {
            case .decided(let decision, let charge): return (decision, charge)
            case .pending(let pending):
                guard let answered = pending.answer else {
                    preconditionFailure("a request is finished only once each of its waits is answered")
                }
                return answered
            }
        }
    }

    let checks: [Check]
    let limiter: RateLimiter
    let global: any GlobalLimiter
    let consume: Bool
    var globals: [Global] = []

    func finish(now: Timestamp) -> RateLimiter.MultiDecision {
        var decisions: [Decision?] = Array(repeating: nil, count: checks.count)
        var charges: [(global: Global, charge: GlobalCharge)] = []
        var denied: Int?
        for entry in globals {
            let (decision, charge) = entry.decided
            decisions[entry.index] = decision
            if decision.isAllowed, let charge { charges.append((entry, charge)) }
            if !decision.isAllowed, denied == nil { denied = entry.index }
        }
        let localIndices = checks.indices.filter { decisions[$0] == nil }
        if denied == nil, !localIndices.isEmpty {
            let result = limiter.decide(localIndices.map { checks[$0] }, at: now, consume: consume)
            for (position, index) in localIndices.enumerated() { decisions[index] = result.decisions[position] }
            if !result.isAllowed { denied = localIndices[result.decidingIndex] }
        } else {
            // Nothing local is charged: show what each would answer.
            for index in localIndices { decisions[index] = limiter.decide(checks[index], at: now, consume: false) }
        }
        let shown = decisions.map { $0 ?? Decision(outcome: .denied, limit: 0, remaining: 0, resetAfterNanoseconds: 0, retryAfterNanoseconds: 0) }
        guard let denied else {
            return RateLimiter.MultiDecision(isAllowed: true, decisions: shown, decidingIndex: RateLimiter.mostRestrictive(shown, checks: checks))
        }
        // Given back: each then answers what it would answer now, as a denied request's other checks do.
        if consume {
            for (entry, charge) in charges {
                entry.key.withUnsafeBytes { global.refund(checks[entry.index], policy: entry.policy, key: $0, charge: charge, now: now) }
            }
        }
        return RateLimiter.MultiDecision(isAllowed: false, decisions: shown, decidingIndex: denied)
    }
}
