import Foundation
import SluiceTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The admin API of the `sluice` executable: a key from `sluice keygen`, changes that survive a restart,
/// overrides answered on the line protocol, and no key in the log.
@Suite(.serialized)
struct ExecutableAdminTests {
    static func http(_ port: Int, _ method: String, _ path: String, key: String?, body: String? = nil) throws -> (status: Int, text: String) {
        let connection = try RawConnection(port: port)
        var request = "\(method) \(path) HTTP/1.1\r\nHost: s\r\nConnection: close\r\n"
        if let key { request += "Authorization: Bearer \(key)\r\n" }
        if let body { request += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" }
        request += "\r\n" + (body ?? "")
        connection.send(request)
        let text = connection.readUntilClosed().text
        return (Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0, text)
    }

    static func line(_ port: Int, _ command: String) throws -> String { try RawConnection.lineCommands(port: port, command) }

    @Test func aKeygenKeyChangesPoliciesThatSurviveARestartAndNeverReachesTheLog() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: ExecutableTests.binary), "build first: swift build (scripts/test does)")
        // keygen: a key, and the line that holds its hash.
        let keygen = try await runProgram([ExecutableTests.binary, "keygen", "--name", "ci"])
        #expect(keygen.status == 0)
        let lines = keygen.output.split(separator: "\n").map(String.init)
        let key = try #require(lines.first { $0.hasPrefix("key: ") }.map { String($0.dropFirst(5)) })
        let entry = try #require(lines.first { $0.contains("sha256:") })
        #expect(key.hasPrefix("sk_live_") && key.count == 48)
        let shown = try await runProgram(["sh", "-c", "printf %s '\(key)' | sha256sum"])
        #expect(entry.contains(String(shown.output.prefix(64))), "keygen's hash is the key's SHA-256: \(entry)")

        let linePort = try freeLoopbackPort()
        let httpPort = try freeLoopbackPort()
        let adminPort = try freeLoopbackPort()
        let path = try ExecutableTests.temporaryFile(
            """
            # kept across admin writes
            listen: { line: "127.0.0.1:\(linePort)", http: "127.0.0.1:\(httpPort)", admin: "127.0.0.1:\(adminPort)" }
            policies:
              api: { algorithm: token_bucket, limit: 100, period: 1s }
            admin:
              api_keys:
            \(entry)

            """
        )
        let directory = URL(fileURLWithPath: FileManager.default.temporaryDirectory.path)
        var server = try ChildProcess(executable: ExecutableTests.binary, arguments: ["serve", "--config", path], directory: directory)
        try await server.waitUntilListening(ports: [adminPort, linePort, httpPort])

        // The admin API lives on its listener only; the HTTP API keeps the decisions.
        #expect(try Self.http(httpPort, "GET", "/v1/policies", key: key).status == 404)
        #expect(try Self.http(adminPort, "GET", "/v1/policies", key: nil).status == 401)
        #expect(try Self.http(adminPort, "GET", "/v1/policies", key: key + "0").status == 401)
        let added = try Self.http(
            adminPort, "PUT", "/v1/policies", key: key,
            body: #"{"policies": {"api": {"algorithm": "token_bucket", "limit": 100, "period": "1s"}, "login": {"algorithm": "fixed_window", "limit": 2, "period": "1h"}}}"#
        )
        #expect(added.status == 200, "\(added.text)")
        let override = try Self.http(adminPort, "PUT", "/v1/policies/api/overrides/user%3Avip", key: key, body: #"{"limit": 1000, "burst": 300}"#)
        #expect(override.status == 200, "\(override.text)")
        // In force at once, on the line protocol too.
        #expect(try Self.line(linePort, "TAKE api user:vip").hasPrefix("*5\r\n:1\r\n:300\r\n:299\r\n"))
        #expect(try Self.line(linePort, "TAKE api user:1").hasPrefix("*5\r\n:1\r\n:100\r\n:99\r\n"))
        #expect(try Self.line(linePort, "TAKE login u").hasPrefix("*5\r\n:1\r\n:2\r\n:1\r\n"))

        // A restart reads them back from the file.
        kill(server.processIdentifier, SIGTERM)
        #expect(try await server.waitForExit() == 0)
        let firstLog = server.output
        server = try ChildProcess(executable: ExecutableTests.binary, arguments: ["serve", "--config", path], directory: directory)
        defer { server.stop() }
        try await server.waitUntilListening(port: linePort)
        #expect(try Self.line(linePort, "TAKE api user:vip").hasPrefix("*5\r\n:1\r\n:300\r\n:299\r\n"), "the override survived")
        #expect(try Self.line(linePort, "TAKE login u").hasPrefix("*5\r\n:1\r\n:2\r\n:1\r\n"), "the policy survived")
        let file = try String(contentsOfFile: path, encoding: .utf8)
        #expect(file.contains("# kept across admin writes") && file.contains("listen:") && file.contains("api_keys"))

        kill(server.processIdentifier, SIGTERM)
        _ = try await server.waitForExit()
        let log = firstLog + server.output
        #expect(log.contains("admin: replaced the policies") && log.contains("admin.key=ci"), "\(log)")
        #expect(log.contains("admin authentication failed"))
        #expect(!log.contains(key) && !log.contains(String(key.prefix(13))), "no key in the log:\n\(log)")
    }
}
