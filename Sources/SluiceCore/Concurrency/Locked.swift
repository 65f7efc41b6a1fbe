#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A value that threads share, read and written only under a pthread mutex.
///
/// Why not `Synchronization.Mutex`: its lock and unlock are compiled into the toolchain's Synchronization
/// library, which is not built with ThreadSanitizer, and on Linux a contended hand-over happens inside the
/// kernel (a priority-inheriting futex). ThreadSanitizer therefore sees no ordering between two holders of a
/// `Mutex` and reports every value it guards as a data race. It intercepts `pthread_mutex_lock`, so with this
/// type `swift test --sanitize=thread` reports only real races. Uncontended, both cost one atomic
/// read-modify-write to take and one to release.
public final class Locked<Value>: @unchecked Sendable {
    // @unchecked: `value` is touched only between `pthread_mutex_lock` and `pthread_mutex_unlock`.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    public init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with the value, holding the lock for exactly its duration.
    public func withLock<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
