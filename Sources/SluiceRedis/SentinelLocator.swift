import Glibc
import Logging
import SluiceConfig
import Synchronization

/// Finds the master Sentinel names: asks each sentinel in turn (`SENTINEL get-master-addr-by-name`), then
/// confirms with the node itself (`ROLE` must say `master`), so a sentinel's stale view is not trusted.
struct SentinelLocator: Sendable {
    let master: String
    let sentinels: [SluiceConfiguration.Redis.Node]
    let sentinelPassword: String?
    let settings: SluiceConfiguration.Redis
    let logger: Logger

    /// The master's address, or why none could be found.
    func locate() throws(RedisConnectionError) -> SluiceConfiguration.Redis.Node {
        var reasons: [String] = []
        for sentinel in sentinels {
            do {
                let connection = try HiredisConnection(host: sentinel.host, port: sentinel.port, timeout: settings.timeout)
                try connection.authenticate(username: nil, password: sentinelPassword)
                let reply = try connection.command(["SENTINEL", "get-master-addr-by-name", master].map { Array($0.utf8) })
                guard case .array(let parts) = reply, parts.count == 2, let host = parts[0].text, let port = parts[1].text.flatMap(Int.init) else {
                    reasons.append("\(sentinel): does not know master '\(master)'")
                    continue
                }
                let node = SluiceConfiguration.Redis.Node(host: host, port: port)
                let candidate = try HiredisConnection(host: host, port: port, timeout: settings.timeout)
                try candidate.authenticate(username: settings.username, password: settings.password)
                guard case .array(let role) = try candidate.command([Array("ROLE".utf8)]), role.first?.text == "master" else {
                    reasons.append("\(sentinel) names \(node), which is not a master (yet)")
                    continue
                }
                return node
            } catch {
                if error.isAuthentication { throw error }
                reasons.append("\(sentinel): \(error)")
            }
        }
        throw RedisConnectionError(description: "no sentinel named a reachable master '\(master)': " + reasons.joined(separator: "; "))
    }
}

/// Listens to a sentinel for `+switch-master` of our master and calls `switched` at once, so a failover is
/// followed as soon as Sentinel decides it (a lost connection finds the new master too, only later).
final class SentinelWatcher: Sendable {
    private let locator: SentinelLocator
    private let logger: Logger
    private let switched: @Sendable () -> Void
    private let stopping = Atomic<Bool>(false)

    init(locator: SentinelLocator, logger: Logger, switched: @escaping @Sendable () -> Void) {
        self.locator = locator
        self.logger = logger
        self.switched = switched
    }

    func start() -> Bool { WorkerThread { [self] in self.run() }.start() }

    func stop() { stopping.store(true, ordering: .relaxed) }

    private func run() {
        var next = 0
        while !stopping.load(ordering: .relaxed) {
            let sentinel = locator.sentinels[next % locator.sentinels.count]
            next += 1
            do {
                // A subscriber waits for messages as long as it takes (hiredis cannot resume after a read timeout);
                // after stop() the thread ends with the connection, or at the next message.
                let connection = try HiredisConnection(
                    host: sentinel.host, port: sentinel.port, timeout: locator.settings.timeout, readTimeout: .seconds(86_400)
                )
                try connection.authenticate(username: nil, password: locator.sentinelPassword)
                try connection.appendFormatted(RESPEncoding.command(["SUBSCRIBE", "+switch-master"]))
                while !stopping.load(ordering: .relaxed) {
                    let message = try connection.reply()
                    // ["message", "+switch-master", "<master> <old-ip> <old-port> <new-ip> <new-port>"]
                    if case .array(let parts) = message, parts.count == 3, parts[0].text == "message",
                        let text = parts[2].text, text.split(separator: " ").first.map(String.init) == locator.master
                    {
                        logger.notice("Sentinel switched the master", metadata: ["redis.sentinel": "\(sentinel)", "redis.switch": "\(text)"])
                        switched()
                    }
                }
            } catch {
                logger.debug("sentinel subscription lost", metadata: ["redis.sentinel": "\(sentinel)", "error": "\(error)"])
                usleep(500_000)
            }
        }
    }
}
