import Glibc
import Logging
import SluiceCore
import Synchronization

/// Where Redis is and how Sluice talks to it: the `redis` section of the configuration.
public struct RedisSettings: Sendable, Hashable {
    /// Host name or address.
    public var host: String
    /// TCP port.
    public var port: Int
    /// The database `SELECT`ed after connecting.
    public var database: Int
    /// The ACL user, if any.
    public var username: String?
    /// The password, if any.
    public var password: String?
    /// How long any decision may wait for Redis, and the socket timeout of every read and write.
    public var timeout: Duration
    /// Prepended to every key Sluice writes.
    public var keyPrefix: String
    /// The most buckets holding a lease at once; beyond it, new buckets are decided by one script call each.
    public var maximumLeases: Int

    /// Creates settings.
    public init(
        host: String = "127.0.0.1", port: Int = 6379, database: Int = 0, username: String? = nil, password: String? = nil,
        timeout: Duration = .milliseconds(50), keyPrefix: String = "sluice:", maximumLeases: Int = 100_000
    ) {
        self.host = host
        self.port = port
        self.database = database
        self.username = username
        self.password = password
        self.timeout = timeout
        self.keyPrefix = keyPrefix
        self.maximumLeases = maximumLeases
    }

    /// `host:port/db`, without credentials: what logs and `INFO` show.
    public var endpoint: String {
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return "\(host):\(port)/\(database)"
    }
}

/// One script call waiting to be sent: the worker pipelines whatever is queued into one batch.
struct RedisJob: Sendable {
    /// The script to run (its SHA is filled in by the worker).
    let script: RedisScript
    /// `KEYS[1]` and the `ARGV`, already as RESP bulk strings, and how many they are.
    let encoded: [UInt8]
    let count: Int
    /// Past this, the job is failed unsent: whoever waited has been answered by the failure policy.
    let deadline: ContinuousClock.Instant
    /// Called once, on the worker thread, with the script's integers or the failure.
    let completion: @Sendable (Result<[Int64], RedisConnectionError>) -> Void

    /// A call of `script` on `key` with `arguments` (integers written in decimal, strings as they are).
    init(
        script: RedisScript, key: [UInt8], arguments: [Argument], deadline: ContinuousClock.Instant,
        completion: @escaping @Sendable (Result<[Int64], RedisConnectionError>) -> Void
    ) {
        self.script = script
        self.deadline = deadline
        var encoded: [UInt8] = []
        encoded.reserveCapacity(key.count + 16 * arguments.count + 16)
        RESPEncoding.appendBulk(key, to: &encoded)
        for argument in arguments {
            switch argument {
            case .integer(let value): RESPEncoding.appendBulk(RESPEncoding.decimal(value), to: &encoded)
            case .text(let text): RESPEncoding.appendBulk(Array(text.utf8), to: &encoded)
            }
        }
        self.encoded = encoded
        count = 1 + arguments.count
        self.completion = completion
    }

    enum Argument {
        case integer(Int64)
        case text(String)
    }
}

/// The RESP wire format, for commands handed to hiredis already encoded.
enum RESPEncoding {
    /// `*count\r\n`.
    static func appendArrayHeader(_ count: Int, to buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "*"))
        buffer.append(contentsOf: decimal(Int64(count)))
        buffer.append(contentsOf: [0x0D, 0x0A])
    }

    /// `$length\r\nbytes\r\n`.
    static func appendBulk(_ bytes: some Collection<UInt8>, to buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "$"))
        buffer.append(contentsOf: decimal(Int64(bytes.count)))
        buffer.append(contentsOf: [0x0D, 0x0A])
        buffer.append(contentsOf: bytes)
        buffer.append(contentsOf: [0x0D, 0x0A])
    }

    static func decimal(_ value: Int64) -> [UInt8] {
        if value == 0 { return [UInt8(ascii: "0")] }
        var digits: [UInt8] = []
        digits.reserveCapacity(20)
        var magnitude = value.magnitude
        while magnitude > 0 {
            digits.append(UInt8(ascii: "0") + UInt8(magnitude % 10))
            magnitude /= 10
        }
        if value < 0 { digits.append(UInt8(ascii: "-")) }
        digits.reverse()
        return digits
    }
}

/// The thread that owns the hiredis connection: it drains the job queue, sends each batch pipelined, hands
/// out the replies, and reconnects with backoff when Redis goes away. hiredis blocks, so it never runs on
/// an event loop.
final class RedisWorker: Sendable {
    private let settings: RedisSettings
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

    init(settings: RedisSettings, logger: Logger, tick: @escaping @Sendable () -> Void) {
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
            var jobs = queue.drain(maximum: Self.maximumBatch, waiting: stop ? .zero : .milliseconds(100))
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
                case .success(let values) where values.count == 7:
                    job.completion(.success(values))
                case .success(let values):
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

/// A queue of jobs with a condition variable, so the worker sleeps until there is work.
private final class JobQueue: @unchecked Sendable {
    // pthread objects must not move: allocated once, freed never (one queue per process lifetime is
    // the norm; a test's queues leak 100 bytes each).
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var jobs: [RedisJob] = []

    init() {
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    /// Queues `job` unless `limit` jobs already wait; returns whether it was queued.
    func push(_ job: RedisJob, limit: Int) -> Bool {
        pthread_mutex_lock(mutex)
        guard jobs.count < limit else {
            pthread_mutex_unlock(mutex)
            return false
        }
        jobs.append(job)
        pthread_mutex_unlock(mutex)
        pthread_cond_signal(condition)
        return true
    }

    func wake() { pthread_cond_signal(condition) }

    var isEmpty: Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return jobs.isEmpty
    }

    /// Up to `maximum` jobs, waiting at most `waiting` for the first.
    func drain(maximum: Int, waiting: Duration) -> [RedisJob] {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        if jobs.isEmpty, waiting > .zero {
            var deadline = timespec()
            clock_gettime(CLOCK_MONOTONIC, &deadline)
            let nanoseconds = Int(waiting.nanoseconds)
            deadline.tv_nsec += nanoseconds
            deadline.tv_sec += deadline.tv_nsec / 1_000_000_000
            deadline.tv_nsec %= 1_000_000_000
            _ = pthread_cond_timedwait(condition, mutex, &deadline)
        }
        guard !jobs.isEmpty else { return [] }
        guard jobs.count > maximum else {
            defer { jobs = [] }
            return jobs  // the common case: take the whole queue, no copying under the lock
        }
        let taken = Array(jobs.prefix(maximum))
        jobs.removeFirst(maximum)
        return taken
    }
}

/// A detached POSIX thread running one closure.
private final class WorkerThread {
    private let body: () -> Void

    init(_ body: @escaping () -> Void) {
        self.body = body
    }

    func start() -> Bool {
        let context = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let status = pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            let worker = Unmanaged<WorkerThread>.fromOpaque(raw).takeRetainedValue()
            worker.body()
            return nil
        }, context)
        guard status == 0 else {
            Unmanaged<WorkerThread>.fromOpaque(context).release()
            return false
        }
        pthread_detach(thread)
        return true
    }
}
