import NIOCore
import NIOEmbedded
import SluiceCore
import Testing

@testable import SluiceServer

/// The expiry queue of one connection's waits: each expires at its own deadline (one timeout after it was
/// added), answered ones are dropped without expiring, and answered entries at the front do not pile up.
struct WaitDeadlinesTests {
    static func wait() -> PendingDecision {
        PendingDecision { _ in
            (Decision(outcome: .denied, limit: 1, remaining: 0, resetAfterNanoseconds: 0, retryAfterNanoseconds: 1_000_000_000), nil)
        }
    }

    @Test func eachWaitExpiresAtItsOwnDeadlineUnlessAnsweredFirst() {
        let loop = EmbeddedEventLoop()
        let deadlines = WaitDeadlines(loop: loop, timeout: .milliseconds(50), clock: ManualClock())
        let first = Self.wait(), second = Self.wait(), third = Self.wait()
        deadlines.add([first])
        loop.advanceTime(by: .milliseconds(10))
        deadlines.add([second])
        loop.advanceTime(by: .milliseconds(10))
        deadlines.add([third])
        #expect(second.answer(Decision(outcome: .allowed, limit: 1, remaining: 0, resetAfterNanoseconds: 0, retryAfterNanoseconds: 0)))

        loop.advanceTime(by: .milliseconds(29))  // 49 ms: nothing is due
        #expect(!first.isAnswered && !third.isAnswered)
        loop.advanceTime(by: .milliseconds(1))  // 50 ms: the first expires, by its failure policy
        #expect(first.decision?.outcome == .denied && !third.isAnswered)
        loop.advanceTime(by: .milliseconds(10))  // 60 ms: the second was answered; its expiry changes nothing
        #expect(second.decision?.outcome == .allowed && !third.isAnswered)
        loop.advanceTime(by: .milliseconds(10))  // 70 ms: the third expires
        #expect(third.decision?.outcome == .denied)
        #expect(deadlines.count == 0)
    }

    @Test func answeredWaitsAtTheFrontAreDroppedAsNewOnesArrive() {
        let loop = EmbeddedEventLoop()
        let deadlines = WaitDeadlines(loop: loop, timeout: .seconds(1), clock: ManualClock())
        for _ in 0..<1_000 {
            let pending = Self.wait()
            deadlines.add([pending])
            _ = pending.answer(Decision(outcome: .allowed, limit: 1, remaining: 0, resetAfterNanoseconds: 0, retryAfterNanoseconds: 0))
        }
        #expect(deadlines.count == 1, "only the last, answered after it was added, is still held")
        let open = Self.wait()
        deadlines.add([open, Self.wait()])
        loop.advanceTime(by: .seconds(1))
        #expect(open.decision?.outcome == .denied)
        #expect(deadlines.count == 0)
    }
}
