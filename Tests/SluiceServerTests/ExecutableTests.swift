import Foundation
import SluiceTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The `sluice` executable itself, as an operator runs it: `validate`, and `serve` with SIGHUP and SIGTERM.
@Suite(.serialized)
struct ExecutableTests {
    static let binary = External.sluiceBinary

    static func temporaryFile(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-exe-\(UUID().uuidString).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func validateAcceptsAGoodFileAndNamesTheLineOfABadOne() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.binary), "build first: swift build (scripts/test does)")
        let good = try Self.temporaryFile("policies:\n  api: { algorithm: token_bucket, limit: 100, period: 1s }\n")
        let ok = try await runProgram([Self.binary, "validate", good])
        #expect(ok.status == 0)
        #expect(ok.output.contains("ok, 1 policies (api)"))
        let bad = try Self.temporaryFile(
            "policies:\n  api: { algorithm: token_bucket, limit: 100, period: 1s }\n  b: { algorithm: fixed_window, limit: -5, period: 1m }\n"
                + "  c: { algorithm: fixed_window, limit: 5, period: 1 }\nstore: { shards: 3 }\n"
        )
        let failed = try await runProgram([Self.binary, "validate", bad])
        #expect(failed.status == 1)
        #expect(failed.error.contains("policies.b.limit (line 3): must be a positive integer, got -5"), "\(failed.error)")
        #expect(failed.error.contains("policies.c.period (line 4)"), "every mistake is listed: \(failed.error)")
        #expect(failed.error.contains("store.shards (line 5)"), "\(failed.error)")
        #expect(failed.error.contains("3 mistakes"), "\(failed.error)")
        let missing = try await runProgram([Self.binary, "validate", "/nonexistent/sluice.yaml"])
        #expect(missing.status == 1)
        #expect(missing.error.contains("no such file"))
    }

    @Test func serveReloadsOnHangupKeepsTheOldConfigurationOnABadFileAndStopsOnTerm() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.binary), "build first: swift build (scripts/test does)")
        let linePort = try freeLoopbackPort()
        let httpPort = try freeLoopbackPort()
        let header = "listen: { line: \"127.0.0.1:\(linePort)\", http: \"127.0.0.1:\(httpPort)\" }\npolicies:\n"
        let path = try Self.temporaryFile(header + "  api: { algorithm: fixed_window, limit: 3, period: 1h }\n")
        let directory = URL(fileURLWithPath: FileManager.default.temporaryDirectory.path)
        let server = try ChildProcess(executable: Self.binary, arguments: ["serve", "--config", path], directory: directory)
        defer { server.stop() }
        try await server.waitUntilListening(port: linePort)
        func command(_ text: String) throws -> String { try RawConnection.lineCommands(port: linePort, text) }
        #expect(try command("TAKE api user").hasPrefix("*5\r\n:1\r\n:3\r\n:2\r\n"))

        // A broken file: rejected, the old policy stays, and its bucket too.
        try (header + "  api: { algorithm: fixed_window, limit: -1, period: 1h }\n").write(toFile: path, atomically: true, encoding: .utf8)
        kill(server.processIdentifier, SIGHUP)
        try await server.waitUntilLogged("reload rejected")
        #expect(server.output.contains("policies.api.limit (line 3)"))
        #expect(try command("TAKE api user").hasPrefix("*5\r\n:1\r\n:3\r\n:1\r\n"))

        // A good file: the new policy is served, api's bucket is kept.
        try (header + "  api: { algorithm: fixed_window, limit: 3, period: 1h }\n  extra: { algorithm: token_bucket, limit: 1, period: 1m }\n")
            .write(toFile: path, atomically: true, encoding: .utf8)
        kill(server.processIdentifier, SIGHUP)
        try await server.waitUntilLogged("reloaded policies")
        #expect(try command("TAKE extra user").hasPrefix("*5\r\n:1\r\n"))
        #expect(try command("TAKE api user").hasPrefix("*5\r\n:1\r\n:3\r\n:0\r\n"))

        kill(server.processIdentifier, SIGTERM)
        let status = try await server.waitForExit()
        #expect(status == 0, "\(server.output)")
        #expect(server.output.contains("sluice stopped"))
    }
}
