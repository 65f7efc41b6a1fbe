import Logging
import NIOCore
import SluiceCore

/// Carries out the line protocol on one connection: parses what arrives, runs each command through the
/// ``LineCommandProcessor``, and writes all replies of one read in a single flush.
///
/// The clock is read once per read, so a pipeline of N commands costs one clock read, not N.
final class LineProtocolHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let parser: RESPParser
    private var processor: LineCommandProcessor
    private let context: ServerContext
    /// Bytes of an incomplete frame carried over to the next read.
    private var pending: ByteBuffer?
    private var output: ByteBuffer?
    /// Set by QUIT, a protocol error or a graceful shutdown: flush what is written, then close.
    private var closing = false
    /// Set by a protocol error: after the error reply, shut down output only and discard input until the
    /// client closes (or `lingerTimeout` passes), so unread input does not turn the close into a reset that
    /// destroys the error reply before the client reads it (nginx's lingering close).
    private var lingering = false
    static let lingerTimeout = TimeAmount.seconds(2)
    /// The replies one read may produce before parsing pauses until they are written (1 MiB).
    static let maximumReplyBytesPerRead = 1 << 20
    /// Parsing is paused: this read's replies reached the cap and wait to be written.
    private var paused = false
    /// A global decision is waiting for Redis: nothing after it is parsed or written until it is answered.
    private var awaiting = false
    /// Graceful shutdown arrived while `awaiting`: close once the answer is written.
    private var quiesceAfterAnswer = false
    /// How long a connection may take to flush its last replies on graceful shutdown.
    static let quiesceTimeout = TimeAmount.seconds(5)

    init(context: ServerContext, limits: RESPParser.Limits, connectionID: Int) {
        self.context = context
        parser = RESPParser(limits: limits)
        processor = LineCommandProcessor(context: context, connectionID: connectionID)
    }

    func channelActive(context: ChannelHandlerContext) {
        self.context.statistics.connectionOpened()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.context.statistics.connectionClosed()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        var incoming = unwrapInboundIn(data)
        var work: ByteBuffer
        if var carried = pending {
            // Take the carried bytes out first so the append does not copy them (copy-on-write), and drop
            // what was already consumed, so a connection holds at most one unfinished frame.
            pending = nil
            carried.discardReadBytes()
            carried.writeBuffer(&incoming)
            work = carried
        } else {
            work = incoming
        }
        if paused || awaiting {
            pending = work  // parsing resumes once the replies already produced are written, or the answer is in
            return
        }
        process(&work, context: context)
    }

    /// Runs the commands in `work`, until it holds no complete frame or this read's replies reach
    /// ``maximumReplyBytesPerRead``; what is left waits in `pending`.
    private func process(_ work: inout ByteBuffer, context: ChannelHandlerContext) {
        var reply = output ?? context.channel.allocator.buffer(capacity: 256)
        // Work on a local copy of the processor for the whole batch: a mutating call on a stored property
        // of a class pays a dynamic exclusivity check per command.
        var processor = self.processor
        defer { self.processor = processor }
        processor.refreshPolicies()
        let now = self.context.clock.now()
        do {
            commands: while reply.readableBytes < Self.maximumReplyBytesPerRead, let command = try parser.parse(&work) {
                switch processor.execute(command, now: now, into: &reply) {
                case .proceed: continue
                case .close:
                    closing = true
                    break commands
                case .wait(let decision, let completion):
                    wait(for: decision, completion: completion, context: context)
                    break commands
                }
            }
            if !closing, work.readableBytes > 0 { pending = work }
            if !closing, reply.readableBytes >= Self.maximumReplyBytesPerRead, pending != nil {
                // A small request can ask for large replies (INFO, MTAKE): stop reading and parsing until these are
                // written, so one connection cannot make the server queue replies without bound.
                paused = true
                _ = try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
            }
        } catch {
            reply.writeRESPError("ERR \(error.description)")
            self.context.statistics.protocolErrorOccurred()
            self.context.logger.debug(
                "closing connection after a protocol error",
                metadata: ["connection.peer": "\(context.remoteAddress.map { "\($0)" } ?? "?")", "error": "\(error.message)"]
            )
            closing = true
            lingering = true
        }
        output = reply
    }

    /// Stops reading until `decision` is answered (by Redis, or by its failure policy after the timeout),
    /// then writes it after the replies before it and carries on with what followed it.
    private func wait(for decision: PendingDecision, completion: LineCommandProcessor.Completion, context: ChannelHandlerContext) {
        awaiting = true
        _ = try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
        let loop = context.eventLoop
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: loop)
        let timeout = self.context.global?.timeout ?? .milliseconds(50)
        let clock = self.context.clock
        let expiry = loop.scheduleTask(in: .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)) {
            decision.expire(now: clock.now())
        }
        decision.whenAnswered { answer in
            loop.execute {
                expiry.cancel()
                bound.value.handler.answered(answer, completion: completion, context: bound.value.context)
            }
        }
    }

    private func answered(_ decision: Decision, completion: LineCommandProcessor.Completion, context: ChannelHandlerContext) {
        guard awaiting else { return }
        awaiting = false
        guard !closing, context.channel.isActive else { return }
        var reply = output ?? context.channel.allocator.buffer(capacity: 64)
        let counts = completion(decision, now: self.context.clock.now(), into: &reply)
        output = reply
        processor.batch.add(counts)
        if quiesceAfterAnswer {
            closing = true
            self.context.statistics.add(processor.batch)
            processor.batch = ServerStatistics.Batch()
            flush(context: context)
            return
        }
        paused = true
        resume(context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.context.statistics.add(processor.batch)
        processor.batch = ServerStatistics.Batch()
        flush(context: context)
        context.fireChannelReadComplete()
    }

    private func flush(context: ChannelHandlerContext) {
        let reply = output
        output = nil
        guard let reply, reply.readableBytes > 0 else {
            if closing, !lingering { context.close(promise: nil) }
            return
        }
        guard closing else {
            guard paused, !awaiting else {
                context.writeAndFlush(wrapOutboundOut(reply), promise: nil)  // no future unless someone waits on it
                return
            }
            context.writeAndFlush(wrapOutboundOut(reply)).assumeIsolated().whenComplete { _ in self.resume(context: context) }
            return
        }
        let written = context.writeAndFlush(wrapOutboundOut(reply))
        if lingering {
            written.assumeIsolated().whenComplete { _ in
                context.close(mode: .output, promise: nil)
                context.eventLoop.assumeIsolated().scheduleTask(in: Self.lingerTimeout) { context.close(promise: nil) }
            }
        } else {
            written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    /// Continues with the commands that waited while parsing was paused, once their predecessors' replies are out.
    private func resume(context: ChannelHandlerContext) {
        guard paused, !awaiting, !closing, context.channel.isActive else { return }
        paused = false
        if var work = pending {
            pending = nil
            process(&work, context: context)
        }
        self.context.statistics.add(processor.batch)
        processor.batch = ServerStatistics.Batch()
        flush(context: context)
        if !paused, !awaiting { _ = try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: context.channel.isWritable) }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // Stop reading from a client that does not read its replies, until the socket drains.
        if !paused, !awaiting { _ = try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: context.channel.isWritable) }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // A command waiting for Redis is answered first (within the timeout); then the connection closes.
            if awaiting {
                quiesceAfterAnswer = true
                return
            }
            // Graceful shutdown: requests already read have been answered (reads are handled whole);
            // flush those answers, then close.
            closing = true
            let flushed = context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)))
            flushed.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            // A client that does not read its replies never completes that write: close anyway after a grace period.
            context.eventLoop.assumeIsolated().scheduleTask(in: Self.quiesceTimeout) { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.context.logger.debug("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }
}
