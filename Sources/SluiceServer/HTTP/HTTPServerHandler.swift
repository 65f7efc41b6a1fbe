import Logging
import NIOCore
import NIOHTTP1
import SluiceConfig
import SluiceCore

/// Carries out the HTTP API on one connection: parses the bytes it reads into requests (``HTTPRequestParser``),
/// gathers each one (body capped), asks the ``HTTPAPIProcessor``, and writes the responses of one read in a
/// single flush.
///
/// Responses are encoded by ``HTTPAPIResponse/write(to:keepAlive:)`` and requests parsed here, so no handler of
/// NIO's HTTP module stands between the socket and this one. Requests are answered in order, which is all
/// HTTP/1.1 pipelining needs.
final class HTTPServerHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let processor: HTTPAPIProcessor
    private let clock: any SluiceClock
    /// The configuration in force, re-read only after a reload.
    private var configuration: PolicyRegistry.Reader
    /// Where a response body is rendered before its length is known; reused, so responses allocate no body buffer.
    private var scratch = ByteBuffer()
    /// Counts since the last read completed, added to the shared counters once per read.
    private var counts = ServerStatistics.Batch()
    private let statistics: ServerStatistics
    private let metrics: SluiceMetrics
    /// What the connection is doing; it decides, this handler carries out.
    private var state: HTTPConnectionStateMachine
    /// Responses written since the last flush.
    private var output: ByteBuffer?
    static let lingerTimeout = TimeAmount.seconds(2)
    static let quiesceTimeout = TimeAmount.seconds(5)
    private let timeout: TimeAmount
    /// When this connection's waits expire: made at the first wait.
    private var deadlines: WaitDeadlines?
    /// The live event stream this connection became, if it did (`GET /v1/events`).
    private var stream: EventStream?
    private var parser = HTTPRequestParser()
    /// Bytes read and not yet parsed: an incomplete head or chunk line (a body is handed on as it arrives).
    private var inbound: ByteBuffer?

    /// The connection's idle and request timeouts, told of every read (none in most unit tests of this handler).
    private let idleTimeout: IdleTimeout?
    private let requestTimeout: RequestTimeout?
    /// The channel's allocator, fetched once (NIO's getter retains and releases the channel on every call).
    private var allocator = ByteBufferAllocator()

    init(processor: HTTPAPIProcessor, context: ServerContext, idleTimeout: IdleTimeout? = nil, requestTimeout: RequestTimeout? = nil) {
        self.processor = processor
        self.idleTimeout = idleTimeout
        self.requestTimeout = requestTimeout
        clock = context.clock
        statistics = context.statistics
        metrics = context.metrics
        configuration = context.registry.reader()
        timeout = context.globalTimeout
        state = HTTPConnectionStateMachine(maximumBodyBytes: processor.limits.maxBodyBytes)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        allocator = context.channel.allocator
        if context.channel.isActive { idleTimeout?.start(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stopTimeouts()
    }

    func channelActive(context: ChannelHandlerContext) {
        idleTimeout?.start(context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // A connection serving a live stream reads nothing more.
        guard stream == nil else { return }
        idleTimeout?.readBegan()
        requestTimeout?.read(context: context)
        var bytes = unwrapInboundIn(data)
        if var pending = inbound {
            inbound = nil  // first, so that appending does not copy what is pending
            pending.writeBuffer(&bytes)
            bytes = pending
        }
        do {
            while stream == nil, let part = try parser.next(&bytes) {
                if case .end = part { requestTimeout?.requestCompleted() }
                handle(part, context: context)
            }
        } catch {
            parseFailed(error, context: context)
        }
        if bytes.readableBytes > 0 {
            bytes.discardReadBytes()
            inbound = bytes
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        stopTimeouts()
        stream?.stop()
        context.fireChannelInactive()
    }

    private func stopTimeouts() {
        idleTimeout?.stop()
        requestTimeout?.stop()
    }

    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch state.receive(part, allocator: allocator) {
        case .none:
            break
        case .sendContinue:
            // After any responses already owed to earlier pipelined requests, in order.
            var buffer = takeOutput(context)
            buffer.writeStaticString("HTTP/1.1 100 Continue\r\n\r\n")
            output = buffer
            flush(context: context)
        case .refuseTooLarge:
            let response = HTTPAPIResponse.error(
                .payloadTooLarge, code: "body_too_large", "the body is larger than \(processor.limits.maxBodyBytes) bytes"
            )
            var buffer = takeOutput(context)
            response.write(to: &buffer, keepAlive: false)
            output = buffer
            flush(context: context)
        case .respond(let head, let body):
            // The peer address is a locked lookup in NIO; only forward auth and the admin API need it, so checks
            // (`/v1/check...`, the hot route) go without.
            let peer = TargetBytes.hasPrefix(head.uri, "/v1/check") ? nil : context.remoteAddress
            let request = HTTPAPIRequest(method: head.method, uri: head.uri, headers: head.headers, body: body, remoteAddress: peer)
            configuration.refresh()
            let now = clock.now()
            switch processor.respond(to: request, now: now, snapshot: configuration.snapshot, counts: &counts) {
            case .response(let response):
                write(response, for: head, context: context)
                metrics.recordLatency(.http, from: now, to: clock.now())
            case .pending(let answer):
                wait(for: answer, head: head, since: now, context: context)
            case .deferred(let work):
                waitFor(work, head: head, context: context)
            case .stream(let hub, let lastEventID):
                startStream(hub, after: lastEventID, context: context)
            }
        }
    }

    private func write(_ response: HTTPAPIResponse, for head: HTTPRequestHead, context: ChannelHandlerContext) {
        let keepAlive = state.keepAlive(afterResponseTo: head)
        var buffer = takeOutput(context)
        // A response to HEAD states the body's length but carries no body (RFC 9110 §9.3.2).
        response.write(to: &buffer, keepAlive: keepAlive, includeBody: head.method != .HEAD, scratch: &scratch)
        output = buffer
    }

    /// Holds later requests until `answer` is ready (from Redis, or by the failure policy after the
    /// timeout), then writes its response and carries on with what was held.
    private func wait(for answer: PendingAnswer<HTTPAPIResponse>, head: HTTPRequestHead, since start: Timestamp, context: ChannelHandlerContext) {
        state.startAwaiting()
        _ = try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
        let deadlines = self.deadlines ?? WaitDeadlines(loop: context.eventLoop, timeout: timeout, clock: clock)
        self.deadlines = deadlines
        answer.whenAnswered(on: context.eventLoop, deadlines: deadlines, clock: clock) { response, counts in
            self.metrics.recordLatency(.http, from: start, to: self.clock.now())
            self.answered(response, counts: counts, head: head, context: context)
        }
    }

    /// Turns the connection into a live event stream, after the responses it owes: nothing more is read from it.
    private func startStream(_ hub: EventHub, after lastEventID: UInt64?, context: ChannelHandlerContext) {
        if let pending = output, pending.readableBytes > 0 { context.write(wrapOutboundOut(pending), promise: nil) }
        output = nil
        _ = try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
        // A stream reads nothing more by design: it is not idle.
        stopTimeouts()
        let stream = EventStream(hub: hub, lastEventID: lastEventID)
        self.stream = stream
        stream.start(context: context)
    }

    /// Holds later requests until `work` (off the event loop) has the response.
    private func waitFor(_ work: @escaping @Sendable () async -> HTTPAPIResponse, head: HTTPRequestHead, context: ChannelHandlerContext) {
        state.startAwaiting()
        _ = try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
        let promise = context.eventLoop.makePromise(of: HTTPAPIResponse.self)
        Task { promise.succeed(await work()) }
        promise.futureResult.assumeIsolated().whenSuccess { response in
            self.answered(response, counts: ServerStatistics.Batch(), head: head, context: context)
        }
    }

    private func answered(_ response: HTTPAPIResponse, counts later: ServerStatistics.Batch, head: HTTPRequestHead, context: ChannelHandlerContext) {
        guard let held = state.finishAwaiting(), context.channel.isActive else { return }
        statistics.add(later)
        write(response, for: head, context: context)
        for part in held.parts { handle(part, context: context) }
        if let error = held.error { parseFailed(error, context: context) }
        state.replayed()
        if counts.commands > 0 {
            statistics.add(counts)
            counts = ServerStatistics.Batch()
        }
        flush(context: context)
        if !state.isAwaiting { _ = try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: context.channel.isWritable) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        idleTimeout?.readCompleted(context: context)
        if counts.commands > 0 {
            statistics.add(counts)
            counts = ServerStatistics.Batch()
        }
        flush(context: context)
        context.fireChannelReadComplete()
    }

    /// Where the next response goes: the output so far, taken out so that writing to it does not copy it
    /// (`output` would still hold it), or a new buffer.
    private func takeOutput(_ context: ChannelHandlerContext) -> ByteBuffer {
        guard let buffer = output else { return allocator.buffer(capacity: 512) }
        output = nil
        return buffer
    }

    private func flush(context: ChannelHandlerContext) {
        let pendingOutput = output.flatMap { $0.readableBytes > 0 ? $0 : nil }
        output = nil
        switch state.flush() {
        case .none:
            return  // the close already waits for the last write
        case .write:
            if let pendingOutput { context.writeAndFlush(wrapOutboundOut(pendingOutput), promise: nil) }
        case .writeAndClose(let lingering):
            let written = pendingOutput.map { context.writeAndFlush(wrapOutboundOut($0)) } ?? context.eventLoop.makeSucceededVoidFuture()
            written.assumeIsolated().whenComplete { _ in
                if lingering {
                    context.close(mode: .output, promise: nil)
                    context.eventLoop.assumeIsolated().scheduleTask(in: Self.lingerTimeout) { context.close(promise: nil) }
                } else {
                    context.close(promise: nil)
                }
            }
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // Stop reading from a client that does not read its responses, until the socket drains.
        if !state.isAwaiting { _ = try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: context.channel.isWritable) }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else { return context.fireUserInboundEventTriggered(event) }
        if let stream {
            // Shutdown: the stream ends cleanly (its last chunk), then the connection closes.
            stream.finish(context: context)
            context.close(promise: nil)
            return
        }
        if state.quiesce() == .closeNow { flush(context: context) }
        // A request still arriving, or a client not reading, gets a grace period, then the connection closes.
        context.eventLoop.assumeIsolated().scheduleTask(in: Self.quiesceTimeout) { context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func parseFailed(_ error: HTTPRequestError, context: ChannelHandlerContext) {
        switch state.parseFailed(error) {
        case .hold:
            return
        case .flush:
            // Bytes after a close was decided (or the end of a refused body): the last response is already out.
            flush(context: context)
        case .refuse:
            var buffer = takeOutput(context)
            HTTPAPIResponse.error(.badRequest, code: "malformed_request", "the request is not valid HTTP/1.1: \(error)")
                .write(to: &buffer, keepAlive: false)
            output = buffer
            flush(context: context)
        }
    }
}
