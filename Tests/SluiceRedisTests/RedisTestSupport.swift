import Foundation
import Logging
import SluiceConfig
import SluiceCore
import SluiceRedis
import SluiceTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// One sidecar's global limiter: its own Redis connection and thread, its own local store, one shared clock.
final class Sidecar: Sendable {
    let limiter: RedisGlobalLimiter
    let clock = MonotonicClock(epochNanoseconds: Int64(Date().timeIntervalSince1970 * 1e9))
    let policies: PolicySet

    /// A sidecar on the Redis at `redisPort`. The timeout is long by default: a test whose subject is not the
    /// timeout must not see Redis as late on a machine that stalls the process for tens of milliseconds (a
    /// throttled CI machine does; at 50 ms, "exactly 300" became 450 through `on_store_failure`).
    convenience init(redisPort: Int, policies: [Policy], timeout: Duration = Sidecar.patientTimeout, maximumLeases: Int = 10_000) async throws {
        try await self.init(
            settings: SluiceConfiguration.Redis(port: redisPort, timeoutNanoseconds: timeout.nanoseconds, keyPrefix: "test:", maxLeases: maximumLeases),
            policies: policies
        )
    }

    /// A sidecar on any deployment; `logger` sees what it logs; `connect: false` does not wait for Redis.
    init(
        settings: SluiceConfiguration.Redis, policies: [Policy], logger: Logger = Logger(label: "sluice.test.redis"), connect: Bool = true
    ) async throws {
        self.policies = try PolicySet(policies)
        limiter = RedisGlobalLimiter(settings: settings, store: BucketStore(maximumKeys: 10_000), clock: clock, logger: logger)
        limiter.start()
        if connect, !(await limiter.waitUntilConnected(limit: .seconds(10))) { throw TestFailure("the sidecar did not connect to Redis") }
    }

    /// Decides `cost` of policy `name` for `key` as a server would: a pending decision is expired after the
    /// limiter's timeout.
    func decide(_ name: String, _ key: String, cost: Int64 = 1, consume: Bool = true) async -> Decision {
        await decideCharging(name, key, cost: cost, consume: consume).decision
    }

    /// ``decide(_:_:cost:consume:)``, with what the decision took from the global budget.
    func decideCharging(_ name: String, _ key: String, cost: Int64 = 1, consume: Bool = true) async -> (decision: Decision, charge: GlobalCharge?) {
        guard let index = policies.index(ofName: name) else { preconditionFailure("test policy \(name) exists") }
        let policy = policies.policies[index]
        var bytes = key
        let check = bytes.withUTF8 { policies.check(policy: index, key: UnsafeRawBufferPointer($0), cost: cost) }
        let outcome = bytes.withUTF8 {
            limiter.decide(check, policy: policy, key: UnsafeRawBufferPointer($0), now: clock.now(), consume: consume)
        }
        switch outcome {
        case .decided(let decision, let charge):
            return (decision, charge)
        case .pending(let pending):
            let clock = self.clock
            let timeout = limiter.timeout
            let timer = Task {
                try? await Task.sleep(for: timeout)
                pending.expire(now: clock.now())
            }
            let answer = await withCheckedContinuation { continuation in
                pending.whenAnswered { decision, charge in continuation.resume(returning: (decision, charge)) }
            }
            timer.cancel()
            return answer
        }
    }

    /// Gives back what a decision took, as a server does when a later local check of the request denies.
    func refund(_ name: String, _ key: String, charge: GlobalCharge, cost: Int64 = 1) {
        guard let index = policies.index(ofName: name) else { preconditionFailure("test policy \(name) exists") }
        var bytes = key
        let check = bytes.withUTF8 { policies.check(policy: index, key: UnsafeRawBufferPointer($0), cost: cost) }
        bytes.withUTF8 {
            limiter.refund(check, policy: policies.policies[index], key: UnsafeRawBufferPointer($0), charge: charge, now: clock.now())
        }
    }

    func shutdown() async { await limiter.shutdown() }

    /// The timeout of a test that does not test it.
    static let patientTimeout = Duration.seconds(2)

    /// `count` sidecars on one Redis, each with its own connection, thread and store.
    static func fleet(of count: Int, redisPort: Int, policies: [Policy], timeout: Duration = patientTimeout) async throws -> [Sidecar] {
        var sidecars: [Sidecar] = []
        for _ in 0..<count { sidecars.append(try await Sidecar(redisPort: redisPort, policies: policies, timeout: timeout)) }
        return sidecars
    }

    /// `count` sidecars on one deployment.
    static func fleet(of count: Int, settings: SluiceConfiguration.Redis, policies: [Policy]) async throws -> [Sidecar] {
        var sidecars: [Sidecar] = []
        for _ in 0..<count { sidecars.append(try await Sidecar(settings: settings, policies: policies)) }
        return sidecars
    }
}

func policy(
    _ name: String, _ algorithm: Algorithm, limit: Int64, period: Duration, burst: Int64? = nil,
    sync: Policy.Global.Sync = .leased, onFailure: Policy.Global.StoreFailure = .local
) -> Policy {
    do {
        return try Policy(
            name: name, rateLimit: RateLimit(algorithm: algorithm, limit: limit, periodNanoseconds: period.nanoseconds, burst: burst),
            scope: .global(Policy.Global(sync: sync, onStoreFailure: onFailure))
        )
    } catch {
        preconditionFailure("test policy is valid: \(error)")
    }
}
