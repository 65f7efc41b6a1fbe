import NIOCore
import SluiceCore

/// When the waits of one connection's pending answers expire, kept in the order they were set and expired by
/// one timer at a time.
///
/// Every wait of a process has the same timeout (Redis's), so the order waits are added in is the order they
/// expire in: a queue and one timer for its head do what a timer per wait did, without keeping thousands of
/// tasks in the event loop's timer heap under load (each insertion and removal there costs a sift with
/// retains; it was the largest cost of a strict decision). Waits answered before their deadline are dropped
/// from the front as new ones arrive, so the queue holds about what is outstanding.
///
/// Time is the loop's (`EventLoop.now`), so an embedded loop's virtual clock drives it in tests.
///
/// Loop-bound: use it on its event loop only. The timer keeps it alive after its connection closes, until
/// every wait it holds has expired or been answered, so a wait is expired on time whatever the client does.
final class WaitDeadlines {
    private struct Entry {
        let deadline: NIODeadline
        let waits: [PendingDecision]
    }

    private let loop: any EventLoop
    private let timeout: TimeAmount
    private let clock: any SluiceClock
    private var entries = CircularBuffer<Entry>(initialCapacity: 16)
    private var armed = false

    init(loop: any EventLoop, timeout: TimeAmount, clock: any SluiceClock) {
        self.loop = loop
        self.timeout = timeout
        self.clock = clock
    }

    /// Expires `waits` (each by its failure policy) once the timeout passes, unless answered first.
    func add(_ waits: [PendingDecision]) {
        loop.preconditionInEventLoop()
        while let first = entries.first, first.waits.allSatisfy(\.isAnswered) { entries.removeFirst() }
        entries.append(Entry(deadline: loop.now + timeout, waits: waits))
        if !armed { arm() }
    }

    /// How many entries are held (tests).
    var count: Int { entries.count }

    private func arm() {
        guard let first = entries.first else { return }
        armed = true
        loop.assumeIsolated().scheduleTask(deadline: first.deadline) { self.fire() }
    }

    private func fire() {
        armed = false
        let now = loop.now
        var stamp: Timestamp?
        while let first = entries.first, first.deadline <= now || first.waits.allSatisfy(\.isAnswered) {
            entries.removeFirst()
            for pending in first.waits where !pending.isAnswered {
                let at = stamp ?? clock.now()
                stamp = at
                pending.expire(now: at)
            }
        }
        arm()
    }
}
