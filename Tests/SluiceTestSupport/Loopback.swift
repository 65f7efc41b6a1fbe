import Glibc
import Synchronization

/// A port nothing listens on now, from 10000-19999: below the kernel's ephemeral range (32768 and up), so a
/// server another test binds to port 0 cannot take it between this call and its user's bind; and each call of
/// this process gives another port (a counter from a per-process start), so two tests never get the same one.
public func freeLoopbackPort() throws -> Int {
    for _ in 0..<portRange.count {
        let port = portRange.lowerBound + nextPortOffset.add(1, ordering: .relaxed).newValue % portRange.count
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw TestFailure("socket() failed") }
        defer { close(descriptor) }
        var address = loopback(port: port)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        if bound { return port }
    }
    throw TestFailure("could not find a free port in \(portRange)")
}

private let portRange = 10_000..<20_000
private let nextPortOffset = Atomic<Int>(Int(getpid()) &* 7_919 % 10_000)

/// Whether something accepts connections on 127.0.0.1:`port` now.
public func canConnect(port: Int) -> Bool {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return false }
    defer { close(descriptor) }
    var address = loopback(port: port)
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    } == 0
}

func loopback(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return address
}

/// A blocking TCP client on raw sockets, for sending bytes no client library would. From a task, its reads are
/// awaited: they block a thread of their own, not one of the test pool's (``offPool(_:)``).
public final class RawConnection: @unchecked Sendable {
    // @unchecked: the descriptor never changes; one test drives each connection.
    private let descriptor: Int32

    /// Connects to 127.0.0.1:`port`; reads time out after 5 s.
    public init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw TestFailure("socket() failed") }
        var address = loopback(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(descriptor)
            throw TestFailure("connect() to port \(port) failed")
        }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(descriptor) }

    public func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return }  // the server may close first; what it sent is what the test checks
            offset += sent
        }
    }

    public func send(_ text: String) { send(Array(text.utf8)) }

    /// Ends the connection both ways, as a client that goes away does (the descriptor is closed at deinit).
    public func hangUp() { shutdown(descriptor, Int32(SHUT_RDWR)) }

    /// Sends line-protocol `commands` (CRLF-separated) to `port`, then `QUIT`, and returns every reply.
    public static func lineCommands(port: Int, _ commands: String) throws -> String {
        let connection = try RawConnection(port: port)
        connection.send(commands + "\r\nQUIT\r\n")
        return connection.readUntilClosed().text
    }

    /// Reads until the server closes the connection (or `limit` passes); returns what arrived and whether it closed.
    public func readUntilClosed(limit: Duration = .seconds(5)) -> (text: String, closed: Bool) {
        let (bytes, closed) = readBytesUntilClosed(limit: limit)
        return (String(decoding: bytes, as: UTF8.self), closed)
    }

    /// Reads until the server closes the connection (or `limit` passes); returns the bytes and whether it closed.
    public func readBytesUntilClosed(limit: Duration = .seconds(5)) -> (bytes: [UInt8], closed: Bool) {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let deadline = ContinuousClock.now + limit
        defer { setReceiveTimeout(.seconds(5)) }
        while ContinuousClock.now < deadline {
            setReceiveTimeout(max(deadline - ContinuousClock.now, .milliseconds(10)))
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count == 0 { return (received, true) }
            if count < 0, errno == EAGAIN || errno == EWOULDBLOCK { continue }  // the receive timeout: the deadline again
            if count < 0 { return (received, errno == ECONNRESET) }
            received.append(contentsOf: chunk[0..<count])
        }
        return (received, false)
    }

    /// Reads until what arrived satisfies `done` (or the server closes, or `limit` passes); returns what arrived.
    public func read(limit: Duration = .seconds(10), until done: (String) -> Bool) -> String {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let deadline = ContinuousClock.now + limit
        defer { setReceiveTimeout(.seconds(5)) }
        while ContinuousClock.now < deadline, !done(String(decoding: received, as: UTF8.self)) {
            setReceiveTimeout(max(deadline - ContinuousClock.now, .milliseconds(10)))
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count == 0 { break }
            if count < 0, errno == EAGAIN || errno == EWOULDBLOCK { continue }  // the receive timeout: the deadline again
            if count < 0 { break }
            received.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: received, as: UTF8.self)
    }

    private func setReceiveTimeout(_ limit: Duration) {
        let (seconds, attoseconds) = limit.components
        var timeout = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Reads until `expected` bytes have arrived (or 5 s pass).
    public func read(atLeast expected: Int) -> String {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while received.count < expected {
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            received.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: received, as: UTF8.self)
    }
}

extension RawConnection {
    /// ``lineCommands(port:_:)``, awaited.
    public static func lineCommands(port: Int, _ commands: String) async throws -> String {
        try await offPool { try lineCommands(port: port, commands) }
    }

    /// ``readUntilClosed(limit:)``, awaited.
    public func readUntilClosed(limit: Duration = .seconds(5)) async -> (text: String, closed: Bool) {
        await offPool { self.readUntilClosed(limit: limit) }
    }

    /// ``readBytesUntilClosed(limit:)``, awaited.
    public func readBytesUntilClosed(limit: Duration = .seconds(5)) async -> (bytes: [UInt8], closed: Bool) {
        await offPool { self.readBytesUntilClosed(limit: limit) }
    }

    /// ``read(limit:until:)``, awaited.
    public func read(limit: Duration = .seconds(10), until done: @escaping @Sendable (String) -> Bool) async -> String {
        await offPool { self.read(limit: limit, until: done) }
    }

    /// ``read(atLeast:)``, awaited.
    public func read(atLeast expected: Int) async -> String {
        await offPool { self.read(atLeast: expected) }
    }
}
