import SluiceConfig
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import SluiceCore
import SluiceServer
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The repository root, found from this file's path (Tests/SluiceServerTests/EndToEndSupport.swift).
let packageRoot: String = {
    var components = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
    components.removeLast(3)
    return components.joined(separator: "/")
}()

/// A real line-protocol server on 127.0.0.1 and a free port, inside a ServiceGroup, as the executable runs it.
final class RunningLineServer: Sendable {
    let port: Int
    let context: ServerContext
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    static let testPolicies: [Policy] = {
        do {
            return [
                try Policy(name: "api", rateLimit: RateLimit(algorithm: .tokenBucket, limit: 100, periodNanoseconds: 1_000_000_000, burst: 20)),
                try Policy(name: "login", rateLimit: RateLimit(algorithm: .slidingWindow, limit: 5, periodNanoseconds: 60_000_000_000)),
                try Policy(name: "hourly", rateLimit: RateLimit(algorithm: .fixedWindow, limit: 3, periodNanoseconds: 3_600_000_000_000)),
                try Policy(
                    name: "daily", rateLimit: RateLimit(algorithm: .fixedWindow, limit: 1, periodNanoseconds: 86_400_000_000_000), mode: .shadow
                ),
            ]
        } catch {
            preconditionFailure("test policies are valid: \(error)")
        }
    }()

    private init(port: Int, context: ServerContext, group: ServiceGroup, task: Task<Void, any Error>) {
        self.port = port
        self.context = context
        self.group = group
        self.task = task
    }

    static func start(policies: [Policy] = testPolicies, limits: SluiceConfiguration.Limits = SluiceConfiguration.Limits()) async throws -> RunningLineServer {
        let logger = Logger(label: "sluice.test")
        let clock = MonotonicClock(epochNanoseconds: Int64(Date().timeIntervalSince1970 * 1e9))
        let context = ServerContext(
            limiter: RateLimiter(store: BucketStore(maximumKeys: 100_000)), registry: PolicyRegistry(try PolicySet(policies)),
            clock: clock, limits: limits, logger: logger
        )
        let (addresses, continuation) = AsyncStream.makeStream(of: Int.self)
        let service = ListenerService.line(
            address: ListenAddress(host: "127.0.0.1", port: 0), context: context, eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            onListening: { address in
                continuation.yield(address.port ?? 0)
                continuation.finish()
            }
        )
        let group = ServiceGroup(services: [service], logger: logger)
        let task = Task { try await group.run() }
        var port = 0
        for await bound in addresses { port = bound }
        guard port > 0 else { throw TestFailure("the line server did not start") }
        return RunningLineServer(port: port, context: context, group: group, task: task)
    }

    /// Graceful shutdown, as on SIGTERM; returns when the service group has stopped.
    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A blocking TCP client on raw sockets, for sending bytes no client library would.
final class RawConnection {
    private let descriptor: Int32

    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw TestFailure("socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(descriptor)
            throw TestFailure("connect() to port \(port) failed")
        }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(descriptor) }

    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return }  // the server may close first; what it sent is what the test checks
            offset += sent
        }
    }

    func send(_ text: String) { send(Array(text.utf8)) }

    /// Reads until the server closes the connection (or 5 s pass); returns what arrived and whether it closed.
    func readUntilClosed() -> (text: String, closed: Bool) {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count == 0 { return (String(decoding: received, as: UTF8.self), true) }
            if count < 0 { return (String(decoding: received, as: UTF8.self), errno == ECONNRESET) }
            received.append(contentsOf: chunk[0..<count])
        }
    }

    /// Reads until `expected` bytes have arrived (or 5 s pass).
    func read(atLeast expected: Int) -> String {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while received.count < expected {
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            received.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: received, as: UTF8.self)
    }
}

/// Runs a program to completion, feeding `input`; returns its exit status and output.
func runProgram(_ arguments: [String], input: String? = nil, timeout: Duration = .seconds(60)) async throws -> (status: Int32, output: String, error: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let output = Pipe()
    let error = Pipe()
    let inputPipe = Pipe()
    process.standardOutput = output
    process.standardError = error
    process.standardInput = inputPipe
    try process.run()
    if let input { inputPipe.fileHandleForWriting.write(Data(input.utf8)) }
    try inputPipe.fileHandleForWriting.close()
    let deadline = ContinuousClock.now + timeout
    // Read both pipes to the end first, so a chatty program cannot block on a full pipe.
    async let outputData = Task.detached { output.fileHandleForReading.readDataToEndOfFile() }.value
    async let errorData = Task.detached { error.fileHandleForReading.readDataToEndOfFile() }.value
    let (out, err) = await (outputData, errorData)
    while process.isRunning {
        if ContinuousClock.now > deadline {
            process.terminate()
            throw TestFailure("\(arguments.joined(separator: " ")) did not finish within \(timeout)")
        }
        try await Task.sleep(for: .milliseconds(10))
    }
    return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
}

/// The Python of the venv `scripts/test` makes (with the `redis` package from PyPI).
let venvPython = packageRoot + "/.venv-e2e/bin/python"
