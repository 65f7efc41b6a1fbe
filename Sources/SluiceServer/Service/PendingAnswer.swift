public import NIOCore
public import SluiceCore

/// A request that waits for the shared store, and how its server answers it once decided: the one
/// completion every interface uses (the line protocol renders RESP bytes, HTTP a response).
public struct PendingAnswer<Output: Sendable>: Sendable {
    /// The request, whose global check waits.
    public let request: PendingRequest
    /// Count a multi-check request once, by its verdict; else count each decision.
    let countsVerdict: Bool
    let render: @Sendable (RateLimiter.MultiDecision, Timestamp) -> Output

    /// Creates the answer of `request`, rendered by `render`.
    public init(
        _ request: PendingRequest, countsVerdict: Bool, render: @escaping @Sendable (RateLimiter.MultiDecision, Timestamp) -> Output
    ) {
        self.request = request
        self.countsVerdict = countsVerdict
        self.render = render
    }

    /// Finishes the request with the global check's answer (`decision`, having taken `charge`) at `now`.
    ///
    /// - Returns: the rendered answer and what to count.
    public func complete(_ decision: Decision, charge: GlobalCharge?, now: Timestamp) -> (Output, ServerStatistics.Batch) {
        let result = request.finish(decision, charge: charge, now: now)
        var counts = ServerStatistics.Batch()
        counts.count(result, byVerdict: countsVerdict)
        return (render(result, now), counts)
    }

    /// Runs `body` on `loop` with the rendered answer: once the store answers, or by the failure policy once
    /// `timeout` passes.
    ///
    /// Call on `loop`; `body` may touch the caller's loop-bound state. The expiry is not cancelled when the
    /// store answers first: expiring an answered decision does nothing, and removing a task from the timer
    /// queue costs more than letting it fire.
    public func whenAnswered(
        on loop: any EventLoop, timeout: TimeAmount, clock: any SluiceClock, _ body: @escaping (Output, ServerStatistics.Batch) -> Void
    ) {
        let bound = NIOLoopBound(body, eventLoop: loop)
        let pending = request.decision
        loop.scheduleTask(in: timeout) { pending.expire(now: clock.now()) }
        pending.whenAnswered { decision, charge in
            loop.execute {
                let (output, counts) = self.complete(decision, charge: charge, now: clock.now())
                bound.value(output, counts)
            }
        }
    }
}

extension ServerContext {
    /// How long a connection waits for a global decision before its failure policy answers.
    var globalTimeout: TimeAmount { .nanoseconds(limiter.global?.timeout.nanoseconds ?? 50_000_000) }
}
