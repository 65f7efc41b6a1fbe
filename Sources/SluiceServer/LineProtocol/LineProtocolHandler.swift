import Logging
import NIOCore
import SluiceCore

/// Carries out the line protocol on one connection: parses what arrives, runs each command through the
/// ``LineCommandProcessor``, and writes all replies of one read in a single flush.
///
/// The clock is read once per read, so a pipeline of N commands costs one clock read, not N.
///
/// A command whose global policy waits for Redis takes a place in the reply order and parsing goes on: up
/// to ``maximumWaitsPerConnection`` decisions of one connection wait at once (so a pipelining client's
/// strict decisions reach Redis as one batch), and replies still leave in command order, each written as
/// soon as every reply before it is ready.
final class LineProtocolHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// A reply in the order of its command: written, or waiting for Redis.
    private enum Slot {
        case ready(ByteBuffer)
        case waiting(Int)
    }

    private let parser: RESPParser
    /// The command processor, in memory of its own and changed in place through this pointer: a mutating call on a
    /// class's stored property pays a run-time exclusivity check, per command, and a local copy per read (how this
    /// avoided it before) retained and released each of the processor's fields. Loop-bound, as the handler; freed
    /// in `deinit`.
    private let processor: UnsafeMutablePointer<LineCommandProcessor>
    private let context: ServerContext
    /// Bytes of an incomplete frame carried over to the next read.
    private var pending: ByteBuffer?
    /// Replies not yet written, in command order, when some wait for Redis; `output` follows them.
    private var slots = CircularBuffer<Slot>()
    /// The replies after the last waiting one.
    private var output: ByteBuffer?
    /// How many slots wait, and the next waiting slot's number.
    private var waiting = 0
    private var nextWait = 0
    /// Set by QUIT, a protocol error or a graceful shutdown: flush what is written (once every waiting
    /// reply is in), then close.
    private var closing = false
    /// Set by a protocol error: after the error reply, shut down output only and discard input until the
    /// client closes (or `lingerTimeout` passes), so unread input does not turn the close into a reset that
    /// destroys the error reply before the client reads it (nginx's lingering close).
    private var lingering = false
    static let lingerTimeout = TimeAmount.seconds(2)
    /// The replies one read may produce before parsing pauses until they are written (1 MiB).
    static let maximumReplyBytesPerRead = 1 << 20
    /// The most decisions of one connection waiting for Redis at once; parsing pauses beyond it.
    static let maximumWaitsPerConnection = 128
    /// Parsing is paused: this read's replies reached the cap and wait to be written.
    private var paused = false
    /// Parsing is paused: ``maximumWaitsPerConnection`` decisions wait for Redis.
    private var stalled = false
    /// A flush of answered replies is queued on the event loop.
    private var flushScheduled = false
    /// How long a connection may take to flush its last replies on graceful shutdown.
    static let quiesceTimeout = TimeAmount.seconds(5)

    /// How long a decision waits for Redis before its failure policy answers.
    private let timeout: TimeAmount
    /// When this connection's waits expire: made at the first wait.
    private var deadlines: WaitDeadlines?
    /// Closes the connection once it has sent nothing for `limits.idle_timeout`; told of every read.
    private let idleTimeout: IdleTimeout?

    init(context: ServerContext, connectionID: Int, idleTimeout: IdleTimeout? = nil) {
        self.context = context
        self.idleTimeout = idleTimeout
        timeout = context.globalTimeout
        parser = RESPParser(limits: context.limits)
        processor = .allocate(capacity: 1)
        processor.initialize(to: LineCommandProcessor(context: context, connectionID: connectionID))
    }

    deinit {
        processor.deinitialize(count: 1)
        processor.deallocate()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { idleTimeout?.start(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimeout?.stop()
    }

    func channelActive(context: ChannelHandlerContext) {
        self.context.statistics.connectionOpened()
        idleTimeout?.start(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.context.statistics.connectionClosed()
        idleTimeout?.stop()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        idleTimeout?.readBegan()
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
        if paused || stalled {
            pending = work  // parsing resumes once the replies already produced are written, or answers come in
            return
        }
        process(&work, context: context)
    }

    /// Runs the commands in `work`, until it holds no complete frame, this read's replies reach
    /// ``maximumReplyBytesPerRead``, or too many decisions wait; what is left waits in `pending`.
    private func process(_ work: inout ByteBuffer, context: ChannelHandlerContext) {
        var reply = output ?? context.channel.allocator.buffer(capacity: 256)
        var produced = 0  // bytes moved into slots by this call
        processor.pointee.refreshPolicies()
        let now = self.context.clock.now()
        do {
            commands: while produced + reply.readableBytes < Self.maximumReplyBytesPerRead, waiting < Self.maximumWaitsPerConnection,
                let command = try parser.parse(&work)
            {
                switch processor.pointee.execute(command, now: now, into: &reply) {
                case .proceed: continue
                case .close:
                    closing = true
                    break commands
                case .wait(let answer):
                    if reply.readableBytes > 0 {
                        produced += reply.readableBytes
                        slots.append(.ready(reply))
                        reply = context.channel.allocator.buffer(capacity: 64)
                    }
                    wait(for: answer, context: context)
                }
            }
            if !closing, work.readableBytes > 0 { pending = work }
            if !closing, pending != nil {
                if produced + reply.readableBytes >= Self.maximumReplyBytesPerRead {
                    // A small request can ask for large replies (INFO, MTAKE): stop reading and parsing until these are
                    // written, so one connection cannot make the server queue replies without bound.
                    paused = true
                    _ = try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
                } else if waiting >= Self.maximumWaitsPerConnection {
                    stalled = true
                    _ = try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
                }
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
        self.context.metrics.recordLatency(.line, from: now, to: self.context.clock.now())
    }

    /// Gives `answer` a place in the reply order; its reply is written when it is answered (by Redis, or
    /// by its failure policy after the timeout) and every reply before it is out.
    private func wait(for answer: PendingAnswer<ByteBuffer>, context: ChannelHandlerContext) {
        let slot = nextWait
        nextWait &+= 1
        waiting += 1
        slots.append(.waiting(slot))
        let deadlines = self.deadlines ?? WaitDeadlines(loop: context.eventLoop, timeout: timeout, clock: self.context.clock)
        self.deadlines = deadlines
        answer.whenAnswered(on: context.eventLoop, deadlines: deadlines, clock: self.context.clock) { reply, counts in
            self.answered(slot, reply: reply, counts: counts, context: context)
        }
    }

    private func answered(_ slot: Int, reply: ByteBuffer, counts: ServerStatistics.Batch, context: ChannelHandlerContext) {
        guard context.channel.isActive, let index = slots.firstIndex(where: { if case .waiting(slot) = $0 { true } else { false } }) else { return }
        processor.pointee.batch.add(counts)
        slots[index] = .ready(reply)
        waiting -= 1
        if stalled, !closing {
            stalled = false
            if var work = pending {
                pending = nil
                process(&work, context: context)
            }
        }
        // Answers from one batch sent to Redis arrive together: write them with one flush, after the last.
        guard !flushScheduled else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            guard context.channel.isActive else { return }
            self.context.statistics.add(self.processor.pointee.batch)
            self.processor.pointee.batch = ServerStatistics.Batch()
            self.flush(context: context)
            if !self.paused, !self.stalled, !self.closing {
                _ = try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: context.channel.isWritable)
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        idleTimeout?.readCompleted(context: context)
        self.context.statistics.add(processor.pointee.batch)
        processor.pointee.batch = ServerStatistics.Batch()
        flush(context: context)
        context.fireChannelReadComplete()
    }

    /// Writes every reply whose predecessors are all ready; closes once all are out when closing.
    private func flush(context: ChannelHandlerContext) {
        var ready = output
        output = nil
        if !slots.isEmpty {
            if let trailing = ready, trailing.readableBytes > 0 { slots.append(.ready(trailing)) }
            ready = nil
            while case .ready(var next) = slots.first {
                slots.removeFirst()
                if ready == nil { ready = next } else { ready?.writeBuffer(&next) }
            }
        }
        let complete = slots.isEmpty  // no reply still waits
        guard let reply = ready, reply.readableBytes > 0 else {
            if closing, complete, !lingering { context.close(promise: nil) }
            return
        }
        guard closing, complete else {
            guard paused else {
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
        guard paused, !closing, context.channel.isActive else { return }
        paused = false
        if var work = pending {
            pending = nil
            process(&work, context: context)
            self.context.statistics.add(processor.pointee.batch)
            processor.pointee.batch = ServerStatistics.Batch()
            flush(context: context)
        }
        if !paused, !stalled { _ = try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: context.channel.isWritable) }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // Stop reading from a client that does not read its replies, until the socket drains.
        if !paused, !stalled { _ = try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: context.channel.isWritable) }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // Graceful shutdown: requests already read have been answered (reads are handled whole), or
            // wait for Redis (at most its timeout); flush those answers, then close.
            closing = true
            // A client that does not read its replies never completes that write: close anyway after a grace period.
            context.eventLoop.assumeIsolated().scheduleTask(in: Self.quiesceTimeout) { context.close(promise: nil) }
            guard slots.isEmpty else { return }  // the last answer's flush closes
            let flushed = context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)))
            flushed.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.context.logger.debug("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }
}
