import Foundation
import Logging
import SluiceConfig
import SluiceCore
import SluiceRedis

#if canImport(Glibc)
import Glibc
#endif

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A real `redis-server` on 127.0.0.1 and a free port, in a temporary directory, stopped by its PID.
final class RedisServerProcess: @unchecked Sendable {
    let port: Int
    private let directory: String
    private var process: Process?

    /// Starts a server on a free port (or on `port`, to restart one in place).
    init(port: Int? = nil) throws {
        self.port = try port ?? freeLoopbackPort()
        directory = NSTemporaryDirectory() + "sluice-redis-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try start()
    }

    func start() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "redis-server", "--bind", "127.0.0.1", "--port", String(port), "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--dir", directory, "--logfile", directory + "/redis.log",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        let deadline = ContinuousClock.now + .seconds(10)
        while !canConnect(port: port) {
            guard ContinuousClock.now < deadline, process.isRunning else {
                throw TestFailure("redis-server did not start on port \(port) (is it installed? scripts/install-deps installs it)")
            }
            usleep(10_000)
        }
    }

    /// Stops the server (SIGTERM to the PID this object started) and waits for it to exit.
    func stop() {
        guard let process else { return }
        self.process = nil
        let pid = process.processIdentifier
        // The child inherits the test runner's blocked signals (SIGTERM among them), so ask Redis itself to
        // stop; SIGKILL (which cannot be blocked) if it does not. Foundation reaps the child: poll rather than
        // waitUntilExit, which can wait on a run loop forever.
        _ = try? cli("SHUTDOWN", "NOSAVE")
        let deadline = ContinuousClock.now + .seconds(2)
        while process.isRunning, ContinuousClock.now < deadline { usleep(5_000) }
        if process.isRunning { kill(pid, SIGKILL) }
        while process.isRunning { usleep(5_000) }
    }

    /// Pauses the server (SIGSTOP): it keeps its socket but answers nothing, as a stuck Redis would.
    func pause() { if let process, process.isRunning { kill(process.processIdentifier, SIGSTOP) } }

    /// Resumes a paused server.
    func resume() { if let process, process.isRunning { kill(process.processIdentifier, SIGCONT) } }

    /// Runs `redis-cli` against this server.
    @discardableResult
    func cli(_ arguments: String...) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["redis-cli", "-h", "127.0.0.1", "-p", String(port)] + arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    deinit {
        resume()
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// A port nothing listens on now: bind port 0, read what the system chose, close.
func freeLoopbackPort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw TestFailure("socket() failed") }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw TestFailure("bind() failed") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

func canConnect(port: Int) -> Bool {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return false }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    } == 0
}

/// One sidecar's global limiter: its own Redis connection and thread, its own local store, one shared clock.
final class Sidecar: Sendable {
    let limiter: RedisGlobalLimiter
    let clock = MonotonicClock(epochNanoseconds: Int64(Date().timeIntervalSince1970 * 1e9))
    let policies: PolicySet

    init(redisPort: Int, policies: [Policy], timeout: Duration = .milliseconds(50), maximumLeases: Int = 10_000) async throws {
        self.policies = try PolicySet(policies)
        limiter = RedisGlobalLimiter(
            settings: SluiceConfiguration.Redis(port: redisPort, timeoutNanoseconds: timeout.nanoseconds, keyPrefix: "test:", maxLeases: maximumLeases),
            store: BucketStore(maximumKeys: 10_000), clock: clock, logger: Logger(label: "sluice.test.redis")
        )
        limiter.start()
        guard await limiter.waitUntilConnected(limit: .seconds(5)) else { throw TestFailure("the sidecar did not connect to Redis") }
    }

    /// Decides `cost` of policy `name` for `key` as a server would: a pending decision is expired after the
    /// limiter's timeout.
    func decide(_ name: String, _ key: String, cost: Int64 = 1, consume: Bool = true) async -> Decision {
        await decideCharging(name, key, cost: cost, consume: consume).decision
    }

    /// ``decide(_:_:cost:consume:)``, with what the decision took from the global budget.
    func decideCharging(_ name: String, _ key: String, cost: Int64 = 1, consume: Bool = true) async -> (decision: Decision, charge: GlobalCharge?) {
        guard let index = policies.index(ofName: name) else { preconditionFailure("test policy \(name) exists") }
        let policy = policies.policies[index]
        var bytes = key
        let check = bytes.withUTF8 { policies.check(policy: index, key: UnsafeRawBufferPointer($0), cost: cost) }
        let outcome = bytes.withUTF8 {
            limiter.decide(check, policy: policy, key: UnsafeRawBufferPointer($0), now: clock.now(), consume: consume)
        }
        switch outcome {
        case .decided(let decision, let charge):
            return (decision, charge)
        case .pending(let pending):
            let clock = self.clock
            let timeout = limiter.timeout
            let timer = Task {
                try? await Task.sleep(for: timeout)
                pending.expire(now: clock.now())
            }
            let answer = await withCheckedContinuation { continuation in
                pending.whenAnswered { decision, charge in continuation.resume(returning: (decision, charge)) }
            }
            timer.cancel()
            return answer
        }
    }

    /// Gives back what a decision took, as a server does when a later local check of the request denies.
    func refund(_ name: String, _ key: String, charge: GlobalCharge, cost: Int64 = 1) {
        guard let index = policies.index(ofName: name) else { preconditionFailure("test policy \(name) exists") }
        var bytes = key
        let check = bytes.withUTF8 { policies.check(policy: index, key: UnsafeRawBufferPointer($0), cost: cost) }
        bytes.withUTF8 {
            limiter.refund(check, policy: policies.policies[index], key: UnsafeRawBufferPointer($0), charge: charge, now: clock.now())
        }
    }

    func shutdown() async { await limiter.shutdown() }

    /// `count` sidecars on one Redis, each with its own connection, thread and store.
    static func fleet(of count: Int, redisPort: Int, policies: [Policy]) async throws -> [Sidecar] {
        var sidecars: [Sidecar] = []
        for _ in 0..<count { sidecars.append(try await Sidecar(redisPort: redisPort, policies: policies)) }
        return sidecars
    }
}

func policy(
    _ name: String, _ algorithm: Algorithm, limit: Int64, period: Duration, burst: Int64? = nil,
    sync: Policy.Global.Sync = .leased, onFailure: Policy.Global.StoreFailure = .local
) -> Policy {
    do {
        return try Policy(
            name: name, rateLimit: RateLimit(algorithm: algorithm, limit: limit, periodNanoseconds: period.nanoseconds, burst: burst),
            scope: .global(Policy.Global(sync: sync, onStoreFailure: onFailure))
        )
    } catch {
        preconditionFailure("test policy is valid: \(error)")
    }
}
