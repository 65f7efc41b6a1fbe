/// What one evaluation of a limit against a bucket produced.
public struct Evaluation: Sendable, Hashable {
    /// The decision to report (shadow mode is applied later, by the caller that knows the policy).
    public var decision: Decision
    /// The bucket after consuming, meaningful only when `decision.outcome == .allowed`.
    public var newState: BucketState
}

extension RateLimit {
    /// Decides a request of `cost` against `state` at `now`, without touching any shared memory.
    ///
    /// - Parameters:
    ///   - state: the bucket as read from the store (``BucketState/full`` for a key never seen).
    ///   - now: nanoseconds since the epoch.
    ///   - cost: a positive cost.
    /// - Returns: the decision and, when allowed, the state to store.
    /// - Complexity: O(1); at most one 128-by-64-bit division.
    ///
    /// Always inlined: the store's decision path calls it in its compare-and-exchange loop, where a call returned
    /// the evaluation through memory.
    @inline(__always)
    public func evaluate(_ state: BucketState, now: Int64, cost: Int64) -> Evaluation {
        switch algorithm {
        case .tokenBucket: return evaluateTokenBucket(state, now: now, cost: cost)
        case .fixedWindow: return evaluateFixedWindow(state, now: now, cost: cost)
        case .slidingWindow: return evaluateSlidingWindow(state, now: now, cost: cost)
        }
    }

    /// Gives `cost` back to a bucket that consumed it, for a multi-check request that was denied later.
    ///
    /// - Parameters:
    ///   - state: the bucket now.
    ///   - cost: what the rolled-back consumption took.
    ///   - charged: the state the consumption wrote. Windows refund only the window that was charged;
    ///     the token bucket refunds only while the bucket is exactly as the charge left it.
    /// - Returns: the state to store, or nil when there is nothing (safe) to refund.
    public func refund(_ state: BucketState, cost: Int64, charged: BucketState) -> BucketState? {
        switch algorithm {
        case .tokenBucket: return refundTokenBucket(state, cost: cost, charged: charged)
        case .fixedWindow: return refundFixedWindow(state, cost: cost, consumedHorizon: charged.horizon)
        case .slidingWindow: return refundSlidingWindow(state, cost: cost, consumedHorizon: charged.horizon)
        }
    }
}
