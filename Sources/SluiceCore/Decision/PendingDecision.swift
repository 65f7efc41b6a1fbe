import Synchronization

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

    private let state = Locked(State.waiting(nil))
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
