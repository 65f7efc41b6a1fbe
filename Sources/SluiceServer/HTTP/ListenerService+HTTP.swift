public import NIOCore
public import SluiceConfig

extension ListenerService {
    /// The HTTP API's listener: an ``HTTPServerHandler`` (keeping the idle and request timeouts), capped by `limits`,
    /// serving `routes` (the admin listener serves the admin API alone).
    public static func http(
        address: ListenAddress, limits: SluiceConfiguration.HTTP, context: ServerContext, eventLoopGroup: any EventLoopGroup,
        routes: HTTPAPIProcessor.Routes = .all, onListening: (@Sendable (SocketAddress) -> Void)? = nil
    ) -> ListenerService {
        let processor = HTTPAPIProcessor(context: context, limits: limits, routes: routes)
        let requestTimeout = TimeAmount.nanoseconds(context.limits.requestTimeoutNanoseconds)
        return ListenerService(
            name: routes == .admin ? "admin API" : "HTTP API", address: address, eventLoopGroup: eventLoopGroup, logger: context.logger,
            onListening: onListening, guards: ConnectionGuards(context, refusal: Self.tooManyConnections)
        ) { channel, idleTimeout in
            let handler = HTTPServerHandler(
                processor: processor, context: context, idleTimeout: idleTimeout,
                requestTimeout: RequestTimeout(timeout: requestTimeout, statistics: context.statistics)
            )
            try channel.pipeline.syncOperations.addHandler(handler)
        }
    }

    /// What an HTTP connection over `limits.max_connections` is told.
    static let tooManyConnections: String = {
        let body = #"{"error":{"code":"too_many_connections","message":"this listener has limits.max_connections open; retry shortly"}}"#
        return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n" + body
    }()
}
