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
    // Usable from inline code, so `withLock` is specialized in the modules that call it: called as an
    // unspecialized generic, it moved each result through value witnesses (`perf` on the leased path).
    @usableFromInline var value: Value

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
    @inlinable
    public func withLock<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        lock()
        defer { unlock() }
        return try body(&value)
    }

    // Calls, rather than pthread's own inline, so that the C library stays an internal import of this module.
    @usableFromInline func lock() { pthread_mutex_lock(mutex) }
    @usableFromInline func unlock() { pthread_mutex_unlock(mutex) }
}
