import SluiceConfig

/// The error `parse(yaml:)` throws for `yaml`, or nil if it parses.
func parseError(_ yaml: String) -> ConfigurationError? {
    do {
        _ = try SluiceConfiguration.parse(yaml: yaml)
        return nil
    } catch {
        return error
    }
}

/// A minimal valid policies section, for tests about other sections.
let onePolicy = """
    policies:
      api: { algorithm: token_bucket, limit: 100, period: 1s }
    """

/// A small seeded generator (SplitMix64), so every random test replays the same sequence on every run.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}
