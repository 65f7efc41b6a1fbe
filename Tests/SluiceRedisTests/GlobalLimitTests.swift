import Foundation
import SluiceCore
import SluiceRedis
import SluiceTestSupport
import Testing

/// Global policies against a real `redis-server` started on a free loopback port for each test.
@Suite("Global limits through Redis", .serialized, .requires("redis-server", "redis-cli"))
struct GlobalLimitTests {
    /// A decision as a test saw it: asked at `asked`, answered at `at` (the sidecars' clock, in nanoseconds).
    /// It was made in between: on a machine that stalls the process, possibly long before `at`.
    typealias Seen = (asked: Int64, at: Int64, allowed: Bool)

    /// Each sidecar decides until it has seen `stopAfterDenials` denials in a row (or `attempts` run out).
    static func hammer(
        _ sidecars: [Sidecar], policy: String, key: String, attempts: Int, stopAfterDenials: Int = .max
    ) async -> [Seen] {
        await withTaskGroup(of: [Seen].self) { group in
            for sidecar in sidecars {
                group.addTask {
                    var seen: [Seen] = []
                    var denials = 0
                    for _ in 0..<attempts {
                        let asked = sidecar.clock.now().nanoseconds
                        let decision = await sidecar.decide(policy, key)
                        seen.append((asked, sidecar.clock.now().nanoseconds, decision.isAllowed))
                        denials = decision.isAllowed ? 0 : denials + 1
                        if denials >= stopAfterDenials { break }
                    }
                    return seen
                }
            }
            var all: [Seen] = []
            for await part in group { all += part }
            return all.sorted { $0.at < $1.at }
        }
    }

    /// All sidecars decide, in rounds of 20 each, for `nanoseconds`.
    static func hammer(_ sidecars: [Sidecar], policy: String, key: String, for nanoseconds: Int64) async -> [Seen] {
        let start = sidecars[0].clock.now().nanoseconds
        var seen: [Seen] = []
        while sidecars[0].clock.now().nanoseconds - start < nanoseconds {
            seen += await hammer(sidecars, policy: policy, key: key, attempts: 20)
        }
        return seen
    }

    @Test("three sidecars on a 1000-per-hour fixed window admit 950 to 1000 in total, each from leases", arguments: RedisFlavor.available)
    func leasedFixedWindowAcrossThreeSidecars(flavor: RedisFlavor) async throws {
        try await awayFromWindowEdge(period: .seconds(3600), margin: .seconds(10))
        let redis = try RedisServerProcess(executable: flavor.executable)
        let policies = [policy("api", .fixedWindow, limit: 1000, period: .seconds(3600))]
        let sidecars = try await Sidecar.fleet(of: 3, redisPort: redis.port, policies: policies)
        let seen = await Self.hammer(sidecars, policy: "api", key: "tenant:1", attempts: 1500, stopAfterDenials: 10)
        let admitted = seen.count { $0.allowed }
        #expect((950...1000).contains(admitted), "admitted \(admitted)")
        // Each sidecar spent leases: most decisions took no round trip.
        let statuses = sidecars.map { $0.limiter.status() }
        let local = statuses.reduce(0) { $0 + $1.localDecisions }
        let waited = statuses.reduce(0) { $0 + $1.redisDecisions }
        #expect(local > waited * 3, "local \(local), waited \(waited)")
        #expect(statuses.allSatisfy { $0.fallbackDecisions == 0 })
        // Redis counts exactly what was granted; nothing more was spent.
        #expect(Int(try redis.cli("HGET", "test:{api|tenant:1}:fw", "c")) ?? -1 <= 1000)
        for sidecar in sidecars { await sidecar.shutdown() }
    }

    @Test("three sidecars on a strict 300 admit exactly 300", arguments: RedisFlavor.available)
    func strictAcrossThreeSidecars(flavor: RedisFlavor) async throws {
        try await awayFromWindowEdge(period: .seconds(3600), margin: .seconds(10))
        let redis = try RedisServerProcess(executable: flavor.executable)
        let policies = [policy("login", .slidingWindow, limit: 300, period: .seconds(3600), sync: .strict)]
        let sidecars = try await Sidecar.fleet(of: 3, redisPort: redis.port, policies: policies)
        let seen = await Self.hammer(sidecars, policy: "login", key: "user:7", attempts: 150)
        #expect(seen.count == 450)
        #expect(seen.count { $0.allowed } == 300)
        #expect(sidecars.allSatisfy { $0.limiter.status().fallbackDecisions == 0 })
        for sidecar in sidecars { await sidecar.shutdown() }
    }

    @Test("a key exhausted through one sidecar is denied on the others", arguments: RedisFlavor.available, [Policy.Global.Sync.leased, .strict])
    func exhaustionIsGlobal(flavor: RedisFlavor, sync: Policy.Global.Sync) async throws {
        try await awayFromWindowEdge(period: .seconds(3600), margin: .seconds(10))
        let redis = try RedisServerProcess(executable: flavor.executable)
        let policies = [
            policy("fw", .fixedWindow, limit: 10, period: .seconds(3600), sync: sync),
            policy("sw", .slidingWindow, limit: 10, period: .seconds(3600), sync: sync),
            policy("tb", .tokenBucket, limit: 10, period: .seconds(3600), sync: sync),
        ]
        let first = try await Sidecar(redisPort: redis.port, policies: policies)
        let others = [try await Sidecar(redisPort: redis.port, policies: policies), try await Sidecar(redisPort: redis.port, policies: policies)]
        for name in ["fw", "sw", "tb"] {
            var allowed = 0
            for _ in 0..<12 where await first.decide(name, "k").isAllowed { allowed += 1 }
            #expect(allowed == 10, "\(name): \(allowed)")
            for other in others {
                let decision = await other.decide(name, "k")
                #expect(decision.outcome == .denied, "\(name)")
                #expect(decision.retryAfterNanoseconds > 0, "\(name)")
            }
        }
        #expect(first.limiter.status().fallbackDecisions == 0)
        await first.shutdown()
        for other in others { await other.shutdown() }
    }

    @Test("PEEK on a leased policy takes nothing; with a lease it asks Redis nothing", arguments: RedisFlavor.available)
    func peek(flavor: RedisFlavor) async throws {
        try await awayFromWindowEdge(period: .seconds(3600), margin: .seconds(10))
        let redis = try RedisServerProcess(executable: flavor.executable)
        let sidecar = try await Sidecar(redisPort: redis.port, policies: [policy("fw", .fixedWindow, limit: 100, period: .seconds(3600))])
        let first = await sidecar.decide("fw", "k", consume: false)  // no lease yet: Redis peeks
        #expect(first.isAllowed)
        #expect(first.remaining == 99)  // what a TAKE would leave, as a local PEEK says
        #expect(await sidecar.decide("fw", "k").remaining == 99)
        let calls = sidecar.limiter.status().leaseRequests + sidecar.limiter.status().strictCalls
        let peeked = await sidecar.decide("fw", "k", consume: false)
        #expect(peeked.isAllowed)
        #expect(peeked.remaining == 98)
        #expect(sidecar.limiter.status().leaseRequests + sidecar.limiter.status().strictCalls == calls)
        #expect(await sidecar.decide("fw", "k").remaining == 98)
        await sidecar.shutdown()
    }

    @Test("a cost above the capacity is refused without asking Redis", arguments: RedisFlavor.available)
    func exceedsCapacity(flavor: RedisFlavor) async throws {
        let redis = try RedisServerProcess(executable: flavor.executable)
        let sidecar = try await Sidecar(redisPort: redis.port, policies: [policy("fw", .fixedWindow, limit: 5, period: .seconds(60))])
        let decision = await sidecar.decide("fw", "k", cost: 6)
        #expect(decision.outcome == .exceedsCapacity)
        #expect(decision.retryAfterNanoseconds == -1)
        #expect(sidecar.limiter.status().leaseRequests == 0)
        await sidecar.shutdown()
    }

    @Test("token-bucket leases: the fleet never admits more than one bucket would", arguments: RedisFlavor.available)
    func tokenBucketModel(flavor: RedisFlavor) async throws {
        let redis = try RedisServerProcess(executable: flavor.executable)
        // 40 per second, burst 40.
        let policies = [policy("tb", .tokenBucket, limit: 40, period: .seconds(1))]
        let sidecars = try await Sidecar.fleet(of: 3, redisPort: redis.port, policies: policies)
        let start = sidecars[0].clock.now().nanoseconds
        let seen = await Self.hammer(sidecars, policy: "tb", key: "k", for: 1_500_000_000)
        let admitted = seen.filter(\.allowed).map(\.at).sorted()
        // The bucket's bound on every interval from the start: burst + rate × elapsed (one token of slack for
        // the millisecond rounding of Redis's clock).
        for (index, at) in admitted.enumerated() {
            let elapsed = Double(at - start) / 1e9
            #expect(Double(index + 1) <= 40 + 40 * elapsed + 1, "token \(index + 1) at \(elapsed) s")
        }
        // And it admitted a fair share: the whole burst at least.
        #expect(admitted.count >= 40)
        #expect(sidecars.allSatisfy { $0.limiter.status().fallbackDecisions == 0 }, "every decision was the fleet's")
        for sidecar in sidecars { await sidecar.shutdown() }
    }

    @Test("token-bucket leases: tokens a sidecar holds are not refilled under it", arguments: RedisFlavor.available)
    func heldTokensAreNotRefilled(flavor: RedisFlavor) async throws {
        let redis = try RedisServerProcess(executable: flavor.executable)
        // 200 per second, burst 1600: leases up to 100 tokens.
        let policies = [policy("tb", .tokenBucket, limit: 200, period: .seconds(1), burst: 1600)]
        // A 1 s timeout makes a holding live 4 s (4 timeouts; 2 s at the default 50 ms): the holder's slice must
        // outlive the 1.2 s sleep and the other sidecar's drain, which took most of the rest under a loaded
        // `swift test` once, and the holder then had nothing left to spend.
        let holder = try await Sidecar(redisPort: redis.port, policies: policies, timeout: .seconds(1))
        let other = try await Sidecar(redisPort: redis.port, policies: policies, timeout: .seconds(1))
        for _ in 0..<200 { _ = await holder.decide("tb", "k") }  // its lease grows to dozens of tokens
        // Long enough for the bucket to refill what the holder took: Redis must stop short of the tokens it holds.
        try await Task.sleep(for: .milliseconds(1200))
        let start = holder.clock.now().nanoseconds
        let drained = await Self.hammer([other], policy: "tb", key: "k", attempts: 3000, stopAfterDenials: 3).count { $0.allowed }
        let held = await Self.hammer([holder], policy: "tb", key: "k", attempts: 200, stopAfterDenials: 1).count { $0.allowed }
        let elapsed = Double(holder.clock.now().nanoseconds - start) / 1e9
        #expect(held > 0, "the holder still had tokens to spend")
        #expect(Double(drained + held) <= 1600 + 200 * elapsed + 1, "drained \(drained) + held \(held) in \(elapsed) s")
        await holder.shutdown()
        await other.shutdown()
    }

    @Test("sliding-window leases: the weighted count never exceeds the limit at any admission", arguments: RedisFlavor.available)
    func slidingWindowModel(flavor: RedisFlavor) async throws {
        let redis = try RedisServerProcess(executable: flavor.executable)
        let period: Int64 = 1_000_000_000
        let limit = 40
        let policies = [policy("sw", .slidingWindow, limit: Int64(limit), period: .seconds(1))]
        let sidecars = try await Sidecar.fleet(of: 3, redisPort: redis.port, policies: policies)
        let seen = await Self.hammer(sidecars, policy: "sw", key: "k", for: 2_500_000_000)
        let admitted = seen.filter(\.allowed).sorted { $0.at < $1.at }
        // Each admission is counted in the window of `at`, when the test saw it. It was decided between `asked`
        // and `at`, by a clock (this process's or Redis's) that may differ by some milliseconds: one whose span,
        // widened by 10 ms each way, reaches into another window may belong there, so each such one widens the
        // tolerance by one. (Later than the decision, `at` gives the previous window less weight than it had
        // when it was decided: the estimate errs on the lenient side.)
        let edge: Int64 = 10_000_000
        func straddles(_ seen: Seen) -> Bool { (seen.asked - edge) / period != (seen.at + edge) / period }
        var perWindow: [Int64: Int] = [:]
        var ambiguous: [Int64: Int] = [:]
        for admission in admitted {
            let at = admission.at
            let window = at / period
            perWindow[window, default: 0] += 1
            if straddles(admission) { ambiguous[window, default: 0] += 1 }
            let elapsed = Double(at - window * period) / Double(period)
            let estimate = Double(perWindow[window - 1] ?? 0) * (1 - elapsed) + Double(perWindow[window] ?? 0)
            let tolerance = 1 + (ambiguous[window] ?? 0) + (ambiguous[window - 1] ?? 0)
            #expect(estimate <= Double(limit + tolerance), "estimate \(estimate) at \(elapsed) into window \(window)")
        }
        #expect(perWindow.allSatisfy { window, count in count <= limit + (ambiguous[window] ?? 0) })
        #expect(admitted.count >= limit)
        #expect(sidecars.allSatisfy { $0.limiter.status().fallbackDecisions == 0 }, "every decision was the fleet's")
        for sidecar in sidecars { await sidecar.shutdown() }
    }

    @Test("Redis killed under load: every decision within 500 ms by on_store_failure; restarted, global limits hold within 5 s", arguments: RedisFlavor.available)
    func killAndRestart(flavor: RedisFlavor) async throws {
        try await awayFromWindowEdge(period: .seconds(3600), margin: .seconds(10))
        let redis = try RedisServerProcess(executable: flavor.executable)
        let policies = [
            policy("local", .fixedWindow, limit: 5, period: .seconds(3600), onFailure: .local),
            policy("allow", .fixedWindow, limit: 5, period: .seconds(3600), onFailure: .allow),
            policy("deny", .fixedWindow, limit: 5, period: .seconds(3600), onFailure: .deny),
            policy("strict", .fixedWindow, limit: 5, period: .seconds(3600), sync: .strict, onFailure: .allow),
        ]
        // A short timeout: a decision in flight when Redis goes stops waiting soon.
        let sidecars = try await Sidecar.fleet(of: 3, redisPort: redis.port, policies: policies, timeout: .milliseconds(200))
        for name in ["local", "allow", "deny", "strict"] { #expect(await sidecars[0].decide(name, "before").isAllowed) }

        redis.stop()
        // Under load from all three: every decision comes back within 500 ms.
        var slowest = Duration.zero
        var outcomes: [String: [Bool]] = [:]
        for round in 0..<10 {
            for sidecar in sidecars {
                for name in ["local", "allow", "deny", "strict"] {
                    let started = ContinuousClock.now
                    let decision = await sidecar.decide(name, "during:\(round)")
                    slowest = max(slowest, ContinuousClock.now - started)
                    outcomes[name, default: []].append(decision.isAllowed)
                }
            }
        }
        #expect(slowest < .milliseconds(500), "slowest decision \(slowest)")
        #expect(outcomes["allow"]?.allSatisfy { $0 } == true)
        #expect(outcomes["strict"]?.allSatisfy { $0 } == true)
        #expect(outcomes["deny"]?.allSatisfy { !$0 } == true)
        #expect(outcomes["local"]?.allSatisfy { $0 } == true)  // fresh keys: each sidecar's own bucket has room
        // `local` decides on this sidecar's own state: the sixth on one key is denied.
        var localAllowed = 0
        for _ in 0..<6 where await sidecars[0].decide("local", "one-key").isAllowed { localAllowed += 1 }
        #expect(localAllowed == 5)
        #expect(sidecars.allSatisfy { !$0.limiter.status().isConnected })

        try redis.start()
        let restarted = ContinuousClock.now
        for sidecar in sidecars {
            while !sidecar.limiter.status().isConnected, ContinuousClock.now - restarted < .seconds(5) {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        #expect(ContinuousClock.now - restarted < .seconds(5))
        let seen = await Self.hammer(sidecars, policy: "deny", key: "after", attempts: 10)
        #expect(seen.count { $0.allowed } == 5, "after the restart the fleet again admits the global 5")
        #expect(sidecars.allSatisfy { $0.limiter.status().reconnections >= 1 })
        for sidecar in sidecars { await sidecar.shutdown() }
    }

    @Test("a stuck Redis (SIGSTOP) costs at most one timeout per decision, then none", arguments: RedisFlavor.available)
    func stuckRedis(flavor: RedisFlavor) async throws {
        let redis = try RedisServerProcess(executable: flavor.executable)
        let policies = [policy("api", .fixedWindow, limit: 100, period: .seconds(60), onFailure: .deny)]
        let sidecar = try await Sidecar(redisPort: redis.port, policies: policies, timeout: .milliseconds(50))
        #expect(await sidecar.decide("api", "warm").isAllowed)
        redis.pause()
        var slowest = Duration.zero
        for index in 0..<20 {
            let started = ContinuousClock.now
            let decision = await sidecar.decide("api", "fresh:\(index)")
            slowest = max(slowest, ContinuousClock.now - started)
            #expect(!decision.isAllowed)
        }
        #expect(slowest < .milliseconds(300), "slowest \(slowest)")
        redis.resume()
        let resumed = ContinuousClock.now
        while !sidecar.limiter.status().isConnected, ContinuousClock.now - resumed < .seconds(5) { try await Task.sleep(for: .milliseconds(20)) }
        #expect(await sidecar.decide("api", "fresh:after").isAllowed)
        await sidecar.shutdown()
    }

    @Test("scripts are reloaded after SCRIPT FLUSH (NOSCRIPT), with no decision lost", arguments: RedisFlavor.available)
    func noscript(flavor: RedisFlavor) async throws {
        let redis = try RedisServerProcess(executable: flavor.executable)
        let sidecar = try await Sidecar(redisPort: redis.port, policies: [policy("s", .tokenBucket, limit: 10, period: .seconds(60), sync: .strict)])
        #expect(await sidecar.decide("s", "k").remaining == 9)
        #expect(try redis.cli("SCRIPT", "FLUSH") == "OK")
        #expect(await sidecar.decide("s", "k").remaining == 8)
        #expect(sidecar.limiter.status().fallbackDecisions == 0)
        await sidecar.shutdown()
    }

    @Test("a refund goes back where the cost came from, and only there", arguments: RedisFlavor.available, [Policy.Global.Sync.leased, .strict])
    func refunds(flavor: RedisFlavor, sync: Policy.Global.Sync) async throws {
        try await awayFromWindowEdge(period: .seconds(3600), margin: .seconds(10))
        let redis = try RedisServerProcess(executable: flavor.executable)
        let policies = [
            policy("fw", .fixedWindow, limit: 3, period: .seconds(3600), sync: sync),
            policy("tb", .tokenBucket, limit: 3, period: .seconds(3600), sync: sync),
        ]
        let sidecar = try await Sidecar(redisPort: redis.port, policies: policies)
        let other = try await Sidecar(redisPort: redis.port, policies: policies)
        for name in ["fw", "tb"] {
            var charges: [GlobalCharge] = []
            for _ in 0..<3 {
                let (decision, charge) = await sidecar.decideCharging(name, "k")
                #expect(decision.isAllowed)
                if let charge { charges.append(charge) }
            }
            #expect(charges.count == 3, "\(name): every allowed decision took from the budget")
            #expect(await other.decide(name, "k").outcome == .denied)
            // Given back: one more fits again, fleet-wide (through Redis) or on the sidecar holding the lease.
            sidecar.refund(name, "k", charge: charges[2])
            await sidecar.limiter.settle()  // a refund to Redis is sent in the background
            #expect(await sidecar.decide(name, "k").isAllowed, "\(name)")
            #expect(await sidecar.decide(name, "k").outcome == .denied, "\(name)")
        }
        // A refund to another window gives nothing back.
        var stale = try #require(await sidecar.decideCharging("fw", "other").charge)
        stale.window -= 1
        stale.fromLease = false
        for _ in 0..<2 { _ = await sidecar.decide("fw", "other") }
        sidecar.refund("fw", "other", charge: stale)
        await sidecar.limiter.settle()
        #expect(await other.decide("fw", "other").outcome == .denied)
        await sidecar.shutdown()
        await other.shutdown()
    }

    @Test("on_store_failure takes nothing global; `local` takes from this store, and a refund goes back there", arguments: RedisFlavor.available)
    func fallbackCharges(flavor: RedisFlavor) async throws {
        let redis = try RedisServerProcess(executable: flavor.executable)
        let sidecar = try await Sidecar(
            redisPort: redis.port,
            policies: [
                policy("a", .fixedWindow, limit: 5, period: .seconds(60), onFailure: .allow),
                policy("l", .fixedWindow, limit: 2, period: .seconds(3600), onFailure: .local),
            ]
        )
        redis.stop()
        let (allowed, none) = await sidecar.decideCharging("a", "k")
        #expect(allowed.isAllowed)
        #expect(none == nil)
        let (first, charge) = await sidecar.decideCharging("l", "k")
        #expect(first.isAllowed)
        let local = try #require(charge)
        #expect(local.local != nil)
        sidecar.refund("l", "k", charge: local)
        #expect(await sidecar.decide("l", "k").isAllowed)
        #expect(await sidecar.decide("l", "k").isAllowed)
        #expect(await sidecar.decide("l", "k").outcome == .denied)
        await sidecar.shutdown()
    }

    @Test("keys carry one hash tag per bucket; unused leases go back on shutdown", arguments: RedisFlavor.available)
    func keysAndReturns(flavor: RedisFlavor) async throws {
        try await awayFromWindowEdge(period: .seconds(3600), margin: .seconds(10))
        let redis = try RedisServerProcess(executable: flavor.executable)
        let sidecar = try await Sidecar(redisPort: redis.port, policies: [policy("api", .fixedWindow, limit: 1000, period: .seconds(3600))])
        #expect(await sidecar.decide("api", "user:42").isAllowed)
        #expect(try redis.cli("KEYS", "*") == "test:{api|user:42}:fw")
        // A policy name cannot hold `|`: policy `a` with key `b:c` and policy `a:b` with key `c` stay apart.
        let names = try await Sidecar(
            redisPort: redis.port,
            policies: [policy("a", .fixedWindow, limit: 1, period: .seconds(3600)), policy("a:b", .fixedWindow, limit: 1, period: .seconds(3600))]
        )
        #expect(await names.decide("a", "b:c").isAllowed)
        #expect(await names.decide("a:b", "c").isAllowed)
        await names.shutdown()
        let leased = Int(try redis.cli("HGET", "test:{api|user:42}:fw", "c")) ?? 0
        #expect(leased > 1)
        await sidecar.shutdown()
        #expect(try redis.cli("HGET", "test:{api|user:42}:fw", "c") == "1")
    }

    @Test("every bucket key expires: a window's a second after it (sliding: after the next), a token bucket's once it would be full", arguments: RedisFlavor.available)
    func keysExpire(flavor: RedisFlavor) async throws {
        let redis = try RedisServerProcess(executable: flavor.executable)
        let policies = [
            policy("fw", .fixedWindow, limit: 100, period: .seconds(60), sync: .strict),
            policy("sw", .slidingWindow, limit: 100, period: .seconds(60), sync: .strict),
            policy("tb", .tokenBucket, limit: 100, period: .seconds(10), sync: .strict),
        ]
        let sidecar = try await Sidecar(redisPort: redis.port, policies: policies)
        func ttl(_ key: String) throws -> Int { Int(try redis.cli("PTTL", key)) ?? -3 }
        for name in ["fw", "sw", "tb"] {
            for _ in 0..<5 { #expect(await sidecar.decide(name, "k").isAllowed) }
        }
        // Fixed window: until a second after the minute's window ends; sliding: a window more.
        let fixed = try ttl("test:{fw|k}:fw"), sliding = try ttl("test:{sw|k}:sw")
        #expect((1...61_000).contains(fixed), "fw \(fixed)")
        #expect((60_001...121_000).contains(sliding), "sw \(sliding)")
        // Token bucket, 10 per second with 5 taken: full again in 500 ms; the key outlives that by a second,
        // and is given a period (10 s) more when extended, so it is not touched at every call.
        let bucket = try ttl("test:{tb|k}:tb")
        #expect((1_500...11_600).contains(bucket), "tb \(bucket)")
        let recorded = Int64(try redis.cli("HGET", "test:{tb|k}:tb", "x")) ?? 0
        #expect(recorded > 0, "the expiry given is recorded")
        // Emptied (10 s to refill), the key still outlives the refill.
        #expect(await sidecar.decide("tb", "k", cost: 95).isAllowed)
        let emptied = try ttl("test:{tb|k}:tb")
        #expect(emptied > 10_000, "outlives the refill: \(emptied)")
        await sidecar.shutdown()
    }

    @Test("a reset deletes the bucket in Redis and the sidecar's slice: the next decision sees it full", arguments: RedisFlavor.available, [Policy.Global.Sync.leased, .strict])
    func resetEmptiesTheBucketForTheFleet(flavor: RedisFlavor, sync: Policy.Global.Sync) async throws {
        try await awayFromWindowEdge(period: .seconds(3600), margin: .seconds(10))
        let redis = try RedisServerProcess(executable: flavor.executable)
        let policies = [policy("api", .fixedWindow, limit: 5, period: .seconds(3600), sync: sync)]
        let sidecars = try await Sidecar.fleet(of: 2, redisPort: redis.port, policies: policies)
        for _ in 0..<5 { #expect(await sidecars[0].decide("api", "k").isAllowed) }
        #expect(!(await sidecars[1].decide("api", "k").isAllowed), "exhausted for the fleet")
        var key = "k"
        let check = key.withUTF8 { sidecars[0].policies.check(policy: 0, key: UnsafeRawBufferPointer($0), cost: 1) }
        #expect(await sidecars[0].limiter.reset(check, policy: sidecars[0].policies.policies[0], key: Array("k".utf8)))
        #expect(try redis.cli("EXISTS", "test:{api|k}:fw") == "0")
        let after = await sidecars[0].decide("api", "k")
        #expect(after.isAllowed && after.remaining == 4, "full again: \(after)")
        for sidecar in sidecars { await sidecar.shutdown() }
        redis.stop()
        #expect(await !sidecars[0].limiter.reset(check, policy: sidecars[0].policies.policies[0], key: Array("k".utf8)), "Redis gone: not confirmed")
    }
}
