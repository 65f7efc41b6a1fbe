public import Logging
public import SluiceConfig
import SluiceCore

/// Rereads the configuration file and puts its policies and forward-auth rules in force, or keeps what is
/// in force when the file is invalid. Listeners, store sizes and caps need a restart and are not touched.
public struct ConfigurationReloader: Sendable {
    /// What a reload did.
    public enum Outcome: Sendable, Equatable {
        /// The new policies (by name) are in force.
        case applied(policies: [String])
        /// The file was invalid; nothing changed.
        case rejected(ConfigurationError)
        /// There is no file to reread (the embedded default is in force).
        case noFile
    }

    let path: String?
    let registry: PolicyRegistry
    let logger: Logger

    /// Creates a reloader for `path` (nil when running on the embedded default).
    public init(path: String?, registry: PolicyRegistry, logger: Logger) {
        self.path = path
        self.registry = registry
        self.logger = logger
    }

    /// Rereads the file and applies it if valid; logs what happened.
    @discardableResult
    public func reload() -> Outcome {
        guard let path else {
            logger.notice("reload ignored: running on the embedded default configuration (no --config)")
            return .noFile
        }
        do {
            let configuration = try SluiceConfiguration.load(path: path)
            registry.replace(
                with: configuration.policySet, forwardAuth: ForwardAuthRules(configuration.forwardAuth, policies: configuration.policySet)
            )
            let names = configuration.policies.map(\.name)
            logger.notice("reloaded policies", metadata: ["sluice.config": "\(path)", "sluice.policies": "\(names.joined(separator: ","))"])
            return .applied(policies: names)
        } catch {
            logger.error("reload rejected; the configuration in force stays", metadata: ["sluice.config": "\(path)", "error": "\(error)"])
            return .rejected(error)
        }
    }
}
