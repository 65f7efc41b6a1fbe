import Foundation
import SluiceTestSupport
import Testing

/// The line protocol against a real server on loopback, with clients nobody here wrote.
/// Serialized: each test starts its own server, and the machine has two cores.
@Suite(.serialized)
struct EndToEndTests {
    @Test(.requires("redis-cli")) func redisCliRunsEveryCommand() async throws {
        let server = try await RunningLineServer.start()
        let port = "\(server.port)"
        func cli(_ arguments: String...) async throws -> String {
            let result = try await runProgram(["redis-cli", "-h", "127.0.0.1", "-p", port] + arguments)
            #expect(result.status == 0, "redis-cli \(arguments) failed: \(result.error)")
            return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(try await cli("PING") == "PONG")
        // api: 100 per second, burst 20, so one token refills in 10 ms.
        #expect(try await cli("TAKE", "api", "user:1").split(separator: "\n") == ["1", "20", "19", "10", "0"])
        // hourly: a fixed window of 3 per hour, so counts do not move while the test runs.
        #expect(try await cli("TAKE", "hourly", "user:1", "2").split(separator: "\n").prefix(3) == ["1", "3", "1"])
        #expect(try await cli("PEEK", "hourly", "user:1").split(separator: "\n").prefix(3) == ["1", "3", "0"])
        #expect(try await cli("PEEK", "hourly", "user:1").split(separator: "\n").prefix(3) == ["1", "3", "0"])
        #expect(try await cli("RESET", "hourly", "user:1") == "1")
        #expect(try await cli("RESET", "hourly", "never-seen") == "0")
        #expect(try await cli("PEEK", "hourly", "user:1").split(separator: "\n").prefix(3) == ["1", "3", "2"])
        for _ in 0..<3 { _ = try await cli("TAKE", "hourly", "k") }
        let denied = try await cli("TAKE", "hourly", "k").split(separator: "\n")
        #expect(denied[0] == "0" && denied[2] == "0" && Int(denied[4]) ?? 0 > 0)
        #expect(try await cli("THROTTLE", "inline:1", "2", "10s").split(separator: "\n").prefix(3) == ["1", "2", "1"])
        #expect(try await cli("THROTTLE", "inline:1", "2", "10000").split(separator: "\n").prefix(3) == ["1", "2", "0"])
        #expect(try await cli("THROTTLE", "inline:1", "2", "10s").split(separator: "\n").first == "0")
        let many = try await cli("MTAKE", "api", "m", "1", "hourly", "m", "1").split(separator: "\n")
        #expect(many.first == "1" && many.count == 11)
        #expect(try await cli("TAKE", "nope", "k").contains("unknown policy 'nope'"))
        #expect(try await cli("TAKE", "api", "k", "-3").contains("cost must be a positive integer"))
        #expect(try await cli("INFO").contains("decisions_allowed:"))
        #expect(try await cli("SELECT", "0") == "OK")
        try await server.stop()
    }

    @Test(.requires("redis-cli")) func redisCliPipelineOfAThousand() async throws {
        let server = try await RunningLineServer.start()
        var input = ""
        for index in 0..<1000 { input += "TAKE hourly pipe:\(index % 10)\r\n" }
        let result = try await runProgram(["redis-cli", "-h", "127.0.0.1", "-p", "\(server.port)", "--pipe"], input: input)
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output.contains("errors: 0, replies: 1000"), "\(result.output)")
        // 10 keys of a fixed window of 3 per hour: exactly 30 of the 1000 were allowed, however slow the machine.
        let info = try await runProgram(["redis-cli", "-h", "127.0.0.1", "-p", "\(server.port)", "INFO"])
        let allowed = info.output.split(separator: "\r\n").first { $0.hasPrefix("decisions_allowed:") }.map { Int($0.dropFirst(18)) ?? 0 } ?? 0
        let denied = info.output.split(separator: "\r\n").first { $0.hasPrefix("decisions_denied:") }.map { Int($0.dropFirst(17)) ?? 0 } ?? 0
        #expect(allowed == 30 && denied == 970, "allowed \(allowed), denied \(denied)")
        try await server.stop()
    }

    @Test(.requiresPython()) func pythonRedisClientWithDefaults() async throws {
        let server = try await RunningLineServer.start()
        let result = try await runProgram([External.venvPython, packageRoot + "/Tests/e2e/redis_py_client.py", "\(server.port)"])
        #expect(result.status == 0, "redis-py client failed:\n\(result.output)\n\(result.error)")
        #expect(result.output.contains("redis-py: all checks passed"))
        try await server.stop()
    }

    /// Bytes no client library would send, shown in test output by name only.
    struct HostileInput: CustomTestStringConvertible, Sendable {
        let name: String
        let bytes: String
        let expected: String
        var testDescription: String { name }
        init(_ name: String, _ bytes: String, _ expected: String) {
            self.name = name
            self.bytes = bytes
            self.expected = expected
        }
    }

    @Test(arguments: [
        HostileInput("oversized inline line", String(repeating: "A", count: 70_000), "inline command longer than"),
        HostileInput("negative bulk length", "*1\r\n$-5\r\n", "invalid bulk length"),
        HostileInput("absurd bulk length", "*1\r\n$99999999999\r\n", "invalid bulk length"),
        HostileInput("absurd array length", "*99999999\r\n", "too many arguments"),
        HostileInput("not a bulk string", "*1\r\n:12\r\n", "expected '$'"),
        HostileInput("binary garbage", "\u{01}\u{02}\u{7f}GARBAGE\r\n", "binary data"),
        HostileInput("bulk without CRLF", "*1\r\n$4\r\nPINGXX", "not followed by CRLF"),
        HostileInput("command over the frame cap", "*20\r\n" + String(repeating: "$60000\r\n" + String(repeating: "a", count: 60_000) + "\r\n", count: 20), "command larger than"),
    ])
    func hostileBytesCloseOnlyThatConnection(input: HostileInput) async throws {
        let (name, bytes, expected) = (input.name, input.bytes, input.expected)
        let server = try await RunningLineServer.start()
        let bystander = try RawConnection(port: server.port)
        bystander.send("PING\r\n")
        #expect(await bystander.read(atLeast: 7) == "+PONG\r\n")
        let hostile = try RawConnection(port: server.port)
        hostile.send("PING\r\n" + bytes)
        let (reply, closed) = await hostile.readUntilClosed()
        #expect(reply.hasPrefix("+PONG\r\n-ERR Protocol error: "), "\(name): \(reply.prefix(200))")
        #expect(reply.contains(expected), "\(name): \(reply.prefix(200))")
        #expect(closed, "\(name): the server kept a broken connection open")
        // Everyone else is still served, on an old connection and a new one.
        bystander.send("TAKE api bystander\r\n")
        #expect(await bystander.read(atLeast: 20).hasPrefix("*5\r\n:1\r\n"))
        let fresh = try RawConnection(port: server.port)
        fresh.send("PING\r\n")
        #expect(await fresh.read(atLeast: 7) == "+PONG\r\n")
        try await server.stop()
    }

    @Test func truncatedFrameThenDisconnectLeavesServerHealthy() async throws {
        let server = try await RunningLineServer.start()
        do {
            let client = try RawConnection(port: server.port)
            client.send("*3\r\n$4\r\nTAKE\r\n$3\r\nap")
        }
        let fresh = try RawConnection(port: server.port)
        fresh.send("*1\r\n$4\r\nPING\r\n")
        #expect(await fresh.read(atLeast: 7) == "+PONG\r\n")
        try await server.stop()
    }

    @Test func gracefulShutdownAnswersWhatWasReadThenCloses() async throws {
        let server = try await RunningLineServer.start()
        let client = try RawConnection(port: server.port)
        client.send("TAKE api drain\r\nTAKE api drain\r\n")
        // Two replies of 27 bytes: *5 :1 :20 :19|:18 :10 :0
        let replies = await client.read(atLeast: 54)
        #expect(replies.components(separatedBy: "*5\r\n").count == 3)
        try await server.stop()
        let (_, closed) = await client.readUntilClosed()
        #expect(closed)
        #expect(throws: (any Error).self) { _ = try RawConnection(port: server.port) }
    }
}
