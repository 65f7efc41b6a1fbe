import FuzzSupport
import SluiceConfig
import SluiceCore

/// The YAML configuration decoder, fed arbitrary text.
///
/// Invariants: it accepts a document exactly when `problems(yaml:)` finds none, and every error names what is
/// wrong; an accepted document's policies, written back the way the admin API writes them
/// (`ConfigurationText.replacingPolicies`), read back as the same policies.
enum FuzzConfig {
    static func run(_ data: UnsafeRawBufferPointer) {
        let text = String(decoding: data, as: UTF8.self)
        let problems = SluiceConfiguration.problems(yaml: text)
        let configuration: SluiceConfiguration
        do {
            configuration = try SluiceConfiguration.parse(yaml: text)
        } catch {
            Fuzz.require(!error.message.isEmpty, "an error says what is wrong")
            Fuzz.require(!problems.isEmpty, "parse refused what problems(yaml:) accepts: \(error)")
            return
        }
        Fuzz.require(problems.isEmpty, "problems(yaml:) refused what parse accepts: \(problems)")
        let policies = configuration.policySet.policies
        let written = ConfigurationText.replacingPolicies(in: text, with: policies)
        guard let again = try? SluiceConfiguration.parse(yaml: written) else {
            return Fuzz.require(false, "the written document does not parse:\n\(written)")
        }
        Fuzz.require(again.policySet.policies == policies, "policies written back read back the same")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzConfig.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@main
enum Main {
    static func main() { Fuzz.main(fuzzConfig) }
}
