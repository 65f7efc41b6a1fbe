public import NIOCore
public import ServiceLifecycle

/// The TCP listener of the line protocol, as a `Service`.
///
/// See ``TCPListener`` for how connections live and how it shuts down.
public final class LineProtocolService: Service {
    /// Where and how to listen.
    public struct Configuration: Sendable {
        /// Host to bind (default 127.0.0.1).
        public var host: String
        /// Port to bind; 0 picks a free one.
        public var port: Int
        /// Frame caps.
        public var limits: RESPParser.Limits

        /// Creates a configuration.
        public init(host: String = "127.0.0.1", port: Int = 7379, limits: RESPParser.Limits = RESPParser.Limits()) {
            self.host = host
            self.port = port
            self.limits = limits
        }
    }

    private let configuration: Configuration
    private let context: ServerContext
    private let eventLoopGroup: any EventLoopGroup
    private let onListening: (@Sendable (SocketAddress) -> Void)?

    /// Creates the service.
    ///
    /// - Parameters:
    ///   - configuration: address and caps.
    ///   - context: what connections decide with.
    ///   - eventLoopGroup: the loops to serve on.
    ///   - onListening: called with the bound address once listening (tests bind port 0).
    public init(
        configuration: Configuration, context: ServerContext, eventLoopGroup: any EventLoopGroup,
        onListening: (@Sendable (SocketAddress) -> Void)? = nil
    ) {
        self.configuration = configuration
        self.context = context
        self.eventLoopGroup = eventLoopGroup
        self.onListening = onListening
    }

    public func run() async throws {
        let context = self.context
        let limits = configuration.limits
        try await TCPListener(
            name: "line protocol", host: configuration.host, port: configuration.port, eventLoopGroup: eventLoopGroup,
            logger: context.logger, onListening: onListening
        ) { channel in
            let handler = LineProtocolHandler(context: context, limits: limits, connectionID: context.statistics.nextConnectionID())
            try channel.pipeline.syncOperations.addHandler(handler)
        }.run()
    }
}
