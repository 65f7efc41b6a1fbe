import Foundation
import SluiceCore
import Testing

@testable import SluiceRedis

/// The worker's queue on its own: jobs nobody waits for yet (``RedisJob/gathered``) wait for company, and
/// anything else ends the wait. The gathering is long here (10 s) where a test shows that something ends it
/// early, so those tests assert only that the drain came back well before it: no timing is asserted tightly.
struct JobQueueTests {
    static let long = Duration.seconds(10)

    static func job(_ name: String, gathered: Bool) -> RedisJob {
        let rateLimit: RateLimit
        do {
            rateLimit = try RateLimit(algorithm: .fixedWindow, limit: 100, periodNanoseconds: 1_000_000_000)
        } catch {
            preconditionFailure("test limit is valid: \(error)")
        }
        var job = RedisJob(
            key: Array(name.utf8), rateLimit: rateLimit, call: ScriptCall(mode: .lease, want: 10, need: 1), holder: "test",
            leaseLifetime: 1000, deadline: .now + .seconds(60), completion: { _ in }
        )
        job.gathered = gathered
        return job
    }

    static func keys(_ jobs: [RedisJob]) -> [String] { jobs.map { String(decoding: $0.encodedKey, as: UTF8.self) } }

    @Test func gatheredJobsWaitTheirTimeAndGoTogether() {
        let queue = JobQueue(gathering: .milliseconds(30))
        for name in ["a", "b", "c"] { #expect(queue.push(Self.job(name, gathered: true), limit: 10)) }
        let started = ContinuousClock.now
        let drained = queue.drain(maximum: 10, waiting: Self.long)
        let waited = ContinuousClock.now - started
        #expect(Self.keys(drained.jobs) == ["$1\r\na\r\n", "$1\r\nb\r\n", "$1\r\nc\r\n"])
        #expect(waited >= .milliseconds(20), "held until the first one's time (pushed just before)")
        #expect(waited < .seconds(5), "not held for the idle wait")
        #expect(queue.isEmpty)
    }

    @Test func aJobSomeoneWaitsForTakesTheGatheredAlongAtOnce() {
        let queue = JobQueue(gathering: Self.long)
        #expect(queue.push(Self.job("ahead", gathered: true), limit: 10))
        #expect(queue.push(Self.job("waited", gathered: false), limit: 10))
        let started = ContinuousClock.now
        let drained = queue.drain(maximum: 10, waiting: Self.long)
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(Self.keys(drained.jobs) == ["$5\r\nahead\r\n", "$6\r\nwaited\r\n"])
    }

    /// Pushes `job` from a thread of its own after 50 ms (the drain under test blocks its thread).
    static func push(_ job: RedisJob, to queue: JobQueue) {
        Thread.detachNewThread {
            Thread.sleep(forTimeInterval: 0.05)
            _ = queue.push(job, limit: 10)
        }
    }

    @Test func aJobSomeoneWaitsForEndsAHoldUnderWay() {
        let queue = JobQueue(gathering: Self.long)
        #expect(queue.push(Self.job("ahead", gathered: true), limit: 10))
        let started = ContinuousClock.now
        Self.push(Self.job("waited", gathered: false), to: queue)
        let drained = queue.drain(maximum: 10, waiting: Self.long)
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(Self.keys(drained.jobs) == ["$5\r\nahead\r\n", "$6\r\nwaited\r\n"])
    }

    @Test func aGatheredJobWakesAnIdleWorkerAndIsSentAfterItsGathering() {
        let queue = JobQueue(gathering: .milliseconds(20))
        let started = ContinuousClock.now
        Self.push(Self.job("ahead", gathered: true), to: queue)
        let drained = queue.drain(maximum: 10, waiting: Self.long)
        #expect(Self.keys(drained.jobs) == ["$5\r\nahead\r\n"])
        #expect(ContinuousClock.now - started < .seconds(5), "woken by the push, not the idle wait's end")
    }

    @Test func stoppingOrAFullBatchHoldsNothing() {
        let queue = JobQueue(gathering: Self.long)
        #expect(queue.push(Self.job("a", gathered: true), limit: 10))
        var started = ContinuousClock.now
        #expect(queue.drain(maximum: 10, waiting: .zero).jobs.count == 1, "a stopping worker drains without waiting")
        #expect(ContinuousClock.now - started < .seconds(5))

        for name in ["a", "b", "c"] { #expect(queue.push(Self.job(name, gathered: true), limit: 10)) }
        started = ContinuousClock.now
        #expect(Self.keys(queue.drain(maximum: 2, waiting: Self.long).jobs) == ["$1\r\na\r\n", "$1\r\nb\r\n"])
        #expect(ContinuousClock.now - started < .seconds(5), "a full batch goes at once")
        #expect(queue.push(Self.job("d", gathered: false), limit: 10))
        #expect(Self.keys(queue.drain(maximum: 2, waiting: Self.long).jobs) == ["$1\r\nc\r\n", "$1\r\nd\r\n"])
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    @Test func theGatheringIsAQuarterOfAShortTimeout() {
        #expect(JobQueue.gathering(timeout: .milliseconds(50)) == .milliseconds(5))
        #expect(JobQueue.gathering(timeout: .milliseconds(8)) == .milliseconds(2))
        #expect(JobQueue.gathering(timeout: .milliseconds(1)) == .microseconds(250))
    }

    @Test func aBarrierEndsAHold() {
        let queue = JobQueue(gathering: Self.long)
        #expect(queue.push(Self.job("a", gathered: true), limit: 10))
        queue.pushBarrier {}
        let started = ContinuousClock.now
        let drained = queue.drain(maximum: 10, waiting: Self.long)
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(drained.jobs.count == 1 && drained.barriers.count == 1)
    }
}
