import NIOCore
import NIOHTTP1
import Testing

@testable import SluiceServer

/// The HTTP/1.1 request parser on its own: framing, strictness, limits, and the same parts however the bytes
/// are split across reads.
struct HTTPRequestParserTests {
    /// What a parse produced, in a comparable form: a head's method, target, version and fields, body bytes
    /// (pieces joined), ends, and the error that stopped it.
    enum Event: Equatable {
        case head(method: String, uri: String, version: String, fields: [String])
        case body(String)
        case end
        case error(HTTPRequestError)
    }

    /// Parses `text` delivered in reads of `pieceSize` bytes (all at once when nil).
    static func parse(_ text: String, pieceSize: Int? = nil) -> [Event] {
        parse(Array(text.utf8), pieceSize: pieceSize)
    }

    static func parse(_ bytes: [UInt8], pieceSize: Int? = nil) -> [Event] {
        var parser = HTTPRequestParser()
        var pending = ByteBuffer()
        var events: [Event] = []
        let size = max(1, pieceSize ?? bytes.count)
        var offset = 0
        repeat {
            pending.writeBytes(bytes[offset..<min(offset + size, bytes.count)])
            offset += size
            do {
                while let part = try parser.next(&pending) {
                    switch part {
                    case .head(let head):
                        let fields = head.headers.map { "\($0.name): \($0.value)" }
                        events.append(.head(method: head.method.rawValue, uri: head.uri, version: "\(head.version)", fields: fields))
                    case .body(let piece):
                        // Body pieces are joined: how a body is cut depends on the reads.
                        if case .body(let earlier) = events.last {
                            events[events.count - 1] = .body(earlier + String(buffer: piece))
                        } else {
                            events.append(.body(String(buffer: piece)))
                        }
                    case .end:
                        events.append(.end)
                    }
                }
            } catch {
                events.append(.error(error))
                return events
            }
        } while offset < bytes.count
        return events
    }

    static func head(_ uri: String, _ fields: [String], method: String = "GET", version: String = "HTTP/1.1") -> Event {
        .head(method: method, uri: uri, version: version, fields: fields)
    }

    @Test func simpleGet() {
        #expect(Self.parse("GET /v1/check?policy=api&key=k HTTP/1.1\r\nHost: sluice\r\n\r\n") == [
            Self.head("/v1/check?policy=api&key=k", ["Host: sluice"]), .end,
        ])
    }

    @Test func pipelinedRequestsWithBodies() {
        let text = "POST /v1/check HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /healthz HTTP/1.0\r\n\r\n"
            + "PUT /v1/policies/p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nTrailer: x\r\n\r\n"
        let expected: [Event] = [
            Self.head("/v1/check", ["Content-Length: 5"], method: "POST"), .body("hello"), .end,
            Self.head("/healthz", [], version: "HTTP/1.0"), .end,
            Self.head("/v1/policies/p", ["Transfer-Encoding: chunked"], method: "PUT"), .body("abcde"), .end,
        ]
        #expect(Self.parse(text) == expected)
        // However the stream is cut into reads, the parts are the same.
        for size in 1...12 { #expect(Self.parse(text, pieceSize: size) == expected, "reads of \(size) bytes") }
    }

    @Test func fieldValuesLoseSurroundingBlanksAndKeepInnerOnes() {
        #expect(Self.parse("GET / HTTP/1.1\r\nX-A:  a b\t \r\nX-Empty:\r\nX-Tab:\tv\r\n\r\n") == [
            Self.head("/", ["X-A: a b", "X-Empty: ", "X-Tab: v"]), .end,
        ])
    }

    @Test func emptyLinesBeforeARequestAreSkipped() {
        #expect(Self.parse("\r\n\r\nGET / HTTP/1.1\r\n\r\n", pieceSize: 1) == [Self.head("/", []), .end])
    }

    @Test func unknownMethodsAreTokensForTheAPIToRefuse() {
        #expect(Self.parse("BREW /pot HTTP/1.1\r\n\r\n") == [Self.head("/pot", [], method: "BREW"), .end])
    }

    @Test func zeroContentLengthIsAnEmptyBody() {
        #expect(Self.parse("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n") == [Self.head("/", ["Content-Length: 0"], method: "POST"), .end])
    }

    @Test func chunkedInAnyCaseWithExtensionsAndBlanks() {
        #expect(Self.parse("POST / HTTP/1.1\r\nTransfer-Encoding: CHUNKED\r\n\r\n1 ;a=b\r\nz\r\n2\t\r\nzz\r\n0\r\n\r\n") == [
            Self.head("/", ["Transfer-Encoding: CHUNKED"], method: "POST"), .body("zzz"), .end,
        ])
    }

    /// Everything after an Upgrade or CONNECT head is another protocol: the request ends, the rest is dropped.
    @Test(arguments: ["GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", "CONNECT a:1 HTTP/1.1\r\n\r\n"])
    func upgradeDropsWhatFollows(head: String) {
        let events = Self.parse(head + "GET /next HTTP/1.1\r\n\r\n")
        #expect(events.count == 2)
        #expect(events.last == .end)
    }

    /// Every malformed head, body or chunk gets its own precise error.
    @Test(arguments: [
        ("GARBAGE\r\n\r\n", HTTPRequestError.invalidMethod),
        (" GET / HTTP/1.1\r\n\r\n", .invalidMethod),
        ("G(T / HTTP/1.1\r\n\r\n", .invalidMethod),
        ("GET  / HTTP/1.1\r\n\r\n", .invalidTarget),
        ("GET /\0 HTTP/1.1\r\n\r\n", .invalidTarget),
        ("GET /\u{7F} HTTP/1.1\r\n\r\n", .invalidTarget),
        ("GET /a\rb HTTP/1.1\r\n\r\n", .invalidTarget),
        ("GET / HTTP/2.0\r\n\r\n", .invalidVersion),
        ("GET / HTTP/1.1 \r\n\r\n", .invalidVersion),
        ("GET / http/1.1\r\n\r\n", .invalidVersion),
        ("GET /\r\n\r\n", .invalidVersion),
        ("GET / HTTP/1.1\nHost: a\r\n\r\n", .bareLineFeed),
        ("GET / HTTP/1.1\r\nHost: a\n\n", .bareLineFeed),
        ("\nGET / HTTP/1.1\r\n\r\n", .bareLineFeed),
        ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", .invalidField),
        ("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", .invalidField),
        ("GET / HTTP/1.1\r\n: empty name\r\n\r\n", .invalidField),
        ("GET / HTTP/1.1\r\nNo-Colon\r\n\r\n", .invalidField),
        ("GET / HTTP/1.1\r\nX: a\u{1}b\r\n\r\n", .invalidField),
        ("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", .invalidField),
        ("GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", .invalidContentLength),
        ("GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", .invalidContentLength),
        ("GET / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\n", .invalidContentLength),
        ("GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", .invalidContentLength),
        ("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", .conflictingLength),
        ("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", .conflictingLength),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", .conflictingLength),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", .unsupportedTransferEncoding),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", .unsupportedTransferEncoding),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", .unsupportedTransferEncoding),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1 x\r\n", .invalidChunkSize),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", .unsupportedTransferEncoding),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", .invalidChunkSize),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", .invalidChunkSize),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n", .invalidChunkSize),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;a\u{0}\r\n", .invalidChunkSize),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\nx", .bareLineFeed),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxyz", .missingChunkEnd),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n", .invalidField),
    ])
    func malformedInputGetsItsError(text: String, error: HTTPRequestError) {
        let events = Self.parse(text)
        #expect(events.last == .error(error), "\(events)")
        // Cut into single bytes, the same error (at most the parts before it come earlier).
        #expect(Self.parse(text, pieceSize: 1).last == .error(error))
    }

    @Test func aHeadOverTheCapIsRefusedBeforeItEnds() {
        let long = "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: HTTPRequestParser.maximumHeadBytes)
        #expect(Self.parse(long) == [.error(.headTooLarge)])
        #expect(Self.parse(long, pieceSize: 4096) == [.error(.headTooLarge)])
        // Just under the cap is a request.
        let fits = "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: HTTPRequestParser.maximumHeadBytes - 25) + "\r\n\r\n"
        #expect(Self.parse(fits).last == .end)
    }

    @Test func trailersOverTheCapAreRefused() {
        let trailer = "T: " + String(repeating: "a", count: 1000) + "\r\n"
        let text = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + String(repeating: trailer, count: 100)
        #expect(Self.parse(text, pieceSize: 512).last == .error(.headTooLarge))
    }

    /// A head arriving a byte at a time is scanned once, not once per byte: a slow client costs linear work.
    @Test func incompleteHeadKeepsItsBytesAndNothingElse() throws {
        var parser = HTTPRequestParser()
        var buffer = ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a\r\n")
        #expect(try parser.next(&buffer) == nil)
        #expect(buffer.readableBytes == 25)
        buffer.writeString("\r\nGET")
        guard case .head = try parser.next(&buffer) else { Issue.record("no head"); return }
        guard case .end = try parser.next(&buffer) else { Issue.record("no end"); return }
        #expect(try parser.next(&buffer) == nil)
        #expect(String(buffer: buffer) == "GET")
    }

    /// After an error the parser takes nothing more: the framing is lost.
    @Test func afterAnErrorEverythingIsDropped() throws {
        var parser = HTTPRequestParser()
        var buffer = ByteBuffer(string: "BAD\r\n\r\n")
        #expect(throws: HTTPRequestError.invalidMethod) { try parser.next(&buffer) }
        buffer.writeString("GET / HTTP/1.1\r\n\r\n")
        #expect(try parser.next(&buffer) == nil)
        #expect(buffer.readableBytes == 0)
    }
}
