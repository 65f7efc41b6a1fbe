public import Foundation
import Glibc

/// The repository root, found from this file's path (Tests/SluiceTestSupport/ChildProcess.swift).
public let packageRoot: String = {
    var components = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
    components.removeLast(3)
    return components.joined(separator: "/")
}()

/// A program a test starts (redis-server, caddy, nginx, sluice itself), its output in a log file, stopped by
/// its PID and only its PID.
public final class ChildProcess: @unchecked Sendable {
    // @unchecked: `Process` is not Sendable; one test drives each child, and Foundation's own locking covers
    // the state it reads (isRunning, terminationStatus).
    private let process = Process()
    /// Where it runs and where its log is.
    public let directory: URL
    private let log: URL
    /// Whether the log's name is its own (made here), so it goes with the process.
    private let ownsLog: Bool

    /// Starts `executable` (looked up on PATH) with `arguments` in `directory`, its output in `logName` there
    /// (by default a name of its own: tests running at once may share a directory).
    public init(executable: String, arguments: [String], directory: URL, environment: [String: String] = [:], logName: String? = nil)
        throws
    {
        self.directory = directory
        log = directory.appendingPathComponent(logName ?? "process-\(UUID().uuidString).log")
        ownsLog = logName == nil
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let output = try FileHandle(forWritingTo: log)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [executable] + arguments
        process.currentDirectoryURL = directory
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = output
        process.standardError = output
        try process.run()
    }

    /// What it wrote to standard output and error.
    public var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// The PID, for sending it signals.
    public var processIdentifier: Int32 { process.processIdentifier }

    public var isRunning: Bool { process.isRunning }

    /// Waits until 127.0.0.1:`port` accepts connections (at most `limit`).
    public func waitUntilListening(port: Int, limit: Duration = .seconds(10)) async throws {
        let deadline = ContinuousClock.now + limit
        // Look once more after the deadline: on a starved machine (under TSan, with the test pool's two threads
        // busy) this task may first run after the deadline has passed.
        while true {
            if canConnect(port: port) { return }
            if !process.isRunning { throw TestFailure("\(process.arguments?.dropFirst().first ?? "the process") exited early:\n\(output)") }
            if ContinuousClock.now >= deadline { throw TestFailure("nothing listened on \(port) within \(limit):\n\(output)") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// ``waitUntilListening(port:limit:)``, blocking.
    public func waitUntilListeningBlocking(port: Int, limit: Duration = .seconds(10)) throws {
        let deadline = ContinuousClock.now + limit
        while !canConnect(port: port) {
            guard ContinuousClock.now < deadline, process.isRunning else {
                throw TestFailure("nothing listened on \(port) within \(limit):\n\(output)")
            }
            usleep(10_000)
        }
    }

    /// Waits (at most 10 s) for the process to exit by itself; returns its exit status.
    public func waitForExit() async throws -> Int32 {
        for _ in 0..<500 where process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        guard !process.isRunning else { throw TestFailure("the process did not exit:\n\(output)") }
        return process.terminationStatus
    }

    /// Sends `signal` to the process.
    public func send(_ signal: Int32) {
        if process.isRunning { kill(process.processIdentifier, signal) }
    }

    /// SIGTERM, then SIGKILL if it has not exited within 2 s; returns once it has. (A child may inherit the test
    /// runner's blocked SIGTERM; SIGKILL cannot be blocked. Foundation reaps the child: poll rather than
    /// `waitUntilExit`, which can wait on a run loop forever.)
    public func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGCONT)
        kill(process.processIdentifier, SIGTERM)
        let deadline = ContinuousClock.now + .seconds(2)
        while process.isRunning, ContinuousClock.now < deadline { usleep(5_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        while process.isRunning { usleep(5_000) }
    }

    deinit {
        stop()
        if ownsLog { try? FileManager.default.removeItem(at: log) }
    }
}

/// A fresh temporary directory for one test's files.
public func temporaryDirectory(_ name: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-\(name)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Runs a program to completion, feeding `input`; returns its exit status and output.
public func runProgram(_ arguments: [String], input: String? = nil, timeout: Duration = .seconds(60)) async throws
    -> (status: Int32, output: String, error: String)
{
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

/// Runs a short program to completion, blocking; returns its standard output, trimmed. A program still running
/// after `timeout` is killed (SIGKILL: children inherit the test runner's blocked SIGTERM) and an error thrown.
public func runProgramBlocking(_ arguments: [String], timeout: Duration = .seconds(60)) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    try process.run()
    // Read on another thread, so a program that never exits cannot hold this one past the deadline.
    let data = PipeReader(output.fileHandleForReading)
    let deadline = ContinuousClock.now + timeout
    while process.isRunning {
        if ContinuousClock.now > deadline {
            kill(process.processIdentifier, SIGKILL)
            throw TestFailure("\(arguments.joined(separator: " ")) did not finish within \(timeout): \(String(decoding: data.wait(), as: UTF8.self))")
        }
        usleep(1_000)
    }
    return String(decoding: data.wait(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}

/// Reads a pipe to its end on a thread of its own.
private final class PipeReader: @unchecked Sendable {
    // @unchecked: `data` is written once by the reading thread before `done` is signalled, read after.
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        Thread.detachNewThread {
            self.data = handle.readDataToEndOfFile()
            self.done.signal()
        }
    }

    func wait() -> Data {
        done.wait()
        return data
    }
}
