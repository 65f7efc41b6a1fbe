public import CoreMetrics
public import Prometheus
import SluiceCore
import Synchronization

/// Sluice's metrics, through swift-metrics: any backend can take them; by default swift-prometheus, which
/// renders `GET /metrics`.
///
/// The decision path does not call swift-metrics per decision: it keeps counting the way it always has
/// (per-read batches added to relaxed atomics, one atomic cell per policy), and ``publish(_:)`` hands the
/// growth since the last call to the swift-metrics counters and sets the gauges, at every scrape and every
/// 5 s (the events service's tick), so a pushing backend sees them too. Only the latency histograms are fed
/// directly, once per read (line protocol) or request (HTTP, gRPC).
///
/// Labels are bounded: outcomes, policy names, RLS domains and webhook URLs, all from configuration; never keys.
public final class SluiceMetrics: Sendable {
    /// Where decisions were answered, for the latency histogram.
    public enum Server: String, Sendable {
        case line, http, grpc
    }

    /// The Prometheus registry `/metrics` renders; nil when the metrics go to another backend.
    public let registry: PrometheusCollectorRegistry?
    private let factory: any CoreMetrics.MetricsFactory
    /// The latency histograms, one per server (fields, not a dictionary: one is fed on every request).
    private let lineLatency, httpLatency, grpcLatency: CoreMetrics.Timer
    /// Each counter series with the total it has been given so far.
    private let counters = Locked<[String: (counter: CoreMetrics.Counter, published: Int)]>([:])
    private let gauges = Locked<[String: CoreMetrics.Gauge]>([:])

    /// The decision latency histogram's name and buckets (10 µs to 250 ms).
    static let latencyName = "sluice_decision_duration_seconds"
    static let latencyBuckets: [Duration] = [
        .microseconds(10), .microseconds(25), .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500),
        .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250),
    ]

    /// Every metric Sluice publishes, with its help text.
    public static let help: [String: String] = [
        "sluice_decisions_total": "Decisions by outcome (a multi-check request counts once).",
        "sluice_policy_decisions_total": "Decisions by policy and outcome; inline limits count as (inline).",
        "sluice_requests_total": "Commands and HTTP requests served.",
        "sluice_protocol_errors_total": "Line-protocol connections closed for a malformed frame.",
        "sluice_connections_total": "Line-protocol connections accepted.",
        "sluice_connections_open": "Open line-protocol connections.",
        "sluice_connections_closed_total":
            "Connections Sluice closed on its own: refused (over limits.max_connections), idle (limits.idle_timeout), request_timeout (an HTTP request too slow to arrive).",
        "sluice_keys": "Live buckets.",
        "sluice_keys_max": "Buckets the store holds before evicting.",
        "sluice_evictions_total": "Buckets dropped: idle (full again, no state lost) or pressure (store full).",
        "sluice_policies": "Policies in force.",
        "sluice_uptime_seconds": "Seconds since start.",
        "sluice_rls_decisions_total": "Envoy rate limit service requests by domain and overall code.",
        "sluice_redis_up": "Whether Redis answers (1) or global policies follow on_store_failure (0).",
        "sluice_redis_authentication_failed": "Whether Redis refused the configured credentials at the last attempt.",
        "sluice_global_decisions_total":
            "Global decisions by how they were made: from a lease or known exhaustion (local), after waiting for Redis (redis), by on_store_failure (fallback).",
        "sluice_redis_calls_total": "Script calls sent to Redis: lease requests and strict decisions.",
        "sluice_redis_errors_total": "Redis failures: timeouts, lost connections, error replies.",
        "sluice_redis_reconnections_total": "Connections to Redis made again after a failure.",
        "sluice_leases": "Buckets holding a lease of a global budget.",
        "sluice_event_subscribers": "Clients reading the live event stream (GET /v1/events).",
        "sluice_events_dropped_total": "Stream events a slow subscriber lost (it was told with a dropped event).",
        "sluice_webhook_deliveries_total":
            "Webhook events by endpoint and result: delivered, failed_attempt (retried or dropped), dropped (never delivered).",
        "sluice_webhook_failing": "Whether a webhook endpoint failed every attempt of an event (1) and its queue is dropped.",
        latencyName: "Time to answer, per read of the line protocol (a pipeline counts once) and per HTTP or gRPC request.",
    ]

    /// Metrics into a new Prometheus registry (each server context its own, so tests do not share).
    public convenience init() {
        let registry = PrometheusCollectorRegistry()
        self.init(factory: Self.factory(registry: registry), registry: registry)
    }

    /// Metrics made by `factory`; `registry` is what `/metrics` renders (nil: another backend, and `/metrics` says so).
    public init(factory: any CoreMetrics.MetricsFactory, registry: PrometheusCollectorRegistry?) {
        self.factory = factory
        self.registry = registry
        func timer(_ server: Server) -> CoreMetrics.Timer {
            CoreMetrics.Timer(label: Self.latencyName, dimensions: [("server", server.rawValue)], factory: factory)
        }
        lineLatency = timer(.line)
        httpLatency = timer(.http)
        grpcLatency = timer(.grpc)
    }

    private func latency(_ server: Server) -> CoreMetrics.Timer {
        switch server {
        case .line: lineLatency
        case .http: httpLatency
        case .grpc: grpcLatency
        }
    }

    /// The factory Sluice uses for Prometheus: help text and latency buckets for its metrics.
    public static func factory(registry: PrometheusCollectorRegistry) -> PrometheusHelpFactory {
        PrometheusHelpFactory(registry: registry, help: help, durationBuckets: [latencyName: latencyBuckets])
    }

    // MARK: The decision path

    /// Records that `server` took from `start` to `end` to answer.
    @inline(__always)
    func recordLatency(_ server: Server, from start: Timestamp, to end: Timestamp) {
        latency(server).recordNanoseconds(max(0, end.nanoseconds - start.nanoseconds))
    }

    /// Records a latency of `nanoseconds` for `server`.
    public func recordLatency(_ server: Server, nanoseconds: Int64) { latency(server).recordNanoseconds(max(0, nanoseconds)) }

    // MARK: Publishing

    /// What ``publish(_:)`` reads besides the status.
    public struct Reading: Sendable {
        var status: ServerStatus
        var policies: [(name: String, allowed: Int, denied: Int, shadowDenied: Int)]
        var webhooks: [WebhookDispatcher.EndpointStatus]
        var subscribers: Int
        var droppedEvents: Int
    }

    /// Hands the counters' growth since the last call to swift-metrics and sets the gauges.
    public func publish(_ reading: Reading) {
        let status = reading.status
        let statistics = status.statistics
        count("sluice_decisions_total", [("outcome", "allowed")], statistics.allowed)
        count("sluice_decisions_total", [("outcome", "denied")], statistics.denied)
        count("sluice_decisions_total", [("outcome", "shadow_denied")], statistics.shadowDenied)
        for policy in reading.policies {
            count("sluice_policy_decisions_total", [("policy", policy.name), ("outcome", "allowed")], policy.allowed)
            count("sluice_policy_decisions_total", [("policy", policy.name), ("outcome", "denied")], policy.denied)
            count("sluice_policy_decisions_total", [("policy", policy.name), ("outcome", "shadow_denied")], policy.shadowDenied)
        }
        count("sluice_requests_total", [], statistics.commands)
        count("sluice_protocol_errors_total", [], statistics.protocolErrors)
        count("sluice_connections_total", [], statistics.connectionsTotal)
        gauge("sluice_connections_open", [], statistics.connectionsOpen)
        count("sluice_connections_closed_total", [("reason", "refused")], statistics.connectionsRefused)
        count("sluice_connections_closed_total", [("reason", "idle")], statistics.idleClosed)
        count("sluice_connections_closed_total", [("reason", "request_timeout")], statistics.requestTimeouts)
        gauge("sluice_keys", [], status.store.keys)
        gauge("sluice_keys_max", [], status.store.maximumKeys)
        count("sluice_evictions_total", [("reason", "idle")], status.store.idleEvictions)
        count("sluice_evictions_total", [("reason", "pressure")], status.store.pressureEvictions)
        gauge("sluice_policies", [], status.policies)
        gauge("sluice_uptime_seconds", [], Int(statistics.uptimeSeconds))
        for domain in status.rls {
            count("sluice_rls_decisions_total", [("domain", domain.label), ("outcome", "ok")], domain.allowed)
            count("sluice_rls_decisions_total", [("domain", domain.label), ("outcome", "over_limit")], domain.denied)
        }
        if let global = status.global {
            gauge("sluice_redis_up", [], global.isConnected ? 1 : 0)
            gauge("sluice_redis_authentication_failed", [], global.authenticationFailed ? 1 : 0)
            count("sluice_global_decisions_total", [("path", "local")], global.localDecisions)
            count("sluice_global_decisions_total", [("path", "redis")], global.redisDecisions)
            count("sluice_global_decisions_total", [("path", "fallback")], global.fallbackDecisions)
            count("sluice_redis_calls_total", [("kind", "lease")], global.leaseRequests)
            count("sluice_redis_calls_total", [("kind", "strict")], global.strictCalls)
            count("sluice_redis_errors_total", [], global.errors)
            count("sluice_redis_reconnections_total", [], global.reconnections)
            gauge("sluice_leases", [], global.leases)
        }
        gauge("sluice_event_subscribers", [], reading.subscribers)
        count("sluice_events_dropped_total", [], reading.droppedEvents)
        for endpoint in reading.webhooks {
            count("sluice_webhook_deliveries_total", [("url", endpoint.url), ("result", "delivered")], endpoint.delivered)
            count("sluice_webhook_deliveries_total", [("url", endpoint.url), ("result", "failed_attempt")], endpoint.failedAttempts)
            count("sluice_webhook_deliveries_total", [("url", endpoint.url), ("result", "dropped")], endpoint.dropped)
            gauge("sluice_webhook_failing", [("url", endpoint.url)], endpoint.failing ? 1 : 0)
        }
    }

    /// The Prometheus text (version 0.0.4), or nil when the metrics go to another backend.
    public func render() -> String? { registry?.emitToString() }

    /// Brings the counter `name{labels}` up to `total` (counters only grow: a smaller total is ignored).
    private func count(_ name: String, _ labels: [(String, String)], _ total: Int) {
        let series = Self.seriesKey(name, labels)
        counters.withLock { counters in
            guard let entry = counters[series] else {
                let counter = CoreMetrics.Counter(label: name, dimensions: labels, factory: factory)
                if total > 0 { counter.increment(by: total) }
                counters[series] = (counter, total)
                return
            }
            guard total > entry.published else { return }
            entry.counter.increment(by: total - entry.published)
            counters[series] = (entry.counter, total)
        }
    }

    /// Sets the gauge `name{labels}` to `value`.
    private func gauge(_ name: String, _ labels: [(String, String)], _ value: Int) {
        let series = Self.seriesKey(name, labels)
        let gauge = gauges.withLock { gauges in
            if let gauge = gauges[series] { return gauge }
            let gauge = CoreMetrics.Gauge(label: name, dimensions: labels, factory: factory)
            gauges[series] = gauge
            return gauge
        }
        gauge.record(value)
    }

    private static func seriesKey(_ name: String, _ labels: [(String, String)]) -> String {
        labels.reduce(name) { $0 + "\u{0}" + $1.0 + "\u{0}" + $1.1 }
    }
}
