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
    // @unchecked: the value is touched only between `pthread_mutex_lock` and `pthread_mutex_unlock`.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    // The value lives behind a pointer rather than in a stored property: an `inout` access to a class's property
    // is checked for exclusivity at run time (`swift_beginAccess`, a thread-local access set), which the lock
    // already guarantees. Usable from inline code, so `withLock` is specialized in the modules that call it:
    // called as an unspecialized generic, it moved each result through value witnesses (`perf` on the leased path).
    @usableFromInline let value: UnsafeMutablePointer<Value>

    public init(_ value: Value) {
        self.value = .allocate(capacity: 1)
        self.value.initialize(to: value)
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        value.deinitialize(count: 1)
        value.deallocate()
    }

    /// Runs `body` with the value, holding the lock for exactly its duration.
    @inlinable
    public func withLock<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        lock()
        defer { unlock() }
        return try body(&value.pointee)
    }

    // Calls, rather than pthread's own inline, so that the C library stays an internal import of this module.
    @usableFromInline func lock() { pthread_mutex_lock(mutex) }
    @usableFromInline func unlock() { pthread_mutex_unlock(mutex) }
}

/// A fixed number of values, each under its own pthread mutex (see ``Locked`` for why pthread's), in one
/// allocation of cache-line-aligned regions: a region holds a shard's mutex and value, so two shards never share
/// a line and taking one is a pointer offset. `[Locked<Value>]` cost every access a reference count's increment
/// and decrement on the shard's object around the lock (`perf` on the leased path: more than the lock itself).
public final class LockedShards<Value>: @unchecked Sendable {
    // @unchecked: a shard's value is touched only between its mutex's lock and unlock.
    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline let stride: Int
    @usableFromInline let valueOffset: Int
    /// The number of shards.
    public let count: Int

    private static var lineSize: Int { 64 }

    /// `count` shards, shard `i` starting with `initial(i)`.
    public init(count: Int, initial: (Int) -> Value) {
        precondition(count > 0, "at least one shard")
        let valueAlignment = MemoryLayout<Value>.alignment
        valueOffset = (MemoryLayout<pthread_mutex_t>.size + valueAlignment - 1) / valueAlignment * valueAlignment
        // Every region starts on a line (and on the value's alignment, were it larger), so each value is aligned.
        let alignment = max(Self.lineSize, valueAlignment)
        let end = valueOffset + MemoryLayout<Value>.size
        stride = (end + alignment - 1) / alignment * alignment
        self.count = count
        base = .allocate(byteCount: stride * count, alignment: alignment)
        for index in 0..<count {
            let mutex = (base + index * stride).bindMemory(to: pthread_mutex_t.self, capacity: 1)
            mutex.initialize(to: pthread_mutex_t())
            pthread_mutex_init(mutex, nil)
            (base + index * stride + valueOffset).bindMemory(to: Value.self, capacity: 1).initialize(to: initial(index))
        }
    }

    deinit {
        for index in 0..<count {
            pthread_mutex_destroy(mutex(index))
            pointer(index).deinitialize(count: 1)
        }
        base.deallocate()
    }

    /// Runs `body` with shard `index`'s value (0 ≤ `index` < ``count``), holding its lock for exactly its duration.
    @inlinable
    public func withLock<Result, Failure: Error>(_ index: Int, _ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        precondition(index >= 0 && index < count, "shard index out of range")
        lock(index)
        defer { unlock(index) }
        return try body(&pointer(index).pointee)
    }

    @usableFromInline func pointer(_ index: Int) -> UnsafeMutablePointer<Value> {
        (base + (index &* stride &+ valueOffset)).assumingMemoryBound(to: Value.self)
    }

    private func mutex(_ index: Int) -> UnsafeMutablePointer<pthread_mutex_t> {
        (base + index &* stride).assumingMemoryBound(to: pthread_mutex_t.self)
    }

    @usableFromInline func lock(_ index: Int) { pthread_mutex_lock(mutex(index)) }
    @usableFromInline func unlock(_ index: Int) { pthread_mutex_unlock(mutex(index)) }
}
