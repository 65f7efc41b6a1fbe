public import NIOCore
public import SluiceCore

extension PendingDecision {
    /// Runs `body` on `loop` with the answer: Redis's, or the failure policy's once `timeout` passes.
    ///
    /// Call on `loop`; `body` may touch the caller's loop-bound state. The expiry is not cancelled when Redis
    /// answers first: expiring an answered decision does nothing, and removing a task from the timer queue
    /// costs more than letting it fire.
    public func whenAnswered(
        on loop: any EventLoop, timeout: TimeAmount, clock: any SluiceClock, _ body: @escaping (Decision, GlobalCharge?) -> Void
    ) {
        let bound = NIOLoopBound(body, eventLoop: loop)
        loop.scheduleTask(in: timeout) { self.expire(now: clock.now()) }
        whenAnswered { decision, charge in
            loop.execute { bound.value(decision, charge) }
        }
    }
}

extension ServerContext {
    /// How long a connection waits for a global decision before its failure policy answers.
    var globalTimeout: TimeAmount { .nanoseconds(global?.timeout.nanoseconds ?? 50_000_000) }
}
