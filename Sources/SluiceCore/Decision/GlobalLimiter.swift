/// Decides the checks of global policies, whose budget the fleet shares.
///
/// The servers talk to Redis only through this protocol; `SluiceRedis` implements it, and the executable
/// is the one place the two meet.
public protocol GlobalLimiter: AnyObject, Sendable {
    /// Decides `check` of the global `policy` for the caller's `key`.
    ///
    /// - Parameters:
    ///   - check: the check, resolved as for a local policy (its ``BucketKey`` names the bucket in this process).
    ///   - policy: the policy, global.
    ///   - key: the caller's key bytes (the shared store's key is built from them, readable).
    ///   - now: the time.
    ///   - consume: false to decide without consuming (PEEK).
    /// - Returns: ``GlobalDecision/decided(_:)`` when this process can answer at once (a lease, a known
    ///   exhaustion, Redis known to be down); ``GlobalDecision/pending(_:)`` when Redis must be asked. A pending
    ///   decision is answered by the limiter or, after ``timeout``, by the caller's ``PendingDecision/expire(now:)``.
    func decide(_ check: Check, policy: Policy, key: UnsafeRawBufferPointer, now: Timestamp, consume: Bool) -> GlobalDecision

    /// Gives back what an allowed `check` took, for a request that a later local check denied: `charge` says
    /// where it came from (a lease, or Redis and which window). A decision that took nothing global (a
    /// fallback, a shadow denial) has no charge and nothing is given back. Never waits.
    func refund(_ check: Check, policy: Policy, key: UnsafeRawBufferPointer, charge: GlobalCharge, now: Timestamp)

    /// Makes the bucket of `check` full again for the whole fleet (the admin API's `DELETE /v1/buckets/...`):
    /// removes it from Redis and drops this process's lease on it. Returns whether Redis confirmed within the
    /// timeout.
    func reset(_ check: Check, policy: Policy, key: [UInt8]) async -> Bool

    /// The longest any decision waits for Redis; the caller expires pending decisions after it.
    var timeout: Duration { get }

    /// Counters and state for `INFO`, `/readyz` and `/metrics`.
    func status() -> GlobalLimiterStatus
}

/// A global decision: made now, or waiting for Redis.
public enum GlobalDecision: Sendable {
    /// Decided from this process's state; the charge when it took from the global budget.
    case decided(Decision, GlobalCharge?)
    /// Waiting for Redis; answered exactly once.
    case pending(PendingDecision)
}

/// Where an allowed global decision took its cost from, so a refund goes back exactly there.
public struct GlobalCharge: Sendable, Hashable {
    /// Taken from this process's lease (else from Redis directly, or from the local store).
    public var fromLease: Bool
    /// The window the cost was counted in (windows), or -1.
    public var window: Int64
    /// The lease's renewal count when it was charged: a token-bucket lease refunds into itself only if no
    /// renewal has since reported what it holds.
    public var renewals: Int64
    /// Which lease it was, so a refund never lands in a later lease of the same bucket.
    public var lease: UInt64
    /// Set when the policy's `local` failure behaviour decided: the cost is in this process's store.
    public var local: LocalCharge? {
        get { localBox?.charge }
        set { localBox = newValue.map(LocalChargeBox.init) }
    }
    /// `local`, boxed: a local charge holds a whole ``Check`` (about 150 bytes) and is rare, while a charge is
    /// copied several times on every leased decision; unboxed it made each copy 184 bytes instead of 40.
    @usableFromInline var localBox: LocalChargeBox?

    /// Creates a charge on Redis's count: from this process's lease, or from Redis directly.
    ///
    /// Inlinable, as every leased decision makes one: called across the module, it took an optional
    /// ``LocalCharge`` argument, built in memory (a `memcpy` of its 150 bytes) only to say there was none.
    @inlinable
    public init(fromLease: Bool, window: Int64, renewals: Int64 = 0, lease: UInt64 = 0) {
        self.fromLease = fromLease
        self.window = window
        self.renewals = renewals
        self.lease = lease
        self.localBox = nil
    }

    /// Creates a charge the policy's `local` failure behaviour took from this process's store.
    public init(local: LocalCharge) {
        self.init(fromLease: false, window: -1)
        self.localBox = LocalChargeBox(local)
    }
}

/// A ``LocalCharge`` behind a reference, compared and hashed by value.
@usableFromInline
final class LocalChargeBox: Sendable, Hashable {
    let charge: LocalCharge
    init(_ charge: LocalCharge) { self.charge = charge }
    @usableFromInline static func == (lhs: LocalChargeBox, rhs: LocalChargeBox) -> Bool { lhs.charge == rhs.charge }
    @usableFromInline func hash(into hasher: inout Hasher) { hasher.combine(charge) }
}
