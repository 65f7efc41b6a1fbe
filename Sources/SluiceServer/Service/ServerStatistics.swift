public import SluiceCore
import Synchronization

/// Counters shared by every connection, for `INFO` and metrics.
///
/// Connections count locally while they process a read and add their totals here once per read, so the
/// shared atomics are touched once per batch, not once per decision.
public final class ServerStatistics: Sendable {
    /// Counts one connection accumulates during one read.
    public struct Batch: Sendable {
        /// Commands executed.
        public var commands = 0
        /// Checks allowed.
        public var allowed = 0
        /// Checks denied and enforced.
        public var denied = 0
        /// Checks a shadow policy would have denied (and let through).
        public var shadowDenied = 0

        /// Creates an empty batch.
        public init() {}

        /// Adds another batch's counts.
        public mutating func add(_ other: Batch) {
            commands += other.commands
            allowed += other.allowed
            denied += other.denied
            shadowDenied += other.shadowDenied
        }

        /// Counts one decision: allowed, shadow-denied (let through) or denied; and under its policy in `policies`.
        public mutating func count(_ decision: Decision, in policies: PolicySet) {
            policies.count(decision)
            countOutcome(decision)
        }

        private mutating func countOutcome(_ decision: Decision) {
            if decision.outcome == .allowed {
                allowed += 1
            } else if decision.isShadowed {
                shadowDenied += 1
            } else {
                denied += 1
            }
        }

        /// Counts the decisions of one request: once by its verdict (`byVerdict`, for a request that states
        /// several checks), or each decision on its own; each under its policy in `policies`.
        public mutating func count(_ result: RateLimiter.MultiDecision, byVerdict: Bool, in policies: PolicySet) {
            for decision in result.decisions { policies.count(decision) }
            guard byVerdict else {
                for decision in result.decisions { countOutcome(decision) }
                return
            }
            if result.isAllowed { allowed += 1 } else { denied += 1 }
            shadowDenied += result.decisions.count { $0.isShadowed }
        }
    }

    let startedAt: ContinuousClock.Instant = .now
    // Relaxed everywhere: these are independent monotonic counters, read only for reporting.
    let connectionsOpen = Atomic<Int>(0)
    let connectionsTotal = Atomic<Int>(0)
    let commands = Atomic<Int>(0)
    let allowed = Atomic<Int>(0)
    let denied = Atomic<Int>(0)
    let shadowDenied = Atomic<Int>(0)
    let protocolErrors = Atomic<Int>(0)
    let connectionsRefused = Atomic<Int>(0)
    let idleClosed = Atomic<Int>(0)
    let requestTimeouts = Atomic<Int>(0)
    let connectionIDs = Atomic<Int>(0)

    /// Creates zeroed counters.
    public init() {}

    /// Adds a connection's batch.
    public func add(_ batch: Batch) {
        if batch.commands > 0 { commands.add(batch.commands, ordering: .relaxed) }
        if batch.allowed > 0 { allowed.add(batch.allowed, ordering: .relaxed) }
        if batch.denied > 0 { denied.add(batch.denied, ordering: .relaxed) }
        if batch.shadowDenied > 0 { shadowDenied.add(batch.shadowDenied, ordering: .relaxed) }
    }

    func connectionOpened() {
        connectionsOpen.add(1, ordering: .relaxed)
        connectionsTotal.add(1, ordering: .relaxed)
    }

    func connectionClosed() { connectionsOpen.subtract(1, ordering: .relaxed) }

    func protocolErrorOccurred() { protocolErrors.add(1, ordering: .relaxed) }

    /// A connection over `limits.max_connections` was told so and closed.
    public func connectionRefused() { connectionsRefused.add(1, ordering: .relaxed) }

    /// A connection silent for `limits.idle_timeout` was closed.
    func connectionClosedIdle() { idleClosed.add(1, ordering: .relaxed) }

    /// An HTTP request did not arrive within `limits.request_timeout`.
    func requestTimedOut() { requestTimeouts.add(1, ordering: .relaxed) }

    /// A process-wide connection number for `CLIENT ID` and HELLO.
    func nextConnectionID() -> Int { connectionIDs.add(1, ordering: .relaxed).newValue }

    /// A point-in-time copy of the counters.
    public struct Snapshot: Sendable, Hashable {
        public var uptimeSeconds: Int64
        public var connectionsOpen: Int
        public var connectionsTotal: Int
        public var commands: Int
        public var allowed: Int
        public var denied: Int
        public var shadowDenied: Int
        public var protocolErrors: Int
        public var connectionsRefused: Int
        public var idleClosed: Int
        public var requestTimeouts: Int
    }

    /// Reads every counter.
    public func snapshot() -> Snapshot {
        Snapshot(
            uptimeSeconds: (ContinuousClock.now - startedAt).components.seconds,
            connectionsOpen: connectionsOpen.load(ordering: .relaxed),
            connectionsTotal: connectionsTotal.load(ordering: .relaxed),
            commands: commands.load(ordering: .relaxed),
            allowed: allowed.load(ordering: .relaxed),
            denied: denied.load(ordering: .relaxed),
            shadowDenied: shadowDenied.load(ordering: .relaxed),
            protocolErrors: protocolErrors.load(ordering: .relaxed),
            connectionsRefused: connectionsRefused.load(ordering: .relaxed),
            idleClosed: idleClosed.load(ordering: .relaxed),
            requestTimeouts: requestTimeouts.load(ordering: .relaxed)
        )
    }
}
