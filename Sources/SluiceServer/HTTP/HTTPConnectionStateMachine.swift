import NIOCore
import NIOHTTP1

/// The life of one HTTP/1.1 connection, as a value type that is told what happened and returns what to do:
/// ``HTTPServerHandler`` carries the actions out, and tests drive the machine with no channel.
///
/// It decides: when a request is complete, when a body is over the cap (413), when a connection must close
/// after its last response (`Connection: close`, HTTP/1.0, a refused request, shutdown) and whether that
/// close lingers, and what to do with requests pipelined behind one that waits for Redis (hold them, in
/// order, and replay them once it is answered).
struct HTTPConnectionStateMachine {
    /// Where the request being read stands.
    private enum Reading {
        case idle
        case receiving(HTTPRequestHead)
        /// The body went over the cap; its 413 is written, the rest of the request is dropped.
        case discarding
    }

    /// Whether the connection stays open.
    private enum Closing: Equatable {
        case open
        /// Close once what is written is flushed; `lingering` shuts output first and drains input for a while,
        /// so unread request bytes do not turn the close into a reset that destroys the answer.
        case afterFlush(lingering: Bool)
        /// The close waits for the last write already.
        case arranged
    }

    private var reading = Reading.idle
    private var closing = Closing.open
    private var quiescing = false
    /// A request waits for Redis: what arrives meanwhile is held, in order.
    private var awaiting = false
    private var held: [HTTPServerRequestPart] = []
    /// A parse error that arrived while awaiting: answered after the held requests, in order.
    private var heldError: HTTPRequestError?
    /// The body of the request being received, kept apart from `reading` so appending never copies it.
    private(set) var body: ByteBuffer?
    let maximumBodyBytes: Int

    init(maximumBodyBytes: Int) {
        self.maximumBodyBytes = maximumBodyBytes
    }

    /// Whether a request waits for Redis.
    var isAwaiting: Bool { awaiting }

    // MARK: Reading

    /// What to do with a part of a request.
    enum PartAction: Equatable {
        /// Nothing yet.
        case none
        /// Answer `100 Continue` (after any responses already owed).
        case sendContinue
        /// The body is over the cap: answer 413 and close, lingering.
        case refuseTooLarge
        /// The request is complete: answer it.
        case respond(HTTPRequestHead, body: ByteBuffer?)
    }

    /// Takes one part of a request.
    mutating func receive(_ part: HTTPServerRequestPart, allocator: ByteBufferAllocator) -> PartAction {
        if awaiting {
            held.append(part)  // answered in order, after the request that waits
            return .none
        }
        // Once the connection is to close, nothing more is read: a request pipelined behind a
        // `Connection: close` or a refused one must not be decided (RFC 9112 §9.6).
        guard closing == .open else { return .none }
        switch part {
        case .head(let head):
            if let length = head.headers.first(name: "Content-Length").flatMap(Int.init), length > maximumBodyBytes {
                return refuseTooLarge()
            }
            reading = .receiving(head)
            body = nil
            return head.version.minor >= 1 && head.headers.first(name: "Expect")?.lowercased() == "100-continue" ? .sendContinue : .none
        case .body(var chunk):
            guard case .receiving = reading else { return .none }
            if (body?.readableBytes ?? 0) + chunk.readableBytes > maximumBodyBytes { return refuseTooLarge() }
            if body == nil {
                // A fresh buffer, not a slice of the decoder's: appending to it never copies what came before.
                var fresh = allocator.buffer(capacity: min(chunk.readableBytes * 2, maximumBodyBytes))
                fresh.writeBuffer(&chunk)
                body = fresh
            } else {
                body?.writeBuffer(&chunk)
            }
            return .none
        case .end:
            guard case .receiving(let head) = reading else { return .none }
            reading = .idle
            let complete = body
            body = nil
            return .respond(head, body: complete)
        }
    }

    private mutating func refuseTooLarge() -> PartAction {
        reading = .discarding
        body = nil
        closing = .afterFlush(lingering: true)
        return .refuseTooLarge
    }

    /// Whether the response to `head` keeps the connection open; if not, it closes once flushed.
    mutating func keepAlive(afterResponseTo head: HTTPRequestHead) -> Bool {
        // NIO's decoder stops parsing after an Upgrade or CONNECT request; this API upgrades to nothing,
        // so such a connection is answered and closed rather than left to buffer what follows.
        let upgrade = head.method == .CONNECT || head.headers.contains(name: "Upgrade")
        let keepAlive = head.isKeepAlive && !quiescing && !upgrade
        if !keepAlive, closing == .open { closing = .afterFlush(lingering: false) }
        return keepAlive
    }

    /// What to do about a request the parser refused.
    enum ParseErrorAction: Equatable {
        /// Nothing now: answered after the request that waits.
        case hold
        /// The connection already closes after its last response: just flush.
        case flush
        /// Answer 400 and close, lingering: the connection's framing is lost.
        case refuse
    }

    /// Takes a parse error.
    mutating func parseFailed(_ error: HTTPRequestError) -> ParseErrorAction {
        if awaiting {
            heldError = error
            return .hold
        }
        guard closing == .open else { return .flush }
        closing = .afterFlush(lingering: true)
        reading = .discarding
        return .refuse
    }

    // MARK: Waiting for Redis

    /// A request's answer waits for Redis: hold what follows.
    mutating func startAwaiting() { awaiting = true }

    /// What was held while a request waited, to replay in order now that it is answered; nil when no request
    /// waited (a late answer).
    mutating func finishAwaiting() -> (parts: [HTTPServerRequestPart], error: HTTPRequestError?)? {
        guard awaiting else { return nil }
        awaiting = false
        defer {
            held = []
            heldError = nil
        }
        return (held, heldError)
    }

    /// After replaying held parts: a connection asked to shut down closes once nothing is in flight.
    mutating func replayed() {
        if quiescing, !awaiting, case .idle = reading, closing == .open { closing = .afterFlush(lingering: false) }
    }

    /// Whether reading should resume (nothing waits), given whether the channel is writable.
    func shouldRead(writable: Bool) -> Bool { !awaiting && writable }

    // MARK: Writing and closing

    /// What to do with output once it is ready.
    enum FlushAction: Equatable {
        /// Write and flush; the connection stays open.
        case write
        /// Write and flush, then close (shutting output first when `lingering`).
        case writeAndClose(lingering: Bool)
        /// Nothing: a close is already arranged after an earlier write.
        case none
    }

    /// Decides how the pending output leaves.
    mutating func flush() -> FlushAction {
        switch closing {
        case .open: return .write
        case .arranged: return .none
        case .afterFlush(let lingering):
            closing = .arranged
            return .writeAndClose(lingering: lingering)
        }
    }

    /// What a graceful shutdown does now.
    enum QuiesceAction: Equatable {
        /// Nothing in flight: flush and close now.
        case closeNow
        /// A request is in flight: it is answered with `Connection: close`.
        case finishInFlight
    }

    /// Graceful shutdown: a request in flight is answered (with `Connection: close`); an idle connection closes.
    mutating func quiesce() -> QuiesceAction {
        quiescing = true
        guard case .idle = reading, !awaiting else { return .finishInFlight }
        if closing == .open { closing = .afterFlush(lingering: false) }
        return .closeNow
    }
}
