import Logging
import SluiceConfig
import Synchronization

/// What a router says about the connections it keeps.
struct RouterStatus: Sendable {
    var isConnected: Bool
    var errors: Int
    var reconnections: Int
    var authenticationFailed: Bool
}

/// Where a script call goes: the node that holds its key. One node (a URL, or the master Sentinel names), or
/// the master of the key's slot in a Cluster.
protocol RedisRouter: Sendable {
    /// Starts the threads; false if the system refused one.
    func start() -> Bool
    /// Sends `job` to the node of its key.
    func submit(_ job: RedisJob)
    /// Calls `body` once every job submitted before it has been answered or failed.
    func afterQueuedJobs(_ body: @escaping @Sendable () -> Void)
    /// Sends the `final` jobs, finishes what is queued, and stops.
    func stop(final: [RedisJob]) async
    var status: RouterStatus { get }
    /// Whether calls can be sent now: one atomic load, for the decision path.
    var isConnected: Bool { get }
}

/// One node: a URL's, or the master the sentinels name (found again whenever the connection is lost, or
/// Sentinel announces a new master).
final class SingleNodeRouter: RedisRouter {
    let worker: RedisWorker
    private let watcher: SentinelWatcher?

    init(settings: SluiceConfiguration.Redis, logger: Logger, tick: @escaping @Sendable () -> Void) {
        switch settings.deployment {
        case .sentinel(let master, let sentinels, let sentinelPassword):
            let locator = SentinelLocator(
                master: master, sentinels: sentinels, sentinelPassword: sentinelPassword, settings: settings, logger: logger
            )
            let worker = RedisWorker(
                locator: RedisWorker.Locator(name: "sentinel master '\(master)'", locate: { () throws(RedisConnectionError) in try locator.locate() }),
                settings: settings, clusterMode: false, logger: logger, tick: tick
            )
            self.worker = worker
            watcher = SentinelWatcher(locator: locator, logger: logger) { worker.reconnect() }
        case .single(let node, _):
            worker = RedisWorker(
                locator: RedisWorker.Locator(name: node.description, locate: { node }), settings: settings, clusterMode: false,
                logger: logger, tick: tick
            )
            watcher = nil
        case .cluster:
            preconditionFailure("a Cluster is routed by ClusterRouter, which the limiter picks for it")
        }
    }

    func start() -> Bool { worker.start() && (watcher?.start() ?? true) }
    func submit(_ job: RedisJob) { worker.submit(job) }
    var isConnected: Bool { worker.isConnected }
    func afterQueuedJobs(_ body: @escaping @Sendable () -> Void) { worker.afterQueuedJobs(body) }

    func stop(final: [RedisJob]) async {
        watcher?.stop()
        await worker.stop(final: final)
    }

    var status: RouterStatus {
        RouterStatus(
            isConnected: worker.isConnected, errors: worker.errors.load(ordering: .relaxed),
            reconnections: worker.reconnections.load(ordering: .relaxed),
            authenticationFailed: worker.authenticationFailed.load(ordering: .relaxed)
        )
    }
}
