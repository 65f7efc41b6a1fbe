import NIOCore
import NIOHTTP1
import Testing

@testable import SluiceServer

/// The HTTP connection's state machine alone: parts in, actions out, no channel.
struct HTTPConnectionStateMachineTests {
    let allocator = ByteBufferAllocator()

    static func head(
        _ method: HTTPMethod = .GET, _ uri: String = "/v1/check?policy=api&key=k", version: HTTPVersion = .http1_1,
        _ headers: [(String, String)] = []
    ) -> HTTPRequestHead {
        HTTPRequestHead(version: version, method: method, uri: uri, headers: HTTPHeaders(headers))
    }

    /// Feeds a whole request without a body; returns the last action.
    static func request(_ machine: inout HTTPConnectionStateMachine, _ head: HTTPRequestHead, allocator: ByteBufferAllocator)
        -> HTTPConnectionStateMachine.PartAction
    {
        _ = machine.receive(.head(head), allocator: allocator)
        return machine.receive(.end(nil), allocator: allocator)
    }

    @Test func aRequestIsAnsweredAndTheConnectionStaysOpen() {
        var machine = HTTPConnectionStateMachine(maximumBodyBytes: 64)
        let head = Self.head()
        let step1 = machine.receive(.head(head), allocator: allocator)
        #expect(step1 == .none)
        let step2 = machine.receive(.end(nil), allocator: allocator)
        #expect(step2 == .respond(head, body: nil))
        let step3 = machine.keepAlive(afterResponseTo: head)
        #expect(step3)
        let step4 = machine.flush()
        #expect(step4 == .write)
        let step5 = machine.flush()
        #expect(step5 == .write)
    }

    @Test func aBodyIsGatheredAcrossChunks() {
        var machine = HTTPConnectionStateMachine(maximumBodyBytes: 8)
        let head = Self.head(.POST, "/v1/check")
        _ = machine.receive(.head(head), allocator: allocator)
        let step6 = machine.receive(.body(ByteBuffer(string: "1234")), allocator: allocator)
        #expect(step6 == .none)
        let step7 = machine.receive(.body(ByteBuffer(string: "5678")), allocator: allocator)
        #expect(step7 == .none)
        let step8 = machine.receive(.end(nil), allocator: allocator)
        #expect(step8 == .respond(head, body: ByteBuffer(string: "12345678")))
    }

    @Test func aBodyOverTheCapIsRefusedAndTheConnectionLingersClosed() {
        var byLength = HTTPConnectionStateMachine(maximumBodyBytes: 8)
        let step9 = byLength.receive(.head(Self.head(.POST, "/v1/check", [("Content-Length", "9")])), allocator: allocator)
        #expect(step9 == .refuseTooLarge)
        let step10 = byLength.receive(.body(ByteBuffer(string: "123456789")), allocator: allocator)
        #expect(step10 == .none)
        let step11 = byLength.receive(.end(nil), allocator: allocator)
        #expect(step11 == .none)
        let step12 = byLength.flush()
        #expect(step12 == .writeAndClose(lingering: true))
        let step13 = byLength.flush()
        #expect(step13 == .none)

        var chunked = HTTPConnectionStateMachine(maximumBodyBytes: 8)
        _ = chunked.receive(.head(Self.head(.POST, "/v1/check", [("Transfer-Encoding", "chunked")])), allocator: allocator)
        let step14 = chunked.receive(.body(ByteBuffer(string: "12345")), allocator: allocator)
        #expect(step14 == .none)
        let step15 = chunked.receive(.body(ByteBuffer(string: "6789")), allocator: allocator)
        #expect(step15 == .refuseTooLarge)
        let step16 = chunked.receive(.end(nil), allocator: allocator)
        #expect(step16 == .none)
    }

    @Test("Connection: close, HTTP/1.0 without keep-alive, Upgrade and CONNECT close after the response; nothing after is read")
    func closingResponses() {
        let heads = [
            Self.head(.GET, "/healthz", [("Connection", "close")]),
            Self.head(.GET, "/healthz", version: .http1_0),
            Self.head(.GET, "/healthz", [("Upgrade", "websocket"), ("Connection", "upgrade")]),
            Self.head(.CONNECT, "example.com:443"),
        ]
        for head in heads {
            var machine = HTTPConnectionStateMachine(maximumBodyBytes: 64)
            let step17 = Self.request(&machine, head, allocator: allocator)
            #expect(step17 == .respond(head, body: nil))
            let step18 = machine.keepAlive(afterResponseTo: head)
            #expect(!step18, "\(head)")
            let step19 = Self.request(&machine, Self.head(), allocator: allocator)
            #expect(step19 == .none, "a pipelined request after it is not decided")
            let step20 = machine.flush()
            #expect(step20 == .writeAndClose(lingering: false))
        }
    }

    @Test func expectContinueOnlyOnHTTP11() {
        var machine = HTTPConnectionStateMachine(maximumBodyBytes: 64)
        let step21 = machine.receive(.head(Self.head(.POST, "/v1/check", [("Expect", "100-continue")])), allocator: allocator)
        #expect(step21 == .sendContinue)
        var old = HTTPConnectionStateMachine(maximumBodyBytes: 64)
        let step22 = old.receive(.head(Self.head(.POST, "/v1/check", version: .http1_0, [("Expect", "100-continue")])), allocator: allocator)
        #expect(step22 == .none)
    }

    @Test func aMalformedRequestIsRefusedOnceThenOnlyFlushed() {
        var machine = HTTPConnectionStateMachine(maximumBodyBytes: 64)
        let step23 = machine.parseFailed(.invalidField)
        #expect(step23 == .refuse)
        let step24 = machine.parseFailed(.invalidField)
        #expect(step24 == .flush)
        let step25 = machine.flush()
        #expect(step25 == .writeAndClose(lingering: true))
    }

    @Test("while a request waits for Redis, what follows is held in order, a parse error last; replayed once")
    func holdingWhileAwaiting() {
        var machine = HTTPConnectionStateMachine(maximumBodyBytes: 64)
        let first = Self.head()
        let step26 = Self.request(&machine, first, allocator: allocator)
        #expect(step26 == .respond(first, body: nil))
        machine.startAwaiting()
        #expect(machine.isAwaiting)
        let second = Self.head(.GET, "/healthz")
        let step27 = Self.request(&machine, second, allocator: allocator)
        #expect(step27 == .none)
        let step28 = machine.parseFailed(.invalidField)
        #expect(step28 == .hold)
        #expect(!machine.shouldRead(writable: true))
        let held = machine.finishAwaiting()
        #expect(held?.parts == [.head(second), .end(nil)])
        #expect(held?.error == .invalidField)
        let step29 = machine.finishAwaiting()
        #expect(step29 == nil, "a late second answer replays nothing")
        #expect(machine.shouldRead(writable: true))
        // The handler replays the held parts through the machine.
        let step30 = machine.receive(.head(second), allocator: allocator)
        #expect(step30 == .none)
        let step31 = machine.receive(.end(nil), allocator: allocator)
        #expect(step31 == .respond(second, body: nil))
    }

    @Test func shutdownClosesAnIdleConnectionAtOnce() {
        var machine = HTTPConnectionStateMachine(maximumBodyBytes: 64)
        let step32 = machine.quiesce()
        #expect(step32 == .closeNow)
        let step33 = machine.flush()
        #expect(step33 == .writeAndClose(lingering: false))
    }

    @Test func shutdownDuringARequestAnswersItWithConnectionClose() {
        var machine = HTTPConnectionStateMachine(maximumBodyBytes: 64)
        let head = Self.head(.POST, "/v1/check")
        _ = machine.receive(.head(head), allocator: allocator)
        let step34 = machine.quiesce()
        #expect(step34 == .finishInFlight)
        let step35 = machine.flush()
        #expect(step35 == .write)
        let step36 = machine.receive(.end(nil), allocator: allocator)
        #expect(step36 == .respond(head, body: nil))
        let step37 = machine.keepAlive(afterResponseTo: head)
        #expect(!step37)
        let step38 = machine.flush()
        #expect(step38 == .writeAndClose(lingering: false))
    }

    @Test func shutdownWhileAwaitingClosesOnceTheAnswerIsOut() {
        var machine = HTTPConnectionStateMachine(maximumBodyBytes: 64)
        let head = Self.head()
        _ = Self.request(&machine, head, allocator: allocator)
        machine.startAwaiting()
        let step39 = machine.quiesce()
        #expect(step39 == .finishInFlight)
        let step40 = machine.flush()
        #expect(step40 == .write)
        _ = machine.finishAwaiting()
        let step41 = machine.keepAlive(afterResponseTo: head)
        #expect(!step41)
        machine.replayed()
        let step42 = machine.flush()
        #expect(step42 == .writeAndClose(lingering: false))
    }
}
