import SluiceCore
import Glibc

/// A queue of jobs with a condition variable, so the worker sleeps until there is work.
///
/// A job nobody waits for yet (``RedisJob/gathered``: a lease renewed ahead of need) wakes the worker only if
/// it is the first of its kind, and is handed out ``gathering`` later (5 ms, or a quarter of the Redis timeout
/// if less) with whatever joined it, or at once with the next job someone waits for. Renewals come one per
/// bucket, spread in time; sent alone, each cost the worker two wake-ups and Redis a round trip of its own.
// @unchecked: every mutable field is read and written only with `mutex` held.
final class JobQueue: @unchecked Sendable {
    // pthread objects must not move: allocated once, freed never (one queue per process lifetime is
    // the norm; a test's queues leak 100 bytes each).
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var jobs: [RedisJob] = []
    /// Jobs to hand out no earlier than their time (a cluster answering TRYAGAIN).
    private var delayed: [(due: ContinuousClock.Instant, job: RedisJob)] = []
    /// Called once every job queued before them has been handed out (see ``pushBarrier(_:)``).
    private var barriers: [@Sendable () -> Void] = []
    /// Whether every job in `jobs` is gathered, so they may be held until `gatherUntil`.
    private var onlyGathered = true
    /// When the gathered jobs queued go out at the latest; nil when none is queued.
    private var gatherUntil: ContinuousClock.Instant?
    /// How long a gathered job may wait for others.
    let gathering: Duration
    /// What ``gathering`` is at most: a renewal ahead of need has half its slice left, which lasts half a second
    /// once the slice is sized to the rate (see ``Lease/nextWant(_:spent:in:largest:)``).
    static let defaultGathering = Duration.milliseconds(5)

    /// The gathering for a Redis `timeout`: at most a quarter of it, so that a gathered job is sent long before
    /// its deadline (one timeout after it was made) and before its lease takes it for lost (two).
    static func gathering(timeout: Duration) -> Duration { min(defaultGathering, timeout / 4) }

    init(gathering: Duration) {
        self.gathering = gathering
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    /// Queues `job` unless `limit` jobs already wait; returns whether it was queued.
    func push(_ job: RedisJob, limit: Int) -> Bool {
        pthread_mutex_lock(mutex)
        guard jobs.count < limit else {
            pthread_mutex_unlock(mutex)
            return false
        }
        jobs.append(job)
        var wake = true
        if !job.gathered {
            onlyGathered = false
        } else if gatherUntil == nil {
            gatherUntil = .now + gathering
        } else {
            wake = false  // the worker already knows when to send the gathered jobs
        }
        pthread_mutex_unlock(mutex)
        if wake { pthread_cond_signal(condition) }
        return true
    }

    /// Queues `job` to be handed out once `due` has passed.
    func pushDelayed(_ job: RedisJob, until due: ContinuousClock.Instant) {
        pthread_mutex_lock(mutex)
        delayed.append((due, job))
        pthread_mutex_unlock(mutex)
        pthread_cond_signal(condition)
    }

    /// Queues `barrier`, handed out with the drain that takes the last job queued before it.
    func pushBarrier(_ barrier: @escaping @Sendable () -> Void) {
        pthread_mutex_lock(mutex)
        barriers.append(barrier)
        pthread_mutex_unlock(mutex)
        pthread_cond_signal(condition)
    }

    func wake() { pthread_cond_signal(condition) }

    var isEmpty: Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return jobs.isEmpty && barriers.isEmpty && delayed.isEmpty
    }

    /// Up to `maximum` jobs, waiting at most `waiting` for the first (and, when all queued are gathered, until
    /// their time, unless `waiting` is zero); and, when they empty the queue, the barriers queued so far (to call
    /// once those jobs are done).
    func drain(maximum: Int, waiting: Duration) -> (jobs: [RedisJob], barriers: [@Sendable () -> Void]) {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        takeDueDelayed()
        if jobs.isEmpty, barriers.isEmpty, waiting > .zero {
            sleep(for: waiting)
        }
        // Only gathered jobs: hold them until their time, unless a job someone waits for or a barrier comes.
        while waiting > .zero, onlyGathered, barriers.isEmpty, !jobs.isEmpty, jobs.count < maximum, let gatherUntil {
            let left = gatherUntil - .now
            guard left > .zero else { break }
            sleep(for: left)
        }
        guard jobs.count > maximum else {
            // Barriers wait for delayed jobs too: they were submitted before them.
            let released = delayed.isEmpty ? barriers : []
            defer {
                jobs = []
                onlyGathered = true
                gatherUntil = nil
                if delayed.isEmpty { barriers = [] }
            }
            return (jobs, released)  // the common case: take the whole queue, no copying under the lock
        }
        let taken = Array(jobs.prefix(maximum))
        jobs.removeFirst(maximum)
        onlyGathered = !jobs.contains { !$0.gathered }
        return (taken, [])
    }

    /// Waits on the condition for `duration` at most, or until the first delayed job is due, then takes the
    /// delayed jobs that are; call with the mutex held.
    private func sleep(for duration: Duration) {
        let untilDelayed = delayed.map { $0.due - .now }.min() ?? duration
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        let nanoseconds = Int(max(.zero, min(duration, untilDelayed)).nanoseconds)
        deadline.tv_nsec += nanoseconds
        deadline.tv_sec += deadline.tv_nsec / 1_000_000_000
        deadline.tv_nsec %= 1_000_000_000
        _ = pthread_cond_timedwait(condition, mutex, &deadline)
        takeDueDelayed()
    }

    /// Moves the delayed jobs that are due into the queue; call with the mutex held.
    private func takeDueDelayed() {
        guard !delayed.isEmpty else { return }
        let now = ContinuousClock.now
        let due = delayed.filter { $0.due <= now }.map(\.job)
        guard !due.isEmpty else { return }
        jobs += due
        onlyGathered = false
        delayed.removeAll { $0.due <= now }
    }
}
