import NIOCore
import SluiceConfig
import Synchronization

/// What a listener does about connections beyond what it serves: a cap on how many are open, a limit on how
/// long one may be silent, and what a refused one is told. Given to ``ListenerService``.
public struct ConnectionGuards: Sendable {
    /// The most connections open at once; one more is told ``refusal`` and closed.
    var maxConnections: Int
    /// How long a connection may send nothing; nil: no limit.
    var idleTimeout: TimeAmount?
    /// What a refused connection is told before it is closed (the protocol's own error).
    var refusal: String
    /// Where refusals and idle closes are counted.
    var statistics: ServerStatistics?

    /// No cap and no idle limit (listeners built without a context, such as tests').
    public static let none = ConnectionGuards(maxConnections: .max, idleTimeout: nil, refusal: "", statistics: nil)

    init(maxConnections: Int, idleTimeout: TimeAmount?, refusal: String, statistics: ServerStatistics?) {
        self.maxConnections = maxConnections
        self.idleTimeout = idleTimeout
        self.refusal = refusal
        self.statistics = statistics
    }

    /// The guards of `context`'s `limits` section, telling a refused connection `refusal`.
    init(_ context: ServerContext, refusal: String) {
        let idle = context.limits.idleTimeoutNanoseconds
        self.init(
            maxConnections: context.limits.maxConnections, idleTimeout: idle > 0 ? .nanoseconds(idle) : nil, refusal: refusal,
            statistics: context.statistics
        )
    }
}

/// The name of the idle handler in a connection's pipeline.
let idleHandlerName = "sluice.idle"

/// How many connections a listener has open (counted from its channel initializer to each close).
final class OpenConnections: Sendable {
    private let count = Atomic<Int>(0)

    /// Counts a new connection; whether it fits under `maximum`. It is uncounted when it closes, either way.
    func admit(_ channel: any Channel, maximum: Int) -> Bool {
        let open = count.add(1, ordering: .relaxed).newValue
        channel.closeFuture.whenComplete { _ in self.count.subtract(1, ordering: .relaxed) }
        return open <= maximum
    }
}

/// Tells a connection over the cap why, then closes it: its write side first, and the rest a second later, so
/// what the client had already sent (discarded here) does not make the kernel reset the connection before the
/// client reads the answer.
final class RefuseConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let message: String
    private var sent = false

    init(message: String) { self.message = message }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { refuse(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        refuse(context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    private func refuse(context: ChannelHandlerContext) {
        guard !sent else { return }
        sent = true
        var buffer = context.channel.allocator.buffer(capacity: message.utf8.count)
        buffer.writeString(message)
        context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in
            context.close(mode: .output, promise: nil)
            context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(1)) { context.close(promise: nil) }
        }
    }
}

/// Closes a connection when `IdleStateHandler` says it has sent nothing for the idle timeout. (Reads only: a
/// write-side timer costs a promise per write. A client that waits for a reply is never idle that long: every
/// reply comes within the Redis timeout. A live event stream, which reads nothing by design, removes the
/// idle handler, named `idleHandlerName`.)
final class IdleCloseHandler: ChannelInboundHandler {
    typealias InboundIn = NIOAny
    private let statistics: ServerStatistics?

    init(statistics: ServerStatistics?) { self.statistics = statistics }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read else { return context.fireUserInboundEventTriggered(event) }
        statistics?.connectionClosedIdle()
        context.close(promise: nil)
    }
}
