import Foundation
import SluiceTestSupport
import Testing

/// The committed fuzz corpus, replayed through each fuzz target's invariants by its plain build (no libFuzzer
/// needed): every input that once found something, or seeds a surface, stays a regression test.
struct FuzzCorpusTests {
    @Test(arguments: ["RESP", "HTTP", "Config", "RLS"])
    func corpusKeepsItsInvariants(target: String) async throws {
        let binary = packageRoot + "/.build/debug/Fuzz\(target)"
        #expect(FileManager.default.isExecutableFile(atPath: binary), "build first: swift build (scripts/test does)")
        let corpus = packageRoot + "/Fuzz/corpus/" + target.lowercased()
        let count = try FileManager.default.contentsOfDirectory(atPath: corpus).count
        let run = try await runProgram(["env", "SWIFT_BACKTRACE=enable=no", binary, corpus])
        #expect(run.status == 0, "\(run.output)\(run.error)")
        #expect(run.output.contains("replayed \(count) inputs"), "\(run.output)")
    }
}
