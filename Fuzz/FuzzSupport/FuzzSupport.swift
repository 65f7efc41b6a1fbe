import Foundation

#if SLUICE_FUZZ
import CFuzzDriver
#endif

/// What every fuzz target shares: its `main`, which runs libFuzzer in a fuzz build and replays inputs in a plain
/// one, and a check that stops the fuzzer on a broken invariant.
///
/// A fuzz target is an executable that exports its test function as `LLVMFuzzerTestOneInput` and hands it to
/// ``main(_:)`` from its `@main`. `scripts/fuzz` builds it with `SLUICE_FUZZ=1`: Sluice's own modules get libFuzzer's
/// coverage and AddressSanitizer, the dependencies are built as usual (so a fuzz build reuses a plain build's), and
/// `main(_:)` runs libFuzzer's driver. (The export is needed even so: `-sanitize=fuzzer` links libFuzzer's own `main`,
/// which refers to it, while SwiftPM points `main` at the target's entry.) In a plain `swift build`, `main(_:)`
/// replays instead: each argument is a file or a folder of inputs, run through the same function, so the committed
/// corpus is a regression test (`swift test` runs it).
public enum Fuzz {
    /// A test function as libFuzzer calls it: the input's bytes; returns 0.
    public typealias TestOneInput = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

    /// Fuzzes `testOneInput` (a fuzz build) or replays the inputs named on the command line through it; exits.
    public static func main(_ testOneInput: TestOneInput) -> Never {
        #if SLUICE_FUZZ
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, testOneInput))
        #else
        replay(testOneInput)
        exit(0)
        #endif
    }

    /// Runs `testOneInput` on every input named by the command line (files, or folders of files); prints how many.
    static func replay(_ testOneInput: TestOneInput) {
        var count = 0
        for argument in CommandLine.arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: argument, isDirectory: &isDirectory) else {
                FileHandle.standardError.write(Data("no such input: \(argument)\n".utf8))
                exit(2)
            }
            let paths =
                isDirectory.boolValue
                ? ((try? FileManager.default.contentsOfDirectory(atPath: argument)) ?? []).sorted().map { "\(argument)/\($0)" } : [argument]
            for path in paths {
                guard let data = FileManager.default.contents(atPath: path) else { continue }
                _ = data.withUnsafeBytes { testOneInput($0.bindMemory(to: UInt8.self).baseAddress, $0.count) }
                count += 1
            }
        }
        print("replayed \(count) inputs")
    }

    /// Stops the fuzzer (a crash it records with the input) when `condition` is false.
    public static func require(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #file, line: UInt = #line) {
        if !condition { fatalError("invariant broken: \(message())", file: file, line: line) }
    }

    /// Runs `body` to completion from synchronous code (the fuzzer's callback) and returns its result.
    public static func wait<Result: Sendable>(_ body: @escaping @Sendable () async -> Result) -> Result {
        let box = ResultBox<Result>()
        let done = DispatchSemaphore(value: 0)
        Task {
            box.value = await body()
            done.signal()
        }
        done.wait()
        guard let value = box.value else { fatalError("the task finished without a result") }
        return value
    }

    private final class ResultBox<Value>: @unchecked Sendable {
        // @unchecked: written once by the task before the semaphore is signalled, read after the wait.
        var value: Value?
    }
}

/// A little reader of fuzz input: bytes, lines and small numbers taken from the front.
public struct FuzzInput {
    private var bytes: ArraySlice<UInt8>

    public init(_ buffer: UnsafeRawBufferPointer) { bytes = ArraySlice(buffer) }

    public var isEmpty: Bool { bytes.isEmpty }

    /// The next byte, or 0 when none is left.
    public mutating func byte() -> UInt8 { bytes.popFirst() ?? 0 }

    /// Bytes up to (not including) the next `separator`, or all that is left.
    public mutating func take(until separator: UInt8) -> [UInt8] {
        let end = bytes.firstIndex(of: separator) ?? bytes.endIndex
        let taken = Array(bytes[..<end])
        bytes = bytes[min(end + 1, bytes.endIndex)...]
        return taken
    }

    /// All that is left.
    public mutating func rest() -> [UInt8] {
        defer { bytes = [] }
        return Array(bytes)
    }
}
