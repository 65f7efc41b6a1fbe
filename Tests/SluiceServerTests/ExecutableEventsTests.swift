import Foundation
import SluiceServer
import SluiceTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Events from the `sluice` executable, received by real peers: signed webhooks checked by a Python receiver
/// (Tests/Scripts/webhook_receiver.py, which verifies them as the README tells receivers to), the live stream
/// read over a socket, and `/metrics` checked by promtool.
@Suite(.serialized)
struct ExecutableEventsTests {
    /// One line of the receiver's log: one delivery attempt.
    struct Attempt: Decodable {
        struct Event: Decodable {
            let id: String
            let type: String
            let created_at: String
            let data: [String: JSONNumberOrString]
        }

        let path: String
        let id: String
        let type: String
        let attempt: Int
        let valid: Bool
        let fresh: Bool
        let header_id: String?
        let event: Event
        let status: Int
    }

    /// A JSON value of the payload's data: a number or a string.
    enum JSONNumberOrString: Decodable, Equatable {
        case number(Double)
        case string(String)

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Double.self) { self = .number(number) } else { self = .string(try container.decode(String.self)) }
        }
    }

    static func attempts(_ log: String) -> [Attempt] {
        ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
            try? JSONDecoder().decode(Attempt.self, from: Data($0.utf8))
        }
    }


    /// Opens `GET /v1/events` with `key`, optionally resuming after `lastEventID`.
    static func openStream(port: Int, key: String, lastEventID: Int? = nil) throws -> RawConnection {
        let connection = try RawConnection(port: port)
        var request = "GET /v1/events HTTP/1.1\r\nHost: s\r\nAuthorization: Bearer \(key)\r\nAccept: text/event-stream\r\n"
        if let lastEventID { request += "Last-Event-ID: \(lastEventID)\r\n" }
        connection.send(request + "\r\n")
        return connection
    }

    /// The (id, type, data) of each event in a stream's text (chunk framing lines are skipped).
    static func events(_ text: String) -> [(id: Int, type: String, data: String)] {
        var events: [(Int, String, String)] = []
        var id = 0
        var type = ""
        // "\r\n" (the chunks' framing) is one Character in Swift: make it "\n" before splitting lines.
        for line in text.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("id: ") { id = Int(line.dropFirst(4)) ?? 0 }
            if line.hasPrefix("event: ") { type = String(line.dropFirst(7)) }
            if line.hasPrefix("data: ") { events.append((id, type, String(line.dropFirst(6)))) }
        }
        return events
    }

    /// `sluice serve` with `configuration` after a `listen` line of two free ports, in `directory`; waits for both.
    static func serve(_ configuration: String, in directory: URL) async throws -> (server: ChildProcess, line: Int, http: Int) {
        let linePort = try freeLoopbackPort()
        let httpPort = try freeLoopbackPort()
        let path = try ExecutableTests.temporaryFile("listen: { line: \"127.0.0.1:\(linePort)\", http: \"127.0.0.1:\(httpPort)\" }\n" + configuration)
        let server = try ChildProcess(executable: ExecutableTests.binary, arguments: ["serve", "--config", path], directory: directory)
        try await server.waitUntilListening(ports: [linePort, httpPort])
        return (server, linePort, httpPort)
    }

    /// The webhook receiver on a free port, logging to `log`, failing the first `failures` attempts of each event.
    static func receiver(secret: String, log: String, failures: Int, in directory: URL) async throws -> (process: ChildProcess, port: Int) {
        let port = try freeLoopbackPort()
        let receiver = try ChildProcess(
            executable: External.venvPython, arguments: [packageRoot + "/Tests/Scripts/webhook_receiver.py", "\(port)", secret, log, "\(failures)"],
            directory: directory, logName: "webhook-receiver-\(port).log"
        )
        try await receiver.waitUntilListening(port: port)
        return (receiver, port)
    }

    @Test(.requiresPython())
    func webhooksAreSignedRetriedAndSentOncePerWindowAndTheStreamShowsDenialsStatsAndResumes() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: ExecutableTests.binary), "build first: swift build (scripts/test does)")
        let directory = try temporaryDirectory("events")
        let log = directory.appendingPathComponent("deliveries.jsonl").path
        let secret = "whsec_test_\(getpid())"
        let (receiver, receiverPort) = try await Self.receiver(secret: secret, log: log, failures: 2, in: directory)
        defer { receiver.stop() }

        let admin = AdminKeys.generate(test: true)
        let (server, linePort, httpPort) = try await Self.serve(
            """
            policies:
              tiny: { algorithm: fixed_window, limit: 5, period: 1h }
            limits: { idle_timeout: 1s }
            admin:
              api_keys:
                - { name: ops, sha256: "\(admin.sha256)" }
            events:
              threshold: 0.8
              webhooks:
                - url: "http://127.0.0.1:\(receiverPort)/hook?token=hidden"
                  secret: "\(secret)"
                  types: [limit.exceeded, limit.threshold]
                  retry: [300ms, 300ms]
                  timeout: 2s
                - url: "http://127.0.0.1:\(receiverPort)/fail"
                  secret: "\(secret)"
                  types: [limit.exceeded]
                  retry: [100ms]
                  timeout: 2s

            """,
            in: directory
        )
        defer { server.stop() }

        // Without the key: 401. With it: a stream.
        #expect(try ExecutableAdminTests.http(httpPort, "GET", "/v1/events", key: nil).status == 401)
        let stream = try Self.openStream(port: httpPort, key: admin.key)
        let opened = await stream.read { $0.contains(": sluice events") }
        #expect(opened.hasPrefix("HTTP/1.1 200 OK\r\n") && opened.contains("Content-Type: text/event-stream\r\n"), "\(opened)")

        // Five allowed (the fourth crosses 0.8 of the window), then thirty denied: one window of one key.
        let replies = try await RawConnection.lineCommands(port: linePort, Array(repeating: "TAKE tiny k1", count: 35).joined(separator: "\r\n"))
        #expect(replies.components(separatedBy: "*5\r\n:0\r\n").count - 1 == 30)

        // The stream: a deny for each denial, with an id each.
        let streamed = await stream.read { Self.events($0).filter { $0.type == "deny" }.count >= 30 }
        let denies = Self.events(streamed).filter { $0.type == "deny" }
        #expect(denies.count == 30)
        #expect(denies.first?.data.contains(#""policy":"tiny","key":"k1","limit":5,"remaining":0,"retry_after_ms":"#) == true, "\(denies.first?.data ?? "")")
        #expect(Set(denies.map(\.id)).count == 30)

        // The webhook: one limit.exceeded and one limit.threshold, each failed twice (500) then delivered, with
        // the same id and a valid fresh signature on every attempt.
        let hookPath = "/hook?token=hidden"
        let delivered = await eventually {
            let attempts = Self.attempts(log).filter { $0.path == hookPath }
            return attempts.filter { $0.status == 204 }.count == 2
        }
        #expect(delivered, "deliveries: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "none")")
        let hook = Self.attempts(log).filter { $0.path == hookPath }
        for type in ["limit.exceeded", "limit.threshold"] {
            let ofType = hook.filter { $0.type == type }
            #expect(ofType.map(\.attempt) == [1, 2, 3], "\(type): \(ofType.map(\.attempt))")
            #expect(Set(ofType.map(\.id)).count == 1, "one id on every retry")
            #expect(ofType.allSatisfy { $0.valid && $0.fresh && $0.header_id == $0.id && $0.id.hasPrefix("evt_") })
            let event = try #require(ofType.first?.event)
            #expect(event.data["policy"] == .string("tiny") && event.data["key"] == .string("k1") && event.data["limit"] == .number(5))
            #expect(event.created_at.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"#, options: .regularExpression) != nil)
        }
        #expect(hook.first { $0.type == "limit.threshold" }?.event.data["remaining"] == .number(1))
        #expect(hook.first { $0.type == "limit.exceeded" }?.event.data["remaining"] == .number(0))

        // The endpoint that always fails: two attempts, then failing, said on the stream and in the metrics.
        // (It may have come in the same read as the denials above: a read keeps everything it received.)
        let failing = streamed.contains("event: webhook.failing") ? streamed : await stream.read { $0.contains("event: webhook.failing") }
        #expect(failing.contains(#"data: {"url":"http://127.0.0.1:\#(receiverPort)/fail"}"#), "\(failing)")
        #expect(Self.attempts(log).filter { $0.path == "/fail" }.count == 2)

        // More denials in the same window send nothing more.
        _ = try await RawConnection.lineCommands(port: linePort, "TAKE tiny k1\r\nTAKE tiny k1")
        try await Task.sleep(for: .milliseconds(800))
        #expect(Self.attempts(log).filter { $0.path == hookPath }.count == 6)
        #expect(Self.attempts(log).filter { $0.path == "/fail" }.count == 2, "a failing endpoint's queue is dropped")

        // A stats event within 5 s, counting the decisions since the last one. (By now the stream has outlived
        // limits.idle_timeout, 1 s: it reads nothing by design, and is not closed as idle.)
        let stats = await stream.read(limit: .seconds(8)) { $0.contains("event: stats") }
        #expect(Self.events(stats).contains { $0.type == "stats" && $0.data.contains(#""redis":null"#) }, "\(stats)")

        // Resuming after the second denial's id starts with the third.
        let resumed = try Self.openStream(port: httpPort, key: admin.key, lastEventID: denies[1].id)
        let replay = await resumed.read { Self.events($0).count >= 2 }
        #expect(Self.events(replay).first?.id == denies[2].id, "\(replay)")
        #expect(Self.events(replay).dropFirst().first?.id == denies[3].id)

        // The metrics say the same.
        let metrics = try ExecutableAdminTests.http(httpPort, "GET", "/metrics", key: nil).text
        let shownHook = "http://127.0.0.1:\(receiverPort)/hook"  // the query (it may hold a token) is never shown
        #expect(metrics.contains(#"sluice_webhook_deliveries_total{url="\#(shownHook)",result="delivered"} 2"#), "\(metrics)")
        #expect(metrics.contains(#"sluice_webhook_deliveries_total{url="\#(shownHook)",result="failed_attempt"} 4"#))
        #expect(metrics.contains(#"sluice_webhook_failing{url="http://127.0.0.1:\#(receiverPort)/fail"} 1.0"#))
        #expect(metrics.contains(#"sluice_webhook_failing{url="\#(shownHook)"} 0.0"#))
        #expect(metrics.contains("sluice_event_subscribers 2.0"))
        #expect(metrics.contains(#"sluice_policy_decisions_total{policy="tiny",outcome="denied"} 32"#))
        #expect((Int(metrics.components(separatedBy: "sluice_decision_duration_seconds_count{server=\"line\"} ").dropFirst().first?.prefix { $0.isNumber } ?? "") ?? 0) >= 1)
        #expect(!metrics.contains("token=hidden") && !server.output.contains("token=hidden") && !server.output.contains(secret))
        // A subscriber that goes away is cleaned up.
        resumed.hangUp()
        let one = await eventually {
            ((try? ExecutableAdminTests.http(httpPort, "GET", "/metrics", key: nil).text) ?? "").contains("sluice_event_subscribers 1.0")
        }
        #expect(one, "the stream that hung up is no longer counted")

        // Shutdown ends the streams cleanly (the last chunk) and exits.
        kill(server.processIdentifier, SIGTERM)
        let ended = await stream.read { $0.hasSuffix("0\r\n\r\n") }
        #expect(ended.hasSuffix("0\r\n\r\n"))
        #expect(try await server.waitForExit() == 0)
    }

    @Test(.requires("redis-server", "redis-cli"), .requiresPython())
    func redisGoingDownAndComingBackReachesTheStreamAndTheWebhook() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: ExecutableTests.binary), "build first: swift build (scripts/test does)")
        let directory = try temporaryDirectory("store-events")
        let log = directory.appendingPathComponent("deliveries.jsonl").path
        let (receiver, receiverPort) = try await Self.receiver(secret: "whsec_s", log: log, failures: 0, in: directory)
        defer { receiver.stop() }
        let redis = try RedisServerProcess()
        defer { redis.stop() }
        let admin = AdminKeys.generate()
        let (server, linePort, httpPort) = try await Self.serve(
            """
            redis: { url: "redis://127.0.0.1:\(redis.port)/0", timeout: 50ms }
            policies:
              api: { algorithm: fixed_window, limit: 1000, period: 1h, scope: global }
            admin:
              api_keys: [{ name: ops, sha256: "\(admin.sha256)" }]
            events:
              webhooks:
                - { url: "http://127.0.0.1:\(receiverPort)/store", secret: whsec_s, types: [store.down, store.up], retry: [200ms] }

            """,
            in: directory
        )
        defer { server.stop() }
        _ = try await RawConnection.lineCommands(port: linePort, "TAKE api a")
        let stream = try Self.openStream(port: httpPort, key: admin.key)
        _ = await stream.read { $0.contains(": sluice events") }

        // Redis dies: decisions go on (on_store_failure), and the stream and the webhook are told.
        redis.kill()
        var down = ""
        for _ in 0..<20 where !down.contains("event: store.down") {
            _ = try await RawConnection.lineCommands(port: linePort, "TAKE api a")
            await down += stream.read(limit: .milliseconds(300)) { $0.contains("event: store.down") }
        }
        #expect(down.contains(#"data: {"store":"redis","endpoint":"#), "\(down)")
        // It comes back on its port: store.up.
        try redis.start()
        var up = ""
        for _ in 0..<40 where !up.contains("event: store.up") {
            _ = try await RawConnection.lineCommands(port: linePort, "TAKE api a")
            await up += stream.read(limit: .milliseconds(300)) { $0.contains("event: store.up") }
        }
        #expect(up.contains("event: store.up"), "\(up)")
        let delivered = await eventually { Self.attempts(log).map(\.type) == ["store.down", "store.up"] }
        #expect(delivered, "\(Self.attempts(log).map(\.type))")
        #expect(Self.attempts(log).allSatisfy { $0.valid && $0.fresh })
    }

    @Test(.requires("promtool"))
    func metricsPassPromtool() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: ExecutableTests.binary), "build first: swift build (scripts/test does)")
        let directory = try temporaryDirectory("promtool")
        let deadPort = try freeLoopbackPort()
        let (server, linePort, httpPort) = try await Self.serve(
            """
            policies:
              api: { algorithm: token_bucket, limit: 2, period: 1s }
              web.v2:read-1: { algorithm: fixed_window, limit: 1, period: 1m }
            events:
              webhooks:
                - { url: "http://127.0.0.1:\(deadPort)/x", secret: s, retry: [], timeout: 1s }

            """,
            in: directory
        )
        defer { server.stop() }
        _ = try await RawConnection.lineCommands(port: linePort, "TAKE api a\r\nTAKE api a\r\nTAKE api a\r\nTHROTTLE k 1 1 60")
        _ = try ExecutableAdminTests.http(httpPort, "GET", "/v1/check?policy=web.v2:read-1&key=b", key: nil)
        try await Task.sleep(for: .milliseconds(300))  // the webhook's one attempt fails
        let response = try ExecutableAdminTests.http(httpPort, "GET", "/metrics", key: nil).text
        let body = try #require(response.range(of: "\r\n\r\n").map { String(response[$0.upperBound...]) })
        #expect(body.contains(#"sluice_policy_decisions_total{policy="web.v2:read-1",outcome="allowed"} 1"#), "\(body)")
        let checked = try await runProgram(["promtool", "check", "metrics"], input: body)
        #expect(checked.status == 0, "promtool: \(checked.output)")
    }
}
