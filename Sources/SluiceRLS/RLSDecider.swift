public import SluiceConfig
public import SluiceCore

/// A `ShouldRateLimit` request, free of protobuf: what ``RLSDecider`` decides.
public struct RLSRequest: Sendable {
    /// One request descriptor.
    public struct Descriptor: Sendable {
        public var entries: [DescriptorEntry]
        /// Envoy's per-descriptor limit override: used instead of the configured limits.
        public var override: (requestsPerUnit: UInt32, unit: RLSLimit.Unit?)?
        /// The descriptor's own hits; nil when unset (then the request's). 0 checks without counting.
        public var hitsAddend: UInt64?
        /// Envoy's `is_negative_hits`: the hits are a refund. Sluice does not refund on a client's word: such a
        /// descriptor is only looked at, and answered OK.
        public var isNegative: Bool

        public init(
            entries: [DescriptorEntry], override: (requestsPerUnit: UInt32, unit: RLSLimit.Unit?)? = nil, hitsAddend: UInt64? = nil,
            isNegative: Bool = false
        ) {
            self.entries = entries
            self.override = override
            self.hitsAddend = hitsAddend
            self.isNegative = isNegative
        }
    }

    public var domain: String
    public var descriptors: [Descriptor]
    /// Hits for every descriptor without its own; 0 means 1 (Envoy sends 0).
    public var hitsAddend: UInt32

    public init(domain: String, descriptors: [Descriptor], hitsAddend: UInt32 = 0) {
        self.domain = domain
        self.descriptors = descriptors
        self.hitsAddend = hitsAddend
    }
}

/// The answer to an ``RLSRequest``: one status per descriptor, in order.
public struct RLSAnswer: Sendable, Hashable {
    /// One descriptor's answer.
    public struct Status: Sendable, Hashable {
        /// The limit that applied, as Envoy's `current_limit` states it.
        public struct CurrentLimit: Sendable, Hashable {
            public var requestsPerUnit: UInt32
            public var unit: RLSLimit.Unit
            public var name: String
        }

        public var isOverLimit: Bool
        /// Nil for a descriptor no limit applied to (no match, unknown domain, replaced, unlimited).
        public var currentLimit: CurrentLimit?
        /// Requests left in the window; 4294967295 for an unlimited descriptor.
        public var remaining: UInt32
        /// Whole seconds until the bucket is full again; nil when no limit applied.
        public var resetSeconds: Int64?

        /// A descriptor no limit applied to.
        public static let unlimited = Status(isOverLimit: false, currentLimit: nil, remaining: .max, resetSeconds: nil)
        /// A descriptor nothing matched.
        public static let unmatched = Status(isOverLimit: false, currentLimit: nil, remaining: 0, resetSeconds: nil)
    }

    /// Whether any descriptor is over its limit: Envoy's `overall_code`.
    public var isOverLimit: Bool
    public var statuses: [Status]

    /// The status a client should heed, as envoyproxy/ratelimit picks it for its headers: among those with a
    /// limit, the first with the fewest remaining; the last one over the limit, if any, overrides it.
    public var mostRestrictive: Status? {
        let limited = statuses.filter { $0.currentLimit != nil }
        return limited.last(where: \.isOverLimit) ?? limited.enumerated().min { ($0.element.remaining, $0.offset) < ($1.element.remaining, $1.offset) }?.element
    }
}

/// Why a request is refused outright.
public struct RLSRequestError: Error, Hashable, Sendable {
    public enum Code: Sendable, Hashable {
        /// Malformed: an empty domain or descriptor list, an override without a unit.
        case invalidArgument
        /// Over a cap: too many descriptors or entries.
        case resourceExhausted
        /// A global limit with no Redis configured.
        case unavailable
    }

    public let code: Code
    public let message: String
}

/// Decides Envoy's rate limit requests against the compiled envoyproxy/ratelimit domains, with the same core
/// as every other interface: the descriptors of a request are decided all or nothing, so a request that is
/// over any limit consumes nothing (envoyproxy/ratelimit charges every descriptor even when it denies).
public struct RLSDecider: Sendable {
    let limiter: RateLimiter
    let clock: any SluiceClock
    /// How long a global check waits for Redis before its failure policy answers.
    let timeout: Duration
    /// The caps of one request.
    let maximumDescriptors: Int
    let maximumEntries: Int

    /// Told of each decision that took its hits (its check, policy name, key and time): the events hub.
    public typealias Observer = @Sendable (Decision, Check, _ policy: String, _ key: [UInt8], Timestamp) -> Void
    let observe: Observer?

    /// Creates a decider; `observe` sees each charged decision.
    public init(limiter: RateLimiter, clock: any SluiceClock, settings: SluiceConfiguration.RLS, observe: Observer? = nil) {
        self.observe = observe
        self.limiter = limiter
        self.clock = clock
        timeout = limiter.global?.timeout ?? .milliseconds(50)
        maximumDescriptors = settings.maxDescriptors
        maximumEntries = settings.maxEntries
    }

    /// What one descriptor resolved to.
    private enum Resolved {
        case unmatched
        case unlimited
        /// `requests_per_unit: 0`: over the limit without a bucket (OK in shadow mode, or when it takes no hits).
        case denyAll(RLSAnswer.Status.CurrentLimit, overLimit: Bool)
        /// A bucket's check; `consume` false for a descriptor of 0 hits (or a negative one): looked at only.
        case check(Check, RLSAnswer.Status.CurrentLimit, key: [UInt8], consume: Bool)
    }

    /// Decides `request` against `matcher`.
    ///
    /// - Throws: ``RLSRequestError`` for a request that is refused outright.
    public func decide(_ request: RLSRequest, matcher: DescriptorMatcher) async throws(RLSRequestError) -> RLSAnswer {
        guard !request.domain.isEmpty else { throw RLSRequestError(code: .invalidArgument, message: "rate limit domain must not be empty") }
        guard !request.descriptors.isEmpty else {
            throw RLSRequestError(code: .invalidArgument, message: "rate limit descriptor list must not be empty")
        }
        guard request.descriptors.count <= maximumDescriptors else {
            throw RLSRequestError(
                code: .resourceExhausted, message: "\(request.descriptors.count) descriptors, at most \(maximumDescriptors) in one request"
            )
        }
        if let long = request.descriptors.first(where: { $0.entries.count > maximumEntries }) {
            throw RLSRequestError(
                code: .resourceExhausted, message: "a descriptor of \(long.entries.count) entries, at most \(maximumEntries) in one descriptor"
            )
        }
        let matched = try request.descriptors.map { descriptor throws(RLSRequestError) in
            try resolve(descriptor, request: request, matcher: matcher)
        }
        // `replaces`: a limit named by another matched limit of the same request is dropped (its descriptor is
        // answered OK without a limit, its bucket untouched), as in envoyproxy/ratelimit.
        let replaced = Set(matched.flatMap(\.replaces))
        let resolved = matched.map { !$0.name.isEmpty && replaced.contains($0.name) ? .unmatched : $0.resolved }

        // An enforced `requests_per_unit: 0` denies the request: then nothing is charged anywhere.
        let deniedOutright = resolved.contains { if case .denyAll(_, overLimit: true) = $0 { true } else { false } }
        var charging: [(position: Int, check: Check, key: [UInt8])] = []
        var looking: [(position: Int, check: Check, key: [UInt8])] = []
        for (position, item) in resolved.enumerated() {
            guard case .check(let check, _, let key, let consume) = item else { continue }
            if consume, !deniedOutright { charging.append((position, check, key)) } else { looking.append((position, check, key)) }
        }
        // Each decision, whether it took its hits, and whether it may say over the limit. A descriptor of 0 hits
        // never is: nothing is added, and Sluice's count never passes the limit (envoyproxy/ratelimit compares
        // `count + hits > limit`). Those are looked at, with the rest when the request is denied outright, only
        // after the charging ones: they cannot change the verdict.
        var decisions = [(decision: Decision, charged: Bool)?](repeating: nil, count: resolved.count)
        if !charging.isEmpty {
            let result = try await decide(charging.map(\.check), keys: charging.map(\.key), policies: matcher.policies, consume: true)
            let now = clock.now()
            for (offset, entry) in charging.enumerated() {
                let decision = result.decisions[offset]
                decisions[entry.position] = (decision, result.isAllowed)
                matcher.policies.count(decision)
                if let observe {
                    let index = Int(decision.policyIndex)
                    let policies = matcher.policies.policies
                    observe(decision, entry.check, index >= 0 && index < policies.count ? policies[index].name : PolicyCounters.inlineName, entry.key, now)
                }
            }
        }
        for entry in looking {
            let result = try await decide([entry.check], keys: [entry.key], policies: matcher.policies, consume: false)
            decisions[entry.position] = (result.decisions[0], false)
        }

        let nowSeconds = clock.now().nanoseconds / 1_000_000_000
        var statuses: [RLSAnswer.Status] = []
        statuses.reserveCapacity(resolved.count)
        for (position, item) in resolved.enumerated() {
            switch item {
            case .unmatched: statuses.append(.unmatched)
            case .unlimited: statuses.append(.unlimited)
            case .denyAll(let limit, let overLimit):
                statuses.append(RLSAnswer.Status(isOverLimit: overLimit, currentLimit: limit, remaining: 0, resetSeconds: limit.unit.untilWindowEnds(at: nowSeconds)))
            case .check(let check, let limit, _, let countsHits):
                guard let (decision, charged) = decisions[position] else { continue }
                let isOverLimit = countsHits && !decision.isAllowed
                // Over the limit: nothing remains. Not charged (looked at, or a denied request's other descriptors):
                // what remains now, not after a take.
                let remaining =
                    isOverLimit || decision.isShadowed || decision.outcome != .allowed ? 0
                    : charged ? decision.remaining : min(decision.limit, decision.remaining + check.cost)
                let reset = RoundedUp.seconds(decision.resetAfterNanoseconds)
                statuses.append(
                    RLSAnswer.Status(
                        isOverLimit: isOverLimit, currentLimit: limit, remaining: UInt32(clamping: remaining),
                        resetSeconds: reset > 0 ? reset : limit.unit.untilWindowEnds(at: nowSeconds)
                    )
                )
            }
        }
        return RLSAnswer(isOverLimit: statuses.contains(where: \.isOverLimit), statuses: statuses)
    }

    /// The limit one descriptor gets (Envoy's override if it sent one, in a configured domain, else the tree's),
    /// with the limit's name and what it replaces.
    private func resolve(
        _ descriptor: RLSRequest.Descriptor, request: RLSRequest, matcher: DescriptorMatcher
    ) throws(RLSRequestError) -> (resolved: Resolved, name: String, replaces: [String]) {
        // A negative (refunding) descriptor is only looked at: Sluice's buckets take no refunds from a client.
        let hits = descriptor.isNegative ? 0 : descriptor.hitsAddend ?? UInt64(max(1, request.hitsAddend))
        let cost = Int64(clamping: max(1, hits))
        if let override = descriptor.override, matcher.hasDomain(request.domain) {
            guard let unit = override.unit else {
                throw RLSRequestError(code: .invalidArgument, message: "a descriptor's limit override needs a unit from SECOND to WEEK")
            }
            let limit = RLSAnswer.Status.CurrentLimit(requestsPerUnit: override.requestsPerUnit, unit: unit, name: "")
            guard override.requestsPerUnit > 0 else { return (.denyAll(limit, overLimit: hits > 0), "", []) }
            do {
                let rateLimit = try RateLimit(
                    algorithm: .fixedWindow, limit: Int64(override.requestsPerUnit), periodNanoseconds: unit.seconds * 1_000_000_000
                )
                let key = Array((request.domain + "\u{1F}" + descriptor.entries.map { "\($0.key)=\($0.value)" }.joined(separator: "\u{1F}")).utf8)
                let bucket = key.withUnsafeBytes { BucketKey(seed: Check.inlineSeed(for: rateLimit), bytes: $0) }
                return (.check(Check(rateLimit: rateLimit, key: bucket, cost: cost), limit, key: key, consume: hits > 0), "", [])
            } catch {
                throw RLSRequestError(code: .invalidArgument, message: "limit override: \(error.message)")
            }
        }
        guard let match = matcher.match(domain: request.domain, entries: descriptor.entries) else { return (.unmatched, "", []) }
        let configuration = match.limit.configuration
        let named = (name: configuration.name, replaces: configuration.replaces)
        // An unlimited limit still replaces others, as in envoyproxy/ratelimit.
        if configuration.unlimited { return (.unlimited, named.name, named.replaces) }
        guard let unit = configuration.unit else { return (.unmatched, named.name, named.replaces) }
        let limit = RLSAnswer.Status.CurrentLimit(
            requestsPerUnit: UInt32(clamping: configuration.requestsPerUnit), unit: unit, name: configuration.name
        )
        guard let policyIndex = match.limit.policyIndex else {
            return (.denyAll(limit, overLimit: hits > 0 && !match.limit.shadowMode), named.name, named.replaces)
        }
        let check = match.key.withUnsafeBytes { matcher.policies.check(policy: policyIndex, key: $0, cost: cost) }
        return (.check(check, limit, key: match.key, consume: hits > 0), named.name, named.replaces)
    }

    /// Decides checks through the one all-or-nothing rule, waiting (at most the timeout) for Redis.
    private func decide(_ checks: [Check], keys: [[UInt8]], policies: PolicySet, consume: Bool) async throws(RLSRequestError)
        -> RateLimiter.MultiDecision
    {
        let outcome: RateLimiter.RequestOutcome
        do {
            outcome = try limiter.decide(request: checks, policies: policies, keyBytes: { keys[$0] }, at: clock.now(), consume: consume)
        } catch {
            throw RLSRequestError(code: .unavailable, message: error.message)
        }
        switch outcome {
        case .decided(let result): return result
        case .pending(let pending):
            await pending.waitForAnswers(timeout: timeout, clock: clock)
            return pending.finish(now: clock.now())
        }
    }
}

extension PendingRequest {
    /// Returns once every wait is answered: by Redis, or by its failure policy once `timeout` passes.
    func waitForAnswers(timeout: Duration, clock: any SluiceClock) async {
        let waits = self.waits
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                // Cancelled (every wait answered, or the call cancelled): expiring what is answered does nothing,
                // and a cancelled call must not wait for Redis any longer.
                try? await Task.sleep(for: timeout)
                let now = clock.now()
                for pending in waits { pending.expire(now: now) }
            }
            for pending in waits {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    pending.whenAnswered { _, _ in continuation.resume() }
                }
            }
            group.cancelAll()
        }
    }
}

extension RLSLimit.Unit {
    /// Seconds until the window of this unit that holds `now` (seconds since the epoch) ends: windows are aligned
    /// to the epoch, as in envoyproxy/ratelimit.
    func untilWindowEnds(at now: Int64) -> Int64 { seconds - now % seconds }
}
