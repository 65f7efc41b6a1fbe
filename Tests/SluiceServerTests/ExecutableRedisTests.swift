import Foundation
import SluiceTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `sluice serve` with global policies against a real `redis-server`, both started on free loopback ports.
@Suite(.serialized, .requires("redis-server", "redis-cli"))
struct ExecutableRedisTests {
    static func command(_ port: Int, _ text: String) throws -> String { try RawConnection.lineCommands(port: port, text) }

    @Test func globalPoliciesThroughRedisSurviveItsRestartAndReturnLeasesOnTerm() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: ExecutableTests.binary), "build first: swift build (scripts/test does)")
        let redis = try RedisServerProcess()
        let linePort = try freeLoopbackPort()
        let httpPort = try freeLoopbackPort()
        let path = try ExecutableTests.temporaryFile(
            """
            listen: { line: "127.0.0.1:\(linePort)", http: "127.0.0.1:\(httpPort)" }
            redis: { url: "redis://127.0.0.1:\(redis.port)/0", timeout: 250ms }
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
        try await server.waitUntilListening(ports: [linePort, httpPort])

        // Leased and strict decisions, pipelined on one connection, answered in order. (The timeout, 250 ms, is
        // one no decision reaches while Redis runs, even on a machine that stalls for tens of milliseconds, and
        // short enough for the bound below once it is stopped.)
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

    @Test("AUTH from password_file and from the URL: the right password serves; a wrong one is down, says authentication failed, and no output shows a password")
    func authenticationNeverShowsThePassword() async throws {
        let password = "s3cret-\(UUID().uuidString.prefix(8))"
        let redis = try RedisServerProcess(arguments: ["--requirepass", password], password: password)
        defer { redis.stop() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-auth-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "\(password)\n".write(to: directory.appendingPathComponent("redis.pass"), atomically: true, encoding: .utf8)

        func serve(_ redisSection: String) async throws -> (ChildProcess, line: Int, http: Int) {
            let linePort = try freeLoopbackPort()
            let httpPort = try freeLoopbackPort()
            let path = directory.appendingPathComponent("sluice-\(linePort).yaml")
            try """
                listen: { line: "127.0.0.1:\(linePort)", http: "127.0.0.1:\(httpPort)" }
                redis: \(redisSection)
                policies:
                  api: { algorithm: fixed_window, limit: 1000, period: 1h, scope: global, on_store_failure: deny }

                """.write(to: path, atomically: true, encoding: .utf8)
            let server = try ChildProcess(executable: ExecutableTests.binary, arguments: ["serve", "--config", path.path], directory: directory)
            try await server.waitUntilListening(ports: [linePort, httpPort])
            return (server, linePort, httpPort)
        }
        func outputs(line: Int, http: Int) throws -> String {
            let info = try Self.command(line, "INFO")
            let readiness = try Self.command(http, "GET /readyz HTTP/1.1\r\nHost: s\r\nConnection: close\r\n")
            let metrics = try Self.command(http, "GET /metrics HTTP/1.1\r\nHost: s\r\nConnection: close\r\n")
            return info + readiness + metrics
        }

        // The right password, from a file: global decisions through Redis.
        let (good, goodLine, goodHTTP) = try await serve(#"{ url: "redis://127.0.0.1:\#(redis.port)/0", password_file: redis.pass, timeout: 1s }"#)
        defer { good.stop() }
        #expect(try Self.command(goodLine, "TAKE api user").hasPrefix("*5\r\n:1\r\n:1000\r\n:999\r\n"))
        #expect((Int(try redis.cli("HGET", "sluice:{api|user}:fw", "c")) ?? 0) >= 1, "the decision went through Redis")
        let healthy = try outputs(line: goodLine, http: goodHTTP)
        #expect(healthy.contains("redis_state:up") && healthy.contains("redis_authentication:ok"))

        // A wrong password in the URL: Redis is down, decisions follow on_store_failure (deny), and it is said.
        let (bad, badLine, badHTTP) = try await serve(#"{ url: "redis://:wrong-\#(password)@127.0.0.1:\#(redis.port)/0", timeout: 100ms }"#)
        defer { bad.stop() }
        let deadline = ContinuousClock.now + .seconds(5)
        while !(try Self.command(badLine, "INFO").contains("redis_authentication:failed")), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(try Self.command(badLine, "TAKE api user").hasPrefix("*5\r\n:0\r\n"), "denied by on_store_failure")
        let failing = try outputs(line: badLine, http: badHTTP)
        #expect(failing.contains("redis_state:down") && failing.contains("redis_authentication:failed"), "\(failing)")
        #expect(failing.contains(#""redis":"down","redis_error":"authentication failed""#), "\(failing)")
        #expect(failing.contains("sluice_redis_up 0.0\n") && failing.contains("sluice_redis_authentication_failed 1.0\n"))
        #expect(bad.output.contains("Redis authentication failed"), "the log says so: \(bad.output)")

        // No output of either server shows a password: not INFO, /readyz, /metrics, nor the logs.
        kill(good.processIdentifier, SIGTERM)
        kill(bad.processIdentifier, SIGTERM)
        _ = try await good.waitForExit()
        _ = try await bad.waitForExit()
        for text in [healthy, failing, good.output, bad.output] {
            #expect(!text.contains(password), "a password shows: \(text)")
        }
    }
}
