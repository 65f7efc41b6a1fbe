import NIOCore

/// Bounds how long an HTTP request may take to arrive: from its first byte, the head and body must be in
/// within `limits.request_timeout`, or the connection is answered 408 and closed. A client sending one byte a
/// second (slowloris) holds a connection for that long at most.
///
/// Kept by ``HTTPServerHandler``, which tells it of every read (``read(context:)``) and of each request's end
/// (``requestCompleted()``): calls, not a handler of its own in front, which cost every read two more pipeline hops.
/// Bytes of a next request pipelined behind a complete one start its clock at the next read. Loop-bound.
final class RequestTimeout {
    private let timeout: TimeAmount
    private let statistics: ServerStatistics?
    /// When the request being read began; nil between requests.
    private var started: NIODeadline?
    /// The one timer of the connection: it looks at ``started`` when it fires and sets itself again while a
    /// request is being read, so a request costs a clock read, not a timer of its own (timers are a heap).
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount, statistics: ServerStatistics?) {
        self.timeout = timeout
        self.statistics = statistics
    }

    /// The 408 (a client mistake, in the API's error shape).
    static let response: [UInt8] = {
        let body = #"{"error":{"code":"request_timeout","message":"the request did not arrive in time"}}"#
        let head = "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n\r\n"
        return Array((head + body).utf8)
    }()

    /// Bytes arrived: the first of a request starts its clock.
    func read(context: ChannelHandlerContext) {
        guard started == nil else { return }
        let now = NIODeadline.now()
        started = now
        if timer == nil { schedule(at: now + timeout, context: context) }
    }

    /// The request being read is complete: the next one's clock starts at its first byte.
    func requestCompleted() { started = nil }

    /// The connection closed, or reads nothing more (an event stream).
    func stop() {
        timer?.cancel()
        timer = nil
        started = nil
    }

    private func schedule(at deadline: NIODeadline, context: ChannelHandlerContext) {
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { self.fire(context: context) }
    }

    private func fire(context: ChannelHandlerContext) {
        timer = nil
        guard let started, context.channel.isActive else { return }
        let deadline = started + timeout
        guard NIODeadline.now() >= deadline else { return schedule(at: deadline, context: context) }
        self.started = nil
        statistics?.requestTimedOut()
        var buffer = context.channel.allocator.buffer(capacity: 256)
        buffer.writeBytes(Self.response)
        context.writeAndFlush(NIOAny(buffer)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}
