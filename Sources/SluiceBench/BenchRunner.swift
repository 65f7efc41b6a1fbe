public import Histogram
import NIOCore
import NIOPosix
import SluiceWorkload

/// One second of a run, for the progress line.
public struct BenchProgress: Sendable {
    /// Since the start of the run.
    public let elapsedNanoseconds: Int64
    /// Decisions per second in the last interval.
    public let rate: Double
    /// The last interval's 99th percentile latency, in milliseconds.
    public let p99Milliseconds: Double
    /// Counts so far.
    public let counts: BenchCounts

    /// `  3 s   51,234 decisions/s  p99 1.210 ms  allowed 40000 denied 11234 errors 0`.
    public var line: String {
        "\(BenchReport.format(Double(elapsedNanoseconds) / 1e9, decimals: 0)) s  \(BenchReport.format(rate, decimals: 0)) decisions/s  "
            + "p99 \(BenchReport.format(p99Milliseconds, decimals: 3)) ms  allowed \(counts.allowed)  denied \(counts.denied)  errors \(counts.errors)"
    }
}

/// Runs a plan: the line protocol and HTTP on SwiftNIO connections, gRPC through grpc-swift's client.
public enum BenchRunner {
    /// Runs `plan` to its end, calling `progress` about once a second.
    public static func run(_ plan: BenchPlan, progress: @escaping @Sendable (BenchProgress) -> Void = { _ in }) async throws -> BenchReport {
        try plan.validate()
        if case .grpc = plan.target { return try await GRPCLoad.run(plan, progress: progress) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: plan.threads)
        // Not awaited: the run's connections are closed by then, and an error leaves nothing to wait for.
        defer { group.shutdownGracefully { _ in } }
        let zipf: ZipfDistribution? = if case .zipf(let exponent) = plan.distribution { ZipfDistribution(count: plan.keys, exponent: exponent) } else { nil }
        let quotas = Self.quotas(plan)
        let loops = (0..<plan.threads).map { _ in group.next() }
        let start = monotonicNanoseconds()
        // Connection i runs on loop i mod threads.
        var started: [NIOLoopBound<LoopDriver>] = []
        for (number, loop) in loops.enumerated() {
            let indexes = Array(stride(from: number, to: plan.connections, by: plan.threads))
            let driver = try await loop.submit {
                let driver = LoopDriver(loop: loop, plan: plan, start: start)
                driver.start(indexes: indexes, quotas: indexes.map { quotas[$0] }, zipf: zipf)
                return NIOLoopBound(driver, eventLoop: loop)
            }.get()
            started.append(driver)
        }
        let drivers = started
        let reporter = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                if Task.isCancelled { break }
                var counts = BenchCounts()
                var interval = BenchCounts()
                var latencies = BenchRecorder.histogram()
                for driver in drivers {
                    let (total, last, histogram) = try await driver.eventLoop.submit {
                        let (last, histogram) = driver.value.recorder.takeInterval()
                        return (driver.value.recorder.counts, last, histogram)
                    }.get()
                    counts += total
                    interval += last
                    latencies.add(histogram)
                }
                progress(
                    BenchProgress(
                        elapsedNanoseconds: monotonicNanoseconds() - start, rate: Double(interval.decisions),
                        p99Milliseconds: latencies.totalCount == 0 ? 0 : Double(latencies.valueAtPercentile(99)) / 1e6, counts: counts
                    )
                )
            }
        }
        defer { reporter.cancel() }
        var counts = BenchCounts()
        var latencies = BenchRecorder.histogram()
        var ended = start
        for driver in drivers {
            try await withTaskCancellationHandler {
                try await driver.eventLoop.flatSubmit { driver.value.finished.futureResult }.get()
            } onCancel: {
                driver.eventLoop.execute { driver.value.stopAll() }
            }
            let (total, histogram, endedAt) = try await driver.eventLoop.submit {
                (driver.value.recorder.counts, driver.value.recorder.total, driver.value.endedAt)
            }.get()
            counts += total
            latencies.add(histogram)
            ended = max(ended, endedAt)
        }
        return BenchReport(plan: plan, counts: counts, latencies: latencies, elapsedNanoseconds: ended - start)
    }

    /// Each connection's share of `--requests` (all of them for a run of a given duration).
    static func quotas(_ plan: BenchPlan) -> [Int] {
        switch plan.length {
        case .requests(let total):
            (0..<plan.connections).map { total / plan.connections + ($0 < total % plan.connections ? 1 : 0) }
        case .duration:
            Array(repeating: Int.max, count: plan.connections)
        }
    }
}
