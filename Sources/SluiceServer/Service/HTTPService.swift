public import NIOCore
import NIOHTTP1
public import ServiceLifecycle

/// The HTTP API listener, as a `Service`. See ``TCPListener`` for how connections live and shut down.
public final class HTTPService: Service {
    /// Where to listen and the request caps.
    public struct Configuration: Sendable {
        /// Host to bind (default 127.0.0.1).
        public var host: String
        /// Port to bind; 0 picks a free one.
        public var port: Int
        /// Body and check caps.
        public var limits: HTTPAPIProcessor.Limits

        /// Creates a configuration.
        public init(host: String = "127.0.0.1", port: Int = 7380, limits: HTTPAPIProcessor.Limits = HTTPAPIProcessor.Limits()) {
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
    ///   - context: what requests decide with.
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
        let processor = HTTPAPIProcessor(context: context, limits: configuration.limits)
        let context = self.context
        // Bounds what NIO's decoder may hold for one connection: a whole body plus its head.
        let maximumBufferSize = configuration.limits.maximumBodyBytes + 65_536
        try await TCPListener(
            name: "HTTP API", host: configuration.host, port: configuration.port, eventLoopGroup: eventLoopGroup,
            logger: context.logger, onListening: onListening
        ) { channel in
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(
                    HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes),
                    maximumBufferSize: maximumBufferSize
                ))
            try channel.pipeline.syncOperations.addHandler(HTTPServerHandler(processor: processor, context: context))
        }.run()
    }
}
