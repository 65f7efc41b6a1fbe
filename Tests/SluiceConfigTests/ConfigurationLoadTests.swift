import Foundation
import SluiceConfig
import SluiceTestSupport
import Testing

struct ConfigurationLoadTests {
    /// A fresh file path in the temporary directory, removed after `body`.
    private func withTemporaryFile(_ contents: String?, _ body: (String) throws -> Void) throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-\(UUID().uuidString).yaml").path
        if let contents { try contents.write(toFile: path, atomically: true, encoding: .utf8) }
        defer { try? FileManager.default.removeItem(atPath: path) }
        try body(path)
    }

    @Test func loadsAFile() throws {
        try withTemporaryFile(SluiceConfiguration.embeddedDefaultYAML) { path in
            let loaded = try SluiceConfiguration.load(path: path)
            #expect(loaded == SluiceConfiguration.embeddedDefault)
        }
    }

    @Test func reportsErrorsWithLinesFromAFile() throws {
        try withTemporaryFile("policies:\n  api: { algorithm: token_bucket, limit: -5, period: 1s }\n") { path in
            let error = #expect(throws: ConfigurationError.self) { try SluiceConfiguration.load(path: path) }
            #expect(error?.description == "policies.api.limit (line 2): must be a positive integer, got -5")
        }
    }

    @Test func missingFileNamesThePath() throws {
        try withTemporaryFile(nil) { path in
            let error = #expect(throws: ConfigurationError.self) { try SluiceConfiguration.load(path: path) }
            #expect(error?.code == .unreadableFile)
            #expect(error?.description == "cannot read configuration file '\(path)': no such file")
        }
    }

    @Test func directoryIsNotAFile() throws {
        let path = FileManager.default.temporaryDirectory.path
        let error = #expect(throws: ConfigurationError.self) { try SluiceConfiguration.load(path: path) }
        #expect(error?.code == .unreadableFile)
        #expect(error?.message.contains(path) == true)
    }
}
