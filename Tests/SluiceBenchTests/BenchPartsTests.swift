import Foundation
import Histogram
import NIOCore
import SluiceBench
import Testing

/// The load generator's parts without a network: plans, requests on the wire, replies read back, reports.
@Suite struct BenchPartsTests {
    @Test("--target: line, http (check or forward auth) and grpc URLs; anything else is refused with the reason")
    func targets() throws {
        #expect(try BenchPlan.Target(parsing: "line://127.0.0.1:7379") == .line(host: "127.0.0.1", port: 7379))
        #expect(try BenchPlan.Target(parsing: "http://127.0.0.1:7380") == .http(host: "127.0.0.1", port: 7380, forwardAuth: false))
        #expect(try BenchPlan.Target(parsing: "http://127.0.0.1:7380/v1/check") == .http(host: "127.0.0.1", port: 7380, forwardAuth: false))
        #expect(try BenchPlan.Target(parsing: "http://[::1]:7380/v1/forward-auth") == .http(host: "::1", port: 7380, forwardAuth: true))
        #expect(try BenchPlan.Target(parsing: "grpc://localhost:8081") == .grpc(host: "localhost", port: 8081))
        #expect(try BenchPlan.Target(parsing: "http://[::1]:7380/v1/forward-auth").description == "http://[::1]:7380/v1/forward-auth")
        for bad in ["127.0.0.1:7379", "redis://h:1", "line://h", "line://h:0", "line://h:70000", "line://:7379", "http://h:1/v1/other", "line://h:1/x"] {
            #expect(throws: BenchPlanError.self, "\(bad)") { try BenchPlan.Target(parsing: bad) }
        }
    }

    @Test("--distribution and the plan's limits")
    func planValidation() throws {
        #expect(try BenchPlan.Distribution(parsing: "uniform") == .uniform)
        #expect(try BenchPlan.Distribution(parsing: "zipf") == .zipf(exponent: 1))
        #expect(try BenchPlan.Distribution(parsing: "zipf:0.99") == .zipf(exponent: 0.99))
        for bad in ["zipf:0", "zipf:-1", "zipf:x", "normal", ""] {
            #expect(throws: BenchPlanError.self, "\(bad)") { try BenchPlan.Distribution(parsing: bad) }
        }
        var plan = BenchPlan(target: .line(host: "127.0.0.1", port: 1))
        try plan.validate()
        for change in [
            { (plan: inout BenchPlan) in plan.connections = 0 }, { $0.pipeline = 0 }, { $0.length = .requests(0) },
            { $0.rate = 0 }, { $0.keys = 0 }, { $0.cost = 0 }, { $0.cost = -1 }, { $0.threads = 0 }, { $0.policies = [] },
            { $0.policies = ["a b"] }, { $0.keyPrefix = "x&y" }, { $0.policies = ["a", "b"] },
        ] {
            var bad = plan
            change(&bad)
            #expect(throws: BenchPlanError.self) { try bad.validate() }
        }
        plan.policies = ["a", "b"]
        plan.command = .mtake
        try plan.validate()
    }

    static func written(_ plan: BenchPlan, key: Int) -> String {
        var buffer = ByteBufferAllocator().buffer(capacity: 0)
        RequestTemplate(plan).write(key: key, into: &buffer)
        return String(buffer: buffer)
    }

    @Test("requests on the wire: RESP arrays for TAKE, THROTTLE and MTAKE; HTTP GETs for /v1/check and forward auth")
    func requests() {
        var plan = BenchPlan(target: .line(host: "127.0.0.1", port: 1))
        plan.cost = 3
        #expect(Self.written(plan, key: 0) == "*4\r\n$4\r\nTAKE\r\n$5\r\nbench\r\n$7\r\nbench:0\r\n$1\r\n3\r\n")
        #expect(Self.written(plan, key: 1_234_567) == "*4\r\n$4\r\nTAKE\r\n$5\r\nbench\r\n$13\r\nbench:1234567\r\n$1\r\n3\r\n")
        plan.command = .throttle
        plan.throttleLimit = 10
        plan.throttlePeriod = "1m"
        #expect(Self.written(plan, key: 42) == "*5\r\n$8\r\nTHROTTLE\r\n$8\r\nbench:42\r\n$2\r\n10\r\n$2\r\n1m\r\n$1\r\n3\r\n")
        plan.command = .mtake
        plan.policies = ["a", "bb"]
        plan.keyPrefix = "k"
        #expect(Self.written(plan, key: 7) == "*7\r\n$5\r\nMTAKE\r\n$1\r\na\r\n$2\r\nk7\r\n$1\r\n3\r\n$2\r\nbb\r\n$2\r\nk7\r\n$1\r\n3\r\n")

        var http = BenchPlan(target: .http(host: "127.0.0.1", port: 7380, forwardAuth: false))
        #expect(Self.written(http, key: 9) == "GET /v1/check?policy=bench&key=bench:9&cost=1 HTTP/1.1\r\nHost: 127.0.0.1:7380\r\n\r\n")
        http.target = .http(host: "::1", port: 7380, forwardAuth: true)
        #expect(
            Self.written(http, key: 0x01_02_03)
                == "GET /v1/forward-auth HTTP/1.1\r\nHost: [::1]:7380\r\nX-Forwarded-Method: GET\r\nX-Forwarded-Uri: /\r\n"
                + "X-Forwarded-For: 10.1.2.3\r\nX-API-Key: bench:66051\r\n\r\n"
        )
    }

    static func resp(_ text: String) throws -> (length: Int, outcome: ReplyOutcome)? {
        try Array(text.utf8).withUnsafeBytes { bytes in try ReplyScanner.resp(bytes) }
    }

    static func http(_ text: String) throws -> (length: Int, status: Int, closes: Bool)? {
        try Array(text.utf8).withUnsafeBytes { bytes in try ReplyScanner.http(bytes) }
    }

    @Test("RESP replies: decisions (MTAKE's nested ones too) and errors are found whole, never before their last byte")
    func respReplies() throws {
        let allowed = "*5\r\n:1\r\n:100\r\n:99\r\n:600\r\n:0\r\n"
        let denied = "*5\r\n:0\r\n:100\r\n:0\r\n:600\r\n:250\r\n"
        let mtake = "*3\r\n:0\r\n*5\r\n:1\r\n:5\r\n:4\r\n:1\r\n:0\r\n*5\r\n:0\r\n:1\r\n:0\r\n:1000\r\n:1000\r\n"
        let error = "-ERR unknown policy 'x'\r\n"
        for (reply, outcome) in [(allowed, ReplyOutcome.allowed), (denied, .denied), (mtake, .denied), (error, .errorReply)] {
            let bytes = Array(reply.utf8)
            for cut in 0..<bytes.count {
                #expect(try Self.resp(String(decoding: bytes[..<cut], as: UTF8.self)) == nil, "\(reply.debugDescription) cut at \(cut)")
            }
            let found = try #require(try Self.resp(reply + allowed))
            #expect(found.length == bytes.count)
            #expect(found.outcome == outcome)
        }
        for broken in ["+OK\r\n", ":1\r\n", "*0\r\n", "*-1\r\n", "*1\r\n$3\r\nabc\r\n", "*1\r\n:x\r\n", "*1\r\n:1\r\r", "?\r\n"] {
            #expect(throws: ReplyProtocolError.self, "\(broken.debugDescription)") { try Self.resp(broken) }
        }
        let deep = String(repeating: "*1\r\n", count: 6) + ":1\r\n"
        #expect(throws: ReplyProtocolError.self) { try Self.resp("*2\r\n:1\r\n" + deep) }
    }

    @Test("HTTP responses: status, Content-Length body, Connection: close; never before the body's last byte")
    func httpResponses() throws {
        let allowed = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-ratelimit-limit: 5\r\n\r\n{}"
        let denied = "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        let bytes = Array(allowed.utf8)
        for cut in 0..<bytes.count {
            #expect(try Self.http(String(decoding: bytes[..<cut], as: UTF8.self)) == nil, "cut at \(cut)")
        }
        let first = try #require(try Self.http(allowed + denied))
        #expect(first.length == bytes.count && first.status == 200 && !first.closes)
        let second = try #require(try Self.http(denied))
        #expect(second.length == denied.utf8.count && second.status == 429 && second.closes)
        for broken in ["HTTP/1.1 2x0 OK\r\n\r\n", "SPDY/3 200 OK\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n", "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n"] {
            #expect(throws: ReplyProtocolError.self, "\(broken.debugDescription)") { try Self.http(broken) }
        }
    }

    @Test("the JSON report: the fields scripts read, numbers that parse")
    func jsonReport() throws {
        var plan = BenchPlan(target: .line(host: "127.0.0.1", port: 7379))
        plan.length = .requests(4)
        var counts = BenchCounts()
        counts.allowed = 3
        counts.denied = 1
        counts.refused = 2
        counts.timeouts = 1
        var latencies = Histogram<UInt64>(highestTrackableValue: 60_000_000_000)
        for value: UInt64 in [1_000_000, 2_000_000, 3_000_000, 40_000_000] { _ = latencies.record(value) }
        let report = BenchReport(plan: plan, counts: counts, latencies: latencies, elapsedNanoseconds: 2_000_000_000)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(report.json.utf8)) as? [String: Any])
        #expect(object["throughput"] as? Double == 2)
        #expect(object["allowed"] as? Int == 3)
        #expect(object["denied"] as? Int == 1)
        #expect(object["errors"] as? Int == 3)
        let kinds = try #require(object["errors_by_kind"] as? [String: Int])
        #expect(kinds["refused"] == 2 && kinds["timeouts"] == 1 && kinds["error_replies"] == 0)
        let latency = try #require(object["latency_ms"] as? [String: Double])
        #expect(Set(latency.keys).isSuperset(of: ["p50", "p90", "p99", "p999", "max"]))
        #expect(abs((latency["p50"] ?? 0) - 2) < 0.01)
        #expect(abs((latency["max"] ?? 0) - 40) < 0.05)
        #expect(report.text.contains("refused connections 2"))
    }
}
