public import NIOCore
public import NIOHTTP1
import SluiceConfig
import SluiceCore

/// One HTTP response of the API: status, extra header fields and a body, encoded straight to bytes.
///
/// The server writes responses itself instead of going through `HTTPResponseEncoder`: the fields are
/// known, so there is no `HTTPHeaders` to build and no second pass over it.
public struct HTTPAPIResponse: Sendable, Equatable {
    /// A single decision, kept as it is and written straight to bytes.
    struct SingleDecision: Sendable {
        let decision: Decision
        let check: ResolvedCheck
        let now: Timestamp
    }

    /// The status.
    public var status: HTTPResponseStatus
    /// The body's media type.
    public var contentType: String
    private var extraHeaders: [(name: String, value: String)]
    private var text: String
    private var single: SingleDecision?

    /// Header fields besides `Content-Type`, `Content-Length`, `Cache-Control` and `Connection`.
    public var headers: [(name: String, value: String)] {
        (single.map { DecisionRendering.headers($0.decision, $0.check, now: $0.now) } ?? []) + extraHeaders
    }

    /// The body (JSON, problem JSON or Prometheus text).
    public var body: String { single.map { DecisionRendering.json($0.decision, $0.check) } ?? text }

    /// Creates a response.
    public init(status: HTTPResponseStatus, headers: [(name: String, value: String)] = [], body: String, contentType: String = "application/json") {
        self.status = status
        self.extraHeaders = headers
        self.text = body
        self.contentType = contentType
    }

    /// The response to one check: 200 or 429, the rate-limit fields and the decision's JSON.
    static func decision(_ decision: Decision, _ check: ResolvedCheck, now: Timestamp) -> HTTPAPIResponse {
        var response = HTTPAPIResponse(status: decision.isAllowed ? .ok : .tooManyRequests, body: "")
        response.single = SingleDecision(decision: decision, check: check, now: now)
        return response
    }

    /// Adds a header field.
    public mutating func addHeader(name: String, value: String) { extraHeaders.append((name, value)) }

    /// The value of header `name` (case-insensitive), for tests and logs.
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// An error response: `{"error":{"code":...,"message":...}}`.
    public static func error(_ status: HTTPResponseStatus, code: String, _ message: String) -> HTTPAPIResponse {
        HTTPAPIResponse(status: status, body: "{\"error\":{\"code\":\(JSONText.quoted(code)),\"message\":\(JSONText.quoted(message))}}")
    }

    /// Writes the whole response, head and body, to `buffer`.
    ///
    /// - Parameters:
    ///   - buffer: the connection's output.
    ///   - keepAlive: false adds `Connection: close`.
    ///   - includeBody: false for HEAD (`Content-Length` still states the body's size).
    public func write(to buffer: inout ByteBuffer, keepAlive: Bool, includeBody: Bool = true) {
        var scratch = ByteBuffer()
        write(to: &buffer, keepAlive: keepAlive, includeBody: includeBody, scratch: &scratch)
    }

    /// As ``write(to:keepAlive:includeBody:)``, rendering a decision's body in `scratch` (cleared first), so
    /// a connection that keeps one scratch buffer allocates nothing per response.
    func write(to buffer: inout ByteBuffer, keepAlive: Bool, includeBody: Bool, scratch: inout ByteBuffer) {
        scratch.clear()
        if let single {
            scratch.writeReserved(estimate: DecisionRendering.fieldsEstimate(single.check)) { out in
                out.append(ascii: UInt8(ascii: "{"))
                DecisionRendering.writeFields(single.decision, single.check, to: &out)
                out.append(ascii: UInt8(ascii: "}"))
            }
        } else {
            scratch.writeString(text)
        }
        let bodyBytes = scratch.readableBytes
        var estimate = 140 + contentType.utf8.count + (single.map { DecisionRendering.headersEstimate($0.check) } ?? 0)
        for (name, value) in extraHeaders { estimate += name.utf8.count + value.utf8.count + 4 }
        buffer.writeReserved(estimate: estimate) { out in
            out.append("HTTP/1.1 ")
            out.appendDecimal(Int64(status.code))
            out.append(ascii: UInt8(ascii: " "))
            out.append(status.reasonPhrase)
            if bodyBytes > 0 {  // an empty body (forward auth's 200) has no type
                out.append("\r\nContent-Type: ")
                out.append(contentType)
            }
            out.append("\r\nCache-Control: no-store\r\nContent-Length: ")
            out.appendDecimal(Int64(bodyBytes))
            out.append("\r\n")
            if let single { DecisionRendering.writeHeaders(single.decision, single.check, now: single.now, to: &out) }
            for (name, value) in extraHeaders {
                out.append(name)
                out.append(": ")
                out.append(value)
                out.append("\r\n")
            }
            if !keepAlive { out.append("Connection: close\r\n") }
            out.append("\r\n")
        }
        if includeBody { buffer.writeImmutableBuffer(scratch) }
    }

    public static func == (lhs: HTTPAPIResponse, rhs: HTTPAPIResponse) -> Bool {
        lhs.status == rhs.status && lhs.body == rhs.body && lhs.contentType == rhs.contentType
            && lhs.headers.map(\.name) == rhs.headers.map(\.name) && lhs.headers.map(\.value) == rhs.headers.map(\.value)
    }
}

/// Writing JSON text by hand: the API's bodies are small and of fixed shape.
enum JSONText {
    /// `text` as a JSON string literal, escaped (as the configuration writes YAML, so one escaping serves both).
    static func quoted(_ text: String) -> String { ConfigurationText.quoted(text) }
}
