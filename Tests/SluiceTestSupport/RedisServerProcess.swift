public import Foundation
import Glibc

/// A real `redis-server` (or another server speaking its protocol, such as `valkey-server`) on 127.0.0.1
/// and a free port, in a temporary directory, stopped by its PID.
public final class RedisServerProcess: @unchecked Sendable {
    // @unchecked: one test drives each server; `process` is replaced only by start() and stop().
    public let port: Int
    public let directory: URL
    private let executable: String
    private let extraArguments: [String]
    private let configurationFile: String?
    private let sentinel: Bool
    /// The password the server requires, for `cli`.
    public let password: String?
    private var process: ChildProcess?

    /// Starts a server on a free port (or on `port`, in `directory`, to restart one in place).
    ///
    /// - Parameters:
    ///   - configurationFile: a configuration file, given first (Sentinel needs one, writable).
    ///   - sentinel: run as a Sentinel.
    ///   - password: what the server requires (`--requirepass` among `arguments`), for `cli`.
    public init(
        executable: String = "redis-server", port: Int? = nil, directory: URL? = nil, arguments: [String] = [],
        configurationFile: String? = nil, sentinel: Bool = false, password: String? = nil
    ) throws {
        self.executable = executable
        self.port = try port ?? freeLoopbackPort()
        self.directory = try directory ?? temporaryDirectory("redis")
        extraArguments = arguments
        self.configurationFile = configurationFile
        self.sentinel = sentinel
        self.password = password
        try start()
    }

    /// Starts it again (after ``stop()``), on the same port and directory.
    public func start() throws {
        var arguments = configurationFile.map { [$0] } ?? []
        if sentinel { arguments.append("--sentinel") }
        arguments += ["--bind", "127.0.0.1", "--port", String(port), "--daemonize", "no", "--dir", directory.path]
        if !sentinel { arguments += ["--save", "", "--appendonly", "no"] }
        let process = try ChildProcess(
            executable: executable, arguments: arguments + extraArguments, directory: directory, logName: "redis-\(port).log"
        )
        self.process = process
        do {
            try process.waitUntilListeningBlocking(port: port)
        } catch {
            throw TestFailure("\(executable) did not start on port \(port) (is it installed? scripts/install-deps installs it): \(error)")
        }
    }

    /// Whether the server process runs.
    public var isRunning: Bool { process?.isRunning ?? false }

    /// The server's PID, while it runs.
    public var processIdentifier: Int32? { process?.processIdentifier }

    /// Stops the server: `SHUTDOWN NOSAVE` first (a child inherits the test runner's blocked SIGTERM), then
    /// its PID is signalled if it lingers.
    public func stop() {
        guard let process else { return }
        self.process = nil
        process.send(SIGCONT)
        _ = try? cli("SHUTDOWN", "NOSAVE")
        process.stop()
    }

    /// Kills the server with SIGKILL, as a crash would.
    public func kill() {
        guard let process else { return }
        self.process = nil
        process.send(SIGKILL)
        process.stop()
    }

    /// Pauses the server (SIGSTOP): it keeps its socket but answers nothing, as a stuck Redis would.
    public func pause() { process?.send(SIGSTOP) }

    /// Resumes a paused server.
    public func resume() { process?.send(SIGCONT) }

    /// Runs `redis-cli` against this server (with its password); its output, trimmed.
    @discardableResult
    public func cli(_ arguments: String...) throws -> String {
        try cli(arguments)
    }

    /// ``cli(_:)-(String...)`` with an array.
    @discardableResult
    public func cli(_ arguments: [String]) throws -> String {
        let auth = password.map { ["-a", $0, "--no-auth-warning"] } ?? []
        return try runProgramBlocking(["redis-cli", "-h", "127.0.0.1", "-p", String(port)] + auth + arguments)
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }
}
