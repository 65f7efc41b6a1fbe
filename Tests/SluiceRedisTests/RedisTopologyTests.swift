import Foundation
import Logging
import SluiceConfig
import SluiceCore
import SluiceTestSupport
import Synchronization
import Testing

@testable import SluiceRedis

/// Global limits on the Redis deployments people run: a Cluster (3 masters, 3 replicas), a master watched by
/// Sentinel, and servers that require a password. Real servers only, on loopback.
@Suite("Redis Cluster, Sentinel and authentication", .serialized, .requires("redis-server", "redis-cli"))
struct RedisTopologyTests {
    typealias Node = SluiceConfiguration.Redis.Node

    static func clusterSettings(_ cluster: RedisClusterProcess, timeout: Duration = .milliseconds(200)) -> SluiceConfiguration.Redis {
        SluiceConfiguration.Redis(
            deployment: .cluster(seeds: [Node(host: "127.0.0.1", port: cluster.nodes[0].port)]), password: cluster.password,
            timeoutNanoseconds: timeout.nanoseconds, keyPrefix: "test:"
        )
    }

    /// Keys whose buckets land on every master of `cluster`, `perMaster` each.
    static func keysOnEveryMaster(_ cluster: RedisClusterProcess, policy: String, algorithm: String, perMaster: Int) throws -> [String] {
        var byMaster: [Int: [String]] = [:]
        var candidate = 0
        while byMaster.count < 3 || byMaster.values.contains(where: { $0.count < perMaster }) {
            let key = "user:\(candidate)"
            candidate += 1
            let slot = ClusterSlot.of(Array("test:{\(policy)|\(key)}:\(algorithm)".utf8))
            let master = try cluster.masterPort(ofSlot: slot)
            if byMaster[master, default: []].count < perMaster { byMaster[master, default: []].append(key) }
            guard candidate < 10_000 else { throw TestFailure("no keys on every master") }
        }
        return byMaster.values.flatMap { $0 }
    }

    @Test("a fleet of three sidecars keeps leased and strict limits per key, with keys on every master")
    func clusterFleet() async throws {
        try await awayFromWindowEdge(period: .seconds(3600), margin: .seconds(10))
        let cluster = try await RedisClusterProcess.start()
        let policies = [
            policy("lease", .fixedWindow, limit: 200, period: .seconds(3600)),
            policy("strict", .fixedWindow, limit: 60, period: .seconds(3600), sync: .strict),
        ]
        let sidecars = try await Sidecar.fleet(of: 3, settings: Self.clusterSettings(cluster), policies: policies)
        for (name, algorithm, limit) in [("lease", "fw", 200), ("strict", "fw", 60)] {
            let keys = try Self.keysOnEveryMaster(cluster, policy: name, algorithm: algorithm, perMaster: 2)
            for key in keys {
                let seen = await GlobalLimitTests.hammer(sidecars, policy: name, key: key, attempts: limit, stopAfterDenials: 5)
                let admitted = seen.count { $0.allowed }
                if name == "strict" {
                    #expect(admitted == limit, "\(name) \(key): \(admitted) admitted")
                } else {
                    #expect(admitted <= limit && admitted >= limit * 9 / 10, "\(name) \(key): \(admitted) admitted")
                }
            }
        }
        for sidecar in sidecars {
            let status = sidecar.limiter.status()
            #expect(status.fallbackDecisions == 0, "\(status)")
            #expect(status.isConnected)
            await sidecar.shutdown()
        }
    }

    @Test("a slot migrated live under load (MIGRATING/IMPORTING, MIGRATE, SETSLOT NODE): no error, the strict limit stays exact")
    func liveSlotMigration() async throws {
        try await awayFromWindowEdge(period: .seconds(3600), margin: .seconds(10))
        let cluster = try await RedisClusterProcess.start()
        let limit = 400
        let policies = [policy("strict", .fixedWindow, limit: Int64(limit), period: .seconds(3600), sync: .strict)]
        let sidecars = try await Sidecar.fleet(of: 2, settings: Self.clusterSettings(cluster, timeout: .milliseconds(500)), policies: policies)
        let key = "migrating"
        let redisKey = "test:{strict|\(key)}:fw"
        let slot = ClusterSlot.of(Array(redisKey.utf8))
        let sourcePort = try cluster.masterPort(ofSlot: slot)
        guard let source = cluster.node(port: sourcePort) else { throw TestFailure("no source node") }
        let masterPorts = Set(try (0..<3).map { try cluster.masterPort(ofSlot: $0 * 5461 + 10) })
        guard let targetPort = masterPorts.first(where: { $0 != sourcePort }), let target = cluster.node(port: targetPort) else {
            throw TestFailure("no target master")
        }
        let sourceID = try source.cli("CLUSTER", "MYID")
        let targetID = try target.cli("CLUSTER", "MYID")
        // A quarter of the budget before, the rest during and after the move.
        var admitted = await GlobalLimitTests.hammer(sidecars, policy: "strict", key: key, attempts: limit / 8).count { $0.allowed }
        async let load = GlobalLimitTests.hammer(sidecars, policy: "strict", key: key, attempts: limit, stopAfterDenials: 20)
        try target.cli("CLUSTER", "SETSLOT", "\(slot)", "IMPORTING", sourceID)
        try source.cli("CLUSTER", "SETSLOT", "\(slot)", "MIGRATING", targetID)
        try await Task.sleep(for: .milliseconds(100))  // decisions meet ASK while the slot is half moved
        let keys = try source.cli("CLUSTER", "GETKEYSINSLOT", "\(slot)", "100").split(separator: "\n").map(String.init)
        if !keys.isEmpty {
            try source.cli(["MIGRATE", "127.0.0.1", "\(targetPort)", "", "0", "5000", "KEYS"] + keys)
        }
        // The order Redis's manual gives for ending a move (target, then source, then the rest); the other order is
        // `movedPingPong`'s case.
        for node in [target, source] + cluster.nodes.filter({ $0 !== target && $0 !== source }) where node.isRunning {
            _ = try? node.cli("CLUSTER", "SETSLOT", "\(slot)", "NODE", targetID)
        }
        admitted += await load.count { $0.allowed }
        #expect(admitted == limit, "the strict limit over a live migration: \(admitted) admitted")
        #expect(try cluster.masterPort(ofSlot: slot) == targetPort)
        for sidecar in sidecars {
            #expect(sidecar.limiter.status().fallbackDecisions == 0, "no decision fell back during the move: \(sidecar.limiter.status())")
            await sidecar.shutdown()
        }
    }

    @Test("a move ended out of order (source told 300 ms before the target): the nodes' MOVED ping-pong is waited out, nothing falls back")
    func movedPingPong() async throws {
        try await awayFromWindowEdge(period: .seconds(3600), margin: .seconds(10))
        let cluster = try await RedisClusterProcess.start()
        let policies = [policy("strict", .fixedWindow, limit: 1_000_000, period: .seconds(3600), sync: .strict)]
        let sidecars = try await Sidecar.fleet(of: 2, settings: Self.clusterSettings(cluster, timeout: .seconds(2)), policies: policies)
        let key = "ping-pong"
        let slot = ClusterSlot.of(Array("test:{strict|\(key)}:fw".utf8))
        let sourcePort = try cluster.masterPort(ofSlot: slot)
        let masterPorts = Set(try (0..<3).map { try cluster.masterPort(ofSlot: $0 * 5461 + 10) })
        guard let source = cluster.node(port: sourcePort), let targetPort = masterPorts.first(where: { $0 != sourcePort }),
            let target = cluster.node(port: targetPort)
        else { throw TestFailure("no source and target masters") }
        let sourceID = try source.cli("CLUSTER", "MYID")
        let targetID = try target.cli("CLUSTER", "MYID")
        var admitted = await GlobalLimitTests.hammer(sidecars, policy: "strict", key: key, attempts: 20).count { $0.allowed }
        async let load = GlobalLimitTests.hammer(sidecars, policy: "strict", key: key, for: 1_500_000_000)
        try target.cli("CLUSTER", "SETSLOT", "\(slot)", "IMPORTING", sourceID)
        try source.cli("CLUSTER", "SETSLOT", "\(slot)", "MIGRATING", targetID)
        let keys = try source.cli("CLUSTER", "GETKEYSINSLOT", "\(slot)", "100").split(separator: "\n").map(String.init)
        if !keys.isEmpty {
            try source.cli(["MIGRATE", "127.0.0.1", "\(targetPort)", "", "0", "5000", "KEYS"] + keys)
        }
        // The source first: it now sends the slot's calls to the target, which (still importing) sends them back.
        try source.cli("CLUSTER", "SETSLOT", "\(slot)", "NODE", targetID)
        try await Task.sleep(for: .milliseconds(300))
        for node in [target] + cluster.nodes.filter({ $0 !== target && $0 !== source }) where node.isRunning {
            _ = try? node.cli("CLUSTER", "SETSLOT", "\(slot)", "NODE", targetID)
        }
        let during = await load
        admitted += during.count { $0.allowed }
        #expect(during.count > 40, "decisions were made during and after the ping-pong: \(during.count)")
        #expect(try cluster.masterPort(ofSlot: slot) == targetPort)
        for sidecar in sidecars {
            let status = sidecar.limiter.status()
            #expect(status.fallbackDecisions == 0, "no decision fell back while the nodes disagreed: \(status)")
            await sidecar.shutdown()
        }
        // Every allowed decision was counted by Redis once, on the slot's new master: a redirected call ran once.
        let counted = try target.cli("HGET", "test:{strict|\(key)}:fw", "c")
        #expect(Int(counted) == admitted, "the window counts \(counted), \(admitted) were admitted")
    }

    @Test("a master killed under load: every decision within 500 ms, enforcement back within 5 s of the promotion")
    func clusterFailover() async throws {
        let cluster = try await RedisClusterProcess.start()
        let policies = [policy("strict", .fixedWindow, limit: 1_000_000, period: .seconds(3600), sync: .strict, onFailure: .deny)]
        let sidecar = try await Sidecar(settings: Self.clusterSettings(cluster, timeout: .milliseconds(100)), policies: policies)
        let key = "failover"
        let slot = ClusterSlot.of(Array("test:{strict|\(key)}:fw".utf8))
        let masterPort = try cluster.masterPort(ofSlot: slot)
        #expect(await sidecar.decide("strict", key).isAllowed)
        cluster.node(port: masterPort)?.kill()
        let killed = ContinuousClock.now
        var slowest = Duration.zero
        var promoted: ContinuousClock.Instant?
        var enforced: ContinuousClock.Instant?
        while ContinuousClock.now - killed < .seconds(20), enforced == nil {
            let started = ContinuousClock.now
            let decision = await sidecar.decide("strict", key)
            slowest = max(slowest, ContinuousClock.now - started)
            if promoted == nil, let port = try? cluster.masterPort(ofSlot: slot), port != masterPort { promoted = .now }
            if promoted != nil, decision.isAllowed { enforced = .now }  // `deny` is the failure policy: allowed means Redis answered
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(slowest < .milliseconds(500), "the slowest decision took \(slowest)")
        let promotion = try #require(
            promoted, "a replica was promoted: \(cluster.nodes.filter(\.isRunning).map { (try? $0.cli("CLUSTER", "NODES")) ?? "?" }.first ?? "")"
        )
        let back = try #require(enforced, "enforcement resumed; \(sidecar.limiter.status())")
        #expect(back - promotion < .seconds(5), "enforcement resumed \(back - promotion) after the promotion")
        await sidecar.shutdown()
    }

    @Test("Sentinel: the master it names is used, and a failover is followed within 5 s")
    func sentinelFailover() async throws {
        let sentinel = try await RedisSentinelProcess.start()
        let settings = SluiceConfiguration.Redis(
            deployment: .sentinel(master: sentinel.name, sentinels: [Node(host: "127.0.0.1", port: sentinel.sentinel.port)], password: nil),
            timeoutNanoseconds: 100_000_000, keyPrefix: "test:"
        )
        let policies = [policy("strict", .fixedWindow, limit: 1_000_000, period: .seconds(3600), sync: .strict, onFailure: .deny)]
        let sidecar = try await Sidecar(settings: settings, policies: policies)
        #expect(await sidecar.decide("strict", "k").isAllowed)
        #expect(try sentinel.master.cli("HGET", "test:{strict|k}:fw", "c") == "1", "decided on the master")
        let oldMaster = sentinel.master.port
        sentinel.master.kill()
        var switched: ContinuousClock.Instant?
        var followed: ContinuousClock.Instant?
        let killed = ContinuousClock.now
        while ContinuousClock.now - killed < .seconds(20), followed == nil {
            if switched == nil, let port = try? sentinel.currentMasterPort(), port != oldMaster { switched = .now }
            if switched != nil, await sidecar.decide("strict", "k").isAllowed { followed = .now }
            try await Task.sleep(for: .milliseconds(50))
        }
        let failover = try #require(switched, "Sentinel promoted the replica")
        let back = try #require(followed, "Sluice followed the new master")
        #expect(back - failover < .seconds(5), "followed \(back - failover) after the switch")
        #expect(try sentinel.replica.cli("HEXISTS", "test:{strict|k}:fw", "c") == "1", "decided on the promoted replica")
        await sidecar.shutdown()
    }

    @Test("AUTH: the right password works (after reconnects too); a wrong one reports Redis down and authentication failed, never the password")
    func authentication() async throws {
        let password = "pa55-\(UInt32.random(in: 0...UInt32.max))"
        let redis = try RedisServerProcess(arguments: ["--requirepass", password], password: password)
        let policies = [policy("strict", .fixedWindow, limit: 100, period: .seconds(3600), sync: .strict, onFailure: .deny)]
        var settings = SluiceConfiguration.Redis(port: redis.port, password: password, timeoutNanoseconds: 100_000_000, keyPrefix: "test:")
        let right = try await Sidecar(settings: settings, policies: policies)
        #expect(await right.decide("strict", "k").isAllowed)
        try redis.cli("CLIENT", "KILL", "TYPE", "normal")  // a reconnect authenticates again
        var answered = false
        for _ in 0..<50 where !answered {
            answered = await right.decide("strict", "k").isAllowed
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(answered)
        await right.shutdown()

        let records = LogRecords()
        settings.password = "wrong-\(password)"
        let wrong = try await Sidecar(settings: settings, policies: policies, logger: records.logger(), connect: false)
        try await Task.sleep(for: .milliseconds(300))
        let status = wrong.limiter.status()
        #expect(!status.isConnected && status.authenticationFailed)
        #expect(await wrong.decide("strict", "k").outcome == .denied, "on_store_failure: deny")
        let logged = records.all.joined(separator: "\n")
        #expect(logged.contains("authentication failed"), "\(logged)")
        #expect(!logged.contains(password), "the password is never logged")
        #expect(!"\(status)".contains(password) && !"\(settings)".contains(password))
        await wrong.shutdown()
    }

    @Test("Cluster and Sentinel authenticate to their data nodes and sentinels")
    func authenticatedTopologies() async throws {
        let password = "cl-\(UInt32.random(in: 0...UInt32.max))"
        let cluster = try await RedisClusterProcess.start(password: password)
        let policies = [policy("strict", .fixedWindow, limit: 3, period: .seconds(3600), sync: .strict)]
        let sidecar = try await Sidecar(settings: Self.clusterSettings(cluster), policies: policies)
        for key in try Self.keysOnEveryMaster(cluster, policy: "strict", algorithm: "fw", perMaster: 1) {
            #expect(await GlobalLimitTests.hammer([sidecar], policy: "strict", key: key, attempts: 5).count { $0.allowed } == 3)
        }
        #expect(sidecar.limiter.status().fallbackDecisions == 0)
        await sidecar.shutdown()

        let sentinel = try await RedisSentinelProcess.start(password: password)
        let settings = SluiceConfiguration.Redis(
            deployment: .sentinel(master: sentinel.name, sentinels: [Node(host: "127.0.0.1", port: sentinel.sentinel.port)], password: nil),
            password: password, timeoutNanoseconds: 100_000_000, keyPrefix: "test:"
        )
        let behindSentinel = try await Sidecar(settings: settings, policies: policies)
        #expect(await behindSentinel.decide("strict", "k").isAllowed)
        await behindSentinel.shutdown()
    }
}
