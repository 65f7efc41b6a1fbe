import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import SluiceConfig
import SluiceCore
import Testing

@testable import SluiceServer

/// One response read back from the bytes a server wrote: status, head fields and body.
struct HTTPUnitWireResponse {
    let status: Int
    let fields: [(name: String, value: String)]
    let body: String

    func field(_ name: String) -> String? { fields.first { $0.name.lowercased() == name.lowercased() }?.value }

    /// Splits `bytes` into responses, framing each by its `Content-Length` (none for 1xx, or after a HEAD when `headRequests` says so).
    static func parse(_ text: String, headRequests: Set<Int> = []) throws -> [HTTPUnitWireResponse] {
        var bytes = Array(text.utf8)[...]
        var responses: [HTTPUnitWireResponse] = []
        let separator = Array("\r\n\r\n".utf8)
        while !bytes.isEmpty {
            let end = try #require(bytes.indices.first { bytes[$0...].starts(with: separator) }, "unterminated head in \(text)")
            let head = String(decoding: bytes[..<end], as: UTF8.self)
            bytes = bytes[(end + separator.count)...]
            var lines = head.components(separatedBy: "\r\n")
            let statusLine = lines.removeFirst()
            #expect(statusLine.hasPrefix("HTTP/1.1 "))
            let status = try #require(Int(statusLine.dropFirst("HTTP/1.1 ".count).prefix(3)))
            let fields = try lines.map { line in
                let colon = try #require(line.firstIndex(of: ":"))
                return (name: String(line[..<colon]), value: String(line[line.index(after: colon)...].drop { $0 == " " }))
            }
            var body = ""
            let isHead = headRequests.contains(responses.filter { $0.status >= 200 }.count)
            if status >= 200, !isHead {
                let lengthText = try #require(fields.first { $0.name == "Content-Length" }?.value)
                let length = try #require(Int(lengthText))
                try #require(bytes.count >= length, "body shorter than Content-Length in \(text)")
                body = String(decoding: bytes.prefix(length), as: UTF8.self)
                bytes = bytes.dropFirst(length)
            }
            responses.append(HTTPUnitWireResponse(status: status, fields: fields, body: body))
        }
        return responses
    }
}

struct HTTPServerHandlerTests {

    /// An active `EmbeddedChannel` with an ``HTTPServerHandler`` over `fixture`.
    static func makeChannel(_ fixture: HTTPUnitFixture, peer: String = "127.0.0.1") throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([
            HTTPServerHandler(processor: fixture.processor, context: fixture.context),
        ])
        try channel.connect(to: SocketAddress(ipAddress: peer, port: 50_000)).wait()
        return channel
    }

    /// Every outbound write so far, one string per write.
    static func writes(_ channel: EmbeddedChannel) throws -> [String] {
        var writes: [String] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { writes.append(String(buffer: buffer)) }
        return writes
    }

    static func send(_ channel: EmbeddedChannel, _ text: String) throws {
        try channel.writeInbound(ByteBuffer(string: text))
    }

    static func get(_ path: String, _ extra: String = "") -> String { "GET \(path) HTTP/1.1\r\nHost: sluice\r\n\(extra)\r\n" }

    static func post(_ path: String, _ body: String, _ extra: String = "") -> String {
        "POST \(path) HTTP/1.1\r\nHost: sluice\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\(extra)\r\n\(body)"
    }

    @Test func pipelinedRequestsAreAnsweredInOrderInOneWrite() throws {
        let fixture = try HTTPUnitFixture()
        let channel = try Self.makeChannel(fixture)
        try Self.send(
            channel,
            Self.get("/healthz") + Self.get("/v1/check?policy=small&key=k") + Self.post("/v1/check", #"{"policy":"small","key":"k"}"#)
                + Self.get("/readyz")
        )
        let writes = try Self.writes(channel)
        #expect(writes.count == 1)
        let responses = try HTTPUnitWireResponse.parse(try #require(writes.first))
        #expect(responses.map(\.status) == [200, 200, 200, 200])
        #expect(responses.map(\.body).first == #"{"status":"ok"}"#)
        #expect(responses[1].field("X-RateLimit-Remaining") == "2")
        #expect(responses[2].field("X-RateLimit-Remaining") == "1")
        #expect(responses[3].body.contains("\"ready\""))
        #expect(responses.allSatisfy { $0.field("Cache-Control") == "no-store" && $0.field("Connection") == nil })
        #expect(channel.isActive)

        // The connection is kept alive: the next read is answered too.
        try Self.send(channel, Self.get("/v1/check?policy=small&key=k"))
        let next = try HTTPUnitWireResponse.parse(try Self.writes(channel).joined())
        #expect(next.map(\.status) == [200])
        #expect(next.first?.field("X-RateLimit-Remaining") == "0")
        #expect(try channel.finish().isClean)
    }

    @Test func requestSplitAcrossReadsIsAnsweredOnce() throws {
        let fixture = try HTTPUnitFixture()
        let channel = try Self.makeChannel(fixture)
        let request = Self.post("/v1/check", #"{"policy":"api","key":"split"}"#)
        let bytes = Array(request.utf8)
        for byte in bytes.dropLast() {
            try channel.writeInbound(ByteBuffer(bytes: [byte]))
        }
        #expect(try Self.writes(channel).isEmpty)
        try channel.writeInbound(ByteBuffer(bytes: [bytes[bytes.count - 1]]))
        let responses = try HTTPUnitWireResponse.parse(try Self.writes(channel).joined())
        #expect(responses.map(\.status) == [200])
        #expect(responses.first?.field("X-RateLimit-Remaining") == "99")
        #expect(try channel.finish().isClean)
    }

    @Test func connectionCloseIsHonoured() throws {
        let fixture = try HTTPUnitFixture()
        let channel = try Self.makeChannel(fixture)
        try Self.send(channel, Self.get("/healthz", "Connection: close\r\n"))
        let writes = try Self.writes(channel)
        #expect(writes.count == 1)
        let responses = try HTTPUnitWireResponse.parse(writes.joined())
        #expect(responses.map(\.status) == [200])
        #expect(responses.first?.field("Connection") == "close")
        #expect(!channel.isActive)
    }

    @Test func nothingAfterConnectionCloseIsProcessed() throws {
        let fixture = try HTTPUnitFixture()
        let channel = try Self.makeChannel(fixture)
        try Self.send(
            channel,
            Self.get("/v1/check?policy=small&key=c", "Connection: close\r\n") + Self.get("/v1/check?policy=small&key=c")
                + Self.post("/v1/check", #"{"policy":"small","key":"c"}"#)
        )
        let responses = try HTTPUnitWireResponse.parse(try Self.writes(channel).joined())
        #expect(responses.map(\.status) == [200])
        #expect(responses.first?.field("Connection") == "close")
        #expect(!channel.isActive)
        // The requests after the close were not decided: the bucket was charged once.
        #expect(HTTPUnitFixture.remaining(fixture.get("/v1/check?policy=small&key=c")) == 1)
    }

    @Test func http10WithoutKeepAliveCloses() throws {
        let fixture = try HTTPUnitFixture()
        let channel = try Self.makeChannel(fixture)
        try Self.send(channel, "GET /healthz HTTP/1.0\r\n\r\n")
        let responses = try HTTPUnitWireResponse.parse(try Self.writes(channel).joined())
        #expect(responses.map(\.status) == [200])
        #expect(responses.first?.field("Connection") == "close")
        #expect(!channel.isActive)
    }

    @Test func headRequestGetsNoBody() throws {
        let fixture = try HTTPUnitFixture()
        let channel = try Self.makeChannel(fixture)
        try Self.send(channel, "HEAD /healthz HTTP/1.1\r\nHost: sluice\r\n\r\n" + Self.get("/healthz"))
        let text = try Self.writes(channel).joined()
        let responses = try HTTPUnitWireResponse.parse(text, headRequests: [0])
        #expect(responses.map(\.status) == [200, 200], "\(text)")
        #expect(responses.first?.body == "")
        // The length is the one a GET would get.
        #expect(responses.first?.field("Content-Length") == "15")
        #expect(responses.last?.body == #"{"status":"ok"}"#)
        #expect(channel.isActive)
        #expect(try channel.finish().isClean)
    }

    @Test func bodyOverLimitByContentLengthIs413() throws {
        let fixture = try HTTPUnitFixture(limits: SluiceConfiguration.HTTP(maxBodyBytes: 64))
        let channel = try Self.makeChannel(fixture)
        // Only the head arrives: the length alone is enough to refuse.
        try Self.send(channel, "POST /v1/check HTTP/1.1\r\nHost: sluice\r\nContent-Length: 65\r\n\r\n")
        let responses = try HTTPUnitWireResponse.parse(try Self.writes(channel).joined())
        #expect(responses.map(\.status) == [413])
        #expect(responses.first?.field("Connection") == "close")
        #expect(HTTPUnitFixture.errorCode(HTTPAPIResponse(status: .payloadTooLarge, body: try #require(responses.first?.body))) == "body_too_large")
        #expect(!channel.isActive)
    }

    @Test func bodyAtLimitIsAccepted() throws {
        let fixture = try HTTPUnitFixture(limits: SluiceConfiguration.HTTP(maxBodyBytes: 64))
        let channel = try Self.makeChannel(fixture)
        let json = #"{"policy":"api","key":"k"}"#
        let body = json + String(repeating: " ", count: 64 - json.utf8.count)
        try Self.send(channel, Self.post("/v1/check", body))
        #expect(try HTTPUnitWireResponse.parse(try Self.writes(channel).joined()).map(\.status) == [200])
        // Chunked, at the limit exactly, in two chunks.
        let half = body.utf8.count / 2
        let chunked = "POST /v1/check HTTP/1.1\r\nHost: sluice\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "\(String(half, radix: 16))\r\n\(body.prefix(half))\r\n\(String(64 - half, radix: 16))\r\n\(body.dropFirst(half))\r\n0\r\n\r\n"
        try Self.send(channel, chunked)
        let responses = try HTTPUnitWireResponse.parse(try Self.writes(channel).joined())
        #expect(responses.map(\.status) == [200])
        #expect(responses.first?.field("X-RateLimit-Remaining") == "98")
        #expect(channel.isActive)
        #expect(try channel.finish().isClean)
    }

    @Test func chunkedBodyOverLimitIs413() throws {
        let fixture = try HTTPUnitFixture(limits: SluiceConfiguration.HTTP(maxBodyBytes: 64))
        let channel = try Self.makeChannel(fixture)
        let chunk = String(repeating: "x", count: 40)
        try Self.send(channel, "POST /v1/check HTTP/1.1\r\nHost: sluice\r\nTransfer-Encoding: chunked\r\n\r\n28\r\n\(chunk)\r\n")
        #expect(try Self.writes(channel).isEmpty)
        #expect(channel.isActive)
        try Self.send(channel, "28\r\n\(chunk)\r\n0\r\n\r\n" + Self.get("/v1/check?policy=small&key=after"))
        let responses = try HTTPUnitWireResponse.parse(try Self.writes(channel).joined())
        #expect(responses.map(\.status) == [413])
        #expect(responses.first?.field("Connection") == "close")
        #expect(responses.first?.body.contains("body_too_large") == true)
        #expect(!channel.isActive)
        // The request pipelined behind the refused one was not decided.
        #expect(HTTPUnitFixture.remaining(fixture.get("/v1/check?policy=small&key=after")) == 2)
    }

    @Test(arguments: ["GARBAGE\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n", "GET /\0 HTTP/1.1\r\n\r\n"])
    func malformedRequestIs400AndClose(_ request: String) throws {
        let fixture = try HTTPUnitFixture()
        let channel = try Self.makeChannel(fixture)
        try Self.send(channel, request)
        let responses = try HTTPUnitWireResponse.parse(try Self.writes(channel).joined())
        #expect(responses.map(\.status) == [400])
        #expect(responses.first?.field("Connection") == "close")
        #expect(responses.first?.body.contains("malformed_request") == true)
        #expect(!channel.isActive)
    }

    @Test func malformedAfterAGoodRequestKeepsTheGoodAnswer() throws {
        let fixture = try HTTPUnitFixture()
        let channel = try Self.makeChannel(fixture)
        try Self.send(channel, Self.get("/healthz") + "GARBAGE\r\n\r\n")
        let responses = try HTTPUnitWireResponse.parse(try Self.writes(channel).joined())
        #expect(responses.map(\.status) == [200, 400])
        #expect(responses.first?.field("Connection") == nil)
        #expect(!channel.isActive)
    }

    @Test func expectContinueGetsInterimResponse() throws {
        let fixture = try HTTPUnitFixture()
        let channel = try Self.makeChannel(fixture)
        let body = #"{"policy":"api","key":"k"}"#
        try Self.send(
            channel, "POST /v1/check HTTP/1.1\r\nHost: sluice\r\nContent-Length: \(body.utf8.count)\r\nExpect: 100-continue\r\n\r\n"
        )
        #expect(try Self.writes(channel) == ["HTTP/1.1 100 Continue\r\n\r\n"])
        try Self.send(channel, body)
        let responses = try HTTPUnitWireResponse.parse(try Self.writes(channel).joined())
        #expect(responses.map(\.status) == [200])
        #expect(responses.first?.field("X-RateLimit-Remaining") == "99")
        #expect(channel.isActive)
        #expect(try channel.finish().isClean)
    }

    @Test func expectContinueWithBodyOverLimitGetsOnly413() throws {
        let fixture = try HTTPUnitFixture(limits: SluiceConfiguration.HTTP(maxBodyBytes: 16))
        let channel = try Self.makeChannel(fixture)
        try Self.send(channel, "POST /v1/check HTTP/1.1\r\nHost: sluice\r\nContent-Length: 17\r\nExpect: 100-continue\r\n\r\n")
        let responses = try HTTPUnitWireResponse.parse(try Self.writes(channel).joined())
        #expect(responses.map(\.status) == [413])
        #expect(!channel.isActive)
    }

    @Test func quiesceClosesAnIdleConnection() throws {
        let fixture = try HTTPUnitFixture()
        let channel = try Self.makeChannel(fixture)
        try Self.send(channel, Self.get("/healthz"))
        #expect(try HTTPUnitWireResponse.parse(try Self.writes(channel).joined()).map(\.status) == [200])
        #expect(channel.isActive)
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(!channel.isActive)
        #expect(try Self.writes(channel).isEmpty)
    }

    @Test func quiesceDuringARequestAnswersItThenCloses() throws {
        let fixture = try HTTPUnitFixture()
        let channel = try Self.makeChannel(fixture)
        let body = #"{"policy":"api","key":"k"}"#
        try Self.send(channel, "POST /v1/check HTTP/1.1\r\nHost: sluice\r\nContent-Length: \(body.utf8.count)\r\n\r\n")
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(channel.isActive)
        try Self.send(channel, body)
        let responses = try HTTPUnitWireResponse.parse(try Self.writes(channel).joined())
        #expect(responses.map(\.status) == [200])
        #expect(responses.first?.field("Connection") == "close")
        #expect(!channel.isActive)
    }

    @Test func forwardAuthSeesTheSocketPeer() throws {
        let auth = try HTTPUnitForwardAuth()
        let direct = try Self.makeChannel(auth.fixture, peer: "198.51.100.9")
        let request = "GET /v1/forward-auth HTTP/1.1\r\nHost: sluice\r\nX-Forwarded-Method: POST\r\nX-Forwarded-Uri: /login\r\n"
            + "X-Forwarded-For: 203.0.113.1\r\n\r\n"
        try Self.send(direct, request + request)
        let responses = try HTTPUnitWireResponse.parse(try Self.writes(direct).joined())
        #expect(responses.map { $0.field("X-RateLimit-Remaining") } == ["2", "1"])
        // Through the loopback proxy, X-Forwarded-For names another client.
        let proxied = try Self.makeChannel(auth.fixture, peer: "127.0.0.1")
        try Self.send(proxied, request)
        #expect(try HTTPUnitWireResponse.parse(try Self.writes(proxied).joined()).first?.field("X-RateLimit-Remaining") == "2")
        #expect(HTTPUnitFixture.remaining(try auth.login(from: "198.51.100.9")) == 0)
    }
}

extension HTTPServerHandlerTests {
    /// NIO's decoder stops parsing after an Upgrade; the connection is answered and closed, not left open.
    @Test(arguments: ["GET /healthz HTTP/1.1\r\nHost: s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", "CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r\n"])
    func upgradeAndConnectCloseTheConnection(request: String) throws {
        let fixture = try HTTPUnitFixture()
        let channel = try HTTPServerHandlerTests.makeChannel(fixture)
        try HTTPServerHandlerTests.send(channel, request)
        let responses = try HTTPUnitWireResponse.parse(HTTPServerHandlerTests.writes(channel).joined())
        #expect(responses.first?.field("Connection") == "close")
        #expect(!channel.isActive, "the connection stayed open after an upgrade request")
    }

    /// A body sent in many small chunks arrives whole (and is appended without copying what came before).
    @Test func aBodyInManySmallChunksArrivesWhole() throws {
        let fixture = try HTTPUnitFixture()
        let channel = try HTTPServerHandlerTests.makeChannel(fixture)
        let body = #"{"policy":"api","key":"chunked-user","cost":1}"#
        var request = "POST /v1/check HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\n\r\n"
        for character in body { request += "1\r\n\(character)\r\n" }
        request += "0\r\n\r\n"
        try HTTPServerHandlerTests.send(channel, request)
        let responses = try HTTPUnitWireResponse.parse(HTTPServerHandlerTests.writes(channel).joined())
        #expect(responses.first?.status == 200)
        #expect(responses.first?.body.contains(#""policy":"api""#) == true)
    }

    /// `100 Continue` follows the responses owed to earlier pipelined requests.
    @Test func interimResponseKeepsPipelineOrder() throws {
        let fixture = try HTTPUnitFixture()
        let channel = try HTTPServerHandlerTests.makeChannel(fixture)
        let body = #"{"policy":"api","key":"k"}"#
        try HTTPServerHandlerTests.send(channel, HTTPServerHandlerTests.get("/healthz") + "POST /v1/check HTTP/1.1\r\nHost: s\r\nExpect: 100-continue\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body)
        let text = try HTTPServerHandlerTests.writes(channel).joined()
        let healthz = try #require(text.range(of: "HTTP/1.1 200 OK"))
        let interim = try #require(text.range(of: "HTTP/1.1 100 Continue"))
        #expect(healthz.lowerBound < interim.lowerBound, "100 Continue overtook an earlier response:\n\(text)")
    }
}
