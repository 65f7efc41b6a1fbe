import Foundation
import SluiceTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `sluice serve` with global policies against a real `redis-server`, both started on free loopback ports.
@Suite(.serialized, .requires("redis-server", "redis-cli"))
struct ExecutableRedisTests {
    static func command(_ port: Int, _ text: String) throws -> String {
        let connection = try RawConnection(port: port)
        connection.send(text + "\r\nQUIT\r\n")
        return connection.readUntilClosed().text
    }

    @Test func globalPoliciesThroughRedisSurviveItsRestartAndReturnLeasesOnTerm() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: ExecutableTests.binary), "build first: swift build (scripts/test does)")
        let redis = try RedisServerProcess()
        let linePort = try freeLoopbackPort()
        let httpPort = try freeLoopbackPort()
        let path = try ExecutableTests.temporaryFile(
            """
            listen: { line: "127.0.0.1:\(linePort)", http: "127.0.0.1:\(httpPort)" }
            redis: { url: "redis://127.0.0.1:\(redis.port)/0", timeout: 50ms }
            policies:
              api:    { algorithm: fixed_window,   limit: 1000, period: 1h, scope: global, on_store_failure: deny }
              login:  { algorithm: sliding_window, limit: 3,    period: 1h, scope: global, sync: strict }
              local:  { algorithm: token_bucket,   limit: 10,   period: 1s }
            forward_auth:
              rules:
                - { path_prefix: /login, methods: [POST], limits: [{ policy: local, by: ip }, { policy: login, by: ip }] }

            """
        )
        let directory = URL(fileURLWithPath: FileManager.default.temporaryDirectory.path)
        let server = try ChildProcess(executable: ExecutableTests.binary, arguments: ["serve", "--config", path], directory: directory)
        defer { server.stop() }
        try await server.waitUntilListening(port: linePort)
        try await server.waitUntilListening(port: httpPort)

        // Leased and strict decisions, pipelined on one connection, answered in order.
        let replies = try Self.command(linePort, "TAKE api user\r\nTAKE login user\r\nPING\r\nMTAKE api user 1 local user 1\r\nINFO")
        #expect(replies.hasPrefix("*5\r\n:1\r\n:1000\r\n:999\r\n"), "\(replies)")
        #expect(replies.contains("*5\r\n:1\r\n:3\r\n:2\r\n"), "\(replies)")
        #expect(replies.contains("+PONG\r\n*3\r\n:1\r\n*5\r\n:1\r\n:1000\r\n:998\r\n"), "\(replies)")
        #expect(replies.contains("redis_state:up"))
        #expect(try redis.cli("HGET", "sluice:{login|user}:sw", "c") == "1")
        // HTTP, the same policies.
        let http = try Self.command(httpPort, "GET /v1/check?policy=login&key=user HTTP/1.1\r\nHost: s\r\n\r\nGET /readyz HTTP/1.1\r\nHost: s\r\nConnection: close\r\n")
        #expect(http.hasPrefix("HTTP/1.1 200 OK"), "\(http)")
        #expect(http.contains("X-RateLimit-Remaining: 1"))
        #expect(http.contains(#""redis":"up""#))
        // Forward auth: a global strict policy and a local one in one rule; the fourth POST /login is refused.
        var statuses: [String] = []
        for _ in 0..<4 {
            let answer = try Self.command(
                httpPort,
                "GET /v1/forward-auth HTTP/1.1\r\nHost: s\r\nX-Forwarded-Method: POST\r\nX-Forwarded-Uri: /login\r\nConnection: close\r\n"
            )
            statuses.append(String(answer.prefix(12)))
        }
        #expect(statuses == ["HTTP/1.1 200", "HTTP/1.1 200", "HTTP/1.1 200", "HTTP/1.1 429"], "\(statuses)")

        // Redis goes away: every decision is still answered, by on_store_failure, within 500 ms.
        redis.stop()
        var answers: [String] = []
        var slowest = Duration.zero
        for index in 0..<20 {
            let started = ContinuousClock.now
            answers.append(try Self.command(linePort, "TAKE api fresh:\(index)"))
            slowest = max(slowest, ContinuousClock.now - started)
        }
        #expect(slowest < .milliseconds(500), "slowest \(slowest)")
        #expect(answers.allSatisfy { $0.hasPrefix("*5\r\n:0\r\n") }, "api denies while Redis is down: \(answers.first ?? "")")
        #expect(try Self.command(linePort, "INFO").contains("redis_state:down"))

        // Back on the same port: global again within 5 s.
        try redis.start()
        let restarted = ContinuousClock.now
        while !(try Self.command(linePort, "INFO").contains("redis_state:up")), ContinuousClock.now - restarted < .seconds(5) {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(ContinuousClock.now - restarted < .seconds(5))
        #expect(try Self.command(linePort, "TAKE api after").hasPrefix("*5\r\n:1\r\n:1000\r\n:999\r\n"))
        let leased = Int(try redis.cli("HGET", "sluice:{api|after}:fw", "c")) ?? 0
        #expect(leased > 1, "a lease larger than one decision was taken")

        // SIGTERM: the unused lease goes back before exit.
        kill(server.processIdentifier, SIGTERM)
        #expect(try await server.waitForExit() == 0, "\(server.output)")
        #expect(try redis.cli("HGET", "sluice:{api|after}:fw", "c") == "1")
        redis.stop()
    }
}
