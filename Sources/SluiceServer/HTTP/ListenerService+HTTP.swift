public import NIOCore
import NIOHTTP1
public import SluiceConfig

extension ListenerService {
    /// The HTTP API's listener: NIO's request decoder, then an ``HTTPServerHandler``, capped by `limits`,
    /// serving `routes` (the admin listener serves the admin API alone).
    public static func http(
        address: ListenAddress, limits: SluiceConfiguration.HTTP, context: ServerContext, eventLoopGroup: any EventLoopGroup,
        routes: HTTPAPIProcessor.Routes = .all, onListening: (@Sendable (SocketAddress) -> Void)? = nil
    ) -> ListenerService {
        let processor = HTTPAPIProcessor(context: context, limits: limits, routes: routes)
        // Bounds what NIO's decoder may hold for one connection: a whole body plus its head.
        let maximumBufferSize = limits.maxBodyBytes + 65_536
        return ListenerService(name: routes == .admin ? "admin API" : "HTTP API", address: address, eventLoopGroup: eventLoopGroup, logger: context.logger, onListening: onListening) {
            channel in
            try channel.pipeline.syncOperations.addHandler(
                ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes), maximumBufferSize: maximumBufferSize)
            )
            try channel.pipeline.syncOperations.addHandler(HTTPServerHandler(processor: processor, context: context))
        }
    }
}
