import Foundation
import FuzzSupport
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import SluiceConfig
import SluiceCore
import SluiceServer

/// Two surfaces, chosen by the first byte (0xF0 and above: the parser):
///
/// The HTTP API's request handling, fed arbitrary requests: a method, a target (path and query string),
/// header lines and a body, taken from the input. Invariants: a client's request never gets a 5xx here (there
/// is no Redis to fail); a JSON response is valid JSON; no header name or value carries CR or LF (no response
/// splitting, whatever the request held); a decision's numbers agree in its body and its headers (remaining
/// within the limit, no wait when allowed).
///
/// Sluice's HTTP/1.1 request parser (``HTTPRequestParser``), fed the raw bytes of a connection. Invariants: the
/// parts are the same however the bytes are cut into reads (the second byte sets the cut); a body is never
/// longer than its framing allows; and every request that both this parser and NIO's llhttp decoder read
/// whole is read the same by both (method, target, version, fields, body): a framing disagreement shows as a
/// differing request. Where the two differ in what they refuse, nothing is required: llhttp is laxer in places
/// (bare LF) and stricter in others (unknown methods).
enum FuzzHTTP {
    static let configuration = """
        policies:
          api: { algorithm: token_bucket, limit: 5, period: 1s }
          login: { algorithm: fixed_window, limit: 2, period: 1m, overrides: { "vip": { limit: 10 }, "partner:*": { limit: 4 } } }
          shadow: { algorithm: sliding_window, limit: 3, period: 10s, mode: shadow }
        http: { max_body_bytes: 4096, max_checks: 8, max_batch: 8 }
        forward_auth:
          rules:
            - { path_prefix: /login, methods: [POST], limits: [{ policy: login, by: ip }] }
            - { path_prefix: /api/, limits: [{ policy: api, by: api_key }, { policy: shadow, by: "ip+header:X-User" }] }
        """
    static let clock = ManualClock()
    static let processor: HTTPAPIProcessor = {
        do {
            let parsed = try SluiceConfiguration.parse(yaml: configuration)
            let context = ServerContext(
                limiter: RateLimiter(store: BucketStore(maximumKeys: 4_096)),
                registry: PolicyRegistry(parsed.policySet, forwardAuth: ForwardAuthRules(parsed.forwardAuth, policies: parsed.policySet)),
                clock: clock, limits: parsed.limits, logger: Logger(label: "fuzz")
            )
            return HTTPAPIProcessor(context: context, limits: parsed.http)
        } catch {
            fatalError("the fuzz configuration is valid: \(error)")
        }
    }()
    static let methods: [HTTPMethod] = [.GET, .POST, .PUT, .DELETE, .HEAD, .PATCH, .OPTIONS, .RAW(value: "BREW")]
    static let address = try? SocketAddress(ipAddress: "192.0.2.7", port: 40_000)

    static func run(_ data: UnsafeRawBufferPointer) {
        if let first = data.first, first >= 0xF0 {
            return parser(Array(data.dropFirst()))
        }
        var input = FuzzInput(data)
        let method = methods[Int(input.byte()) % methods.count]
        // A request target as NIO's decoder hands it over: no controls, spaces or DEL.
        let uri = String(decoding: input.take(until: UInt8(ascii: "\n")).filter { $0 > 0x20 && $0 != 0x7F }, as: UTF8.self)
        var headers = HTTPHeaders()
        while !input.isEmpty {
            let line = input.take(until: UInt8(ascii: "\n"))
            guard !line.isEmpty else { break }
            let text = String(decoding: line, as: UTF8.self)
            let parts = text.split(separator: ":", maxSplits: 1)
            let name = String(parts.first ?? "")
            let value = parts.count > 1 ? String(parts[1].drop { $0 == " " }) : ""
            // What NIO's decoder can hand over: a token for a name, a value without CR, LF or NUL.
            guard !name.isEmpty, name.utf8.allSatisfy(Self.isTokenByte), !value.utf8.contains(where: { $0 == 13 || $0 == 10 || $0 == 0 }) else {
                continue
            }
            headers.add(name: name, value: value)
        }
        let rest = input.rest()
        let request = HTTPAPIRequest(
            method: method, uri: uri, headers: headers, body: rest.isEmpty ? nil : ByteBuffer(bytes: rest), remoteAddress: address
        )
        let response = processor.respond(to: request, now: clock.now())
        check(response)
    }

    /// A request read whole: head, body bytes.
    struct Request: Equatable {
        let method: String
        let uri: String
        let version: HTTPVersion
        let fields: [String]
        var body: [UInt8] = []

        /// `CONNECT` or `Upgrade`: the parsers stop at the head, body or not.
        var switchesProtocol: Bool { method == "CONNECT" || fields.contains { $0.lowercased().hasPrefix("upgrade:") } }
    }

    /// What a parser read from a stream: its whole requests, in order, and whether it stopped at an error.
    struct Reading: Equatable {
        var requests: [Request] = []
        var failed = false
        var current: Request?
        /// Drop a field value's trailing blanks, as RFC 9110 §5.5 asks: llhttp keeps them, Sluice does not.
        var trimsValues = false

        mutating func take(_ part: HTTPServerRequestPart) {
            switch part {
            case .head(let head):
                Fuzz.require(current == nil, "a head inside a request")
                let fields = head.headers.map { name, value in
                    "\(name): " + (trimsValues ? String(value.reversed().drop { $0 == " " || $0 == "\t" }.reversed()) : value)
                }
                current = Request(method: head.method.rawValue, uri: head.uri, version: head.version, fields: fields)
            case .body(let piece):
                Fuzz.require(current != nil, "a body outside a request")
                current?.body += piece.readableBytesView
            case .end:
                if let current { requests.append(current) }
                current = nil
            }
        }
    }

    static func parser(_ input: [UInt8]) {
        let pieceSize = 1 + Int(input.first ?? 0) % 64
        let bytes = Array(input.dropFirst())
        let whole = sluiceReading(bytes, pieceSize: max(1, bytes.count))
        let pieces = sluiceReading(bytes, pieceSize: pieceSize)
        Fuzz.require(whole.requests == pieces.requests && whole.failed == pieces.failed, "the same parts in reads of \(pieceSize) bytes")
        for request in whole.requests where !request.switchesProtocol {
            let length = request.fields.first { $0.lowercased().hasPrefix("content-length:") }
            if let length, let stated = Int(length.dropFirst("content-length:".count).drop { $0 == " " }) {
                Fuzz.require(request.body.count == stated, "a body of its Content-Length")
            }
        }
        let nio = nioReading(bytes)
        for (ours, theirs) in zip(whole.requests, nio.requests) {
            // What follows an Upgrade or CONNECT head is the next protocol's (its body too): compare heads.
            let switches = theirs.switchesProtocol
            Fuzz.require(
                switches ? (ours.method, ours.uri, ours.fields) == (theirs.method, theirs.uri, theirs.fields) : ours == theirs,
                "the same request as NIO's decoder: \(ours) against \(theirs)"
            )
            if switches { break }
        }
    }

    static func sluiceReading(_ bytes: [UInt8], pieceSize: Int) -> Reading {
        var parser = HTTPRequestParser()
        var pending = ByteBuffer()
        var reading = Reading()
        var offset = 0
        repeat {
            pending.writeBytes(bytes[offset..<min(offset + pieceSize, bytes.count)])
            offset += pieceSize
            do {
                while let part = try parser.next(&pending) { reading.take(part) }
            } catch {
                reading.failed = true
                return reading
            }
        } while offset < bytes.count
        return reading
    }

    static func nioReading(_ bytes: [UInt8]) -> Reading {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
        var reading = Reading(trimsValues: true)
        do {
            try channel.writeInbound(ByteBuffer(bytes: bytes))
        } catch {
            reading.failed = true
        }
        while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) { reading.take(part) }
        _ = try? channel.finish()
        return reading
    }

    static func isTokenByte(_ byte: UInt8) -> Bool {
        (0x21...0x7E).contains(byte) && !"()<>@,;:\\\"/[]?={}".utf8.contains(byte)
    }

    static func check(_ response: HTTPAPIResponse) {
        Fuzz.require(response.status.code < 500, "no 5xx for a client's request: \(response.status) \(response.body)")
        for (name, value) in response.headers {
            Fuzz.require(!name.contains(where: \.isNewline) && !value.contains(where: \.isNewline), "a header without CR or LF: \(name)")
        }
        guard response.contentType.hasSuffix("json"), !response.body.isEmpty else { return }  // an empty body goes untyped
        let object = try? JSONSerialization.jsonObject(with: Data(response.body.utf8), options: [.fragmentsAllowed])
        Fuzz.require(object != nil, "JSON is JSON: \(response.status) [\(response.body)]")
        guard let decision = object as? [String: Any], let allowed = decision["allowed"] as? Bool,
            let limit = decision["limit"] as? Int, let remaining = decision["remaining"] as? Int
        else { return }
        Fuzz.require(remaining >= 0 && remaining <= limit, "remaining \(remaining) within limit \(limit)")
        Fuzz.require(!allowed || (decision["retry_after_ms"] as? Int) == 0, "no wait when allowed: \(response.body)")
        Fuzz.require(allowed == (response.status == .ok), "200 exactly when allowed: \(response.status)")
        if let shown = response.header("X-RateLimit-Remaining").flatMap(Int.init), let cap = response.header("X-RateLimit-Limit").flatMap(Int.init) {
            Fuzz.require(shown <= cap, "X-RateLimit-Remaining within X-RateLimit-Limit")
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTP(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzHTTP.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@main
enum Main {
    static func main() { Fuzz.main(fuzzHTTP) }
}
