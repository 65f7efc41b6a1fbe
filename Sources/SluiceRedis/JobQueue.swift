import SluiceCore
import Glibc

/// A queue of jobs with a condition variable, so the worker sleeps until there is work.
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

    init() {
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
        pthread_mutex_unlock(mutex)
        pthread_cond_signal(condition)
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

    /// Up to `maximum` jobs, waiting at most `waiting` for the first; and, when they empty the queue, the
    /// barriers queued so far (to call once those jobs are done).
    func drain(maximum: Int, waiting: Duration) -> (jobs: [RedisJob], barriers: [@Sendable () -> Void]) {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        takeDueDelayed()
        if jobs.isEmpty, barriers.isEmpty, waiting > .zero {
            // Wake for the first delayed job, if it is due before the wait ends.
            let untilDelayed = delayed.map { $0.due - .now }.min() ?? waiting
            var deadline = timespec()
            clock_gettime(CLOCK_MONOTONIC, &deadline)
            let nanoseconds = Int(max(.zero, min(waiting, untilDelayed)).nanoseconds)
            deadline.tv_nsec += nanoseconds
            deadline.tv_sec += deadline.tv_nsec / 1_000_000_000
            deadline.tv_nsec %= 1_000_000_000
            _ = pthread_cond_timedwait(condition, mutex, &deadline)
            takeDueDelayed()
        }
        guard jobs.count > maximum else {
            // Barriers wait for delayed jobs too: they were submitted before them.
            let released = delayed.isEmpty ? barriers : []
            defer {
                jobs = []
                if delayed.isEmpty { barriers = [] }
            }
            return (jobs, released)  // the common case: take the whole queue, no copying under the lock
        }
        let taken = Array(jobs.prefix(maximum))
        jobs.removeFirst(maximum)
        return (taken, [])
    }

    /// Moves the delayed jobs that are due into the queue; call with the mutex held.
    private func takeDueDelayed() {
        guard !delayed.isEmpty else { return }
        let now = ContinuousClock.now
        jobs += delayed.filter { $0.due <= now }.map(\.job)
        delayed.removeAll { $0.due <= now }
    }
}
