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

/// Closes a connection that has sent nothing for the idle timeout. Kept by the connection's protocol handler, which
/// tells it as reads begin and complete: calls, not a handler of its own in front of the protocol's, which cost
/// every read two more pipeline hops (with the HTTP request timeout's, about 2% of an HTTP check's time).
///
/// Reads only: a write-side timer costs a promise per write, and a client that waits for a reply is never idle that
/// long (every reply comes within the Redis timeout). A live event stream, which reads nothing by design, stops it.
/// The time of the last read is taken once a read completes, and the one timer looks at it when it fires, so a read
/// costs a clock read, not a timer (as NIO's `IdleStateHandler(readTimeout:)`). Loop-bound.
final class IdleTimeout {
    private let timeout: TimeAmount
    private let statistics: ServerStatistics?
    /// A read began and has not completed: the connection is not idle, however long that takes.
    private var reading = false
    private var lastRead = NIODeadline.uptimeNanoseconds(0)
    private var timer: Scheduled<Void>?
    /// Stopped for good: the connection closed, or no longer reads by design.
    private var stopped = false

    init(timeout: TimeAmount, statistics: ServerStatistics?) {
        self.timeout = timeout
        self.statistics = statistics
    }

    /// The connection is active: the clock starts, once.
    func start(context: ChannelHandlerContext) {
        guard timer == nil, !stopped else { return }
        lastRead = context.eventLoop.now
        schedule(at: lastRead + timeout, context: context)
    }

    func readBegan() { reading = true }

    func readCompleted(context: ChannelHandlerContext) {
        guard reading else { return }
        lastRead = context.eventLoop.now
        reading = false
    }

    /// Nothing more closes the connection for idleness.
    func stop() {
        stopped = true
        timer?.cancel()
        timer = nil
    }

    private func schedule(at deadline: NIODeadline, context: ChannelHandlerContext) {
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { self.fire(context: context) }
    }

    private func fire(context: ChannelHandlerContext) {
        timer = nil
        guard !stopped, context.channel.isActive else { return }
        let now = context.eventLoop.now
        if reading { return schedule(at: now + timeout, context: context) }
        let deadline = lastRead + timeout
        guard now >= deadline else { return schedule(at: deadline, context: context) }
        statistics?.connectionClosedIdle()
        context.close(promise: nil)
    }
}
