/// Decides checks: local ones against a ``BucketStore``, global ones through a ``GlobalLimiter``; single
/// checks, and the checks of a request all or nothing (``decide(request:policies:keyBytes:at:consume:)``).
///
/// It knows limits, not names: interfaces resolve policy names through a ``PolicySet`` into ``Check``s.
public final class RateLimiter: Sendable {
    /// The outcome of several checks decided together.
    public struct MultiDecision: Sendable, Hashable {
        /// Whether every enforced check allowed the request.
        public var isAllowed: Bool
        /// One decision per check, in order. When denied, checks other than the deciding one show what
        /// they would have answered: nothing was consumed.
        public var decisions: [Decision]
        /// The check that decided: the first denying one, else the most restrictive allowed one.
        public var decidingIndex: Int

        /// Creates a result.
        public init(isAllowed: Bool, decisions: [Decision], decidingIndex: Int) {
            self.isAllowed = isAllowed
            self.decisions = decisions
            self.decidingIndex = decidingIndex
        }
    }

    /// The buckets of local checks (and of a global policy's `local` failure behaviour).
    public let store: BucketStore
    /// Decides global checks through the fleet's shared store; nil when no policy can be global.
    public let global: (any GlobalLimiter)?

    /// Creates a limiter over `store`, with `global` deciding global checks.
    public init(store: BucketStore, global: (any GlobalLimiter)? = nil) {
        self.store = store
        self.global = global
    }

    /// Decides one check, consuming its cost when allowed.
    ///
    /// - Parameters:
    ///   - check: the check.
    ///   - now: the time, read once for a whole batch of decisions.
    ///   - consume: false to decide without consuming (PEEK).
    /// - Returns: the decision, with shadow mode applied.
    /// - Complexity: O(1); no lock and no allocation for a key already present.
    public func decide(_ check: Check, at now: Timestamp, consume: Bool = true) -> Decision {
        decideReserving(check, at: now, consume: consume).0
    }

    /// Starts loading the check's bucket into the cache: call it for each of a batch of checks, then decide
    /// them, and their memory accesses overlap instead of queueing (see ``BucketStore/prefetch(_:)``).
    @inline(__always)
    public func prefetch(_ check: Check) { store.prefetch(check.key) }

    func decideReserving(_ check: Check, at now: Timestamp, consume: Bool) -> (Decision, BucketStore.Reservation?) {
        guard check.cost > 0 else { preconditionFailure("interfaces reject non-positive costs before deciding") }
        let (evaluation, reservation) = store.decide(check.rateLimit, key: check.key, cost: check.cost, now: now, consume: consume)
        return (evaluation.decision.answering(check), reservation)
    }

    /// Decides several checks all or nothing: if any enforced check denies, none consumes anything.
    ///
    /// Checks are charged in order; on a denial the earlier charges are given back. While a charge is
    /// outstanding a concurrent request may see less budget than it will end up having: the error is
    /// always toward denying, so two requests can never both pass when only one fits.
    ///
    /// - Parameters:
    ///   - checks: the checks, at least one.
    ///   - now: the time.
    ///   - consume: false to decide without consuming.
    /// - Returns: the overall verdict and one decision per check.
    public func decide(_ checks: some RandomAccessCollection<Check>, at now: Timestamp, consume: Bool = true) -> MultiDecision {
        var decisions: [Decision] = []
        decisions.reserveCapacity(checks.count)
        var reservations: [(reservation: BucketStore.Reservation, check: Check)] = []
        var deniedAt: Int?
        // The buckets' memory loads overlap: over a table larger than the cache, 266-323 ns a check instead of
        // 387-435 (the core benchmark's all-or-nothing-4), though this costs one more allocation per request here.
        if checks.count > 1 {
            for check in checks { prefetch(check) }
        }
        for check in checks {
            let (decision, reservation) = decideReserving(check, at: now, consume: consume)
            decisions.append(decision)
            if let reservation { reservations.append((reservation, check)) }
            if !decision.isAllowed {
                deniedAt = decisions.count - 1
                break
            }
        }
        guard let denied = deniedAt else {
            return MultiDecision(isAllowed: true, decisions: decisions, decidingIndex: Self.mostRestrictive(decisions, checks: checks))
        }
        for (reservation, check) in reservations.reversed() {
            store.refund(reservation, limit: check.rateLimit, cost: check.cost)
        }
        // Every check, the denying one included, as it stands now that nothing is charged. A check that
        // repeats a bucket was judged against the request's own earlier charge: when the request's total
        // on that bucket exceeds its capacity, it can never pass, and says so.
        var index = 0
        for check in checks {
            var peeked = decideReserving(check, at: now, consume: false).0
            if index == denied, peeked.outcome == .allowed {
                // Saturating: a client may send costs whose sum overflows.
                let total = checks.reduce(Int64(0)) { sum, other in
                    guard other.key == check.key, other.rateLimit == check.rateLimit else { return sum }
                    let (added, overflow) = sum.addingReportingOverflow(other.cost)
                    return overflow ? .max : added
                }
                if total > check.rateLimit.capacity {
                    peeked.outcome = .exceedsCapacity
                    peeked.retryAfterNanoseconds = -1
                } else {
                    peeked = decisions[denied]  // denied by a concurrent request in between: keep what was seen
                }
            }
            if index < decisions.count { decisions[index] = peeked } else { decisions.append(peeked) }
            index += 1
        }
        return MultiDecision(isAllowed: false, decisions: decisions, decidingIndex: denied)
    }

    /// The decision with the fewest remaining requests, ties going to the longest reset; an enforced
    /// policy always wins over a shadow one, whose numbers must not make clients back off.
    public static func mostRestrictive(_ decisions: [Decision], checks: some RandomAccessCollection<Check>) -> Int {
        var best = 0
        func isShadow(_ index: Int) -> Bool { checks[checks.index(checks.startIndex, offsetBy: index)].mode == .shadow }
        for (index, decision) in decisions.enumerated().dropFirst() {
            let current = decisions[best]
            let currentShadow = isShadow(best)
            let candidateShadow = isShadow(index)
            if currentShadow != candidateShadow {
                if currentShadow { best = index }
                continue
            }
            if decision.remaining < current.remaining
                || (decision.remaining == current.remaining && decision.resetAfterNanoseconds > current.resetAfterNanoseconds)
            {
                best = index
            }
        }
        return best
    }

    /// Decides one check like ``decide(_:at:consume:)`` and returns what it took, so that it can be given
    /// back with ``refund(_:)`` (a global policy's `local` fallback, inside a request a later check denies).
    public func decideHolding(_ check: Check, at now: Timestamp, consume: Bool = true) -> (Decision, LocalCharge?) {
        let (decision, reservation) = decideReserving(check, at: now, consume: consume)
        return (decision, reservation.map { LocalCharge(reservation: $0, check: check) })
    }

    /// Gives back what ``decideHolding(_:at:consume:)`` took (under the same rules as an all-or-nothing refund).
    public func refund(_ charge: LocalCharge) {
        store.refund(charge.reservation, limit: charge.check.rateLimit, cost: charge.check.cost)
    }

    /// Empties a bucket back to full; returns whether it existed.
    @discardableResult
    public func reset(_ key: BucketKey) -> Bool { store.reset(key) }
}
