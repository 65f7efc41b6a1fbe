import Logging
import NIOCore
import NIOHTTP1
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
        case receiving(HTTPRequestHead, ByteBuffer?)
        /// The body went over the cap; the 413 is written, the rest of the request is dropped.
        case discarding
    }

    private let processor: HTTPAPIProcessor
    private let clock: any SluiceClock
    private let registry: PolicyRegistry
    /// The configuration in force, re-read only when the registry's generation changes.
    private var snapshot: PolicyRegistry.Snapshot
    private var snapshotGeneration: UInt64
    /// Where a response body is rendered before its length is known; reused, so responses allocate no body buffer.
    private var scratch = ByteBuffer()
    /// Counts since the last read completed, added to the shared counters once per read.
    private var counts = ServerStatistics.Batch()
    private let statistics: ServerStatistics
    private var state = State.idle
    private var output: ByteBuffer?
    /// Close once the pending output is written (Connection: close, a 413, a parse error, shutdown).
    private var closeAfterFlush = false
    private var quiescing = false

    init(processor: HTTPAPIProcessor, context: ServerContext) {
        self.processor = processor
        clock = context.clock
        registry = context.registry
        statistics = context.statistics
        snapshotGeneration = context.registry.generation
        snapshot = context.registry.snapshot
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Once the connection is to close, nothing more is read: a request pipelined behind a
        // `Connection: close` or a refused one must not be decided (RFC 9112 §9.6).
        guard !closeAfterFlush else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            if let length = head.headers.first(name: "Content-Length").flatMap(Int.init), length > processor.limits.maximumBodyBytes {
                tooLarge(context: context)
                return
            }
            if head.headers.first(name: "Expect")?.lowercased() == "100-continue" {
                var interim = context.channel.allocator.buffer(capacity: 32)
                interim.writeStaticString("HTTP/1.1 100 Continue\r\n\r\n")
                context.writeAndFlush(wrapOutboundOut(interim), promise: nil)
            }
            state = .receiving(head, nil)
        case .body(var chunk):
            guard case .receiving(let head, var body) = state else { return }
            if (body?.readableBytes ?? 0) + chunk.readableBytes > processor.limits.maximumBodyBytes {
                tooLarge(context: context)
                return
            }
            if body == nil { body = chunk } else { body?.writeBuffer(&chunk) }
            state = .receiving(head, body)
        case .end:
            defer { if case .discarding = state {} else { state = .idle } }
            guard case .receiving(let head, let body) = state else { return }
            // The peer address is a locked lookup in NIO; only forward auth needs it.
            let peer = head.uri.utf8.starts(with: "/v1/forward-auth".utf8) ? context.remoteAddress : nil
            let request = HTTPAPIRequest(method: head.method, uri: head.uri, headers: head.headers, body: body, remoteAddress: peer)
            let generation = registry.generation
            if generation != snapshotGeneration {
                snapshotGeneration = generation
                snapshot = registry.snapshot
            }
            let response = processor.respond(to: request, now: clock.now(), snapshot: snapshot, counts: &counts)
            let keepAlive = head.isKeepAlive && !quiescing
            if !keepAlive { closeAfterFlush = true }
            var buffer = output ?? context.channel.allocator.buffer(capacity: 512)
            // A response to HEAD states the body's length but carries no body (RFC 9110 §9.3.2).
            response.write(to: &buffer, keepAlive: keepAlive, includeBody: head.method != .HEAD, scratch: &scratch)
            output = buffer
        }
    }

    private func tooLarge(context: ChannelHandlerContext) {
        state = .discarding
        closeAfterFlush = true
        let response = HTTPAPIResponse.error(
            .payloadTooLarge, code: "body_too_large", "the body is larger than \(processor.limits.maximumBodyBytes) bytes"
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
        guard let buffer = output, buffer.readableBytes > 0 else {
            if closeAfterFlush { context.close(promise: nil) }
            return
        }
        output = nil
        guard closeAfterFlush else {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)  // no future unless someone waits on it
            return
        }
        context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else { return context.fireUserInboundEventTriggered(event) }
        // Graceful shutdown: a request in flight is answered (with Connection: close); an idle connection closes now.
        quiescing = true
        if case .idle = state {
            closeAfterFlush = true
            flush(context: context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError else {
            context.close(promise: nil)
            return
        }
        // Bytes after a close was decided (or the end of a refused body): the last response is already out.
        guard !closeAfterFlush else { return flush(context: context) }
        // A request NIO's parser refuses: answer 400 and close, the connection's framing is lost.
        closeAfterFlush = true
        state = .discarding
        var buffer = output ?? context.channel.allocator.buffer(capacity: 256)
        HTTPAPIResponse.error(.badRequest, code: "malformed_request", "the request is not valid HTTP/1.1: \(error)").write(to: &buffer, keepAlive: false)
        output = buffer
        flush(context: context)
    }
}
