import Foundation
import Glibc

/// Two free loopback ports `p` and `p + 10000` (a Cluster node's bus port), from `start` up. Both stay below
/// Linux's ephemeral range (32768 up), where an outgoing connection, such as another node's bus link, could
/// take the bus port between this check and the node's start.
func freeClusterPort(after start: Int) throws -> Int {
    var port = start
    while port + 10_000 < 32_768 {
        if !canConnect(port: port), !canConnect(port: port + 10_000), bindable(port), bindable(port + 10_000) { return port }
        port += 1
    }
    throw TestFailure("no free port pair for a Cluster node")
}

private func bindable(_ port: Int) -> Bool {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return false }
    defer { close(descriptor) }
    var address = loopback(port: port)
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    } == 0
}

/// A real Redis Cluster on loopback: three masters and three replicas (`--cluster-node-timeout 1000`), made
/// with `redis-cli --cluster create`, each node stopped by its PID.
public final class RedisClusterProcess: @unchecked Sendable {
    // @unchecked: one test drives each cluster.
    public let nodes: [RedisServerProcess]
    public let password: String?
    public let executable: String

    /// Starts six nodes and joins them; returns once every node says `cluster_state:ok`. A join that does not
    /// finish within 20 s (seen once under load: the nodes never completed their handshake with the first one)
    /// is given up, its nodes stopped, and tried once more with new ones.
    public init(password: String? = nil, executable: String = "redis-server") throws {
        self.password = password
        self.executable = executable
        var next = 20_000 + Int(getpid() % 150) * 16
        var attempt = 0
        while true {
            attempt += 1
            let nodes = try Self.startNodes(after: &next, password: password, executable: executable)
            do {
                let create = try runProgramBlocking(
                    ["redis-cli"] + (password.map { ["-a", $0, "--no-auth-warning"] } ?? []) + ["--cluster", "create"]
                        + nodes.map { "127.0.0.1:\($0.port)" } + ["--cluster-replicas", "1", "--cluster-yes"],
                    timeout: .seconds(20)
                )
                guard create.contains("All 16384 slots covered") else { throw TestFailure("redis-cli --cluster create: \(create)") }
                self.nodes = nodes
                break
            } catch {
                for node in nodes { node.kill() }
                if attempt == 2 { throw error }
            }
        }
        try waitUntilHealthy()
    }

    /// ``init(password:executable:)`` from a task: the seconds it takes block a thread of their own (``offPool(_:)``).
    public static func start(password: String? = nil, executable: String = "redis-server") async throws -> RedisClusterProcess {
        try await offPool { try RedisClusterProcess(password: password, executable: executable) }
    }

    private static func startNodes(after next: inout Int, password: String?, executable: String) throws -> [RedisServerProcess] {
        var nodes: [RedisServerProcess] = []
        for _ in 0..<6 {
            let port = try freeClusterPort(after: next)
            next = port + 1
            let auth = password.map { ["--requirepass", $0, "--masterauth", $0] } ?? []
            nodes.append(
                try RedisServerProcess(
                    executable: executable, port: port,
                    arguments: [
                        "--cluster-enabled", "yes", "--cluster-config-file", "nodes-\(port).conf", "--cluster-node-timeout", "1000",
                        "--repl-diskless-sync-delay", "0",
                    ] + auth,
                    password: password
                )
            )
        }
        return nodes
    }

    /// The nodes' `host:port`, for a `cluster:` seed list.
    public var seeds: [String] { nodes.map { "127.0.0.1:\($0.port)" } }

    /// Waits until every running node says `cluster_state:ok` and every replica has synchronised with its
    /// master (a replica that never did cannot be promoted), at most `limit`.
    public func waitUntilHealthy(limit: Duration = .seconds(15)) throws {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            let healthy = nodes.filter(\.isRunning).allSatisfy { node in
                guard ((try? node.cli("CLUSTER", "INFO")) ?? "").contains("cluster_state:ok") else { return false }
                let replication = (try? node.cli("INFO", "replication")) ?? ""
                return replication.contains("role:master") || replication.contains("master_link_status:up")
            }
            if healthy { return }
            usleep(100_000)
        }
        throw TestFailure("the cluster did not become healthy within \(limit)")
    }

    /// The port of the master that serves `slot`, from `CLUSTER SHARDS`/`SLOTS` as a running node says.
    public func masterPort(ofSlot slot: Int) throws -> Int {
        for node in nodes where node.isRunning {
            guard let text = try? node.cli("CLUSTER", "SLOTS") else { continue }
            // redis-cli prints nested arrays one value per line: start, end, host, port, id, (replicas...)
            let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            var index = 0
            while index + 3 < lines.count {
                if let start = Int(lines[index]), let end = Int(lines[index + 1]), start <= slot, slot <= end, let port = Int(lines[index + 3]) {
                    return port
                }
                index += 1
            }
        }
        throw TestFailure("no node knows who serves slot \(slot)")
    }

    /// The node running on `port`.
    public func node(port: Int) -> RedisServerProcess? { nodes.first { $0.port == port } }

    deinit { for node in nodes { node.stop() } }
}

/// A master, its replica, and one Sentinel watching them (`down-after-milliseconds 1000`), on loopback.
public final class RedisSentinelProcess: @unchecked Sendable {
    public let master: RedisServerProcess
    public let replica: RedisServerProcess
    public let sentinel: RedisServerProcess
    public let name = "mymaster"

    public init(password: String? = nil) throws {
        let auth = password.map { ["--requirepass", $0, "--masterauth", $0] } ?? []
        master = try RedisServerProcess(arguments: ["--repl-diskless-sync-delay", "0"] + auth, password: password)
        replica = try RedisServerProcess(arguments: ["--replicaof", "127.0.0.1", "\(master.port)"] + auth, password: password)
        let directory = try temporaryDirectory("sentinel")
        let port = try freeLoopbackPort()
        let authentication = password.map { [name] in "sentinel auth-pass \(name) \($0)" } ?? ""
        let configuration = """
            port \(port)
            bind 127.0.0.1
            sentinel monitor \(name) 127.0.0.1 \(master.port) 1
            sentinel down-after-milliseconds \(name) 1000
            sentinel failover-timeout \(name) 3000
            sentinel parallel-syncs \(name) 1
            \(authentication)

            """
        let file = directory.appendingPathComponent("sentinel.conf")
        try configuration.write(to: file, atomically: true, encoding: .utf8)
        sentinel = try RedisServerProcess(port: port, directory: directory, configurationFile: file.path, sentinel: true)
        // Wait until the replica is in sync and Sentinel knows it.
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let known = ((try? sentinel.cli("SENTINEL", "replicas", name)) ?? "").contains("\(replica.port)")
            if known, ((try? replica.cli("INFO", "replication")) ?? "").contains("master_link_status:up") { return }
            usleep(100_000)
        }
        throw TestFailure("the replica did not synchronise, or Sentinel did not learn it")
    }

    /// ``init(password:)`` from a task: the seconds it takes block a thread of their own (``offPool(_:)``).
    public static func start(password: String? = nil) async throws -> RedisSentinelProcess {
        try await offPool { try RedisSentinelProcess(password: password) }
    }

    /// `host:port` of the sentinel.
    public var sentinelAddress: String { "127.0.0.1:\(sentinel.port)" }

    /// The master's port as Sentinel names it now.
    public func currentMasterPort() throws -> Int? {
        let lines = try sentinel.cli("SENTINEL", "get-master-addr-by-name", name).split(separator: "\n")
        return lines.count == 2 ? Int(lines[1]) : nil
    }

    deinit {
        sentinel.stop()
        replica.stop()
        master.stop()
    }
}
