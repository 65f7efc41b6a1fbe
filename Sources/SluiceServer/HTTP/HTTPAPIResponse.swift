public import NIOCore
public import NIOHTTP1

/// One HTTP response of the API: status, extra header fields and a body, encoded straight to bytes.
///
/// The server writes responses itself instead of going through `HTTPResponseEncoder`: the fields are
/// known, so there is no `HTTPHeaders` to build and no second pass over it.
public struct HTTPAPIResponse: Sendable, Equatable {
    /// The status.
    public var status: HTTPResponseStatus
    /// Header fields besides `Content-Type`, `Content-Length`, `Cache-Control` and `Connection`.
    public var headers: [(name: String, value: String)]
    /// The body (JSON, problem JSON or Prometheus text).
    public var body: String
    /// The body's media type.
    public var contentType: String

    /// Creates a response.
    public init(status: HTTPResponseStatus, headers: [(name: String, value: String)] = [], body: String, contentType: String = "application/json") {
        self.status = status
        self.headers = headers
        self.body = body
        self.contentType = contentType
    }

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
    public func write(to buffer: inout ByteBuffer, keepAlive: Bool) {
        buffer.writeStaticString("HTTP/1.1 ")
        buffer.writeDecimal(Int64(status.code))
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(status.reasonPhrase)
        buffer.writeStaticString("\r\nContent-Type: ")
        buffer.writeString(contentType)
        buffer.writeStaticString("\r\nCache-Control: no-store\r\nContent-Length: ")
        buffer.writeDecimal(Int64(body.utf8.count))
        buffer.writeStaticString("\r\n")
        for (name, value) in headers {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        if !keepAlive { buffer.writeStaticString("Connection: close\r\n") }
        buffer.writeStaticString("\r\n")
        buffer.writeString(body)
    }

    public static func == (lhs: HTTPAPIResponse, rhs: HTTPAPIResponse) -> Bool {
        lhs.status == rhs.status && lhs.body == rhs.body && lhs.contentType == rhs.contentType
            && lhs.headers.map(\.name) == rhs.headers.map(\.name) && lhs.headers.map(\.value) == rhs.headers.map(\.value)
    }
}

/// Writing JSON text by hand: the API's bodies are small and of fixed shape.
enum JSONText {
    /// `text` as a JSON string literal, escaped.
    static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
