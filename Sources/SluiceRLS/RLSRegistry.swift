public import SluiceConfig
public import SluiceCore
import Synchronization

/// The envoyproxy/ratelimit domains in force, compiled, with the `rls` settings: replaced whole on reload.
public final class RLSRegistry: Sendable {
    /// One generation.
    public struct Snapshot: Sendable {
        public let matcher: DescriptorMatcher
        public let settings: SluiceConfiguration.RLS
    }

    private let current: Locked<Snapshot>

    /// Compiles `settings`'s domains.
    ///
    /// - Throws: ``PolicyError`` if two generated policy names collide.
    public init(_ settings: SluiceConfiguration.RLS) throws(PolicyError) {
        current = Locked(Snapshot(matcher: try DescriptorMatcher(domains: settings.domains), settings: settings))
    }

    /// What is in force now.
    public var snapshot: Snapshot { current.withLock { $0 } }

    /// Puts `settings`'s domains in force; buckets of unchanged limits keep their state.
    public func replace(with settings: SluiceConfiguration.RLS) throws(PolicyError) {
        let snapshot = Snapshot(matcher: try DescriptorMatcher(domains: settings.domains), settings: settings)
        current.withLock { $0 = snapshot }
    }
}
