import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import SluiceConfig
import SluiceCore
import SluiceServer
import SluiceTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Sluice's HTTP API, from a real configuration file's text, on a free loopback port.
final class RunningSluiceHTTP: Sendable {
    let port: Int
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    private init(port: Int, group: ServiceGroup, task: Task<Void, any Error>) {
        self.port = port
        self.group = group
        self.task = task
    }

    static func start(yaml: String) async throws -> RunningSluiceHTTP {
        let configuration = try SluiceConfiguration.parse(yaml: yaml)
        let logger = Logger(label: "sluice.test.http")
        let context = ServerContext(
            limiter: RateLimiter(store: BucketStore(maximumKeys: 10_000)),
            registry: PolicyRegistry(configuration.policySet, forwardAuth: ForwardAuthRules(configuration.forwardAuth, policies: configuration.policySet)),
            clock: MonotonicClock(epochNanoseconds: Int64(Date().timeIntervalSince1970 * 1e9)), limits: configuration.limits, logger: logger
        )
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let service = ListenerService.http(
            address: ListenAddress(host: "127.0.0.1", port: 0), limits: configuration.http, context: context,
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            onListening: { address in
                continuation.yield(address.port ?? 0)
                continuation.finish()
            }
        )
        let group = ServiceGroup(services: [service], logger: logger)
        let task = Task { try await group.run() }
        var port = 0
        for await bound in ports { port = bound }
        guard port > 0 else { throw TestFailure("the HTTP server did not start") }
        return RunningSluiceHTTP(port: port, group: group, task: task)
    }

    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }
}

/// A shipped example file's text.
func exampleFile(_ path: String) throws -> String {
    try String(contentsOfFile: packageRoot + "/examples/" + path, encoding: .utf8)
}
