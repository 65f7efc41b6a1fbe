public import NIOCore
public import SluiceConfig

extension ListenerService {
    /// The line protocol's listener: each connection gets a ``LineProtocolHandler``, capped by the context's `limits`.
    public static func line(
        address: ListenAddress, context: ServerContext, eventLoopGroup: any EventLoopGroup,
        onListening: (@Sendable (SocketAddress) -> Void)? = nil
    ) -> ListenerService {
        ListenerService(
            name: "line protocol", address: address, eventLoopGroup: eventLoopGroup, logger: context.logger, onListening: onListening,
            guards: ConnectionGuards(context, refusal: "-ERR max number of clients reached\r\n")
        ) { channel, idleTimeout in
            let handler = LineProtocolHandler(context: context, connectionID: context.statistics.nextConnectionID(), idleTimeout: idleTimeout)
            try channel.pipeline.syncOperations.addHandler(handler)
        }
    }
}
