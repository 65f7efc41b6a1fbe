import NIOCore
public import SluiceCore

/// A request that waits for the shared store, and how its server answers it once decided: the one
/// completion every interface uses (the line protocol renders RESP bytes, HTTP a response).
public struct PendingAnswer<Output: Sendable>: Sendable {
    /// The global checks to wait for, each answered exactly once.
    public let waits: [PendingDecision]
    /// Renders the answer once every wait is answered, with what to count.
    let finish: @Sendable (Timestamp) -> (Output, ServerStatistics.Batch)

    /// An answer that waits for `waits`, then is rendered by `finish`.
    public init(waits: [PendingDecision], finish: @escaping @Sendable (Timestamp) -> (Output, ServerStatistics.Batch)) {
        self.waits = waits
        self.finish = finish
    }

    /// The answer of `request` (its checks all or nothing), rendered by `render`: counted once by its verdict
    /// (`countsVerdict`, for a request that states several checks), or each decision on its own; `observe`
    /// sees the result (the events hub).
    public init(
        _ request: PendingRequest, countsVerdict: Bool, observe: (@Sendable (RateLimiter.MultiDecision, Timestamp) -> Void)? = nil,
        render: @escaping @Sendable (RateLimiter.MultiDecision, Timestamp) -> Output
    ) {
        self.init(waits: request.waits) { now in
            let result = request.finish(now: now)
            var counts = ServerStatistics.Batch()
            counts.count(result, byVerdict: countsVerdict, in: request.policies)
            observe?(result, now)
            return (render(result, now), counts)
        }
    }

    /// Finishes the request, once every global check it waits for is answered, at `now`.
    ///
    /// - Returns: the rendered answer and what to count.
    public func complete(now: Timestamp) -> (Output, ServerStatistics.Batch) { finish(now) }

    /// Runs `body` on `loop` with the rendered answer, once each global check is answered: by the store, or
    /// by its failure policy once the timeout of `deadlines` passes.
    ///
    /// Call on `loop`; `body` may touch the caller's loop-bound state.
    func whenAnswered(
        on loop: any EventLoop, deadlines: WaitDeadlines, clock: any SluiceClock, _ body: @escaping (Output, ServerStatistics.Batch) -> Void
    ) {
        let bound = NIOLoopBound(body, eventLoop: loop)
        let waits = self.waits
        deadlines.add(waits)
        // Each wait is answered exactly once; the last answer completes the request, on the loop.
        let remaining = NIOLoopBoundBox(waits.count, eventLoop: loop)
        for pending in waits {
            pending.whenAnswered { _, _ in
                loop.execute {
                    remaining.value -= 1
                    guard remaining.value == 0 else { return }
                    let (output, counts) = self.complete(now: clock.now())
                    bound.value(output, counts)
                }
            }
        }
    }
}

extension ServerContext {
    /// Tells the events hub about `decision` (of `check`, against `policies`, for `key`) when anyone listens for it:
    /// one atomic load otherwise.
    @inline(__always)
    func report(_ decision: Decision, of check: Check, policies: PolicySet, key: @autoclosure () -> String, now: Timestamp) {
        guard let events, events.wants(decision) else { return }
        let index = Int(decision.policyIndex)
        let name = index >= 0 && index < policies.policies.count ? policies.policies[index].name : PolicyCounters.inlineName
        events.record(decision, policy: name, key: key(), periodNanoseconds: check.rateLimit.periodNanoseconds, now: now)
    }

    /// ``report(_:of:policies:key:now:)`` for every decision of `result`; `key(i)` is check `i`'s key.
    func report(_ result: RateLimiter.MultiDecision, of checks: [Check], policies: PolicySet, key: (Int) -> String, now: Timestamp) {
        guard let events else { return }
        for (index, decision) in result.decisions.enumerated() where index < checks.count && events.wants(decision) {
            report(decision, of: checks[index], policies: policies, key: key(index), now: now)
        }
    }

    /// How long a connection waits for a global decision before its failure policy answers.
    var globalTimeout: TimeAmount { .nanoseconds(limiter.global?.timeout.nanoseconds ?? 50_000_000) }
}
