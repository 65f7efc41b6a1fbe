import GRPCCore
import Histogram
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import GRPCNIOTransportHTTP2Posix
import SluiceRLS
import SluiceWorkload
import Synchronization

/// The gRPC target: Envoy's `ShouldRateLimit` through grpc-swift's client, one HTTP/2 connection per `--connections`,
/// `--pipeline` concurrent calls on each.
enum GRPCLoad {
    /// What the calls of one connection share.
    private final class Connection: Sendable {
        let index: Int
        let quota: Int
        /// Requests made so far (the next one's number).
        let made = Atomic<Int>(0)
        let keys: Mutex<KeySource>

        init(index: Int, quota: Int, keys: KeySource) {
            self.index = index
            self.quota = quota
            self.keys = Mutex(keys)
        }
    }

    /// The recorder the calls share, behind a lock.
    private final class SharedRecorder: @unchecked Sendable {
        // @unchecked: the recorder is touched only under the lock.
        private let lock = NIOLock()
        private let recorder = BenchRecorder()
        /// When the last caller finished.
        private var endedAt: Int64 = 0

        func withLock<Result>(_ body: (BenchRecorder) -> Result) -> Result {
            lock.withLock { body(recorder) }
        }

        func callerFinished(at time: Int64) { lock.withLock { endedAt = max(endedAt, time) } }
        var lastFinished: Int64 { lock.withLock { endedAt } }
    }

    static func run(_ plan: BenchPlan, progress: @escaping @Sendable (BenchProgress) -> Void) async throws -> BenchReport {
        let recorder = SharedRecorder()
        // --threads event loops, as for the other targets.
        let eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: plan.threads)
        defer { eventLoops.shutdownGracefully { _ in } }
        let zipf: ZipfDistribution? = if case .zipf(let exponent) = plan.distribution { ZipfDistribution(count: plan.keys, exponent: exponent) } else { nil }
        let quotas = BenchRunner.quotas(plan)
        let start = monotonicNanoseconds()
        let sendingEnds: Int64 = if case .duration(let nanoseconds) = plan.length { start + nanoseconds } else { .max }
        let connections = (0..<plan.connections).map { index in
            Connection(
                index: index, quota: quotas[index],
                keys: KeySource(generator: SplitMix64(seed: plan.seed &+ UInt64(index) &* 0x9E37_79B9), upperBound: Int64(plan.keys - 1), zipf: zipf)
            )
        }
        let template = RequestTemplate(plan)
        var options = CallOptions.defaults
        options.timeout = .nanoseconds(plan.timeoutNanoseconds)
        options.waitForReady = false
        let callOptions = options

        let reporter = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                if Task.isCancelled { break }
                let (counts, interval, latencies) = recorder.withLock { recorder in
                    let (interval, latencies) = recorder.takeInterval()
                    return (recorder.counts, interval, latencies)
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

        try await withThrowingDiscardingTaskGroup { group in
            for connection in connections {
                group.addTask {
                    let (host, port) = (plan.target.host, plan.target.port)
                    let target: any ResolvableTarget = host.contains(":")
                        ? ResolvableTargets.IPv6(addresses: [.init(host: host, port: port)])
                        : ResolvableTargets.IPv4(addresses: [.init(host: host, port: port)])
                    let transport = try HTTP2ClientTransport.Posix(target: target, transportSecurity: .plaintext, eventLoopGroup: eventLoops)
                    try await withGRPCClient(transport: transport) { client in
                        let service = Envoy_Service_Ratelimit_V3_RateLimitService.Client(wrapping: client)
                        try await withThrowingDiscardingTaskGroup { calls in
                            for _ in 0..<plan.pipeline {
                                calls.addTask {
                                    await callUntilDone(
                                        plan: plan, connection: connection, service: service, template: template, options: callOptions,
                                        start: start, sendingEnds: sendingEnds, recorder: recorder
                                    )
                                    recorder.callerFinished(at: monotonicNanoseconds())
                                }
                            }
                        }
                    }
                }
            }
        }
        let (counts, latencies) = recorder.withLock { ($0.counts, $0.total) }
        return BenchReport(plan: plan, counts: counts, latencies: latencies, elapsedNanoseconds: max(recorder.lastFinished - start, 0))
    }

    /// One of a connection's concurrent callers: calls until the connection's quota or the duration is spent.
    private static func callUntilDone(
        plan: BenchPlan, connection: Connection, service: Envoy_Service_Ratelimit_V3_RateLimitService.Client<HTTP2ClientTransport.Posix>,
        template: RequestTemplate, options: CallOptions, start: Int64, sendingEnds: Int64, recorder: SharedRecorder
    ) async {
        var failingSince: Int64?
        while !Task.isCancelled {
            let number = connection.made.add(1, ordering: .relaxed).oldValue
            guard number < connection.quota else { return }
            var sent = monotonicNanoseconds()
            if let rate = plan.rate {
                // As on the other targets: the k-th request of connection i of C is due at start + (k C + i) / rate.
                let due = start + Int64((Double(number * plan.connections + connection.index) * 1e9 / rate).rounded())
                guard due < sendingEnds else { return }
                if due > sent { try? await Task.sleep(for: .nanoseconds(due - sent)) }
                sent = due
            } else if sent >= sendingEnds {
                return
            }
            var request = Envoy_Service_Ratelimit_V3_RateLimitRequest()
            request.domain = plan.policies[0]
            var entry = Envoy_Service_Ratelimit_V3_RateLimitDescriptor.Entry()
            entry.key = plan.descriptorKey
            entry.value = template.key(connection.keys.withLock { $0.next() })
            var descriptor = Envoy_Service_Ratelimit_V3_RateLimitDescriptor()
            descriptor.entries = [entry]
            request.descriptors = [descriptor]
            request.hitsAddend = UInt32(clamping: plan.cost)
            do {
                let response = try await service.shouldRateLimit(request, options: options)
                failingSince = nil
                let outcome: ReplyOutcome = switch response.overallCode {
                case .ok: .allowed
                case .overLimit: .denied
                default: .errorReply
                }
                let now = monotonicNanoseconds()
                recorder.withLock { $0.record(nanoseconds: now - sent, outcome) }
            } catch let error as RPCError where error.code == .unavailable {
                // No connection: counted as refused, retried after a pause; the caller gives up after the timeout.
                recorder.withLock { $0.count { $0.refused += 1 } }
                let now = monotonicNanoseconds()
                let since = failingSince ?? now
                failingSince = since
                if now - since >= plan.timeoutNanoseconds || now >= sendingEnds { return }
                try? await Task.sleep(for: .milliseconds(100))
            } catch let error as RPCError where error.code == .deadlineExceeded {
                recorder.withLock { $0.count { $0.timeouts += 1 } }
            } catch {
                recorder.withLock { $0.count { $0.errorReplies += 1 } }
            }
        }
    }
}
