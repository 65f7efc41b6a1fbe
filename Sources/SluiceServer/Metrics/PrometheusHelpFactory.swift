public import CoreMetrics
public import Prometheus

/// A swift-metrics factory over a Prometheus registry that gives Sluice's metrics their `# HELP` text.
///
/// swift-prometheus's own factory registers every metric with empty help, which `promtool check metrics`
/// rejects. This one looks each label up in `help`: known metrics are registered with their text (and duration
/// histograms with Sluice's buckets), anything else (a library's metrics) goes through swift-prometheus's
/// factory unchanged.
public struct PrometheusHelpFactory: CoreMetrics.MetricsFactory {
    /// Where the metrics are registered and rendered from.
    public let registry: PrometheusCollectorRegistry
    private let help: [String: String]
    private let durationBuckets: [String: [Duration]]
    private let fallback: PrometheusMetricsFactory

    /// Creates a factory registering into `registry`, with `help` text and `durationBuckets` by metric name.
    public init(registry: PrometheusCollectorRegistry, help: [String: String], durationBuckets: [String: [Duration]] = [:]) {
        self.registry = registry
        self.help = help
        self.durationBuckets = durationBuckets
        var fallback = PrometheusMetricsFactory(registry: registry)
        fallback.durationHistogramBuckets = durationBuckets
        self.fallback = fallback
    }

    private func descriptor(_ label: String) -> MetricNameDescriptor? {
        help[label].map { MetricNameDescriptor(metricName: label, unitName: "", helpText: $0) }
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CoreMetrics.CounterHandler {
        guard let descriptor = descriptor(label) else { return fallback.makeCounter(label: label, dimensions: dimensions) }
        return registry.makeCounter(descriptor: descriptor, labels: dimensions)
    }

    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any CoreMetrics.FloatingPointCounterHandler {
        guard let descriptor = descriptor(label) else { return fallback.makeFloatingPointCounter(label: label, dimensions: dimensions) }
        return registry.makeCounter(descriptor: descriptor, labels: dimensions)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any CoreMetrics.RecorderHandler {
        guard let descriptor = descriptor(label), !aggregate else {
            return fallback.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate)
        }
        return registry.makeGauge(descriptor: descriptor, labels: dimensions)
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any CoreMetrics.MeterHandler {
        guard let descriptor = descriptor(label) else { return fallback.makeMeter(label: label, dimensions: dimensions) }
        return registry.makeGauge(descriptor: descriptor, labels: dimensions)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any CoreMetrics.TimerHandler {
        guard let descriptor = descriptor(label), let buckets = durationBuckets[label] else {
            return fallback.makeTimer(label: label, dimensions: dimensions)
        }
        return registry.makeDurationHistogram(descriptor: descriptor, labels: dimensions, buckets: buckets)
    }

    public func destroyCounter(_ handler: any CoreMetrics.CounterHandler) { fallback.destroyCounter(handler) }
    public func destroyFloatingPointCounter(_ handler: any CoreMetrics.FloatingPointCounterHandler) { fallback.destroyFloatingPointCounter(handler) }
    public func destroyRecorder(_ handler: any CoreMetrics.RecorderHandler) { fallback.destroyRecorder(handler) }
    public func destroyMeter(_ handler: any CoreMetrics.MeterHandler) { fallback.destroyMeter(handler) }
    public func destroyTimer(_ handler: any CoreMetrics.TimerHandler) { fallback.destroyTimer(handler) }
}
