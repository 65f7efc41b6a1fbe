import Benchmark
import Dispatch
import SluiceCore
import SluiceWorkload
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Decisions per second of the core (`PolicySet.check` + `RateLimiter.decide`) for each algorithm, on one hot
// key and on a million keys (uniform and Zipf), with one and with two threads.
//
// What one measured operation is: take the next key's bytes from a precomputed request stream, hash them into
// a `Check`, and decide it. Key hashing, shard and slot lookup, the algorithm and the compare-and-exchange are
// all inside the measured region; building the stream (deterministic RNG, Zipf sampling) and inserting the
// keys are not.
//
// Time: nobody reads a clock per decision. Each iteration reads the benchmark's `ManualClock` once, and every
// thread then advances its own `Timestamp` by 1 ms after each batch of 1000 decisions (a simulated 1M decisions
// per second per thread), as a server reads the clock once per batch of requests. Names carry no suffix for
// this: every decision benchmark here works that way.
//
// Scaling: one iteration is 1M decisions (`.mega`), so the table's per-op figures (marked `*`) are per decision.
// With two threads, the same 1M decisions are split between the threads (each on its own keys), so the
// throughput columns of the 1-thread and 2-thread rows compare directly.

let benchmarks: @Sendable () -> Void = {
    // About 1.5 s per benchmark (at most 100 iterations of 1M decisions), so the suite runs in a few minutes.
    let decisionConfiguration = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .cpuTotal, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 1,
        scalingFactor: .mega,
        maxDuration: .milliseconds(1500),
        maxIterations: 100
    )

    // Attribution: the hash alone, then the whole `Check` (policy fetch + hash), over the uniform 1M-key stream.
    Benchmark(
        "hash BucketKey 16B",
        configuration: decisionConfiguration,
        closure: { benchmark, stream in
            let seed: UInt64 = 0x5EED
            var sink: UInt64 = 0
            stream.bytes.withUnsafeBytes { bytes in
                for position in benchmark.scaledIterations {
                    let key = BucketKey(seed: seed, bytes: stream.key(at: position, in: bytes))
                    sink ^= key.primary &+ key.secondary
                }
            }
            blackHole(sink)
        },
        setup: { RequestStream.uniform(universe: KeyUniverse(keyCount: 1_000_000, thread: 0, threads: 1), length: 1 << 20) }
    )

    Benchmark(
        "hash PolicySet.check 16B",
        configuration: decisionConfiguration,
        closure: { (benchmark, state: (PolicySet, RequestStream)) in
            let (policySet, stream) = state
            var sink: UInt64 = 0
            stream.bytes.withUnsafeBytes { bytes in
                for position in benchmark.scaledIterations {
                    let check = policySet.check(policy: 0, key: stream.key(at: position, in: bytes), cost: 1)
                    sink ^= check.key.primary &+ check.key.secondary
                }
            }
            blackHole(sink)
        },
        setup: {
            let limit = try RateLimit(algorithm: .tokenBucket, limit: 1_000_000_000, periodNanoseconds: 1_000_000_000)
            let policySet = try PolicySet([Policy(name: "bench", rateLimit: limit)])
            let stream = RequestStream.uniform(universe: KeyUniverse(keyCount: 1_000_000, thread: 0, threads: 1), length: 1 << 20)
            return (policySet, stream)
        }
    )

    // Reference: what reading the production clock per decision would add (why decisions are batched).
    Benchmark(
        "clock MonotonicClock.now",
        configuration: decisionConfiguration,
        closure: { benchmark, clock in
            var sink: Int64 = 0
            for _ in benchmark.scaledIterations {
                sink &+= clock.now().nanoseconds
            }
            blackHole(sink)
        },
        setup: { MonotonicClock(epochNanoseconds: 1_767_225_600_000_000_000) }
    )

    /// One decision benchmark: `name`, deciding what `workload` makes.
    func decisions(_ name: String, _ workload: @escaping @Sendable () throws -> DecisionWorkload) {
        Benchmark(
            name,
            configuration: decisionConfiguration,
            closure: { benchmark, workload in
                workload.runIteration(decisions: benchmark.scaledIterations.count, benchmark: benchmark)
            },
            setup: workload,
            teardown: nil
        )
    }

    for algorithm in [Algorithm.tokenBucket, .fixedWindow, .slidingWindow] {
        for distribution in KeyDistribution.allCases {
            for threads in [1, 2] {
                decisions("\(algorithm.rawValue) \(distribution.label) \(threads == 1 ? "1-thread" : "\(threads)-threads")") {
                    try DecisionWorkload(
                        rateLimit: DecisionWorkload.generousLimit(for: algorithm), distribution: distribution, threads: threads,
                        expectation: .allAllowed
                    )
                }
            }
        }
        // Per-key overrides must not slow the keys that have none: the same decisions, the policy holding 1,000
        // prefix overrides (none matching), against the row above without them.
        if algorithm == .tokenBucket {
            for distribution in [KeyDistribution.hotKey, .uniform] {
                decisions("\(algorithm.rawValue) \(distribution.label) 1-thread 1000-prefix-overrides") {
                    try DecisionWorkload(
                        rateLimit: DecisionWorkload.generousLimit(for: algorithm), distribution: distribution, threads: 1,
                        expectation: .allAllowed, overrides: 1_000
                    )
                }
            }
        }
        // A pipeline of 16 requests, as a server would decide a read holding them (`redis-benchmark -P 16`): each
        // request's key hashed and its slot prefetched 16 decisions ahead, so that the memory waits of a million-key
        // table overlap. Against the uniform-1M row above.
        decisions("\(algorithm.rawValue) uniform-1M 1-thread prefetch-16") {
            try DecisionWorkload(
                rateLimit: DecisionWorkload.generousLimit(for: algorithm), distribution: .uniform, threads: 1,
                expectation: .allAllowed, lookahead: 16
            )
        }
        // Requests of four checks each, decided all or nothing (`MTAKE`, an HTTP check naming four policies), whose
        // buckets `RateLimiter` prefetches together before deciding the first. Per check, against uniform-1M.
        if algorithm == .tokenBucket {
            decisions("\(algorithm.rawValue) uniform-1M 1-thread all-or-nothing-4") {
                try DecisionWorkload(
                    rateLimit: DecisionWorkload.generousLimit(for: algorithm), distribution: .uniform, threads: 1,
                    expectation: .allAllowed, checksPerRequest: 4
                )
            }
        }
        // Denial must be cheap too: one hot key whose single token went in setup, so every decision is denied.
        decisions("\(algorithm.rawValue) hot-key-denied 1-thread") {
            try DecisionWorkload(
                rateLimit: RateLimit(algorithm: algorithm, limit: 1, periodNanoseconds: 3_600_000_000_000),
                distribution: .hotKey, threads: 1, expectation: .allDenied
            )
        }
    }
}

// MARK: - Keys and request streams

/// How a benchmark's requests pick their keys.
enum KeyDistribution: CaseIterable {
    /// Every request of a thread names the same key (each thread its own).
    case hotKey
    /// Uniform over a million keys (each thread over its own half when there are two).
    case uniform
    /// Zipf with exponent 1.0 over a million keys (each thread over its own half when there are two).
    case zipf

    var label: String {
        switch self {
        case .hotKey: "hot-key"
        case .uniform: "uniform-1M"
        case .zipf: "zipf-1M"
        }
    }
}

/// Keys are 16 bytes, `user:` and 11 decimal digits: a typical API-key or user-id length.
enum KeyFormat {
    static let width = 16
    private static let prefix = Array("user:".utf8)

    static func write(_ index: Int, into bytes: inout [UInt8], at offset: Int) {
        for (position, byte) in prefix.enumerated() { bytes[offset + position] = byte }
        var value = index
        for position in stride(from: width - 1, through: prefix.count, by: -1) {
            bytes[offset + position] = UInt8(truncatingIfNeeded: 0x30 + value % 10)
            value /= 10
        }
    }

    static func bytes(of index: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: width)
        write(index, into: &bytes, at: 0)
        return bytes
    }
}

/// The keys one thread may use: indices `thread`, `thread + threads`, `thread + 2 × threads`, … below
/// `keyCount`, so two threads never share a key.
struct KeyUniverse {
    let keyCount: Int
    let thread: Int
    let threads: Int

    var count: Int { (keyCount - thread + threads - 1) / threads }
    func keyIndex(_ rank: Int) -> Int { thread + rank * threads }
}

/// A precomputed sequence of request keys, laid out back to back as a server would find them in its read
/// buffer: reading it is sequential and costs the decision path no cache miss of its own.
struct RequestStream: Sendable {
    let bytes: [UInt8]
    /// The number of keys; a power of two.
    let length: Int

    @inline(__always)
    func key(at position: Int, in buffer: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        let offset = (position & (length - 1)) &* KeyFormat.width
        return UnsafeRawBufferPointer(rebasing: buffer[offset..<offset &+ KeyFormat.width])
    }

    init(keyIndices: [Int]) {
        precondition(keyIndices.count > 0 && keyIndices.count & (keyIndices.count - 1) == 0, "stream length must be a power of two")
        var bytes = [UInt8](repeating: 0, count: keyIndices.count * KeyFormat.width)
        for (position, index) in keyIndices.enumerated() {
            KeyFormat.write(index, into: &bytes, at: position * KeyFormat.width)
        }
        self.bytes = bytes
        self.length = keyIndices.count
    }

    static func uniform(universe: KeyUniverse, length: Int) -> RequestStream {
        var generator = SplitMix64(seed: 0xB0C4_0000 + UInt64(universe.thread))
        return RequestStream(keyIndices: (0..<length).map { _ in
            universe.keyIndex(Int.random(in: 0..<universe.count, using: &generator))
        })
    }

    static func zipf(universe: KeyUniverse, length: Int) -> RequestStream {
        var generator = SplitMix64(seed: 0x21BF_0000 + UInt64(universe.thread))
        let distribution = ZipfDistribution(count: universe.count, exponent: 1.0)
        return RequestStream(keyIndices: (0..<length).map { _ in
            universe.keyIndex(distribution.sample(using: &generator))
        })
    }
}

// MARK: - Decisions

/// One decision benchmark's prepared state: a store with every key already present, one policy, one request
/// stream per thread, and the simulated clock.
final class DecisionWorkload: Sendable {
    enum Expectation {
        case allAllowed
        case allDenied
    }

    /// Decisions made with one `Timestamp`.
    static let decisionsPerTimestamp = 1000
    /// How far the timestamp moves after each batch: 1 ms, a simulated 1M decisions per second per thread.
    static let nanosecondsPerBatch: Int64 = 1_000_000
    /// Keys in the million-key cases, and the store's bound for them (twice as many, so nothing is evicted).
    static let keyCount = 1_000_000
    static let maximumKeys = 2_000_000
    /// Keys per thread's stream in the million-key cases.
    static let streamLength = 1 << 20

    /// A limit that a simulated 1M decisions per second per key never reaches: 10^9 per second, or the sliding
    /// window's largest limit (16 777 215 per second).
    static func generousLimit(for algorithm: Algorithm) throws -> RateLimit {
        let limit = algorithm == .slidingWindow ? RateLimit.maximumSlidingWindowLimit : 1_000_000_000
        return try RateLimit(algorithm: algorithm, limit: limit, periodNanoseconds: 1_000_000_000)
    }

    let policySet: PolicySet
    let limiter: RateLimiter
    let streams: [RequestStream]
    let clock = ManualClock()
    let expectation: Expectation
    /// Where the next iteration continues in the streams, so consecutive iterations do not replay the same keys.
    let cursor = Atomic<Int>(0)
    // Per-iteration scratch, written by the worker threads; relaxed is enough because `concurrentPerform`
    // returns only after both workers finished, which orders their writes before the reads below.
    let allowedCount = Atomic<Int>(0)
    let firstWorkerThread = Atomic<UInt>(0)
    let secondWorkerThread = Atomic<UInt>(0)

    /// A policy's prefix overrides, none of which the benchmark's keys (`user:…`) match: `partner:<n>:*`.
    static func prefixOverrides(_ count: Int, of policy: Policy) throws -> [Policy.Override] {
        try (0..<count).map { index in
            try Policy.Override(pattern: "partner:\(index):*", rateLimit: policy.overrideLimit(limit: policy.rateLimit.limit / 2))
        }
    }

    /// How many requests ahead of the one being decided are hashed and prefetched (0: none).
    let lookahead: Int
    /// Checks per request: more than one are decided together, all or nothing.
    let checksPerRequest: Int

    init(
        rateLimit: RateLimit, distribution: KeyDistribution, threads: Int, expectation: Expectation, overrides: Int = 0,
        lookahead: Int = 0, checksPerRequest: Int = 1
    ) throws {
        self.lookahead = lookahead
        self.checksPerRequest = checksPerRequest
        precondition(threads == 1 || threads == 2, "one or two threads")
        let policy = try Policy(name: "bench", rateLimit: rateLimit)
        policySet = try PolicySet([policy.with(overrides: Self.prefixOverrides(overrides, of: policy))])
        // As the executable does: transparent huge pages for the slot table once busy (THP is `madvise`-only here).
        let store = BucketStore(maximumKeys: distribution == .hotKey ? 1024 : Self.maximumKeys) { region, byteCount in
            _ = madvise(region, byteCount, MADV_HUGEPAGE)
            _ = madvise(region, byteCount, 25)  // MADV_COLLAPSE, as the executable does
        }
        limiter = RateLimiter(store: store)
        self.expectation = expectation

        var prefilled: [Int]
        switch distribution {
        case .hotKey:
            prefilled = [0]
            if threads == 2 { prefilled.append(Self.hotKey(differingInShardFrom: 0, policySet: policySet, store: store)) }
            streams = prefilled.map { RequestStream(keyIndices: [$0]) }
        case .uniform, .zipf:
            prefilled = Array(0..<Self.keyCount)
            streams = (0..<threads).map { thread in
                let universe = KeyUniverse(keyCount: Self.keyCount, thread: thread, threads: threads)
                return distribution == .uniform
                    ? RequestStream.uniform(universe: universe, length: Self.streamLength)
                    : RequestStream.zipf(universe: universe, length: Self.streamLength)
            }
        }

        // Insert every key once, outside the measurement, so the measured decisions find their key present
        // (the steady state); for the denied case this takes the hot key's only token.
        let now = clock.now()
        for index in prefilled {
            let check = KeyFormat.bytes(of: index).withUnsafeBytes { policySet.check(policy: 0, key: $0, cost: 1) }
            _ = limiter.decide(check, at: now)
        }
        // As the executable's sweeper does once the table is busy: huge pages from here on.
        store.adviseMemoryIfBusy()
        clock.advance(nanoseconds: Self.nanosecondsPerBatch)
        guard store.keyCount == prefilled.count, store.pressureEvictions == 0 else {
            throw WorkloadError(message: "store holds \(store.keyCount) keys after inserting \(prefilled.count)")
        }
    }

    /// Another hot key in another shard than `first`, so two threads' hot slots never share a cache line.
    static func hotKey(differingInShardFrom first: Int, policySet: PolicySet, store: BucketStore) -> Int {
        func shard(_ index: Int) -> UInt64 {
            let key = KeyFormat.bytes(of: index).withUnsafeBytes { BucketKey(seed: policySet.seeds[0], bytes: $0) }
            return (key.primary >> 48) & UInt64(store.shardCount - 1)
        }
        var candidate = first + 1
        while shard(candidate) == shard(first) { candidate += 1 }
        return candidate
    }

    /// Makes `decisions` decisions, split evenly between the threads, and reports an error if any decision
    /// did not come out as expected.
    func runIteration(decisions: Int, benchmark: Benchmark) {
        let threads = streams.count
        let perThread = decisions / threads
        let batches = (perThread + Self.decisionsPerTimestamp - 1) / Self.decisionsPerTimestamp
        let start = clock.now()
        clock.advance(nanoseconds: Int64(batches) * Self.nanosecondsPerBatch)
        let position = cursor.add(perThread, ordering: .relaxed).oldValue
        allowedCount.store(0, ordering: .relaxed)

        if threads == 1 {
            allowedCount.store(decide(stream: streams[0], from: position, count: perThread, start: start), ordering: .relaxed)
        } else {
            DispatchQueue.concurrentPerform(iterations: threads) { thread in
                let allowed = decide(stream: streams[thread], from: position, count: perThread, start: start)
                allowedCount.add(allowed, ordering: .relaxed)
                if thread == 0 {
                    firstWorkerThread.store(currentThreadID(), ordering: .relaxed)
                } else {
                    secondWorkerThread.store(currentThreadID(), ordering: .relaxed)
                }
            }
            if firstWorkerThread.load(ordering: .relaxed) == secondWorkerThread.load(ordering: .relaxed) {
                benchmark.error("both halves ran on one thread: concurrentPerform did not run them in parallel")
            }
        }

        let allowed = allowedCount.load(ordering: .relaxed)
        let expected = expectation == .allAllowed ? perThread * threads : 0
        if allowed != expected {
            benchmark.error("\(allowed) of \(perThread * threads) decisions allowed, expected \(expected)")
        }
    }

    /// The measured loop of one thread: `count` decisions from `stream`, one timestamp per batch.
    ///
    /// - Returns: how many were allowed.
    func decide(stream: RequestStream, from position: Int, count: Int, start: Timestamp) -> Int {
        if lookahead > 0 { return decideAhead(stream: stream, from: position, count: count, start: start) }
        if checksPerRequest > 1 { return decideTogether(stream: stream, from: position, count: count, start: start) }
        var allowed = 0
        var now = start
        stream.bytes.withUnsafeBytes { bytes in
            var position = position
            var done = 0
            while done < count {
                let batchEnd = min(count, done + Self.decisionsPerTimestamp)
                while done < batchEnd {
                    let check = policySet.check(policy: 0, key: stream.key(at: position, in: bytes), cost: 1)
                    if limiter.decide(check, at: now).isAllowed { allowed &+= 1 }
                    position &+= 1
                    done &+= 1
                }
                now.nanoseconds &+= Self.nanosecondsPerBatch
            }
        }
        return allowed
    }
}

extension DecisionWorkload {
    /// ``decide(stream:from:count:start:)`` with the checks of the next `lookahead` requests made and their slots
    /// prefetched ahead of deciding: a ring of checks, each made `lookahead` decisions before it is decided.
    func decideAhead(stream: RequestStream, from position: Int, count: Int, start: Timestamp) -> Int {
        var allowed = 0
        var now = start
        stream.bytes.withUnsafeBytes { bytes in
            func check(at position: Int) -> Check {
                let check = policySet.check(policy: 0, key: stream.key(at: position, in: bytes), cost: 1)
                limiter.prefetch(check)
                return check
            }
            var ring = (0..<lookahead).map { check(at: position + $0) }
            var slot = 0
            var position = position
            var done = 0
            while done < count {
                let batchEnd = min(count, done + Self.decisionsPerTimestamp)
                while done < batchEnd {
                    let current = ring[slot]
                    ring[slot] = check(at: position &+ lookahead)
                    slot = slot + 1 == lookahead ? 0 : slot + 1
                    if limiter.decide(current, at: now).isAllowed { allowed &+= 1 }
                    position &+= 1
                    done &+= 1
                }
                now.nanoseconds &+= Self.nanosecondsPerBatch
            }
        }
        return allowed
    }
}

extension DecisionWorkload {
    /// ``decide(stream:from:count:start:)`` in requests of ``checksPerRequest`` checks (consecutive keys of the
    /// stream), each decided all or nothing; counts checks, so per-check figures compare with one-by-one rows.
    func decideTogether(stream: RequestStream, from position: Int, count: Int, start: Timestamp) -> Int {
        var allowed = 0
        var now = start
        stream.bytes.withUnsafeBytes { bytes in
            var checks: [Check] = []
            checks.reserveCapacity(checksPerRequest)
            var position = position
            var done = 0
            while done < count {
                let batchEnd = min(count, done + Self.decisionsPerTimestamp)
                while done < batchEnd {
                    checks.removeAll(keepingCapacity: true)
                    for offset in 0..<checksPerRequest {
                        checks.append(policySet.check(policy: 0, key: stream.key(at: position &+ offset, in: bytes), cost: 1))
                    }
                    if limiter.decide(checks, at: now).isAllowed { allowed &+= checksPerRequest }
                    position &+= checksPerRequest
                    done &+= checksPerRequest
                }
                now.nanoseconds &+= Self.nanosecondsPerBatch
            }
        }
        return allowed
    }
}

struct WorkloadError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

func currentThreadID() -> UInt {
    #if canImport(Glibc)
    UInt(pthread_self())
    #else
    UInt(bitPattern: pthread_self())
    #endif
}
