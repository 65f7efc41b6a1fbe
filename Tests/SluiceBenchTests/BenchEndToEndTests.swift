import Foundation
import SluiceTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `sluice bench` against a running `sluice serve`: what it counts (the load tests below measure).
@Suite(.serialized)
struct BenchEndToEndTests {
    /// A `sluice serve` on free loopback ports with the policies these tests load, and Envoy's service.
    final class Server {
        let process: ChildProcess
        let line: Int
        let http: Int
        let grpc: Int

        init() async throws {
            let directory = try temporaryDirectory("bench")
            (line, http, grpc) = (try freeLoopbackPort(), try freeLoopbackPort(), try freeLoopbackPort())
            try FileManager.default.createDirectory(at: directory.appendingPathComponent("ratelimit"), withIntermediateDirectories: true)
            try """
                domain: bench
                descriptors:
                  - key: key
                    rate_limit: { unit: hour, requests_per_unit: 5 }
                """.write(to: directory.appendingPathComponent("ratelimit/bench.yaml"), atomically: true, encoding: .utf8)
            try """
                listen: { line: "127.0.0.1:\(line)", http: "127.0.0.1:\(http)", grpc: "127.0.0.1:\(grpc)" }
                policies:
                  bench: { algorithm: token_bucket, limit: 1000000000, period: 1s }
                  tight: { algorithm: fixed_window, limit: 10, period: 1h }
                forward_auth:
                  rules:
                    - { path_prefix: /, limits: [{ policy: tight, by: ip }] }
                rls: { files: [ratelimit/bench.yaml] }
                """.write(to: directory.appendingPathComponent("sluice.yaml"), atomically: true, encoding: .utf8)
            // One event loop: on two cores the load generator has the other.
            process = try ChildProcess(
                executable: External.sluiceBinary, arguments: ["serve", "--config", "sluice.yaml", "--event-loops", "1", "--log-level", "warning"],
                directory: directory, logName: "sluice.log"
            )
            try await process.waitUntilListening(ports: [line, http, grpc])
        }

        deinit { process.stop() }
    }

    /// Runs `sluice bench ARGUMENTS --json --quiet`: its exit status and its report.
    static func bench(_ arguments: [String]) async throws -> (status: Int32, report: [String: Any]) {
        let result = try await runProgram([External.sluiceBinary, "bench"] + arguments + ["--json", "--quiet"], timeout: .seconds(120))
        let report = try #require(
            (try? JSONSerialization.jsonObject(with: Data(result.output.utf8))) as? [String: Any],
            "not a JSON report: \(result.output)\(result.error)"
        )
        return (result.status, report)
    }

    static func errors(_ report: [String: Any]) -> [String: Int] { report["errors_by_kind"] as? [String: Int] ?? [:] }

    @Test("denials are counted as decisions, apart from errors: TAKE, THROTTLE, MTAKE, /v1/check and forward auth")
    func denialsAreDecisions() async throws {
        let server = try await Server()
        let line = "line://127.0.0.1:\(server.line)"
        // One key, a limit of 10 an hour: 10 allowed, the rest denied, nothing an error.
        for (arguments, allowed, denied) in [
            (["--target", line, "--policy", "tight", "--key-prefix", "take:"], 10, 40),
            (["--target", line, "--command", "throttle", "--throttle", "5/1h", "--key-prefix", "throttle:"], 5, 45),
            (["--target", line, "--command", "mtake", "--policy", "bench,tight", "--key-prefix", "mtake:"], 10, 40),
            (["--target", "http://127.0.0.1:\(server.http)", "--policy", "tight", "--key-prefix", "http:"], 10, 40),
            // Forward auth limits by client address: one address per key.
            (["--target", "http://127.0.0.1:\(server.http)/v1/forward-auth", "--pipeline", "4"], 10, 40),
        ] {
            let run = try await Self.bench(arguments + ["--connections", "3", "--requests", "50", "--keys", "1"])
            #expect(run.status == 0)
            #expect(run.report["allowed"] as? Int == allowed, "\(arguments): \(run.report)")
            #expect(run.report["denied"] as? Int == denied, "\(arguments): \(run.report)")
            #expect(run.report["errors"] as? Int == 0, "\(arguments): \(run.report)")
        }
    }

    @Test("gRPC: ShouldRateLimit calls, OK and OVER_LIMIT counted per descriptor value")
    func grpc() async throws {
        let server = try await Server()
        // Ten descriptor values, five an hour each: 50 allowed of 300 (each value is drawn far more than five times).
        let run = try await Self.bench([
            "--target", "grpc://127.0.0.1:\(server.grpc)", "--connections", "2", "--pipeline", "4", "--requests", "300", "--keys", "10",
        ])
        #expect(run.status == 0)
        #expect(run.report["allowed"] as? Int == 50, "\(run.report)")
        #expect(run.report["denied"] as? Int == 250, "\(run.report)")
        #expect(run.report["errors"] as? Int == 0, "\(run.report)")
    }

    @Test("refused connections and error replies are reported, not hidden, and a run without decisions exits 1")
    func errorsAreReported() async throws {
        let closed = try freeLoopbackPort()
        for target in ["line://127.0.0.1:\(closed)", "http://127.0.0.1:\(closed)", "grpc://127.0.0.1:\(closed)"] {
            let refused = try await Self.bench(["--target", target, "--connections", "2", "--requests", "20", "--timeout", "300ms"])
            #expect(refused.status == 1)
            #expect(refused.report["allowed"] as? Int == 0 && refused.report["denied"] as? Int == 0)
            #expect((Self.errors(refused.report)["refused"] ?? 0) >= 2, "\(target): \(refused.report)")
        }
        let server = try await Server()
        for target in ["line://127.0.0.1:\(server.line)", "http://127.0.0.1:\(server.http)"] {
            let unknown = try await Self.bench(["--target", target, "--policy", "nosuch", "--connections", "2", "--requests", "200"])
            #expect(unknown.status == 1)
            #expect(Self.errors(unknown.report)["error_replies"] == 200, "\(target): \(unknown.report)")
            #expect(unknown.report["errors"] as? Int == 200)
        }
    }

}

/// `sluice bench` under load: its throughput agrees with redis-benchmark's and wrk's on the same load, and an open-loop
/// run keeps its schedule across a stopped server. Run alone (``loadTest``), after the rest of the suite.
@Suite(.serialized, .loadTest)
struct BenchLoadTests {
    typealias Server = BenchEndToEndTests.Server

    static func bench(_ arguments: [String]) async throws -> (status: Int32, report: [String: Any]) {
        try await BenchEndToEndTests.bench(arguments)
    }

    static func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

    @Test(.requires("redis-benchmark"))
    func lineThroughputAgreesWithRedisBenchmark() async throws {
        let server = try await Server()
        var ours: [Double] = []
        var theirs: [Double] = []
        // Alternating, medians of three: the machine is shared.
        for _ in 0..<3 {
            let reference = try await runProgram([
                "redis-benchmark", "-h", "127.0.0.1", "-p", "\(server.line)", "-c", "50", "-n", "20000", "-r", "100000", "--csv",
                "TAKE", "bench", "key:__rand_int__",
            ])
            // "TAKE bench key:__rand_int__","41597.34",...
            let row = try #require(reference.output.split(separator: "\n").first { !$0.hasPrefix("\"test\"") })
            let field = String(row.split(separator: ",")[1].filter { $0 != "\"" })
            theirs.append(try #require(Double(field)))
            let run = try await Self.bench([
                "--target", "line://127.0.0.1:\(server.line)", "--connections", "50", "--requests", "20000", "--keys", "100000",
            ])
            #expect(run.status == 0)
            #expect(run.report["allowed"] as? Int == 20_000, "\(run.report)")
            #expect(run.report["errors"] as? Int == 0, "\(run.report)")
            ours.append(try #require(run.report["throughput"] as? Double))
        }
        let ratio = Self.median(ours) / Self.median(theirs)
        print("sluice bench \(ours), redis-benchmark \(theirs): ratio of medians \(ratio)")
        // Two clients on a 2-core machine they share with the server: medians of three have differed by up to 27%
        // (ratios 0.86 to 1.27 seen here across sessions, sluice bench mostly the higher on fresh machines), so the
        // band is half either way. A client that miscounted (replies, pipelining, time) would be off by a factor.
        #expect(ratio > 0.67 && ratio < 1.5, "sluice bench \(ours) against redis-benchmark \(theirs)")
    }

    @Test(.requires("wrk"))
    func httpThroughputAgreesWithWrk() async throws {
        let server = try await Server()
        var ours: [Double] = []
        var theirs: [Double] = []
        for _ in 0..<3 {
            // wrk asks for one URL: one key, bench:0, which sluice bench draws with --keys 1.
            let reference = try await runProgram([
                "wrk", "-t1", "-c50", "-d2s", "http://127.0.0.1:\(server.http)/v1/check?policy=bench&key=bench:0&cost=1",
            ])
            let line = try #require(reference.output.split(separator: "\n").first { $0.hasPrefix("Requests/sec:") }, "\(reference.output)")
            theirs.append(try #require(Double(String(line.split(separator: " ").last ?? ""))))
            let run = try await Self.bench([
                "--target", "http://127.0.0.1:\(server.http)", "--connections", "50", "--duration", "2s", "--keys", "1",
            ])
            #expect(run.status == 0)
            #expect(run.report["errors"] as? Int == 0, "\(run.report)")
            ours.append(try #require(run.report["throughput"] as? Double))
        }
        let ratio = Self.median(ours) / Self.median(theirs)
        print("sluice bench \(ours), wrk \(theirs): ratio of medians \(ratio)")
        #expect(ratio > 0.67 && ratio < 1.5, "sluice bench \(ours) against wrk \(theirs)")  // the band: as above
    }

    @Test("open loop: requests go out on schedule while the server is stopped, and the stall shows in the latencies")
    func openLoopCountsFromWhenARequestWasDue() async throws {
        let server = try await Server()
        // A child process, not runProgram: the test must stop the server while the run goes on.
        let run = try ChildProcess(
            executable: External.sluiceBinary,
            arguments: ["bench", "--target", "line://127.0.0.1:\(server.line)", "--connections", "4", "--rate", "500", "--duration", "3s", "--json", "--quiet"],
            directory: server.process.directory
        )
        try await Task.sleep(for: .seconds(1))
        server.process.send(SIGSTOP)
        try await Task.sleep(for: .milliseconds(600))
        server.process.send(SIGCONT)
        #expect(try await run.waitForExit() == 0, "\(run.output)")
        let json = try #require(run.output.split(separator: "\n").last { $0.hasPrefix("{") }, "\(run.output)")
        let report = try #require((try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any])
        // 1,500 due in 3 s; every one sent and decided.
        let decided = (report["allowed"] as? Int ?? 0) + (report["denied"] as? Int ?? 0)
        #expect(decided == 1500, "\(report)")
        let latency = try #require(report["latency_ms"] as? [String: Double])
        // About 300 requests fell due during the 600 ms stop (a fifth of the run): the 99th percentile is most of
        // the stop. A closed loop would show about four slow requests, far below the 99th percentile.
        #expect((latency["p99"] ?? 0) > 300, "\(latency)")
        #expect((latency["max"] ?? 0) > 500, "\(latency)")
        #expect((latency["p50"] ?? 1000) < 100, "\(latency)")
    }
}
