import Foundation

/// Runs `body`, which blocks (a socket read with a timeout, a program run to its end, a wait in a sleep loop), on a
/// thread of its own, and waits for it without holding one of Swift concurrency's threads.
///
/// The tests run in parallel on Swift concurrency's pool of one thread per core, two here. Two tests blocking
/// those threads stall every other test's tasks until one of the waits ends (up to 15 s for a Redis Cluster's
/// start-up): long enough for a server's 1 s idle timeout to close a gRPC client's fresh connection before the
/// stalled client sent its call (seen in CI as "unavailable: subchannel isn't ready").
public func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
    }
}

/// ``offPool(_:)`` for a body that cannot throw.
public func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread.detachNewThread { continuation.resume(returning: body()) }
    }
}
