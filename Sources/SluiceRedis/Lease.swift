import SluiceCore
import Synchronization

/// One bucket's slice of a global budget, held by this process: the bookkeeping of leasing, as a value
/// type whose every method takes the time (nanoseconds, the decision clock) as an argument, so it is tested
/// with a manual clock and no Redis.
///
/// The cycle: ``spend(_:now:staleAfter:)`` takes from the slice while it is valid; once half of the last grant
/// is spent it starts a ``Renewal`` (one in flight at a time); ``apply(_:of:now:)`` folds Redis's reply in and
/// answers the decisions that waited for it (``wait(_:now:)``); ``refund(_:charge:now:)`` gives back what a
/// request denied by a later check took; ``returnable(now:)`` is what goes back to Redis on shutdown.
struct Lease: Sendable {
    /// This lease among all leases of the process: a charge names it, so a refund never reaches a later lease
    /// of the same bucket (one made after this one was swept).
    let identity: UInt64
    let key: BucketKey
    /// The bucket's key in Redis.
    let redisKey: [UInt8]
    let rateLimit: RateLimit
    /// Units of the slice not yet spent.
    var remaining: Int64 = 0
    /// Time after which the slice may not be spent: its window's end, or the holding's lifetime.
    var validUntil: Int64 = 0
    /// The Redis window the slice belongs to (windows only), for returning it.
    var window: Int64 = -1
    /// Until when Redis has nothing for a cost of at least ``exhaustedNeed``: denied here, no round trip.
    var exhaustedUntil: Int64 = 0
    var exhaustedNeed: Int64 = .max
    /// What Redis had left besides this slice at the last reply, for `remaining` in decisions.
    var globalRemaining: Int64 = 0
    /// When the bucket is full again, as of the last reply.
    var resetAt: Int64 = 0
    /// The last slice granted, when, and what the lease held once it was applied (``Lease/apply(_:of:now:)``):
    /// the next renewal reads the rate the slice was spent at from them.
    var lastGrant: Int64 = 0
    var grantedAt: Int64 = 0
    var heldAtGrant: Int64 = 0
    /// The slice to ask for next (``Lease/startRenewal(need:now:)``): what would last a second at the rate the
    /// last one was spent, moving at most by half or double a step (while half a slice goes in under a quarter
    /// second, at least double and at most eightfold).
    var want: Int64
    /// A renewal is in flight, sent at `renewalSentAt`.
    var renewing = false
    var renewalSentAt: Int64 = 0
    /// Renewals started so far; a reply is applied only to the renewal it answers.
    var renewals: Int64 = 0
    var lastUsed: Int64 = 0
    /// Decisions waiting for the renewal in flight, in arrival order.
    var waiters: [Waiter] = []
    /// The lease's cell in ``LeaseCells`` (-1: none), whether it is open (it then holds the unspent count, and
    /// ``remaining`` is not current: ``LeaseTable`` closes it before any method here runs), and the count it was
    /// opened with.
    var cell = -1
    var cellOpen = false
    var openedWith: Int64 = 0

    /// Numbers the leases of the process.
    private static let identities = Atomic<UInt64>(0)

    init(key: BucketKey, redisKey: [UInt8], rateLimit: RateLimit, identity: UInt64? = nil) {
        self.identity = identity ?? Self.identities.add(1, ordering: .relaxed).newValue
        self.key = key
        self.redisKey = redisKey
        self.rateLimit = rateLimit
        want = max(1, min(16, rateLimit.capacity / 16))
    }

    /// What ``spend(_:now:staleAfter:)`` decided.
    enum Spend {
        /// Taken from the slice; `renewal` is due to be sent.
        case allowed(Decision, GlobalCharge, renewal: Renewal?)
        /// Redis has nothing for this cost until a known time: denied without asking.
        case exhausted(Decision)
        /// The slice cannot serve it: Redis must be asked (``wait(_:now:)``), or the failure policy decides.
        case needsRedis
    }

    /// Spends `check.cost` from the slice, if it is valid and holds enough.
    ///
    /// - Parameters:
    ///   - check: the decision.
    ///   - now: the time.
    ///   - staleAfter: a renewal in flight longer than this is taken as lost (its reply will be ignored),
    ///     so the next renewal may start.
    ///   - connected: whether a renewal may be started now.
    mutating func spend(_ check: Check, now: Int64, staleAfter: Int64, connected: Bool) -> Spend {
        if validUntil > now, remaining >= check.cost {
            remaining -= check.cost
            lastUsed = now
            // The charge names the lease as it was before any renewal this decision starts.
            let charge = GlobalCharge(fromLease: true, window: window, renewals: renewals, lease: identity)
            let renewal = renewalIfDue(now: now, staleAfter: staleAfter, connected: connected)
            return .allowed(decision(for: check, now: now, allowed: true), charge, renewal: renewal)
        }
        if renewing, now - renewalSentAt > staleAfter { renewing = false }
        if exhaustedUntil > now, check.cost >= exhaustedNeed {
            return .exhausted(decision(for: check, now: now, allowed: false))
        }
        return .needsRedis
    }

    /// Starts a renewal if half of the last grant is spent and none flies (one in flight longer than `staleAfter`
    /// is taken as lost), while connected.
    mutating func renewalIfDue(now: Int64, staleAfter: Int64, connected: Bool) -> Renewal? {
        if renewing, now - renewalSentAt > staleAfter { renewing = false }
        return remaining * 2 <= lastGrant && !renewing && connected ? startRenewal(need: 1, now: now) : nil
    }

    /// Queues `waiter` for the renewal in flight, starting one if none is.
    ///
    /// - Returns: the renewal to send, if this call started it.
    mutating func wait(_ waiter: Waiter, now: Int64) -> Renewal? {
        waiters.append(waiter)
        return renewing ? nil : startRenewal(need: waiter.check.cost, now: now)
    }

    /// Drops waiters already answered (by their timeout); returns whether fewer than `limit` remain.
    mutating func hasRoomForWaiter(limit: Int) -> Bool {
        guard waiters.count >= limit else { return true }
        waiters.removeAll { $0.pending.isAnswered }
        return waiters.count < limit
    }

    /// Marks the lease renewing and says what to ask for: `need` is the least that helps the caller.
    mutating func startRenewal(need: Int64, now: Int64) -> Renewal {
        renewing = true
        renewalSentAt = now
        renewals += 1
        if lastGrant > 0 { want = Self.nextWant(want, spent: heldAtGrant - remaining, in: now - grantedAt, largest: max(1, rateLimit.capacity / 16)) }
        if validUntil <= now { remaining = 0 }  // an expired slice is gone
        let need = max(need, waiters.reduce(1) { $1.pending.isAnswered ? $0 : max($0, $1.check.cost) })
        return Renewal(
            key: key, redisKey: redisKey, rateLimit: rateLimit, number: renewals, sentAt: now, want: max(want, need), need: need, keep: remaining
        )
    }

    /// The slice to ask for after `spent` units went in `lasted` ns (a renewal starts once half a slice is spent):
    /// a second's worth at that rate, so a key served steadily settles at one renewal a second.
    ///
    /// Doubling alone took a key served a thousand times a second six renewals, and half a second of small
    /// slices running out, to reach its size; sized from the rate, it takes two. Growth stays bounded (eight
    /// times a step) so one burst does not claim a large slice, and the slice never passes `largest`. Past a
    /// quarter second a step moves it at most by half or double: a slice kept whenever half of it lasted from a
    /// quarter second to two (as it was) settled anywhere from half a second's worth to four, and one halved by an
    /// idle pause stayed at half a second's worth once the traffic was back, twice the renewals it needs.
    static func nextWant(_ want: Int64, spent: Int64, in lasted: Int64, largest: Int64) -> Int64 {
        // `spent` units in `lasted` ns: a second's worth, in floating point (the product overflows 64 bits).
        // Nothing measured (a renewal started as the last one was applied, for waiters it left): doubling.
        let perSecond = lasted > 0 ? Double(max(0, spent)) * 1e9 / Double(lasted) : 0
        let (lowest, highest) = lasted < 250_000_000 ? (want * 2, want * 8) : (want / 2, want * 2)
        let next = perSecond < Double(highest) ? max(lowest, Int64(perSecond)) : highest
        return max(1, min(largest, next))
    }

    /// What applying a renewal's reply settled.
    struct Settled {
        /// Waiters answered from the new slice (allowed, with their charge) or by a known exhaustion.
        var answers: [(pending: PendingDecision, decision: Decision, charge: GlobalCharge?)] = []
        /// A further renewal for waiters the reply did not serve.
        var next: Renewal?
    }

    /// Folds Redis's `reply` to `renewal` into the lease and answers the waiters it can, each claimed first so
    /// that a waiter its timeout already answered takes nothing.
    ///
    /// A reply to a renewal given up as lost (a newer one is in flight) changes nothing.
    mutating func apply(_ reply: ScriptReply, of renewal: Renewal, now: Int64) -> Settled {
        guard renewals == renewal.number else { return Settled() }
        renewing = false
        if rateLimit.algorithm == .tokenBucket {
            remaining = min(remaining, renewal.keep)  // Redis counts at most what we said we kept
        } else if reply.window != window {
            remaining = 0  // a slice of an earlier window is dead
        }
        window = reply.window
        remaining += reply.granted
        validUntil = renewal.sentAt + .nanoseconds(milliseconds: reply.validMilliseconds)
        globalRemaining = reply.remaining
        resetAt = now + .nanoseconds(milliseconds: reply.resetMilliseconds)
        lastGrant = reply.granted
        grantedAt = now
        if !reply.allowed, reply.granted == 0, reply.retryMilliseconds > 0 {
            exhaustedUntil = renewal.sentAt + .nanoseconds(milliseconds: reply.retryMilliseconds)
            exhaustedNeed = renewal.need
        } else {
            exhaustedUntil = 0
        }
        var settled = Settled()
        var still: [Waiter] = []
        for waiter in waiters {
            if validUntil > now, remaining >= waiter.check.cost {
                guard waiter.pending.claim() else { continue }
                remaining -= waiter.check.cost
                lastUsed = now
                let charge = GlobalCharge(fromLease: true, window: window, renewals: renewals, lease: identity)
                settled.answers.append((waiter.pending, decision(for: waiter.check, now: now, allowed: true), charge))
            } else if exhaustedUntil > now, waiter.check.cost >= exhaustedNeed {
                guard waiter.pending.claim() else { continue }
                settled.answers.append((waiter.pending, decision(for: waiter.check, now: now, allowed: false), nil))
            } else if !waiter.pending.isAnswered {
                still.append(waiter)
            }
        }
        waiters = still
        heldAtGrant = remaining
        if !still.isEmpty { settled.next = startRenewal(need: 1, now: now) }
        return settled
    }

    /// Ends `renewal` without a reply (Redis failed): nothing was learned, so its waiters are handed back to
    /// follow the failure policy. A failure of a renewal given up as lost changes nothing.
    mutating func fail(_ renewal: Renewal) -> [PendingDecision] {
        guard renewals == renewal.number else { return [] }
        renewing = false
        defer { waiters.removeAll() }
        return waiters.map(\.pending)
    }

    /// Gives `cost` back to the slice, if it came from this slice (``GlobalCharge/fromLease``) and the slice
    /// still owns it: a window's slice only within its window; a token-bucket slice only if no renewal has since
    /// reported what it holds (Redis then counted the cost as spent, so it must go back to Redis instead).
    ///
    /// - Returns: whether the slice took it back.
    mutating func refund(_ cost: Int64, charge: GlobalCharge, now: Int64) -> Bool {
        guard charge.fromLease, charge.lease == identity, validUntil > now else { return false }
        guard rateLimit.algorithm == .tokenBucket ? renewals == charge.renewals : window == charge.window else { return false }
        remaining += cost
        return true
    }

    /// A PEEK answered from the slice or a known exhaustion, taking nothing; nil when Redis must be asked.
    func peek(_ check: Check, now: Int64) -> Decision? {
        if validUntil > now, remaining >= check.cost {
            var answer = decision(for: check, now: now, allowed: true)
            answer.remaining = min(answer.limit, max(0, remaining - check.cost + globalRemaining))
            return answer
        }
        if exhaustedUntil > now, check.cost >= exhaustedNeed { return decision(for: check, now: now, allowed: false) }
        return nil
    }

    /// The unspent units that may still go back to Redis (on shutdown); 0 when none.
    func returnable(now: Int64) -> Int64 { validUntil > now ? max(0, remaining) : 0 }

    /// Forgets what this process knew of the bucket (its slice, a known exhaustion), after the bucket was reset
    /// in Redis: the next decision asks Redis. Waiters and a renewal in flight carry on.
    mutating func forget() {
        remaining = 0
        validUntil = 0
        exhaustedUntil = 0
        exhaustedNeed = .max
        globalRemaining = 0
    }

    /// Whether the lease can be forgotten: nothing in flight or waiting, nothing known, idle for a second.
    func isDisposable(now: Int64) -> Bool {
        !renewing && waiters.isEmpty && exhaustedUntil <= now && (validUntil <= now || remaining <= 0) && now - lastUsed >= 1_000_000_000
    }

    /// The decision the lease gives `check`: allowed from the slice, or denied until the known exhaustion ends.
    func decision(for check: Check, now: Int64, allowed: Bool) -> Decision {
        if allowed { return Self.allowed(check, remaining: remaining, globalRemaining: globalRemaining, resetAt: resetAt, now: now) }
        let capacity = check.rateLimit.capacity
        let reset = max(0, resetAt - now)
        return Decision(
            outcome: .denied, limit: capacity, remaining: 0, resetAfterNanoseconds: max(reset, exhaustedUntil - now),
            retryAfterNanoseconds: max(1, exhaustedUntil - now)
        ).answering(check)
    }
}

extension Lease {
    /// An allowed decision from a slice left with `remaining`, Redis having `globalRemaining` beside it and the
    /// bucket full at `resetAt`: what a spend answers, under the lock or from a cell (``LeaseCells``).
    @inline(__always)
    static func allowed(_ check: Check, remaining: Int64, globalRemaining: Int64, resetAt: Int64, now: Int64) -> Decision {
        let capacity = check.rateLimit.capacity
        return Decision(
            outcome: .allowed, limit: capacity, remaining: min(capacity, max(0, remaining + globalRemaining)),
            resetAfterNanoseconds: max(0, resetAt - now), retryAfterNanoseconds: 0
        ).answering(check)
    }
}

/// A renewal of a lease: what one script call asks Redis for.
///
/// A class: one is made only when a renewal is due, while the enums that may carry one (``Lease/Spend``,
/// ``LeaseTable/Outcome``) are copied on every leased decision; inline it added 136 bytes to each copy.
final class Renewal: Sendable {
    /// The lease's bucket, here and in Redis, and its limit.
    let key: BucketKey
    let redisKey: [UInt8]
    let rateLimit: RateLimit
    /// The lease's renewal count when it started; a reply is applied only if no newer renewal started since.
    let number: Int64
    /// When it was sent: a grant's validity and a known exhaustion count from here (Redis's clock may be ahead).
    let sentAt: Int64
    /// The slice asked for.
    let want: Int64
    /// The least that helps the decisions waiting.
    let need: Int64
    /// What this process still holds of the slice (token bucket: Redis counts at most this as held).
    let keep: Int64

    init(key: BucketKey, redisKey: [UInt8], rateLimit: RateLimit, number: Int64, sentAt: Int64, want: Int64, need: Int64, keep: Int64) {
        self.key = key
        self.redisKey = redisKey
        self.rateLimit = rateLimit
        self.number = number
        self.sentAt = sentAt
        self.want = want
        self.need = need
        self.keep = keep
    }

    /// The script call that sends it.
    var call: ScriptCall { ScriptCall(mode: .lease, want: want, need: need, keep: keep, window: -1) }
}

/// A decision waiting for a lease.
struct Waiter: Sendable {
    let check: Check
    let pending: PendingDecision
}
