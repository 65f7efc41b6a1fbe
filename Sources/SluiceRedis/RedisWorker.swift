import Glibc
import Logging
import SluiceConfig
import SluiceCore
import Synchronization

/// Where Redis sent a job instead of answering it.
enum Redirect: Sendable {
    /// The slot lives on another node now (Cluster `MOVED`).
    case moved(slot: Int, node: SluiceConfiguration.Redis.Node)
    /// The slot is moving: ask that node once, after `ASKING` (Cluster `ASK`).
    case ask(slot: Int, node: SluiceConfiguration.Redis.Node)
    /// The cluster cannot serve the slot for a moment (`TRYAGAIN`, `CLUSTERDOWN`): send it again shortly.
    case tryAgain

    /// The redirect an error reply names, if it is one.
    init?(_ message: String) {
        let words = message.split(separator: " ")
        guard let first = words.first else { return nil }
        if first == "TRYAGAIN" || first == "CLUSTERDOWN" {
            self = .tryAgain
            return
        }
        guard first == "MOVED" || first == "ASK", words.count == 3, let slot = Int(words[1]),
            case .success(let node) = SluiceConfiguration.Redis.Node.parse(String(words[2]))
        else { return nil }
        self = first == "MOVED" ? .moved(slot: slot, node: node) : .ask(slot: slot, node: node)
    }
}

/// The thread that owns one hiredis connection to one Redis node: it drains its job queue, sends each batch
/// pipelined (the strict decisions waiting together as one script call), hands out the replies, and
/// reconnects with backoff when the node goes away. hiredis blocks, so it never runs on an event loop.
final class RedisWorker: Sendable {
    /// How the worker finds its node at each connection: a fixed address, or the master Sentinel names.
    struct Locator: Sendable {
        /// What logs call the node.
        let name: String
        let locate: @Sendable () throws(RedisConnectionError) -> SluiceConfiguration.Redis.Node
    }

    private let locator: Locator
    private let settings: SluiceConfiguration.Redis
    /// Whether the node belongs to a Cluster: batches then only join decisions of one slot (a script's keys
    /// must share a slot there).
    private let clusterMode: Bool
    private let logger: Logger
    private let queue: JobQueue
    private let connected = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    /// Set to make the worker drop its connection and locate its node again (Sentinel named a new master).
    private let relocate = Atomic<Bool>(false)
    let errors = Atomic<Int>(0)
    let reconnections = Atomic<Int>(0)
    /// Whether the last connection attempt failed on authentication.
    let authenticationFailed = Atomic<Bool>(false)
    /// Called on the worker thread about every 100 ms, for housekeeping (expiring leases).
    private let tick: (@Sendable () -> Void)?
    /// Called on the worker thread with a job Redis redirected.
    private let redirect: @Sendable (RedisJob, Redirect) -> Void
    /// Called on the worker thread when the connection is lost (a Cluster refreshes its map).
    private let lost: @Sendable () -> Void
    private let finished = Locked<Bool>(false)
    private let started = Atomic<Bool>(false)
    /// The most jobs sent in one pipelined batch.
    static let maximumBatch = 512
    /// The most decisions in one batch script call.
    static let maximumDecisionsPerCall = 128

    init(
        locator: Locator, settings: SluiceConfiguration.Redis, clusterMode: Bool, logger: Logger, tick: (@Sendable () -> Void)? = nil,
        redirect: @escaping @Sendable (RedisJob, Redirect) -> Void = { job, _ in
            job.completion(.failure(RedisConnectionError(description: "Redis redirected a call, and this is no Cluster")))
        },
        lost: @escaping @Sendable () -> Void = {}
    ) {
        self.locator = locator
        self.settings = settings
        queue = JobQueue(gathering: JobQueue.gathering(timeout: settings.timeout))
        self.clusterMode = clusterMode
        self.logger = logger
        self.tick = tick
        self.redirect = redirect
        self.lost = lost
    }

    /// Whether the node answered the last command (or the last connection attempt succeeded).
    var isConnected: Bool { connected.load(ordering: .relaxed) }

    /// The most jobs queued; beyond it a job fails at once (Redis is not keeping up).
    static let maximumQueued = 65_536

    /// Queues `job`, or fails it at once when the queue is full.
    func submit(_ job: RedisJob) {
        guard queue.push(job, limit: Self.maximumQueued) else {
            errors.add(1, ordering: .relaxed)
            job.completion(.failure(RedisConnectionError(description: "more than \(Self.maximumQueued) calls wait for Redis")))
            return
        }
    }

    /// Queues `job` to be sent no earlier than `delay` from now (a cluster answering TRYAGAIN).
    func submit(_ job: RedisJob, after delay: Duration) {
        queue.pushDelayed(job, until: .now + delay)
    }

    /// Calls `body` once every job submitted before this call has been answered or failed.
    func afterQueuedJobs(_ body: @escaping @Sendable () -> Void) {
        queue.pushBarrier(body)
    }

    /// Makes the worker drop its connection and locate its node again.
    func reconnect() {
        relocate.store(true, ordering: .relaxed)
        queue.wake()
    }

    /// Starts the thread; false if the system refused one (Redis then stays unavailable).
    func start() -> Bool {
        let running = WorkerThread { [self] in self.run() }.start()
        started.store(running, ordering: .relaxed)
        return running
    }

    /// Asks the thread to finish the queued jobs and the `final` ones, then stop; returns when it has.
    func stop(final: [RedisJob] = []) async {
        for job in final { _ = queue.push(job, limit: .max) }
        stopping.store(true, ordering: .releasing)
        queue.wake()
        while started.load(ordering: .relaxed), !finished.withLock({ $0 }) {
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    private func run() {
        var connection: HiredisConnection?
        var scripts: [[UInt8]] = []
        var backoff = Duration.milliseconds(25)
        var nextAttempt = ContinuousClock.now
        var lastTick = ContinuousClock.now
        var everConnected = false
        var node = locator.name
        while true {
            let stop = stopping.load(ordering: .acquiring)
            let drained = queue.drain(maximum: Self.maximumBatch, waiting: stop ? .zero : .milliseconds(100))
            var jobs = drained.jobs
            // Run once this round's jobs are answered or failed, whichever way the round ends.
            defer { for barrier in drained.barriers { barrier() } }
            if let tick, ContinuousClock.now - lastTick >= .milliseconds(100) {
                lastTick = .now
                tick()
            }
            if relocate.exchange(false, ordering: .relaxed), connection != nil {
                connection = nil
                connected.store(false, ordering: .relaxed)
                nextAttempt = .now
            }
            if connection == nil, ContinuousClock.now >= nextAttempt {
                do {
                    let address = try locator.locate()
                    node = address.description
                    let (opened, loaded) = try open(address)
                    connection = opened
                    scripts = loaded
                    connected.store(true, ordering: .relaxed)
                    authenticationFailed.store(false, ordering: .relaxed)
                    if everConnected { reconnections.add(1, ordering: .relaxed) }
                    everConnected = true
                    backoff = .milliseconds(25)
                    logger.info("connected to Redis", metadata: ["redis.node": "\(node)"])
                } catch {
                    let wasConnected = connected.exchange(false, ordering: .relaxed)
                    nextAttempt = .now + backoff
                    if error.isAuthentication {
                        // Said at every attempt that fails so, at error level: a wrong password does not heal itself.
                        if !authenticationFailed.exchange(true, ordering: .relaxed) || wasConnected {
                            logger.error(
                                "Redis authentication failed: check redis.username and redis.password (or password_file); global policies follow on_store_failure",
                                metadata: ["redis.node": "\(locator.name)", "redis.user": "\(settings.username ?? "default")"]
                            )
                        }
                    } else {
                        logger.debug("Redis unavailable", metadata: ["redis.node": "\(locator.name)", "error": "\(error)"])
                    }
                    backoff = min(backoff * 2, .seconds(1))
                }
            }
            guard let live = connection else {
                fail(jobs, RedisConnectionError(description: "Redis at \(locator.name) is unavailable"))
                if stop, queue.isEmpty { break }
                continue
            }
            // Jobs whose callers were already answered by the failure policy are not worth sending.
            let now = ContinuousClock.now
            if jobs.contains(where: { $0.deadline < now }) {
                let stale = jobs.filter { $0.deadline < now }
                jobs.removeAll { $0.deadline < now }
                fail(stale, RedisConnectionError(description: "waited longer than the timeout for Redis"))
            }
            if jobs.isEmpty {
                if stop, queue.isEmpty { break }
                continue
            }
            do {
                try send(&jobs, on: live, scripts: &scripts)
            } catch {
                errors.add(1, ordering: .relaxed)
                connected.store(false, ordering: .relaxed)
                connection = nil
                // A Redis that fails every batch is not hammered with reconnections.
                nextAttempt = .now + backoff
                backoff = min(backoff * 2, .seconds(1))
                logger.warning("lost Redis", metadata: ["redis.node": "\(node)", "error": "\(error)"])
                fail(jobs, error)
                lost()
            }
        }
        connected.store(false, ordering: .relaxed)
        finished.withLock { $0 = true }
    }

    /// Connects to `node`, authenticates, selects the database and loads the scripts.
    private func open(_ node: SluiceConfiguration.Redis.Node) throws(RedisConnectionError) -> (HiredisConnection, [[UInt8]]) {
        let connection = try HiredisConnection(host: node.host, port: node.port, timeout: settings.timeout)
        try connection.authenticate(username: settings.username, password: settings.password)
        if case .single(_, let database) = settings.deployment, database != 0,
            case .error(let message) = try connection.command([Array("SELECT".utf8), Array(String(database).utf8)])
        {
            throw RedisConnectionError(description: "SELECT \(database) refused: \(message)")
        }
        return (connection, try loadScripts(on: connection))
    }

    /// Loads every script; returns, per script, the start of its calls: `EVALSHA <sha>` as RESP bulk strings.
    private func loadScripts(on connection: HiredisConnection) throws(RedisConnectionError) -> [[UInt8]] {
        var headers: [[UInt8]] = []
        for script in RedisScript.allCases {
            let reply = try connection.command([Array("SCRIPT".utf8), Array("LOAD".utf8), Array(script.source.utf8)])
            guard let sha = reply.text else {
                if case .error(let message) = reply, message.hasPrefix("NOAUTH") {
                    throw RedisConnectionError(description: "authentication required: no password was given", isAuthentication: true)
                }
                throw RedisConnectionError(description: "SCRIPT LOAD refused: \(reply)")
            }
            var header: [UInt8] = []
            RESPEncoding.appendBulk("EVALSHA".utf8, to: &header)
            RESPEncoding.appendBulk(sha.utf8, to: &header)
            headers.append(header)
        }
        return headers
    }

    /// One script call of a pipelined batch: one job, or the decisions of one ``RedisScript/decisions`` call.
    private struct Call {
        var jobs: [RedisJob]
        var asking: Bool { jobs.first?.asking ?? false }
        var script: RedisScript { jobs.first?.script ?? .decisions }
    }

    /// The calls that send `jobs`: each job alone, except strict decisions (and peeks) not redirected by `ASK`,
    /// which share ``RedisScript/decisions`` calls of up to ``maximumDecisionsPerCall``: all together on one
    /// node, or by slot in a Cluster (a script's keys must share a slot there).
    private func calls(for jobs: [RedisJob]) -> [Call] {
        var calls: [Call] = []
        var groups: [Int: Int] = [:]  // slot (or 0) -> index in calls of the open decisions call
        for job in jobs {
            guard job.isDecision, !job.asking else {
                calls.append(Call(jobs: [job]))
                continue
            }
            let group = clusterMode ? job.slot : 0
            if let index = groups[group], calls[index].jobs.count < Self.maximumDecisionsPerCall {
                calls[index].jobs.append(job)
            } else {
                groups[group] = calls.count
                calls.append(Call(jobs: [job]))
            }
        }
        return calls
    }

    /// Sends `jobs` pipelined and completes each. A NOSCRIPT (the node restarted or flushed its scripts, or it
    /// is a new master) reloads the scripts and sends those jobs once more; redirections go to whoever routes.
    private func send(_ jobs: inout [RedisJob], on connection: HiredisConnection, scripts: inout [[UInt8]]) throws(RedisConnectionError) {
        var attempt = 0
        while !jobs.isEmpty {
            let calls = calls(for: jobs)
            // The whole batch in the wire format, handed to hiredis in one piece.
            var batch: [UInt8] = []
            batch.reserveCapacity(jobs.reduce(0) { $0 + $1.encodedKey.count + $1.encodedArguments.count } + calls.count * 80)
            for call in calls {
                if call.asking { RESPEncoding.appendCommand(["ASKING"], to: &batch) }
                let arguments = call.jobs.first?.argumentCount ?? 0
                RESPEncoding.appendArrayHeader(3 + call.jobs.count * (1 + arguments), to: &batch)
                batch.append(contentsOf: scripts[call.script.rawValue])
                RESPEncoding.appendBulk(decimal: Int64(call.jobs.count), to: &batch)
                for job in call.jobs { batch.append(contentsOf: job.encodedKey) }
                for job in call.jobs { batch.append(contentsOf: job.encodedArguments) }
            }
            try connection.appendFormatted(batch)
            var retry: [RedisJob] = []
            for (index, call) in calls.enumerated() {
                let reply: Result<[ScriptReply], ScriptError>
                do {
                    if call.asking { _ = try connection.reply() }  // +OK; an error here shows again on the call itself
                    reply = try connection.scriptReplies(count: call.jobs.count)
                } catch {
                    jobs = retry + calls[index...].flatMap(\.jobs)  // every job not yet completed fails with the connection
                    throw error
                }
                switch reply {
                case .success(let replies):
                    for (job, decoded) in zip(call.jobs, replies) { job.completion(.success(decoded)) }
                case .failure(let error):
                    // The whole call was refused: each of its jobs (one slot, one node) takes the same way.
                    for (position, job) in call.jobs.enumerated() {
                        do {
                            try handle(error, of: job, retry: &retry, attempt: attempt)
                        } catch {
                            jobs = retry + call.jobs[position...] + calls[(index + 1)...].flatMap(\.jobs)
                            throw error
                        }
                    }
                }
            }
            jobs = retry
            if !jobs.isEmpty {
                scripts = try loadScripts(on: connection)
                attempt += 1
            }
        }
    }

    /// What an error reply means for `job`: reload scripts and resend, follow a redirect, drop the
    /// connection (a replica, a node still loading), or fail the job.
    private func handle(_ error: ScriptError, of job: RedisJob, retry: inout [RedisJob], attempt: Int) throws(RedisConnectionError) {
        if error.message.hasPrefix("NOSCRIPT"), attempt == 0 {
            retry.append(job)
            return
        }
        if let redirect = Redirect(error.message) {
            var redirected = job
            switch redirect {
            case .tryAgain:
                redirected.waits += 1
            case .moved, .ask:
                redirected.redirects += 1
                if redirected.isPaced { redirected.waits += 1 }  // sent a pace later (see RedisJob.maximumRedirects)
            }
            guard redirected.waits <= RedisJob.maximumWaits else {
                errors.add(1, ordering: .relaxed)
                logger.warning("Redis kept redirecting a script call", metadata: ["error": "\(error.message)", "redirections": "\(job.redirects)", "waits": "\(job.waits)"])
                return job.completion(.failure(RedisConnectionError(description: "too many redirections: \(error.message)")))
            }
            self.redirect(redirected, redirect)
            return
        }
        if ["READONLY", "LOADING", "MASTERDOWN"].contains(where: { error.message.hasPrefix($0) }) {
            // A replica after a failover, or a node still loading: this connection will not do.
            throw RedisConnectionError(description: error.message)
        }
        errors.add(1, ordering: .relaxed)
        logger.warning("Redis refused a script call", metadata: ["error": "\(error.message)"])
        job.completion(.failure(RedisConnectionError(description: error.message)))
    }

    private func fail(_ jobs: [RedisJob], _ error: RedisConnectionError) {
        for job in jobs { job.completion(.failure(error)) }
    }
}
