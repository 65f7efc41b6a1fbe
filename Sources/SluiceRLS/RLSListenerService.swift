import GRPCCore
import GRPCNIOTransportHTTP2Posix
public import Logging
import NIOCore
public import NIOPosix
public import ServiceLifecycle
public import SluiceConfig
import SluiceCore
import Synchronization

/// The gRPC listener of Envoy's rate limit service, as a `Service`: gRPC Swift 2 over HTTP/2 on Sluice's own
/// event loops. On graceful shutdown it stops accepting, lets calls in flight finish (for at most
/// ``graceTime``, then closes what is left), and returns.
public struct RLSListenerService: Service {
    let address: ListenAddress
    let service: RateLimitService
    let eventLoopGroup: MultiThreadedEventLoopGroup
    let logger: Logger
    let onListening: (@Sendable (Int) -> Void)?
    let guards: Guards

    /// What the listener does about connections beyond the calls it serves: the `limits` section's cap on open
    /// connections and idle timeout, as the line and HTTP listeners apply them.
    public struct Guards: Sendable {
        /// The most connections open at once; one more is closed as soon as it is accepted (a gRPC client sees
        /// the connection fail and, like Envoy, applies its failure mode or tries again).
        public var maxConnections: Int
        /// How long a connection may have no call open before it is told to go (an HTTP/2 GOAWAY); nil: no limit.
        public var idleTimeout: Duration?
        /// Called for each connection closed over the cap (counted with the other listeners' refusals).
        public var onRefused: @Sendable () -> Void

        public init(maxConnections: Int, idleTimeout: Duration?, onRefused: @escaping @Sendable () -> Void) {
            self.maxConnections = maxConnections
            self.idleTimeout = idleTimeout
            self.onRefused = onRefused
        }

        /// No cap and no idle limit.
        public static let none = Guards(maxConnections: .max, idleTimeout: nil, onRefused: {})
    }

    /// The largest request accepted, in bytes (Envoy's requests are a few hundred bytes).
    public static let maximumRequestBytes = 1 << 20
    /// How long a connection told to go may take to finish its calls before it is closed.
    public static let graceTime = Duration.seconds(5)
    /// The most calls one connection may have in flight.
    public static let maximumConcurrentStreams = 1024

    /// Creates the listener.
    ///
    /// - Parameters:
    ///   - guards: the cap on open connections and the idle timeout.
    ///   - onListening: called with the bound port once listening (tests bind port 0).
    public init(
        address: ListenAddress, service: RateLimitService, eventLoopGroup: MultiThreadedEventLoopGroup, logger: Logger,
        guards: Guards = .none, onListening: (@Sendable (Int) -> Void)? = nil
    ) {
        self.address = address
        self.service = service
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.onListening = onListening
        self.guards = guards
    }

    public func run() async throws {
        let open = OpenConnectionCount()
        let transport = HTTP2ServerTransport.Posix(
            address: address.host.contains(":") ? .ipv6(host: address.host, port: address.port) : .ipv4(host: address.host, port: address.port),
            transportSecurity: .plaintext,
            config: .defaults { config in
                config.rpc.maxRequestPayloadSize = Self.maximumRequestBytes
                config.http2.maxConcurrentStreams = Self.maximumConcurrentStreams
                // Idle: no call open for the idle timeout gets a GOAWAY, and gRPC closes the connection once the
                // client answers the PING sent with it. A client that never answers (half a preface, or gone
                // without a FIN) is closed by `SilentConnectionCloser` below.
                config.connection.maxIdleTime = guards.idleTimeout
                // Calls still open after a GOAWAY (idle, or the server stopping) get the grace time to finish.
                config.connection.maxGraceTime = Self.graceTime
                // Called for each accepted connection once gRPC's pipeline is in place: counted from here to its close.
                config.channelDebuggingCallbacks.onAcceptTCPConnection = { [guards, open] channel in
                    let count = open.value.add(1, ordering: .relaxed).newValue
                    channel.closeFuture.whenComplete { _ in open.value.subtract(1, ordering: .relaxed) }
                    if count > guards.maxConnections {
                        guards.onRefused()
                        channel.close(promise: nil)
                        return channel.eventLoop.makeSucceededVoidFuture()
                    }
                    guard let idle = guards.idleTimeout else { return channel.eventLoop.makeSucceededVoidFuture() }
                    // On the channel's loop: this runs in its initializer.
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers(
                            [IdleStateHandler(readTimeout: .nanoseconds((idle + Self.graceTime).nanoseconds)), SilentConnectionCloser()],
                            position: .first
                        )
                    }
                }
            },
            eventLoopGroup: eventLoopGroup
        )
        let server = GRPCServer(transport: transport, services: [service])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.serve() }
            // On graceful shutdown: stop accepting and let the calls in flight finish, for at most the grace time;
            // then the connections left (a client that never answers the GOAWAY's PING) are closed.
            group.addTask {
                guard (try? await gracefulShutdown()) != nil else { return }
                server.beginGracefulShutdown()
                try? await Task.sleep(for: Self.graceTime)
            }
            // Resolves once bound; throws if the server stopped first (serve() throws the reason).
            if let bound = try? await transport.listeningAddress {
                let port = bound.ipv4?.port ?? bound.ipv6?.port ?? address.port
                logger.info("rate limit service (gRPC) listening", metadata: ["listen.address": "\(address.host):\(port)"])
                onListening?(port)
            }
            // The first to end ends the other: the server (stopped, or failed) or the grace time.
            try await group.next()
            group.cancelAll()
        }
        logger.info("rate limit service (gRPC) stopped")
    }
}

/// The connections a gRPC listener has open.
final class OpenConnectionCount: Sendable {
    let value = Atomic<Int>(0)
}

/// Closes a connection that has sent nothing for the idle timeout and the grace time after it: one that ignored
/// the GOAWAY and PING an idle connection gets. (First in the pipeline, so any bytes count as life.)
final class SilentConnectionCloser: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read else { return context.fireUserInboundEventTriggered(event) }
        context.close(promise: nil)
    }
}
