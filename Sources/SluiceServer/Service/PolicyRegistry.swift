public import SluiceCore
import Synchronization

/// What is in force: the policies and the forward-auth rules resolved against them. Replaced whole on
/// reload (so rules never point at a policy of another generation); connections read it once per batch.
public final class PolicyRegistry: Sendable {
    /// One generation of the configuration.
    public struct Snapshot: Sendable {
        /// The policies.
        public let policies: PolicySet
        /// The forward-auth rules, resolved against `policies`.
        public let forwardAuth: ForwardAuthRules
    }

    private let current: Locked<Snapshot>
    // Bumped on every replacement, so a connection re-reads the set only when it changed.
    private let version = Atomic<UInt64>(0)

    /// Creates a registry holding `policies` and `forwardAuth`.
    public init(_ policies: PolicySet, forwardAuth: ForwardAuthRules = .none) {
        current = Locked(Snapshot(policies: policies, forwardAuth: forwardAuth))
    }

    /// Everything in force now.
    public var snapshot: Snapshot { current.withLock { $0 } }

    /// The policy set now.
    public var policies: PolicySet { snapshot.policies }

    /// A number that changes whenever the configuration is replaced.
    public var generation: UInt64 { version.load(ordering: .acquiring) }

    /// What one connection reads: the snapshot it last took, taken again only after a reload.
    public struct Reader: Sendable {
        private let registry: PolicyRegistry
        private var generation: UInt64
        /// The configuration as of the last ``refresh()``.
        public private(set) var snapshot: Snapshot

        init(_ registry: PolicyRegistry) {
            self.registry = registry
            // Generation first: a reload in between only makes the next refresh read again.
            generation = registry.generation
            snapshot = registry.snapshot
        }

        /// Takes the new snapshot if a reload replaced it; otherwise costs one atomic load, no lock.
        public mutating func refresh() {
            let current = registry.generation
            guard current != generation else { return }
            generation = current
            snapshot = registry.snapshot
        }
    }

    /// A reader for one connection.
    public func reader() -> Reader { Reader(self) }

    /// Puts `policies` and `forwardAuth` in force. Buckets of unchanged policies keep their state (their
    /// seeds are unchanged).
    public func replace(with policies: PolicySet, forwardAuth: ForwardAuthRules = .none) {
        current.withLock { $0 = Snapshot(policies: policies, forwardAuth: forwardAuth) }
        version.add(1, ordering: .releasing)
    }
}
