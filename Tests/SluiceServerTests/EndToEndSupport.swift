import SluiceConfig
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import SluiceCore
import SluiceServer
import SluiceTestSupport
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A real line-protocol server on 127.0.0.1 and a free port, inside a ServiceGroup, as the executable runs it.
final class RunningLineServer: Sendable {
    let port: Int
    let context: ServerContext
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    static let testPolicies: [Policy] = {
        do {
            return [
                try Policy(name: "api", rateLimit: RateLimit(algorithm: .tokenBucket, limit: 100, periodNanoseconds: 1_000_000_000, burst: 20)),
                try Policy(name: "login", rateLimit: RateLimit(algorithm: .slidingWindow, limit: 5, periodNanoseconds: 60_000_000_000)),
                try Policy(name: "hourly", rateLimit: RateLimit(algorithm: .fixedWindow, limit: 3, periodNanoseconds: 3_600_000_000_000)),
                try Policy(
                    name: "daily", rateLimit: RateLimit(algorithm: .fixedWindow, limit: 1, periodNanoseconds: 86_400_000_000_000), mode: .shadow
                ),
            ]
        } catch {
            preconditionFailure("test policies are valid: \(error)")
        }
    }()

    private init(port: Int, context: ServerContext, group: ServiceGroup, task: Task<Void, any Error>) {
        self.port = port
        self.context = context
        self.group = group
        self.task = task
    }

    static func start(policies: [Policy] = testPolicies, limits: SluiceConfiguration.Limits = SluiceConfiguration.Limits()) async throws -> RunningLineServer {
        let logger = Logger(label: "sluice.test")
        let clock = MonotonicClock(epochNanoseconds: Int64(Date().timeIntervalSince1970 * 1e9))
        let context = ServerContext(
            limiter: RateLimiter(store: BucketStore(maximumKeys: 100_000)), registry: PolicyRegistry(try PolicySet(policies)),
            clock: clock, limits: limits, logger: logger
        )
        let (addresses, continuation) = AsyncStream.makeStream(of: Int.self)
        let service = ListenerService.line(
            address: ListenAddress(host: "127.0.0.1", port: 0), context: context, eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            onListening: { address in
                continuation.yield(address.port ?? 0)
                continuation.finish()
            }
        )
        let group = ServiceGroup(services: [service], logger: logger)
        let task = Task { try await group.run() }
        var port = 0
        for await bound in addresses { port = bound }
        guard port > 0 else { throw TestFailure("the line server did not start") }
        return RunningLineServer(port: port, context: context, group: group, task: task)
    }

    /// Graceful shutdown, as on SIGTERM; returns when the service group has stopped.
    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }
}
