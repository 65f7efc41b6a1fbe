import Glibc
import Logging
import SluiceConfig
import SluiceCore
import Synchronization

/// The thread that owns the hiredis connection: it drains the job queue, sends each batch pipelined, hands
/// out the replies, and reconnects with backoff when Redis goes away. hiredis blocks, so it never runs on
/// an event loop.
final class RedisWorker: Sendable {
    private let settings: SluiceConfiguration.Redis
    private let logger: Logger
    private let queue = JobQueue()
    private let connected = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    let errors = Atomic<Int>(0)
    let reconnections = Atomic<Int>(0)
    /// Called on the worker thread about every 100 ms, for housekeeping (expiring leases).
    private let tick: @Sendable () -> Void
    private let finished = Mutex<Bool>(false)
    private let started = Atomic<Bool>(false)
    /// The most jobs sent in one pipelined batch.
    static let maximumBatch = 512

    init(settings: SluiceConfiguration.Redis, logger: Logger, tick: @escaping @Sendable () -> Void) {
        self.settings = settings
        self.logger = logger
        self.tick = tick
    }

    /// Whether Redis answered the last command (or the last connection attempt succeeded).
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

    /// Calls `body` once every job submitted before this call has been answered or failed.
    func afterQueuedJobs(_ body: @escaping @Sendable () -> Void) {
        queue.pushBarrier(body)
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
        while true {
            let stop = stopping.load(ordering: .acquiring)
            let drained = queue.drain(maximum: Self.maximumBatch, waiting: stop ? .zero : .milliseconds(100))
            var jobs = drained.jobs
            // Run once this round's jobs are answered or failed, whichever way the round ends.
            defer { for barrier in drained.barriers { barrier() } }
            if ContinuousClock.now - lastTick >= .milliseconds(100) {
                lastTick = .now
                tick()
            }
            if connection == nil, ContinuousClock.now >= nextAttempt {
                do {
                    let (opened, loaded) = try open()
                    connection = opened
                    scripts = loaded
                    connected.store(true, ordering: .relaxed)
                    if everConnected { reconnections.add(1, ordering: .relaxed) }
                    everConnected = true
                    logger.info("connected to Redis", metadata: ["redis.endpoint": "\(settings.endpoint)"])
                } catch {
                    connected.store(false, ordering: .relaxed)
                    nextAttempt = .now + backoff
                    logger.debug("Redis unavailable", metadata: ["redis.endpoint": "\(settings.endpoint)", "error": "\(error)"])
                    backoff = min(backoff * 2, .seconds(1))
                }
            }
            guard let live = connection else {
                fail(jobs, RedisConnectionError(description: "Redis at \(settings.endpoint) is unavailable"))
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
                backoff = .milliseconds(25)
            } catch {
                errors.add(1, ordering: .relaxed)
                connected.store(false, ordering: .relaxed)
                connection = nil
                // A Redis that fails every batch is not hammered with reconnections.
                nextAttempt = .now + backoff
                backoff = min(backoff * 2, .seconds(1))
                logger.warning("lost Redis", metadata: ["redis.endpoint": "\(settings.endpoint)", "error": "\(error)"])
                fail(jobs, error)
            }
        }
        connected.store(false, ordering: .relaxed)
        finished.withLock { $0 = true }
    }

    /// Connects, authenticates, selects the database and loads the scripts.
    private func open() throws(RedisConnectionError) -> (HiredisConnection, [[UInt8]]) {
        let connection = try HiredisConnection(host: settings.host, port: settings.port, timeout: settings.timeout)
        if let password = settings.password {
            var auth = [Array("AUTH".utf8)]
            if let username = settings.username { auth.append(Array(username.utf8)) }
            auth.append(Array(password.utf8))
            if case .error(let message) = try connection.command(auth) {
                throw RedisConnectionError(description: "AUTH refused: \(message)")
            }
        }
        if settings.database != 0, case .error(let message) = try connection.command([Array("SELECT".utf8), Array(String(settings.database).utf8)]) {
            throw RedisConnectionError(description: "SELECT \(settings.database) refused: \(message)")
        }
        return (connection, try loadScripts(on: connection))
    }

    /// Loads every script; returns, per script, the start of its calls: `EVALSHA <sha> 1` as RESP bulk strings.
    private func loadScripts(on connection: HiredisConnection) throws(RedisConnectionError) -> [[UInt8]] {
        var headers: [[UInt8]] = []
        for script in RedisScript.allCases {
            let reply = try connection.command([Array("SCRIPT".utf8), Array("LOAD".utf8), Array(script.source.utf8)])
            guard let sha = reply.text else { throw RedisConnectionError(description: "SCRIPT LOAD refused: \(reply)") }
            var header: [UInt8] = []
            RESPEncoding.appendBulk("EVALSHA".utf8, to: &header)
            RESPEncoding.appendBulk(sha.utf8, to: &header)
            RESPEncoding.appendBulk("1".utf8, to: &header)
            headers.append(header)
        }
        return headers
    }

    /// Sends `jobs` pipelined and completes each; a NOSCRIPT (Redis restarted or flushed its scripts)
    /// reloads the scripts and resends those jobs once.
    private func send(_ jobs: inout [RedisJob], on connection: HiredisConnection, scripts: inout [[UInt8]]) throws(RedisConnectionError) {
        var attempt = 0
        while !jobs.isEmpty {
            // The whole batch in the wire format, handed to hiredis in one piece.
            var batch: [UInt8] = []
            batch.reserveCapacity(jobs.reduce(0) { $0 + $1.encoded.count + 80 })
            for job in jobs {
                RESPEncoding.appendArrayHeader(3 + job.count, to: &batch)
                batch.append(contentsOf: scripts[job.script.rawValue])
                batch.append(contentsOf: job.encoded)
            }
            try connection.appendFormatted(batch)
            var retry: [RedisJob] = []
            for (index, job) in jobs.enumerated() {
                let reply: Result<[Int64], ScriptError>
                do {
                    reply = try connection.scriptReply()
                } catch {
                    jobs = retry + jobs[index...]  // every job not yet completed fails with the connection
                    throw error
                }
                switch reply {
                case .success(let values):
                    if let decoded = ScriptReply(values) {
                        job.completion(.success(decoded))
                        continue
                    }
                    errors.add(1, ordering: .relaxed)
                    job.completion(.failure(RedisConnectionError(description: "unexpected reply \(values)")))
                case .failure(let error):
                    if error.message.hasPrefix("NOSCRIPT"), attempt == 0 {
                        retry.append(job)
                        continue
                    }
                    if ["READONLY", "LOADING", "MASTERDOWN"].contains(where: { error.message.hasPrefix($0) }) {
                        // A replica after a failover, or a Redis still loading: this connection will not do.
                        let rest = jobs[(index + 1)...]
                        jobs = retry + [job] + rest
                        throw RedisConnectionError(description: error.message)
                    }
                    errors.add(1, ordering: .relaxed)
                    logger.warning("Redis refused a script call", metadata: ["error": "\(error.message)"])
                    job.completion(.failure(RedisConnectionError(description: error.message)))
                }
            }
            jobs = retry
            if !jobs.isEmpty {
                scripts = try loadScripts(on: connection)
                attempt += 1
            }
        }
    }

    private func fail(_ jobs: [RedisJob], _ error: RedisConnectionError) {
        for job in jobs { job.completion(.failure(error)) }
    }
}
