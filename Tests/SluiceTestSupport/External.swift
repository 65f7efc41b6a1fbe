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

    /// Whether `program` is an executable on PATH.
    public static func isInstalled(_ program: String) -> Bool {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(program)") }
    }

    /// The Python of the venv `scripts/test` makes, with the stock `redis` client from PyPI.
    public static let venvPython = packageRoot + "/.venv-e2e/bin/python"
}

extension Trait where Self == ConditionTrait {
    /// Runs the test only when every one of `programs` is on PATH, or when ``External/isRequired``.
    public static func requires(_ programs: String...) -> Self {
        let missing = programs.filter { !External.isInstalled($0) }
        let reason = "needs \(missing.joined(separator: " and ")) on PATH (scripts/install-deps installs it; scripts/test runs everything)"
        return .enabled(if: External.isRequired || missing.isEmpty, Comment(rawValue: reason))
    }

    /// Runs the test only when the Python venv of `scripts/test` exists, or when ``External/isRequired``.
    public static var requiresPythonVenv: Self {
        .enabled(
            if: External.isRequired || FileManager.default.isExecutableFile(atPath: External.venvPython),
            "needs the Python venv with the stock redis client at .venv-e2e (scripts/test makes it)"
        )
    }
}
