import NIOCore
import Synchronization

/// One live stream of `GET /v1/events` on its connection: Server-Sent Events in HTTP/1.1 chunks, read from the
/// ``EventHub``'s ring every 100 ms, so a stream costs the decision path nothing.
///
/// A stream that cannot keep up (its socket not writable, so it reads nothing) falls behind the ring and loses
/// events: it is told with a `dropped` event, and the loss is counted. `Last-Event-ID` resumes after that id
/// while the ring still holds what follows it. A comment line every 15 s keeps proxies from closing an idle
/// stream. Loop-bound: made and used on its connection's event loop.
final class EventStream {
    private let hub: EventHub
    private var cursor: UInt64
    private var pump: Scheduled<Void>?
    private var lastWrite = NIODeadline.now()
    private var stopped = false
    /// How often the ring is read.
    static let interval = TimeAmount.milliseconds(100)
    /// How long a stream may be silent before a heartbeat comment.
    static let heartbeat = TimeAmount.seconds(15)
    /// The most events written in one go.
    static let batch = 256

    /// A stream resuming after `lastEventID` (the `Last-Event-ID` header), or starting at the newest event.
    init(hub: EventHub, lastEventID: UInt64?) {
        self.hub = hub
        let newest = hub.lastID
        cursor = min(lastEventID ?? newest, newest)
    }

    /// The response head; the body is chunked, one chunk per write.
    static let head: StaticString =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nTransfer-Encoding: chunked\r\nX-Accel-Buffering: no\r\n\r\n"

    /// Writes the head, then events as they come.
    func start(context: ChannelHandlerContext) {
        hub.subscribe()
        var head = context.channel.allocator.buffer(capacity: 160)
        head.writeStaticString(Self.head)
        context.write(NIOAny(head), promise: nil)
        write(": sluice events\n\n", context: context)
        pumpOnce(context: context)
        schedule(context: context)
    }

    private func schedule(context: ChannelHandlerContext) {
        pump = context.eventLoop.assumeIsolated().scheduleTask(in: Self.interval) {
            self.pumpOnce(context: context)
            if !self.stopped { self.schedule(context: context) }
        }
    }

    /// Ends the stream: the last chunk, when the connection is still there to take it.
    func finish(context: ChannelHandlerContext) {
        guard !stopped else { return }
        stop()
        guard context.channel.isActive else { return }
        var end = context.channel.allocator.buffer(capacity: 8)
        end.writeStaticString("0\r\n\r\n")
        context.writeAndFlush(NIOAny(end), promise: nil)
    }

    /// Stops reading the ring (the connection went away).
    func stop() {
        guard !stopped else { return }
        stopped = true
        pump?.cancel()
        pump = nil
        hub.unsubscribe()
    }

    private func pumpOnce(context: ChannelHandlerContext) {
        guard !stopped, context.channel.isActive else { return stop() }
        // A client that does not read: leave the events in the ring (and lose them when it moves on).
        guard context.channel.isWritable else { return }
        let (events, missed) = hub.events(after: cursor, limit: Self.batch)
        var text = ""
        if missed > 0 {
            hub.droppedEvents.add(Int(missed), ordering: .relaxed)
            text += "id: \(cursor + missed)\nevent: dropped\ndata: {\"dropped\":\(missed)}\n\n"
            cursor += missed
        }
        for event in events {
            text += "id: \(event.id)\nevent: \(event.type)\ndata: \(event.data)\n\n"
            cursor = event.id
        }
        if text.isEmpty, NIODeadline.now() - lastWrite >= Self.heartbeat { text = ": heartbeat\n\n" }
        if !text.isEmpty { write(text, context: context) }
    }

    private func write(_ text: String, context: ChannelHandlerContext) {
        var chunk = context.channel.allocator.buffer(capacity: text.utf8.count + 16)
        chunk.writeString(String(text.utf8.count, radix: 16))
        chunk.writeStaticString("\r\n")
        chunk.writeString(text)
        chunk.writeStaticString("\r\n")
        context.writeAndFlush(NIOAny(chunk), promise: nil)
        lastWrite = .now()
    }
}
