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

