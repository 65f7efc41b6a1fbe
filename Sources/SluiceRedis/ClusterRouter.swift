import Glibc
import Logging
import SluiceConfig
import SluiceCore
import Synchronization

/// A Redis Cluster: the slot map learned from whichever known node answers (`CLUSTER SLOTS`), one worker
/// (connection and thread) per master, and redirections followed: `MOVED` updates the map and resends,
/// `ASK` resends once to the importing node after `ASKING`, `TRYAGAIN` and `CLUSTERDOWN` resend shortly, all
/// within the caller's timeout and a bounded number of resends (redirections past a job's fifth are resent
/// shortly too: nodes that disagree for a moment about a slot pass a job back and forth). The map is refreshed
/// on redirections, on lost connections, every second while some slot has no reachable master, and every ten
/// seconds otherwise.
final class ClusterRouter: RedisRouter {
    typealias Node = SluiceConfiguration.Redis.Node

    private struct Topology {
        /// The master of each slot, by index into `masters`; -1 while unknown.
        var owners = [Int](repeating: -1, count: ClusterSlot.count)
        var masters: [Node] = []
        /// Every node learned since start (masters and replicas) and the seeds: where the map is asked for.
        var known: [Node]
        var workers: [Node: RedisWorker] = [:]
    }

    private let settings: SluiceConfiguration.Redis
    private let logger: Logger
    private let tick: @Sendable () -> Void
    private let topology: Locked<Topology>
    private let refreshWanted = Atomic<Bool>(true)
    private let stopping = Atomic<Bool>(false)
    private let refreshes = Atomic<Int>(0)
    /// Whether every slot has a master whose worker is connected, as of the topology thread's last look.
    private let healthy = Atomic<Bool>(false)

    init(seeds: [Node], settings: SluiceConfiguration.Redis, logger: Logger, tick: @escaping @Sendable () -> Void) {
        self.settings = settings
        self.logger = logger
        self.tick = tick
        topology = Locked(Topology(known: seeds))
    }

    func start() -> Bool {
        WorkerThread { [self] in self.watch() }.start()
    }

    func submit(_ job: RedisJob) {
        guard let worker = topology.withLock({ owner(of: job.slot, in: $0) }) else {
            refreshWanted.store(true, ordering: .relaxed)
            job.completion(.failure(RedisConnectionError(description: "no reachable master of slot \(job.slot) is known yet")))
            return
        }
        worker.submit(job)
    }

    func afterQueuedJobs(_ body: @escaping @Sendable () -> Void) {
        let workers = topology.withLock { Array($0.workers.values) }
        guard !workers.isEmpty else { return body() }
        let remaining = Atomic<Int>(workers.count)
        for worker in workers {
            worker.afterQueuedJobs {
                if remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { body() }
            }
        }
    }

    func stop(final: [RedisJob]) async {
        for job in final { submit(job) }
        stopping.store(true, ordering: .relaxed)
        for worker in topology.withLock({ Array($0.workers.values) }) { await worker.stop() }
    }

    var status: RouterStatus {
        topology.withLock { topology in
            let workers = topology.masters.compactMap { topology.workers[$0] }
            let covered = !topology.owners.contains(-1)
            return RouterStatus(
                isConnected: covered && !workers.isEmpty && workers.allSatisfy(\.isConnected),
                errors: topology.workers.values.reduce(0) { $0 + $1.errors.load(ordering: .relaxed) },
                reconnections: topology.workers.values.reduce(0) { $0 + $1.reconnections.load(ordering: .relaxed) },
                authenticationFailed: topology.workers.values.contains { $0.authenticationFailed.load(ordering: .relaxed) }
            )
        }
    }

    var isConnected: Bool { healthy.load(ordering: .relaxed) }

    /// How many times the map was read (tests wait on it).
    var refreshCount: Int { refreshes.load(ordering: .relaxed) }

    // MARK: Routing

    private func owner(of slot: Int, in topology: Topology) -> RedisWorker? {
        let index = topology.owners[slot]
        return index < 0 ? nil : topology.workers[topology.masters[index]]
    }

    /// The worker of `node`, made and started when there is none yet.
    private func worker(for node: Node) -> RedisWorker {
        let (worker, isNew) = topology.withLock { topology -> (RedisWorker, Bool) in
            if let existing = topology.workers[node] { return (existing, false) }
            let made = RedisWorker(
                locator: RedisWorker.Locator(name: node.description, locate: { node }), settings: settings, clusterMode: true, logger: logger,
                redirect: { [weak self] job, redirect in self?.follow(redirect, of: job) },
                lost: { [weak self] in self?.refreshWanted.store(true, ordering: .relaxed) }
            )
            topology.workers[node] = made
            if !topology.known.contains(node) { topology.known.append(node) }
            return (made, true)
        }
        if isNew, !worker.start() { logger.error("no thread for a Redis Cluster node", metadata: ["redis.node": "\(node)"]) }
        return worker
    }

    /// Sends a redirected job where Redis said.
    private func follow(_ redirect: Redirect, of job: RedisJob) {
        guard job.deadline > .now else {
            return job.completion(.failure(RedisConnectionError(description: "waited longer than the timeout for Redis")))
        }
        switch redirect {
        case .moved(let slot, let node):
            let target = worker(for: node)
            topology.withLock { topology in
                if let index = topology.masters.firstIndex(of: node) {
                    topology.owners[slot] = index
                } else {
                    topology.masters.append(node)
                    topology.owners[slot] = topology.masters.count - 1
                }
            }
            refreshWanted.store(true, ordering: .relaxed)
            var moved = job
            moved.asking = false
            send(moved, to: target)
        case .ask(_, let node):
            var asking = job
            asking.asking = true
            send(asking, to: worker(for: node))
        case .tryAgain:
            refreshWanted.store(true, ordering: .relaxed)
            guard let owner = topology.withLock({ owner(of: job.slot, in: $0) }) else {
                return job.completion(.failure(RedisConnectionError(description: "no reachable master of slot \(job.slot)")))
            }
            owner.submit(job, after: RedisJob.pace)
        }
    }

    /// Sends a redirected job on: at once, or a pace later past its first redirections (two nodes sending it to
    /// each other wait for the cluster to agree, rather than spend its redirections in microseconds).
    private func send(_ job: RedisJob, to worker: RedisWorker) {
        if job.isPaced { worker.submit(job, after: RedisJob.pace) } else { worker.submit(job) }
    }

    // MARK: Topology

    /// The topology thread: lease housekeeping every 100 ms, and the map refreshed when wanted.
    private func watch() {
        var lastRefresh = ContinuousClock.now - .seconds(3600)
        while !stopping.load(ordering: .relaxed) {
            tick()
            let degraded = !status.isConnected
            healthy.store(!degraded, ordering: .relaxed)
            if refreshWanted.exchange(false, ordering: .relaxed) || ContinuousClock.now - lastRefresh >= (degraded ? .seconds(1) : .seconds(10)) {
                lastRefresh = .now
                refresh()
            }
            usleep(100_000)
        }
    }

    /// Asks the known nodes, in turn, for the slot map, until one answers; learns every node it names.
    private func refresh() {
        let candidates = topology.withLock { $0.known }
        for candidate in candidates {
            do {
                let connection = try HiredisConnection(host: candidate.host, port: candidate.port, timeout: settings.timeout)
                try connection.authenticate(username: settings.username, password: settings.password)
                let reply = try connection.command(["CLUSTER", "SLOTS"].map { Array($0.utf8) })
                guard let map = Self.slotMap(reply, askedAt: candidate), !map.ranges.isEmpty else { continue }
                apply(map)
                refreshes.add(1, ordering: .relaxed)
                return
            } catch {
                if error.isAuthentication {
                    logger.error("Redis authentication failed: check redis.username and redis.password (or password_file)", metadata: ["redis.node": "\(candidate)"])
                }
                continue
            }
        }
        logger.debug("no Redis Cluster node answered CLUSTER SLOTS", metadata: ["redis.nodes": "\(candidates.map(\.description))"])
    }

    private func apply(_ map: (ranges: [(slots: ClosedRange<Int>, master: Node)], nodes: [Node])) {
        let masters = Array(Set(map.ranges.map(\.master)))
        for master in masters { _ = worker(for: master) }
        topology.withLock { topology in
            topology.masters = masters
            topology.owners = [Int](repeating: -1, count: ClusterSlot.count)
            for (slots, master) in map.ranges {
                guard let index = masters.firstIndex(of: master) else { continue }
                for slot in slots where slot >= 0 && slot < ClusterSlot.count { topology.owners[slot] = index }
            }
            for node in map.nodes where !topology.known.contains(node) { topology.known.append(node) }
        }
    }

    /// `CLUSTER SLOTS`: `[[start, end, [host, port, id], replica...], ...]`; an empty host is the node asked.
    static func slotMap(_ reply: RedisReply, askedAt asked: Node) -> (ranges: [(slots: ClosedRange<Int>, master: Node)], nodes: [Node])? {
        guard case .array(let entries) = reply else { return nil }
        var ranges: [(slots: ClosedRange<Int>, master: Node)] = []
        var nodes: [Node] = []
        for entry in entries {
            guard case .array(let parts) = entry, parts.count >= 3, case .integer(let start) = parts[0], case .integer(let end) = parts[1],
                start <= end
            else { return nil }
            let members = parts[2...].compactMap { part -> Node? in
                guard case .array(let fields) = part, fields.count >= 2, case .integer(let port) = fields[1] else { return nil }
                let host = fields[0].text ?? ""
                return Node(host: host.isEmpty ? asked.host : host, port: Int(port))
            }
            guard let master = members.first else { return nil }
            ranges.append((Int(start)...Int(end), master))
            nodes += members
        }
        return (ranges, nodes)
    }
}
