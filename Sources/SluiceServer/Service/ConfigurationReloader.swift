public import Logging
public import SluiceConfig
import SluiceCore

/// Rereads the configuration file and puts its policies and forward-auth rules in force (through the
/// ``ConfigurationState``, which the admin API writes through too), or keeps what is in force when the file
/// is invalid. Listeners, store sizes and caps need a restart and are not touched;
/// a file whose `redis` section differs from the one in force is rejected, as that too needs a restart.
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

    let state: ConfigurationState
    let logger: Logger
    /// What else a new configuration is put into (the rate limit service's domains); run before the policies
    /// are swapped, so one that throws rejects the whole reload and nothing changes.
    let applyFirst: (@Sendable (SluiceConfiguration) throws -> Void)?

    /// Creates a reloader of `state`'s file; `applyFirst` puts a valid new configuration into what else
    /// depends on it.
    public init(state: ConfigurationState, logger: Logger, applyFirst: (@Sendable (SluiceConfiguration) throws -> Void)? = nil) {
        self.state = state
        self.logger = logger
        self.applyFirst = applyFirst
    }

    /// Rereads the file and applies it if valid; logs what happened.
    @discardableResult
    public func reload() -> Outcome {
        guard let path = state.path else {
            logger.notice("reload ignored: running on the embedded default configuration (no --config)")
            return .noFile
        }
        do throws(ConfigurationError) {
            let configuration = try state.reload { (configuration, current) throws(ConfigurationError) in
                let redis = current.configuration.redis
                guard configuration.redis == redis else {
                    throw ConfigurationError(
                        .invalidValue, path: "redis", line: nil,
                        redis == nil
                            ? "this process started without Redis; global policies and a redis section need a restart"
                            : "the redis section changed; connecting elsewhere needs a restart (the section in force stays)"
                    )
                }
                do {
                    try applyFirst?(configuration)
                } catch {
                    throw ConfigurationError(.invalidValue, path: "rls", "\(error)")
                }
            }
            let names = configuration.policies.map(\.name)
            logger.notice("reloaded policies", metadata: ["sluice.config": "\(path)", "sluice.policies": "\(names.joined(separator: ","))"])
            return .applied(policies: names)
        } catch {
            logger.error("reload rejected; the configuration in force stays", metadata: ["sluice.config": "\(path)", "error": "\(error)"])
            return .rejected(error)
        }
    }
}
