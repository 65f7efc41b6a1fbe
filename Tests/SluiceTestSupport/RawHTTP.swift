import Foundation

/// An HTTP/1.1 response as read off the wire.
public struct RawHTTPResponse: Sendable {
    public let status: Int
    /// Field names lowercased.
    public let headers: [String: String]
    public let body: String
}

/// Sends one request on a new connection (`Connection: close`) and reads the whole response.
public func rawHTTPRequest(port: Int, method: String = "GET", path: String, headers: [String: String] = [:], body: String = "") throws -> RawHTTPResponse {
    let connection = try RawConnection(port: port)
    var request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n"
    for (name, value) in headers { request += "\(name): \(value)\r\n" }
    connection.send(request + "\r\n" + body)
    let (text, _) = connection.readUntilClosed()
    guard let split = text.range(of: "\r\n\r\n") else { throw TestFailure("no HTTP response head in \(text.debugDescription)") }
    let lines = text[..<split.lowerBound].components(separatedBy: "\r\n")
    let statusParts = lines[0].split(separator: " ")
    guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw TestFailure("bad status line \(lines[0])") }
    var fields: [String: String] = [:]
    for line in lines.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return RawHTTPResponse(status: status, headers: fields, body: String(text[split.upperBound...]))
}

/// ``rawHTTPRequest(port:method:path:headers:body:)``, awaited.
public func rawHTTPRequest(port: Int, method: String = "GET", path: String, headers: [String: String] = [:], body: String = "") async throws
    -> RawHTTPResponse
{
    try await offPool { try rawHTTPRequest(port: port, method: method, path: path, headers: headers, body: body) }
}
