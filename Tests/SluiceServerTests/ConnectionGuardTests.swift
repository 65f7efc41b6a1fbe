import Foundation
import SluiceConfig
import SluiceServer
import SluiceTestSupport
import Testing

/// Careless and hostile clients on real sockets: too many connections, silent ones, and HTTP requests sent a
/// byte at a time. Each test keeps a bystander client served throughout.
@Suite(.serialized)
struct ConnectionGuardTests {
    static func ping(_ connection: RawConnection) -> String {
        connection.send("PING\r\n")
        return connection.read(limit: .seconds(5)) { $0.hasSuffix("\r\n") }
    }

    @Test func aLineConnectionOverTheCapIsToldAndClosedWhileOthersAreServed() async throws {
        let server = try await RunningLineServer.start(limits: SluiceConfiguration.Limits(maxConnections: 2))
        let first = try RawConnection(port: server.port)
        #expect(Self.ping(first) == "+PONG\r\n")
        do {
            let second = try RawConnection(port: server.port)
            #expect(Self.ping(second) == "+PONG\r\n")
            let third = try RawConnection(port: server.port)
            let refused = await third.readUntilClosed()
            #expect(refused.text == "-ERR max number of clients reached\r\n" && refused.closed, "\(refused)")
            #expect(Self.ping(first) == "+PONG\r\n", "the bystander is served")
        }
        // The second closed: a new connection fits again (once the server has seen the close).
        var answered = ""
        for _ in 0..<50 where answered != "+PONG\r\n" {
            try await Task.sleep(for: .milliseconds(20))
            answered = Self.ping(try RawConnection(port: server.port))
        }
        #expect(answered == "+PONG\r\n")
        #expect(server.context.statistics.snapshot().connectionsRefused == 1)
        try await server.stop()
    }

    @Test func aSilentConnectionIsClosedAfterTheIdleTimeoutAndAnActiveOneIsNot() async throws {
        let server = try await RunningLineServer.start(limits: SluiceConfiguration.Limits(idleTimeoutNanoseconds: 500_000_000))
        let silent = try RawConnection(port: server.port)
        let active = try RawConnection(port: server.port)
        // The active one asks without pause for three idle timeouts (no sleeps: a busy machine may oversleep), then
        // sees the silent one closed and asks once more: all on a thread of its own, which a test pool starved
        // by other tests cannot hold up past the idle timeout between two questions.
        let (answers, asked, closed, last, info) = try await offPool {
            let started = ContinuousClock.now
            var answers = 0
            while ContinuousClock.now - started < .milliseconds(1_500) {
                if Self.ping(active) == "+PONG\r\n" { answers += 1 } else { break }
            }
            let asked = ContinuousClock.now - started
            let closed = silent.readUntilClosed(limit: .milliseconds(100))
            return (answers, asked, closed, Self.ping(active), try RawConnection.lineCommands(port: server.port, "INFO"))
        }
        #expect(answers > 10 && asked >= .milliseconds(1_500), "the active connection was never idle")
        #expect(closed.closed && closed.text.isEmpty)
        #expect(last == "+PONG\r\n")
        #expect(info.contains("idle_closed_connections:1\r\n"), "INFO shows it")
        try await server.stop()
    }

    static let yaml = """
        policies:
          api: { algorithm: token_bucket, limit: 100, period: 1s }
        limits: { request_timeout: 300ms, max_connections: 3 }
        """

    @Test func anHTTPRequestSentAByteAtATimeGets408WhileABystanderIsServed() async throws {
        let server = try await RunningSluiceHTTP.start(yaml: Self.yaml)
        let slow = try RawConnection(port: server.port)
        let bystander = try RawConnection(port: server.port)
        let started = ContinuousClock.now
        var answered = 0
        for byte in "GET /v1/check?policy=api&key=slow HTTP/1.1\r\nHost: s\r\n".utf8.prefix(8) {
            slow.send([byte])
            bystander.send("GET /v1/check?policy=api&key=b HTTP/1.1\r\nHost: s\r\n\r\n")
            if await bystander.read(limit: .seconds(2), until: { $0.contains("\r\n\r\n") && $0.hasSuffix("}") }).hasPrefix("HTTP/1.1 200 OK") { answered += 1 }
            try await Task.sleep(for: .milliseconds(100))
        }
        let timedOut = await slow.readUntilClosed()
        #expect(timedOut.text.hasPrefix("HTTP/1.1 408 Request Timeout\r\n") && timedOut.text.contains(#""code":"request_timeout""#), "\(timedOut)")
        #expect(timedOut.closed)
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(answered == 8)
        // A kept-alive connection that finished its request is not timed out between requests.
        try await Task.sleep(for: .milliseconds(500))
        bystander.send("GET /healthz HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n")
        #expect(await bystander.readUntilClosed().text.hasPrefix("HTTP/1.1 200 OK"))
        try await server.stop()
    }

    @Test func anHTTPConnectionOverTheCapGets503() async throws {
        let server = try await RunningSluiceHTTP.start(yaml: Self.yaml)
        let open = try (0..<3).map { _ in try RawConnection(port: server.port) }
        for connection in open {
            connection.send("GET /healthz HTTP/1.1\r\nHost: s\r\n\r\n")
            #expect(await connection.read { $0.hasSuffix("}") }.hasPrefix("HTTP/1.1 200 OK"))
        }
        let refused = try RawConnection(port: server.port)
        refused.send("GET /healthz HTTP/1.1\r\nHost: s\r\n\r\n")
        let answer = await refused.readUntilClosed()
        #expect(answer.text.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n") && answer.text.contains("Retry-After: 1\r\n"), "\(answer)")
        #expect(answer.text.contains(#""code":"too_many_connections""#) && answer.closed)
        open[0].send("GET /healthz HTTP/1.1\r\nHost: s\r\n\r\n")
        #expect(await open[0].read { $0.hasSuffix("}") }.hasPrefix("HTTP/1.1 200 OK"), "those already open are served")
        try await server.stop()
    }
}
