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

    /// Waits until the process has logged `text` (at most `limit`). Unlike a probe of its port, this opens no
    /// connection the server then counts until it has seen it close.
    public func waitUntilLogged(_ text: String, limit: Duration = .seconds(10)) async throws {
        guard await eventually(limit, every: .milliseconds(20), { output.contains(text) || !process.isRunning }), output.contains(text) else {
            throw TestFailure("the process never logged \(text.debugDescription):\n\(output)")
        }
    }

    /// ``waitUntilListening(port:limit:)`` for each of `ports`: a server with several listeners may open them in any
    /// order, and a slow machine shows it.
    public func waitUntilListening(ports: [Int], limit: Duration = .seconds(10)) async throws {
        for port in ports { try await waitUntilListening(port: port, limit: limit) }
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
        // Foundation notices the exit on a thread of its own; bounded so a test can never wait here for ever.
        let killed = ContinuousClock.now + .seconds(10)
        while process.isRunning, ContinuousClock.now < killed { usleep(5_000) }
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

/// Runs a program to completion, `input` as its standard input; returns its exit status and output. A program
/// still running after `timeout` is killed (SIGKILL: children inherit the test runner's blocked SIGTERM) and an
/// error thrown.
///
/// Nothing here blocks a thread of the test pool: its output is read on threads of its own and its exit is
/// polled between sleeps. (It once read its pipes in detached tasks, which are the pool's threads: on a 2-core
/// machine one program took both, every other test stood still until it exited, and a program that waited for
/// a server in this process could wait for ever.)
public func runProgram(_ arguments: [String], input: String? = nil, timeout: Duration = .seconds(60)) async throws
    -> (status: Int32, output: String, error: String)
{
    let program = try StartedProgram(arguments, input: input, timeout: timeout)
    while program.process.isRunning {
        if ContinuousClock.now > program.deadline { throw await offPool { program.kill() } }
        try await Task.sleep(for: .milliseconds(10))
    }
    let (output, error) = await (offPool { program.output.wait() }, offPool { program.error.wait() })
    return (program.process.terminationStatus, String(decoding: output, as: UTF8.self), String(decoding: error, as: UTF8.self))
}

/// Runs a short program to completion, blocking; returns its standard output, trimmed. A program still running
/// after `timeout` is killed (SIGKILL) and an error thrown.
public func runProgramBlocking(_ arguments: [String], timeout: Duration = .seconds(60)) throws -> String {
    let program = try StartedProgram(arguments, input: nil, timeout: timeout)
    while program.process.isRunning {
        if ContinuousClock.now > program.deadline { throw program.kill() }
        usleep(1_000)
    }
    return String(decoding: program.output.wait(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}

/// A program started by ``runProgram(_:input:timeout:)`` or ``runProgramBlocking(_:timeout:)``, its standard
/// output and error read on threads of their own: to their end, or, once the program has exited, to what it
/// left in them (a program it started may keep a pipe open: that is not waited for).
private final class StartedProgram: Sendable {
    let process = Process()
    let output: PipeReader
    let error: PipeReader
    let deadline: ContinuousClock.Instant
    let timeout: Duration
    let command: String

    init(_ arguments: [String], input: String?, timeout: Duration) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        command = arguments.joined(separator: " ")
        self.timeout = timeout
        // Input from a file, not a pipe: a program that stops reading cannot block the writer, and one that
        // exits early cannot raise SIGPIPE in this process.
        if let input {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-input-\(UUID().uuidString)")
            try Data(input.utf8).write(to: file)
            defer { try? FileManager.default.removeItem(at: file) }  // the open descriptor keeps it readable
            process.standardInput = try FileHandle(forReadingFrom: file)
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        let outputPipe = Pipe()
        let errorPipe = Pipe()
        process.standardOutput = outputPipe
        process.standardError = errorPipe
        try process.run()
        deadline = ContinuousClock.now + timeout
        output = PipeReader(outputPipe, until: deadline + .seconds(5), process: process)
        error = PipeReader(errorPipe, until: deadline + .seconds(5), process: process)
    }

    /// Kills the program over its deadline; the error to throw, with what it printed. Blocks until the output is
    /// read: from a task, through ``offPool(_:)``.
    func kill() -> TestFailure {
        Glibc.kill(process.processIdentifier, SIGKILL)
        return TestFailure("\(command) did not finish within \(timeout): \(String(decoding: output.wait() + error.wait(), as: UTF8.self))")
    }
}

/// Reads a pipe on a thread of its own: to its end, to what is left in it once `process` has exited, or until
/// a deadline, whichever comes first.
private final class PipeReader: @unchecked Sendable {
    // @unchecked: `data` is written once by the reading thread before `done` is signalled, read after.
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ pipe: Pipe, until deadline: ContinuousClock.Instant, process: Process) {
        Thread.detachNewThread {
            self.data = readToEnd(pipe.fileHandleForReading.fileDescriptor, until: deadline) { !process.isRunning }
            withExtendedLifetime(pipe) {}
            self.done.signal()
        }
    }

    /// What was read, once reading has ended (at most until the deadline). Blocks: from a task, through ``offPool(_:)``.
    func wait() -> Data {
        done.wait()
        done.signal()  // for the next caller
        return data
    }
}

/// Reads `descriptor` until its end or `deadline`, or until nothing is left in it once `finished()` says so.
private func readToEnd(_ descriptor: Int32, until deadline: ContinuousClock.Instant, finished: () -> Bool) -> Data {
    var data = Data()
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while true {
        let left = deadline - ContinuousClock.now
        guard left > .zero else { return data }
        // Asked before polling: what a finished program wrote is in the pipe by then, and the poll finds it.
        let ended = finished()
        var request = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        let milliseconds = min(100, Int32(clamping: left.components.seconds * 1_000 + left.components.attoseconds / 1_000_000_000_000_000 + 1))
        let ready = poll(&request, 1, milliseconds)
        if ready < 0, errno == EINTR { continue }
        if ready == 0, !ended { continue }
        guard ready > 0 else { return data }
        let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        if count < 0, errno == EINTR || errno == EAGAIN { continue }
        guard count > 0 else { return data }
        data.append(contentsOf: chunk[0..<count])
    }
}
