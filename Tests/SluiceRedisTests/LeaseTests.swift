import SluiceCore
import Testing

@testable import SluiceRedis

/// The lease bookkeeping on its own: no Redis, no threads, time from a manual clock, Redis's replies written
/// by hand as the scripts would send them.
struct LeaseTests {
    static let second: Int64 = 1_000_000_000
    static let millisecond: Int64 = 1_000_000
    /// A renewal unanswered for longer than this is taken as lost.
    static let stale: Int64 = 100 * millisecond

    let clock = ManualClock()

    static func rateLimit(_ algorithm: Algorithm, limit: Int64 = 1000, period: Int64 = 3600 * second) -> RateLimit {
        do {
            return try RateLimit(algorithm: algorithm, limit: limit, periodNanoseconds: period)
        } catch {
            preconditionFailure("test limit is valid: \(error)")
        }
    }

    static func lease(_ algorithm: Algorithm = .fixedWindow, limit: Int64 = 1000) -> Lease {
        let rateLimit = rateLimit(algorithm, limit: limit)
        return Lease(key: BucketKey(seed: 1, key: "k"), redisKey: Array("test:{p|k}:fw".utf8), rateLimit: rateLimit, identity: 7)
    }

    static func check(_ lease: Lease, cost: Int64 = 1) -> Check {
        Check(rateLimit: lease.rateLimit, key: lease.key, cost: cost)
    }

    /// A decision waiting for a lease, whose failure policy (on its timeout) denies.
    static func waiter(_ lease: Lease, cost: Int64 = 1) -> Waiter {
        let check = check(lease, cost: cost)
        let pending = PendingDecision { _ in
            (Decision(outcome: .denied, limit: 1000, remaining: 0, resetAfterNanoseconds: 0, retryAfterNanoseconds: 1).answering(check), nil)
        }
        return Waiter(check: check, pending: pending)
    }

    /// A grant as the scripts send it: `granted` units of window `window`, valid `valid` ms.
    static func grant(_ granted: Int64, remaining: Int64 = 500, window: Int64 = 7, validMilliseconds: Int64 = 60_000) -> ScriptReply {
        ScriptReply(
            allowed: granted > 0, granted: granted, remaining: remaining, resetMilliseconds: validMilliseconds, retryMilliseconds: 0,
            window: window, validMilliseconds: validMilliseconds
        )
    }

    var now: Int64 { clock.now().nanoseconds }

    /// Opens `lease` with a first grant of `granted`, through a waiter, and returns the waiter's charge.
    func open(_ lease: inout Lease, granted: Int64, window: Int64 = 7) throws -> GlobalCharge {
        let first = Self.waiter(lease)
        let spend1 = lease.spend(first.check, now: now, staleAfter: Self.stale, connected: true)
        #expect(spend1.isNeedsRedis)
        let renewalStarted = lease.wait(first, now: now)
        let renewal = try #require(renewalStarted)
        let settled = lease.apply(Self.grant(granted, window: window), of: renewal, now: now)
        #expect(settled.answers.count == 1)
        return try #require(settled.answers.first?.charge)
    }

    @Test("a first decision waits for a renewal that asks for at least its cost; the grant answers it from the slice")
    func firstGrantAnswersTheWaiter() throws {
        var lease = Self.lease()
        let waiter = Self.waiter(lease, cost: 3)
        let spend2 = lease.spend(waiter.check, now: now, staleAfter: Self.stale, connected: true)
        #expect(spend2.isNeedsRedis)
        let renewalStarted = lease.wait(waiter, now: now)
        let renewal = try #require(renewalStarted)
        #expect(renewal.number == 1)
        #expect(renewal.need == 3)
        #expect(renewal.want >= 3)
        #expect(renewal.call.mode == .lease)
        // A second waiter does not send a second renewal while one is in flight.
        let second = lease.wait(Self.waiter(lease), now: now)
        #expect(second == nil)
        let settled = lease.apply(Self.grant(10), of: renewal, now: now)
        #expect(settled.answers.map(\.decision.outcome) == [.allowed, .allowed])
        #expect(settled.answers.allSatisfy { $0.charge == GlobalCharge(fromLease: true, window: 7, renewals: 1, lease: 7) })
        #expect(lease.remaining == 10 - 3 - 1)
        #expect(waiter.pending.isAnswered)
        #expect(!lease.renewing)
    }

    @Test("a renewal starts once half of the last grant is spent, one at a time; a lost one is replaced, its late reply ignored")
    func renewals() throws {
        var lease = Self.lease()
        _ = try open(&lease, granted: 8)  // 7 left
        var renewal: Renewal?
        for spent in 1...3 {
            guard case .allowed(_, _, let started) = lease.spend(Self.check(lease), now: now, staleAfter: Self.stale, connected: true) else {
                Issue.record("spend \(spent) was not allowed")
                return
            }
            renewal = started
        }
        // 4 left of a grant of 8: the third spend started renewal 2, keeping 4.
        let second = try #require(renewal)
        #expect(second.number == 2)
        #expect(second.keep == 4)
        guard case .allowed(_, let charge, nil) = lease.spend(Self.check(lease), now: now, staleAfter: Self.stale, connected: true) else {
            Issue.record("a spend while renewing starts nothing")
            return
        }
        #expect(charge.renewals == 2)
        // Unanswered past the stale limit: the next spend starts renewal 3.
        clock.advance(nanoseconds: Self.stale + 1)
        guard case .allowed(_, _, let third?) = lease.spend(Self.check(lease), now: now, staleAfter: Self.stale, connected: true) else {
            Issue.record("a stale renewal is replaced")
            return
        }
        #expect(third.number == 3)
        // Renewal 2's late reply changes nothing; renewal 3's is applied.
        let before = lease.remaining
        let result3 = lease.apply(Self.grant(100), of: second, now: now)
        #expect(result3.answers.isEmpty)
        #expect(lease.remaining == before)
        #expect(lease.renewing)
        _ = lease.apply(Self.grant(5), of: third, now: now)
        #expect(lease.remaining == before + 5)
        #expect(!lease.renewing)
    }

    @Test("no renewal starts while Redis is down; the slice is still spent")
    func disconnected() throws {
        var lease = Self.lease()
        _ = try open(&lease, granted: 2)
        guard case .allowed(_, _, nil) = lease.spend(Self.check(lease), now: now, staleAfter: Self.stale, connected: false) else {
            Issue.record("allowed from the slice, no renewal")
            return
        }
        #expect(!lease.renewing)
    }

    @Test("a slice expires with its window: nothing is spent, returned or refunded after it")
    func expiry() throws {
        var lease = Self.lease()
        let charge = try open(&lease, granted: 10)
        #expect(lease.returnable(now: now) == 9)
        clock.advance(nanoseconds: 60 * Self.second)  // the grant was valid 60 s
        let spend4 = lease.spend(Self.check(lease), now: now, staleAfter: Self.stale, connected: true)
        #expect(spend4.isNeedsRedis)
        #expect(lease.returnable(now: now) == 0, "a dead slice is not returned on shutdown")
        let result5 = lease.refund(1, charge: charge, now: now)
        #expect(!result5, "nor refunded into")
        let renewal = lease.startRenewal(need: 1, now: now)
        #expect(renewal.keep == 0, "an expired slice is gone")
        #expect(lease.remaining == 0)
    }

    @Test("a slice of an earlier window dies when a renewal lands in a new window")
    func newWindow() throws {
        var lease = Self.lease()
        _ = try open(&lease, granted: 10, window: 7)
        let renewal = lease.startRenewal(need: 1, now: now)
        _ = lease.apply(Self.grant(4, window: 8), of: renewal, now: now)
        #expect(lease.remaining == 4)
        #expect(lease.window == 8)
    }

    @Test("refunds go back where the cost came from: a window's slice within its window, else to Redis")
    func windowRefundProvenance() throws {
        var lease = Self.lease()
        let charge = try open(&lease, granted: 10, window: 7)
        let before = lease.remaining
        let result6 = lease.refund(1, charge: charge, now: now)
        #expect(result6)
        #expect(lease.remaining == before + 1)
        // Taken from Redis directly (strict, or a full lease table): not the slice's to take back.
        let result7 = lease.refund(1, charge: GlobalCharge(fromLease: false, window: 7), now: now)
        #expect(!result7)
        // Taken from an earlier lease of this bucket (one swept since).
        let earlier = lease.refund(1, charge: GlobalCharge(fromLease: true, window: 7, renewals: 1, lease: 6), now: now)
        #expect(!earlier)
        // Counted in another window.
        let result8 = lease.refund(1, charge: GlobalCharge(fromLease: true, window: 6, renewals: 1, lease: 7), now: now)
        #expect(!result8)
        // A renewal in the same window does not change where a window's refund goes.
        let renewal = lease.startRenewal(need: 1, now: now)
        let result9 = lease.refund(1, charge: charge, now: now)
        #expect(result9)
        _ = lease.apply(Self.grant(3, window: 7), of: renewal, now: now)
        #expect(lease.remaining == before + 2 + 3)
        #expect(lease.returnable(now: now) == lease.remaining)
    }

    @Test("token bucket: a refund racing a renewal goes to Redis, which counted the token as spent; after the reply too")
    func tokenBucketRefundAfterRenewal() throws {
        var lease = Self.lease(.tokenBucket)
        let first = try open(&lease, granted: 10)
        #expect(first.renewals == 1)
        guard case .allowed(_, let charge, nil) = lease.spend(Self.check(lease), now: now, staleAfter: Self.stale, connected: true) else {
            Issue.record("allowed without a renewal")
            return
        }
        let result10 = lease.refund(1, charge: charge, now: now)
        #expect(result10, "before any renewal: back into the slice")
        // The renewal reports what is held: from now on a token spent before it is Redis's to get back.
        let remaining = lease.remaining
        let renewal = lease.startRenewal(need: 1, now: now)
        #expect(renewal.keep == remaining)
        let result11 = lease.refund(1, charge: charge, now: now)
        #expect(!result11, "racing the renewal: not into the slice")
        let reply = ScriptReply(
            allowed: true, granted: 2, remaining: 5, resetMilliseconds: 100, retryMilliseconds: 0, window: 0, validMilliseconds: 2000
        )
        _ = lease.apply(reply, of: renewal, now: now)
        #expect(lease.remaining == remaining + 2, "Redis counts at most what the renewal said was kept")
        let result12 = lease.refund(1, charge: charge, now: now)
        #expect(!result12, "after the reply: still not")
    }

    @Test("a token-bucket slice spent while its renewal flies is held to what the renewal reported")
    func tokenBucketKeepCapsTheSlice() throws {
        var lease = Self.lease(.tokenBucket)
        _ = try open(&lease, granted: 10)
        let renewal = lease.startRenewal(need: 1, now: now)  // keeps 9
        for _ in 0..<3 { _ = lease.spend(Self.check(lease), now: now, staleAfter: Self.stale, connected: true) }
        _ = lease.apply(Self.grant(0, window: 0), of: renewal, now: now)
        #expect(lease.remaining == 6, "min(spent-down 6, kept 9) + granted 0")
    }

    @Test("an exhausted budget denies here until Redis's retry time, for costs at least the one that found it empty")
    func exhaustion() throws {
        var lease = Self.lease()
        let waiter = Self.waiter(lease, cost: 2)
        _ = lease.spend(waiter.check, now: now, staleAfter: Self.stale, connected: true)
        let renewalStarted = lease.wait(waiter, now: now)
        let renewal = try #require(renewalStarted)
        let empty = ScriptReply(
            allowed: false, granted: 0, remaining: 1, resetMilliseconds: 3_000, retryMilliseconds: 500, window: 7, validMilliseconds: 3_000
        )
        let settled = lease.apply(empty, of: renewal, now: now)
        #expect(settled.answers.map(\.decision.outcome) == [.denied])
        #expect(settled.answers.first?.charge == nil)
        #expect(settled.next == nil)
        guard case .exhausted(let denied) = lease.spend(Self.check(lease, cost: 2), now: now, staleAfter: Self.stale, connected: true) else {
            Issue.record("denied without asking Redis")
            return
        }
        #expect(denied.retryAfterNanoseconds == 500 * Self.millisecond)
        let spend13 = lease.spend(Self.check(lease, cost: 1), now: now, staleAfter: Self.stale, connected: true)
        #expect(spend13.isNeedsRedis, "a smaller cost may fit")
        clock.advance(nanoseconds: 500 * Self.millisecond)
        let spend14 = lease.spend(Self.check(lease, cost: 2), now: now, staleAfter: Self.stale, connected: true)
        #expect(spend14.isNeedsRedis)
    }

    @Test("a waiter its timeout already answered takes nothing from the grant; one the grant cannot serve waits for the next renewal")
    func waitersAnsweredByTheirTimeout() throws {
        var lease = Self.lease()
        let late = Self.waiter(lease, cost: 1)
        let big = Self.waiter(lease, cost: 5)
        _ = lease.spend(late.check, now: now, staleAfter: Self.stale, connected: true)
        let renewalStarted = lease.wait(late, now: now)
        let renewal = try #require(renewalStarted)
        _ = lease.wait(big, now: now)
        late.pending.expire(now: clock.now())  // its failure policy answered first
        let settled = lease.apply(Self.grant(3), of: renewal, now: now)
        #expect(settled.answers.isEmpty)
        #expect(lease.remaining == 3, "nothing spent for the expired waiter")
        let next = try #require(settled.next, "the big waiter needs a further renewal")
        #expect(next.need == 5)
        #expect(lease.waiters.count == 1)
    }

    @Test("a failed renewal hands its waiters to the failure policy; a failure of a lost renewal changes nothing")
    func failedRenewal() throws {
        var lease = Self.lease()
        let waiter = Self.waiter(lease)
        _ = lease.spend(waiter.check, now: now, staleAfter: Self.stale, connected: true)
        let renewalStarted = lease.wait(waiter, now: now)
        let renewal = try #require(renewalStarted)
        let lost = Renewal(
            key: renewal.key, redisKey: renewal.redisKey, rateLimit: renewal.rateLimit, number: 0, sentAt: 0, want: 1, need: 1, keep: 0
        )
        let result15 = lease.fail(lost)
        #expect(result15.isEmpty)
        #expect(lease.renewing)
        let failed = lease.fail(renewal)
        #expect(failed.count == 1)
        #expect(failed.first === waiter.pending)
        #expect(lease.waiters.isEmpty)
        #expect(!lease.renewing)
    }

    @Test("the slice asked for doubles while slices last under a quarter second, halves when they last over two, within capacity/16")
    func sliceSizing() throws {
        var lease = Self.lease(limit: 1000)
        _ = try open(&lease, granted: 2)
        var wants: [Int64] = []
        for _ in 0..<5 {
            clock.advance(nanoseconds: 10 * Self.millisecond)
            let renewal = lease.startRenewal(need: 1, now: now)
            wants.append(renewal.want)
            _ = lease.apply(Self.grant(renewal.want), of: renewal, now: now)
        }
        #expect(wants == [32, 62, 62, 62, 62], "the initial 16 doubles to 32, then is capped at 1000/16")
        clock.advance(nanoseconds: 3 * Self.second)
        let result16 = lease.startRenewal(need: 1, now: now)
        #expect(result16.want == 31)
    }

    @Test("a hot key's slice grows to what lasts a second at the rate the last one was spent, at most eightfold a step")
    func sliceSizedFromTheRate() throws {
        var lease = Self.lease(limit: 1_000_000)  // capacity/16 = 62,500: the bound never binds here
        _ = try open(&lease, granted: 16)  // the first waiter took 1: 15 held
        // Served a thousand times a second, after `pause`: each renewal starts once half the slice is spent.
        func serve(after pause: Int64 = 0) -> Int64 {
            clock.advance(nanoseconds: pause)
            let spend = lease.remaining - lease.lastGrant / 2
            clock.advance(nanoseconds: spend * Self.millisecond)
            lease.remaining -= spend
            let renewal = lease.startRenewal(need: 1, now: now)
            _ = lease.apply(Self.grant(renewal.want), of: renewal, now: now)
            return renewal.want
        }
        #expect([serve(), serve(), serve()] == [128, 1000, 1000], "16 grows eightfold, then to a second's worth at 1000/s, and stays")
        // Idle for three seconds, then served at 1000/s again: the pause halves the slice and the traffic brings it
        // back to a second's worth (it stayed at 500, half a second's worth and twice the renewals, while a slice was
        // kept whenever half of it lasted from a quarter second to two).
        #expect([serve(after: 3 * Self.second), serve(), serve()] == [500, 1000, 1000])
        #expect(Lease.nextWant(1000, spent: 1_000_000, in: 1, largest: 62_500) == 8000, "a burst grows it eightfold, no more")
        #expect(Lease.nextWant(1000, spent: 10, in: 100 * Self.millisecond, largest: 62_500) == 2000, "a slow spend still doubles")
        #expect(Lease.nextWant(60_000, spent: 1_000_000, in: Self.millisecond, largest: 62_500) == 62_500, "capacity/16 bounds it")
        #expect(Lease.nextWant(1000, spent: 0, in: 0, largest: 62_500) == 2000, "nothing measured: it doubles")
        #expect(Lease.nextWant(1000, spent: 500, in: Self.second / 2, largest: 62_500) == 1000, "half a slice in half a second: it lasts a second, kept")
        #expect(Lease.nextWant(1000, spent: 500, in: Self.second * 3 / 10, largest: 62_500) == 1666, "half in 300 ms: grown to a second's worth")
        #expect(Lease.nextWant(1000, spent: 500, in: Self.second * 3 / 10, largest: 1200) == 1200, "capacity/16 bounds a step past a quarter second too")
        #expect(Lease.nextWant(1000, spent: 400, in: Self.second, largest: 62_500) == 500, "half a slice in a second: halved, toward a second's worth")
        #expect(Lease.nextWant(1000, spent: 500, in: Self.second * 4 / 5, largest: 62_500) == 625, "half in 800 ms: a second's worth")
        #expect(Lease.nextWant(1000, spent: 500, in: Self.second / 4, largest: 62_500) == 2000, "at a quarter second: doubled, at most")
        #expect(Lease.nextWant(1000, spent: 400, in: 3 * Self.second, largest: 62_500) == 500, "over two seconds: halved")
        #expect(Lease.nextWant(1, spent: 0, in: 3 * Self.second, largest: 62_500) == 1, "never below one")
    }

    @Test("an idle lease with nothing in flight or known is disposable after a second")
    func disposable() throws {
        var lease = Self.lease()
        _ = try open(&lease, granted: 1)  // spent at once
        #expect(!lease.isDisposable(now: now))
        clock.advance(nanoseconds: Self.second)
        #expect(lease.isDisposable(now: now))
        _ = lease.startRenewal(need: 1, now: now)
        #expect(!lease.isDisposable(now: now), "not while a renewal flies")
    }

    @Test("a peek reports what a take would leave, taking nothing")
    func peek() throws {
        var lease = Self.lease()
        _ = try open(&lease, granted: 10)  // 9 left here, 500 in Redis
        let answer = try #require(lease.peek(Self.check(lease, cost: 2), now: now))
        #expect(answer.outcome == .allowed)
        #expect(answer.remaining == 9 - 2 + 500)
        #expect(lease.remaining == 9)
        #expect(lease.peek(Self.check(lease, cost: 10), now: now) == nil, "more than the slice: ask Redis")
    }
}

extension Lease.Spend {
    var isNeedsRedis: Bool {
        if case .needsRedis = self { return true }
        return false
    }
}
