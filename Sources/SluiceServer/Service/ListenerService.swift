import Logging
import NIOCore
import NIOPosix
public import ServiceLifecycle
import SluiceConfig

/// One TCP listener, as a `Service`: the code every Sluice server shares. What a connection speaks is the
/// handlers `configureConnection` installs (``line(address:context:eventLoopGroup:onListening:)``,
/// ``http(address:limits:context:eventLoopGroup:onListening:)``).
///
/// Connections are child tasks of a discarding task group; a connection's failure closes that
/// connection only. On graceful shutdown it stops accepting, asks each connection to flush what it owes
/// and close (`ChannelShouldQuiesceEvent`), and returns once they have all closed. Cancellation closes
/// connections at once.
public final class ListenerService: Service {
    let name: String
    let address: ListenAddress
    let eventLoopGroup: any EventLoopGroup
    let logger: Logger
    let onListening: (@Sendable (SocketAddress) -> Void)?
    /// Adds the connection's handlers, giving its protocol handler the connection's idle timeout (nil: none) to
    /// keep; runs on the connection's event loop.
    let configureConnection: @Sendable (any Channel, IdleTimeout?) throws -> Void
    /// The cap on open connections and the idle limit.
    let guards: ConnectionGuards

    /// Creates a listener.
    ///
    /// - Parameters:
    ///   - name: what logs call it (`line protocol`, `HTTP API`).
    ///   - address: where to listen; port 0 picks a free one.
    ///   - eventLoopGroup: the loops to serve on.
    ///   - logger: where it logs.
    ///   - onListening: called with the bound address once listening (tests bind port 0).
    ///   - guards: the cap on open connections, the idle limit, and what a refused connection is told.
    ///   - configureConnection: installs a new connection's handlers, on its event loop; its protocol handler keeps
    ///     the idle timeout it is given (nil when `guards` set none).
    init(
        name: String, address: ListenAddress, eventLoopGroup: any EventLoopGroup, logger: Logger,
        onListening: (@Sendable (SocketAddress) -> Void)? = nil, guards: ConnectionGuards = .none,
        configureConnection: @escaping @Sendable (any Channel, IdleTimeout?) throws -> Void
    ) {
        self.guards = guards
        self.name = name
        self.address = address
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.onListening = onListening
        self.configureConnection = configureConnection
    }

    public func run() async throws {
        let configure = configureConnection
        let guards = guards
        let open = OpenConnections()
        let server = try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(ChannelOptions.backlog, value: 1024)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .bind(host: address.host, port: address.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard open.admit(channel, maximum: guards.maxConnections) else {
                        guards.statistics?.connectionRefused()
                        try channel.pipeline.syncOperations.addHandler(RefuseConnectionHandler(message: guards.refusal))
                        return channel
                    }
                    try configure(channel, guards.idleTimeout.map { IdleTimeout(timeout: $0, statistics: guards.statistics) })
                    return channel
                }
            }
        if let bound = server.channel.localAddress {
            logger.info("\(name) listening", metadata: ["listen.address": "\(bound)"])
            onListening?(bound)
        }
        let connections = ConnectionTracker()
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { inbound in
                    for try await connection in inbound {
                        connections.add(connection)
                        group.addTask {
                            await withTaskCancellationHandler {
                                try? await connection.closeFuture.get()
                            } onCancel: {
                                connection.close(promise: nil)
                            }
                            connections.remove(connection)
                        }
                    }
                }
            }
        } onGracefulShutdown: {
            server.channel.close(promise: nil)
            connections.quiesceAll()
        }
        logger.info("\(name) stopped")
    }
}
