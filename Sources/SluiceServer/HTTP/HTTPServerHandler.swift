import Logging
import NIOCore
import NIOHTTP1
import SluiceConfig
import SluiceCore

/// Carries out the HTTP API on one connection: gathers each request (body capped), asks the
/// ``HTTPAPIProcessor``, and writes the responses of one read in a single flush.
///
/// Responses are encoded by ``HTTPAPIResponse/write(to:keepAlive:)``, so the pipeline holds only NIO's
/// request decoder and this handler. Requests are answered in order, which is all HTTP/1.1 pipelining needs.
final class HTTPServerHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = ByteBuffer

    private enum State {
        case idle
        case receiving(HTTPRequestHead)
        /// The body went over the cap; the 413 is written, the rest of the request is dropped.
        case discarding
    }

    private let processor: HTTPAPIProcessor
    private let clock: any SluiceClock
    /// The configuration in force, re-read only after a reload.
    private var configuration: PolicyRegistry.Reader
    /// Where a response body is rendered before its length is known; reused, so responses allocate no body buffer.
    private var scratch = ByteBuffer()
    /// Counts since the last read completed, added to the shared counters once per read.
    private var counts = ServerStatistics.Batch()
    private let statistics: ServerStatistics
    private var state = State.idle
    /// The body of the request being received, kept apart from `state` so appending never copies it.
    private var body: ByteBuffer?
    /// Set once a close is arranged, so later reads do not close again before the last write is out.
    private var closeArranged = false
    static let lingerTimeout = TimeAmount.seconds(2)
    static let quiesceTimeout = TimeAmount.seconds(5)
    private var output: ByteBuffer?
    /// Close once the pending output is written (Connection: close, a 413, a parse error, shutdown).
    private var closeAfterFlush = false
    private var quiescing = false
    /// A refused request (413, malformed): after the answer, shut output and drain input for a while, so
    /// the client's unsent bytes do not turn the close into a reset that destroys the answer.
    private var lingering = false
    /// A global decision is waiting for Redis: later requests are held, in order, until it is answered.
    private var awaiting = false
    /// Request parts that arrived while `awaiting`.
    private var held: [HTTPServerRequestPart] = []
    /// A parse error that arrived while `awaiting`: answered after the held requests, in order.
    private var heldError: HTTPParserError?
    private let timeout: TimeAmount

    init(processor: HTTPAPIProcessor, context: ServerContext) {
        self.processor = processor
        clock = context.clock
        statistics = context.statistics
        configuration = context.registry.reader()
        timeout = context.globalTimeout
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if awaiting {
            held.append(part)  // answered in order, after the request that waits
            return
        }
        handle(part, context: context)
    }

    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        // Once the connection is to close, nothing more is read: a request pipelined behind a
        // `Connection: close` or a refused one must not be decided (RFC 9112 §9.6).
        guard !closeAfterFlush else { return }
        switch part {
        case .head(let head):
            if let length = head.headers.first(name: "Content-Length").flatMap(Int.init), length > processor.limits.maxBodyBytes {
                tooLarge(context: context)
                return
            }
            if head.version.minor >= 1, head.headers.first(name: "Expect")?.lowercased() == "100-continue" {
                // After any responses already owed to earlier pipelined requests, in order.
                var buffer = output ?? context.channel.allocator.buffer(capacity: 256)
                buffer.writeStaticString("HTTP/1.1 100 Continue\r\n\r\n")
                output = buffer
                flush(context: context)
            }
            state = .receiving(head)
            body = nil
        case .body(var chunk):
            guard case .receiving = state else { return }
            if (body?.readableBytes ?? 0) + chunk.readableBytes > processor.limits.maxBodyBytes {
                tooLarge(context: context)
                return
            }
            if body == nil {
                // A fresh buffer, not a slice of the decoder's: appending to it never copies what came before.
                var fresh = context.channel.allocator.buffer(capacity: min(chunk.readableBytes * 2, processor.limits.maxBodyBytes))
                fresh.writeBuffer(&chunk)
                body = fresh
            } else {
                body?.writeBuffer(&chunk)
            }
        case .end:
            defer { if case .discarding = state {} else { state = .idle } }
            guard case .receiving(let head) = state else { return }
            let body = self.body
            self.body = nil
            // The peer address is a locked lookup in NIO; only forward auth needs it.
            let peer = head.uri.utf8.starts(with: "/v1/forward-auth".utf8) ? context.remoteAddress : nil
            let request = HTTPAPIRequest(method: head.method, uri: head.uri, headers: head.headers, body: body, remoteAddress: peer)
            configuration.refresh()
            let outcome = processor.respond(to: request, now: clock.now(), snapshot: configuration.snapshot, counts: &counts)
            switch outcome {
            case .response(let response):
                write(response, for: head, context: context)
            case .pending(let answer):
                wait(for: answer, head: head, context: context)
            }
        }
    }

    private func write(_ response: HTTPAPIResponse, for head: HTTPRequestHead, context: ChannelHandlerContext) {
        // NIO's decoder stops parsing after an Upgrade or CONNECT request; this API upgrades to nothing,
        // so such a connection is answered and closed rather than left to buffer what follows.
        let upgrade = head.method == .CONNECT || head.headers.contains(name: "Upgrade")
        let keepAlive = head.isKeepAlive && !quiescing && !upgrade
        if !keepAlive { closeAfterFlush = true }
        var buffer = output ?? context.channel.allocator.buffer(capacity: 512)
        // A response to HEAD states the body's length but carries no body (RFC 9110 §9.3.2).
        response.write(to: &buffer, keepAlive: keepAlive, includeBody: head.method != .HEAD, scratch: &scratch)
        output = buffer
    }

    /// Holds later requests until `pending` is answered (by Redis, or by the failure policy after the
    /// timeout), then writes its response and carries on with what was held.
    private func wait(for answer: PendingAnswer<HTTPAPIResponse>, head: HTTPRequestHead, context: ChannelHandlerContext) {
        awaiting = true
        _ = try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
        answer.whenAnswered(on: context.eventLoop, timeout: timeout, clock: clock) { response, counts in
            self.answered(response, counts: counts, head: head, context: context)
        }
    }

    private func answered(_ response: HTTPAPIResponse, counts later: ServerStatistics.Batch, head: HTTPRequestHead, context: ChannelHandlerContext) {
        guard awaiting else { return }
        awaiting = false
        guard context.channel.isActive else { return }
        statistics.add(later)
        write(response, for: head, context: context)
        while !awaiting, !held.isEmpty {
            handle(held.removeFirst(), context: context)
        }
        if !awaiting, let error = heldError {
            heldError = nil
            refuseMalformed(error, context: context)
        }
        if quiescing, !awaiting, case .idle = state { closeAfterFlush = true }
        if counts.commands > 0 {
            statistics.add(counts)
            counts = ServerStatistics.Batch()
        }
        flush(context: context)
        if !awaiting { _ = try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: context.channel.isWritable) }
    }

    private func tooLarge(context: ChannelHandlerContext) {
        state = .discarding
        body = nil
        closeAfterFlush = true
        lingering = true
        let response = HTTPAPIResponse.error(
            .payloadTooLarge, code: "body_too_large", "the body is larger than \(processor.limits.maxBodyBytes) bytes"
        )
        var buffer = output ?? context.channel.allocator.buffer(capacity: 256)
        response.write(to: &buffer, keepAlive: false)
        output = buffer
        flush(context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if counts.commands > 0 {
            statistics.add(counts)
            counts = ServerStatistics.Batch()
        }
        flush(context: context)
        context.fireChannelReadComplete()
    }

    private func flush(context: ChannelHandlerContext) {
        let pendingOutput = output.flatMap { $0.readableBytes > 0 ? $0 : nil }
        output = nil
        guard closeAfterFlush else {
            if let pendingOutput { context.writeAndFlush(wrapOutboundOut(pendingOutput), promise: nil) }
            return
        }
        guard !closeArranged else { return }  // the close already waits for the last write
        closeArranged = true
        let written = pendingOutput.map { context.writeAndFlush(wrapOutboundOut($0)) } ?? context.eventLoop.makeSucceededVoidFuture()
        let lingering = self.lingering
        written.assumeIsolated().whenComplete { _ in
            if lingering {
                context.close(mode: .output, promise: nil)
                context.eventLoop.assumeIsolated().scheduleTask(in: Self.lingerTimeout) { context.close(promise: nil) }
            } else {
                context.close(promise: nil)
            }
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // Stop reading from a client that does not read its responses, until the socket drains.
        if !awaiting { _ = try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: context.channel.isWritable) }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else { return context.fireUserInboundEventTriggered(event) }
        // Graceful shutdown: a request in flight is answered (with Connection: close); an idle connection closes now.
        quiescing = true
        if case .idle = state, !awaiting {
            closeAfterFlush = true
            flush(context: context)
        }
        // A request still arriving, or a client not reading, gets a grace period, then the connection closes.
        context.eventLoop.assumeIsolated().scheduleTask(in: Self.quiesceTimeout) { context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let error = error as? HTTPParserError else {
            context.close(promise: nil)
            return
        }
        if awaiting {
            heldError = error  // after the response the connection still owes
            return
        }
        refuseMalformed(error, context: context)
    }

    private func refuseMalformed(_ error: HTTPParserError, context: ChannelHandlerContext) {
        // Bytes after a close was decided (or the end of a refused body): the last response is already out.
        guard !closeAfterFlush else { return flush(context: context) }
        // A request NIO's parser refuses: answer 400 and close, the connection's framing is lost.
        closeAfterFlush = true
        lingering = true
        state = .discarding
        var buffer = output ?? context.channel.allocator.buffer(capacity: 256)
        HTTPAPIResponse.error(.badRequest, code: "malformed_request", "the request is not valid HTTP/1.1: \(error)").write(to: &buffer, keepAlive: false)
        output = buffer
        flush(context: context)
    }
}
