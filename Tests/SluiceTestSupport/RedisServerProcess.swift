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
    private var process: ChildProcess?

    /// Starts a server on a free port (or on `port`, in `directory`, to restart one in place).
    public init(
        executable: String = "redis-server", port: Int? = nil, directory: URL? = nil, arguments: [String] = []
    ) throws {
        self.executable = executable
        self.port = try port ?? freeLoopbackPort()
        self.directory = try directory ?? temporaryDirectory("redis")
        extraArguments = arguments
        try start()
    }

    /// Starts it again (after ``stop()``), on the same port and directory.
    public func start() throws {
        let process = try ChildProcess(
            executable: executable,
            arguments: [
                "--bind", "127.0.0.1", "--port", String(port), "--save", "", "--appendonly", "no", "--daemonize", "no",
                "--dir", directory.path,
            ] + extraArguments,
            directory: directory, logName: "redis.log"
        )
        self.process = process
        do {
            try process.waitUntilListeningBlocking(port: port)
        } catch {
            throw TestFailure("\(executable) did not start on port \(port) (is it installed? scripts/install-deps installs it): \(error)")
        }
    }

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

    /// Runs `redis-cli` against this server; its output, trimmed.
    @discardableResult
    public func cli(_ arguments: String...) throws -> String {
        try runProgramBlocking(["redis-cli", "-h", "127.0.0.1", "-p", String(port)] + arguments)
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }
}
