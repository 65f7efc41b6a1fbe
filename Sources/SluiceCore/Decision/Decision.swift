/// The answer to one check; every interface renders this one type.
///
/// Times are nanoseconds; ``Decision/resetAfter`` and ``Decision/retryAfter`` expose them as `Duration`.
public struct Decision: Sendable, Hashable {
    /// How the algorithm judged the request.
    public enum Outcome: Sendable, Hashable {
        /// It fits and was consumed (or, for a peek, would be).
        case allowed
        /// It does not fit now; it fits after ``Decision/retryAfter``.
        case denied
        /// Its cost exceeds the capacity (`burst`, or `limit` for windows): it can never pass.
        case exceedsCapacity
    }

    /// The algorithm's verdict, before shadow mode is applied.
    public var outcome: Outcome
    /// True when the policy is in shadow mode and the verdict was not `.allowed`: the request is let through anyway.
    public var isShadowed: Bool
    /// The policy's capacity (`burst` for the token bucket, `limit` otherwise).
    public var limit: Int64
    /// Whole requests of cost 1 that would still pass now, after this request's consumption; never negative.
    public var remaining: Int64
    /// Nanoseconds until the bucket or window is back to full if nothing else is consumed.
    public var resetAfterNanoseconds: Int64
    /// Nanoseconds until this same request would pass; 0 when allowed, -1 when it never can (``Outcome/exceedsCapacity``).
    public var retryAfterNanoseconds: Int64
    /// Index of the deciding policy in its ``PolicySet``, or -1 for an inline limit.
    public var policyIndex: Int32

    /// Whether the caller may proceed: allowed, or denied only by a shadow policy.
    @inlinable public var isAllowed: Bool { outcome == .allowed || isShadowed }
    /// ``resetAfterNanoseconds`` as a `Duration`.
    public var resetAfter: Duration { .nanoseconds(resetAfterNanoseconds) }
    /// ``retryAfterNanoseconds`` as a `Duration`; nil when the request can never pass.
    public var retryAfter: Duration? { retryAfterNanoseconds < 0 ? nil : .nanoseconds(retryAfterNanoseconds) }

    /// Creates a decision.
    @inlinable
    public init(
        outcome: Outcome, isShadowed: Bool = false, limit: Int64, remaining: Int64,
        resetAfterNanoseconds: Int64, retryAfterNanoseconds: Int64, policyIndex: Int32 = -1
    ) {
        self.outcome = outcome
        self.isShadowed = isShadowed
        self.limit = limit
        self.remaining = remaining
        self.resetAfterNanoseconds = resetAfterNanoseconds
        self.retryAfterNanoseconds = retryAfterNanoseconds
        self.policyIndex = policyIndex
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

extension Decision {
    /// ``resetAfterNanoseconds`` in whole milliseconds, rounded up: what every interface reports.
    @inlinable public var resetAfterMilliseconds: Int64 { RoundedUp.milliseconds(resetAfterNanoseconds) }

    /// The wait every interface reports: 0 when the caller may proceed, -1 when the request can never pass,
    /// else whole milliseconds rounded up, so waiting that long always suffices.
    @inlinable public var retryAfterMilliseconds: Int64 {
        isAllowed ? 0 : retryAfterNanoseconds < 0 ? -1 : RoundedUp.milliseconds(retryAfterNanoseconds)
    }
}

/// Nanosecond counts in coarser units for replies, rounded up: a client that waits the stated time is
/// never early.
public enum RoundedUp {
    /// Whole milliseconds; 0 for zero or less.
    @inlinable public static func milliseconds(_ nanoseconds: Int64) -> Int64 {
        nanoseconds <= 0 ? 0 : nanoseconds / 1_000_000 + (nanoseconds % 1_000_000 == 0 ? 0 : 1)
    }

    /// Whole seconds; 0 for zero or less.
    @inlinable public static func seconds(_ nanoseconds: Int64) -> Int64 {
        nanoseconds <= 0 ? 0 : nanoseconds / 1_000_000_000 + (nanoseconds % 1_000_000_000 == 0 ? 0 : 1)
    }
}
