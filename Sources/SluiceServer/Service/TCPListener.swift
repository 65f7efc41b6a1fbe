import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// Runs one TCP listener until graceful shutdown: the part every Sluice server shares.
///
/// Connections are child tasks of a discarding task group; a connection's failure closes that
/// connection only. On graceful shutdown it stops accepting, asks each connection to flush what it owes
/// and close (`ChannelShouldQuiesceEvent`), and returns once they have all closed. Cancellation closes
/// connections at once.
struct TCPListener: Sendable {
    let name: String
    let host: String
    let port: Int
    let eventLoopGroup: any EventLoopGroup
    let logger: Logger
    let onListening: (@Sendable (SocketAddress) -> Void)?
    /// Adds the connection's handlers; runs on the connection's event loop.
    let configureConnection: @Sendable (any Channel) throws -> Void

    func run() async throws {
        let configure = configureConnection
        let server = try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(ChannelOptions.backlog, value: 1024)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try configure(channel)
                    return channel
                }
            }
        if let address = server.channel.localAddress {
            logger.info("\(name) listening", metadata: ["listen.address": "\(address)"])
            onListening?(address)
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
