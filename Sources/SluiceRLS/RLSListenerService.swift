import GRPCCore
import GRPCNIOTransportHTTP2Posix
public import Logging
public import NIOPosix
public import ServiceLifecycle
public import SluiceConfig

/// The gRPC listener of Envoy's rate limit service, as a `Service`: gRPC Swift 2 over HTTP/2 on Sluice's own
/// event loops. On graceful shutdown it stops accepting, lets calls in flight finish, then returns.
public struct RLSListenerService: Service {
    let address: ListenAddress
    let service: RateLimitService
    let eventLoopGroup: MultiThreadedEventLoopGroup
    let logger: Logger
    let onListening: (@Sendable (Int) -> Void)?

    /// The largest request accepted, in bytes (Envoy's requests are a few hundred bytes).
    public static let maximumRequestBytes = 1 << 20
    /// The most calls one connection may have in flight.
    public static let maximumConcurrentStreams = 1024

    /// Creates the listener.
    ///
    /// - Parameters:
    ///   - onListening: called with the bound port once listening (tests bind port 0).
    public init(
        address: ListenAddress, service: RateLimitService, eventLoopGroup: MultiThreadedEventLoopGroup, logger: Logger,
        onListening: (@Sendable (Int) -> Void)? = nil
    ) {
        self.address = address
        self.service = service
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.onListening = onListening
    }

    public func run() async throws {
        let transport = HTTP2ServerTransport.Posix(
            address: address.host.contains(":") ? .ipv6(host: address.host, port: address.port) : .ipv4(host: address.host, port: address.port),
            transportSecurity: .plaintext,
            config: .defaults { config in
                config.rpc.maxRequestPayloadSize = Self.maximumRequestBytes
                config.http2.maxConcurrentStreams = Self.maximumConcurrentStreams
            },
            eventLoopGroup: eventLoopGroup
        )
        let server = GRPCServer(transport: transport, services: [service])
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask {
                try await withGracefulShutdownHandler {
                    try await server.serve()
                } onGracefulShutdown: {
                    server.beginGracefulShutdown()
                }
            }
            // Resolves once bound; throws if the server stopped first (serve() throws the reason).
            if let bound = try? await transport.listeningAddress {
                let port = bound.ipv4?.port ?? bound.ipv6?.port ?? address.port
                logger.info("rate limit service (gRPC) listening", metadata: ["listen.address": "\(address.host):\(port)"])
                onListening?(port)
            }
        }
        logger.info("rate limit service (gRPC) stopped")
    }
}
