import Foundation
import SluiceTestSupport
import Testing

@testable import SluiceRLS

#if canImport(Glibc)
import Glibc
#endif

/// The gRPC listener against careless and hostile clients: over the connection cap, idle, speaking garbage,
/// breaking HTTP/2's rules, and cancelling calls. A bystander is served throughout.
@Suite(.serialized)
struct RLSHostileClientTests {
    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    /// An empty SETTINGS frame: what a client sends after the preface.
    static let settings: [UInt8] = [0, 0, 0, 0x04, 0x00, 0, 0, 0, 0]

    /// After the preface and SETTINGS, `frame`.
    static func afterHello(_ frame: [UInt8]) -> [UInt8] { preface + settings + frame }

    static let garbageCases: [(String, [UInt8])] = [
        ("HTTP/1.1", Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)),
        ("random bytes", (0..<512).map { (index: Int) -> UInt8 in UInt8(truncatingIfNeeded: index &* 7919 &+ 13) }),
        ("DATA on stream 0", afterHello([0, 0, 4, 0x00, 0x00, 0, 0, 0, 0, 1, 2, 3, 4])),
        ("a frame over the size limit", afterHello([0xFF, 0xFF, 0xFF, 0x00, 0x00, 0, 0, 0, 1])),
        ("HEADERS with a broken header block", afterHello([0, 0, 4, 0x01, 0x05, 0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF])),
        ("a WINDOW_UPDATE of zero", afterHello([0, 0, 4, 0x08, 0x00, 0, 0, 0, 0, 0, 0, 0, 0])),
        ("a half preface, then silence", Array(preface[0..<10])),
    ]

    /// `sluice serve` with a gRPC listener, an idle timeout of `idleTimeout` and at most `maxConnections` connections.
    /// Tests that do not watch the idle timeout use 3 s: a bystander's fresh connection must not be idle-closed while
    /// the test's task waits for a thread of the test pool, which other suites' blocking waits can hold (see `offPool`).
    static func start(maxConnections: Int = 2, idleTimeout: String = "3s") async throws -> RLSEndToEndTests.Running {
        try await RLSEndToEndTests.Running.start(
            configuration: { line, http, grpc in
                """
                listen: { line: "127.0.0.1:\(line)", http: "127.0.0.1:\(http)", grpc: "127.0.0.1:\(grpc)" }
                limits: { max_connections: \(maxConnections), idle_timeout: \(idleTimeout) }
                rls: { files: [ratelimit/d.yaml] }
                """
            },
            files: ["ratelimit/d.yaml": "domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unit: hour, requests_per_unit: 1000000 }\n"]
        )
    }

    /// One call a bystander makes: it must be answered.
    static func bystander(_ sluice: RLSEndToEndTests.Running) async throws {
        let answer = try await RLSEndToEndTests.call(port: sluice.ports.grpc, domain: "d", [[("k", "bystander")]])
        #expect(answer.overallCode == .ok)
    }

    /// An HTTP/2 connection that said hello and then nothing.
    static func silentClient(port: Int) throws -> RawConnection {
        let connection = try RawConnection(port: port)
        connection.send(preface + settings)
        return connection
    }

    @Test("Over limits.max_connections a gRPC connection is closed at once and counted; a bystander is served before and after")
    func connectionCap() async throws {
        let sluice = try await Self.start()
        let first = try Self.silentClient(port: sluice.ports.grpc)
        try await Self.bystander(sluice)  // the second connection, while the first is open
        // The bystander's connection counts until the server has read its close: on a loaded machine that came
        // after the next connection once, which was refused in its place (and the third then accepted).
        try await Task.sleep(for: .milliseconds(300))
        let second = try Self.silentClient(port: sluice.ports.grpc)
        try await Task.sleep(for: .milliseconds(100))
        // Timed on the reading thread, so a wait for the test pool cannot count: closed at once, not after the 3 s idle timeout.
        let third = try Self.silentClient(port: sluice.ports.grpc)
        let (closed, took) = await offPool {
            let started = ContinuousClock.now
            return (third.readUntilClosed().closed, ContinuousClock.now - started)
        }
        #expect(closed, "the third connection is closed")
        #expect(took < .seconds(1), "closed at once, not by the idle timeout: \(took)")
        second.hangUp()
        try await Task.sleep(for: .milliseconds(100))
        try await Self.bystander(sluice)
        let info = try await RawConnection.lineCommands(port: sluice.ports.line, "INFO")
        #expect(info.contains("rejected_connections:1"), "\(info)")
        _ = first
        #expect(try await sluice.stop() == 0)
    }

    @Test("A gRPC connection with no call open for limits.idle_timeout is told GOAWAY, and closed when it does not answer")
    func idleConnection() async throws {
        let sluice = try await Self.start(idleTimeout: "1s")
        let started = ContinuousClock.now
        let idle = try Self.silentClient(port: sluice.ports.grpc)
        let (bytes, closed) = await idle.readBytesUntilClosed(limit: .seconds(10))
        #expect(closed, "closed after the idle timeout and the grace time")
        #expect(ContinuousClock.now - started >= .milliseconds(900), "not before the idle timeout")
        #expect(Self.frameTypes(bytes).contains(0x07), "a GOAWAY came first")
        try await Self.bystander(sluice)
        #expect(try await sluice.stop() == 0)
    }

    @Test(
        "Garbage instead of HTTP/2, frames that break its rules and cancelled calls each end only their own connection or call",
        arguments: garbageCases
    )
    func garbage(name: String, bytes: [UInt8]) async throws {
        // No tight cap here: each cancelled call below is a connection of its own, still closing when the next starts.
        let sluice = try await Self.start(maxConnections: 1_000)
        let connection = try RawConnection(port: sluice.ports.grpc)
        connection.send(bytes)
        // Closed at once, or (the half preface) after the idle timeout and the grace time: 8 s.
        let (_, closed) = await connection.readUntilClosed(limit: .seconds(15))
        #expect(closed, "\(name): the connection is closed")
        try await Self.bystander(sluice)
        // Calls cancelled as soon as they start: each is abandoned (a reset stream) and nothing else is.
        for index in 0..<20 {
            let call = Task { try await RLSEndToEndTests.call(port: sluice.ports.grpc, domain: "d", [[("k", "cancelled-\(index)")]]) }
            if index.isMultiple(of: 2) { try await Task.sleep(for: .milliseconds(1)) }
            call.cancel()
            _ = await call.result
        }
        try await Self.bystander(sluice)
        #expect(try await sluice.stop() == 0, "\(sluice.server.output)")
    }

    /// The frame types in `bytes`, a run of HTTP/2 frames from the server.
    static func frameTypes(_ bytes: [UInt8]) -> [UInt8] {
        var types: [UInt8] = []
        var offset = 0
        while offset + 9 <= bytes.count {
            let length = Int(bytes[offset]) << 16 | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2])
            types.append(bytes[offset + 3])
            offset += 9 + length
        }
        return types
    }
}
