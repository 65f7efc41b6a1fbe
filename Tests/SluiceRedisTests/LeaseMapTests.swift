import SluiceCore
import Testing

@testable import SluiceRedis

/// The lease table's index on its own: lookups over the keys' own hash, with colliding keys, growth and removal.
struct LeaseMapTests {
    static func lease(_ key: BucketKey, identity: UInt64) -> Lease {
        Lease(key: key, redisKey: Array("test:k".utf8), rateLimit: LeaseTests.rateLimit(.fixedWindow), identity: identity)
    }

    /// Whether every key of `present` is found, at a lease of that key, and no key of `absent` is.
    static func holds(_ map: LeaseMap, _ present: [BucketKey], absent: [BucketKey] = []) -> Bool {
        present.allSatisfy { key in map.position(of: key).map { map.leases[$0].key == key } ?? false }
            && absent.allSatisfy { map.position(of: $0) == nil }
    }

    @Test func findsEveryLeaseAsItGrows() {
        var map = LeaseMap()
        let keys = (0..<5000).map { BucketKey(seed: 3, key: "key-\($0)") }
        #expect(map.position(of: keys[0]) == nil)
        for (number, key) in keys.enumerated() {
            map.insert(Self.lease(key, identity: UInt64(number)))
        }
        #expect(map.count == 5000)
        #expect(Self.holds(map, keys, absent: (0..<500).map { BucketKey(seed: 3, key: "other-\($0)") }))
        #expect(keys.allSatisfy { key in map.position(of: key).map { map.leases[$0].identity } == UInt64(keys.firstIndex(of: key) ?? -1) })
    }

    /// Keys that share a home slot, a tag, or the whole first lane are told apart by the full key.
    @Test func tellsCollidingKeysApart() {
        var map = LeaseMap()
        let samePrimary = (0..<20).map { BucketKey(primary: 0xABCD_0000_0000_0005, secondary: UInt64($0)) }
        let sameHomeSlot = (0..<20).map { BucketKey(primary: UInt64($0) << 40 | 5, secondary: 1) }
        let neighbours = (0..<20).map { BucketKey(primary: UInt64($0 + 6), secondary: 1) }
        for (number, key) in (samePrimary + sameHomeSlot + neighbours).enumerated() {
            map.insert(Self.lease(key, identity: UInt64(number)))
        }
        #expect(Self.holds(map, samePrimary + sameHomeSlot + neighbours, absent: [
            BucketKey(primary: 0xABCD_0000_0000_0005, secondary: 99), BucketKey(primary: 99 << 40 | 5, secondary: 1),
            BucketKey(primary: 5, secondary: 2),
        ]))
    }

    @Test func changesALeaseInPlace() {
        var map = LeaseMap()
        let key = BucketKey(seed: 1, key: "k")
        map.insert(Self.lease(key, identity: 1))
        let position = map.position(of: key)
        #expect(position != nil)
        if let position { map.withLease(at: position) { $0.remaining = 42 } }
        #expect(map.position(of: key).map { map.leases[$0].remaining } == 42)
    }

    @Test func removesWhatIsPickedAndKeepsFindingTheRest() {
        var map = LeaseMap()
        let keys = (0..<1000).map { BucketKey(seed: 9, key: "k\($0)") }
        for (number, key) in keys.enumerated() { map.insert(Self.lease(key, identity: UInt64(number))) }
        let removed = map.removeAll { $0.identity % 3 == 0 }
        let (gone, kept) = (keys.indices.filter { $0 % 3 == 0 }.map { keys[$0] }, keys.indices.filter { $0 % 3 != 0 }.map { keys[$0] })
        #expect(removed == gone.count)
        #expect(map.count == kept.count)
        #expect(Self.holds(map, kept, absent: gone))
        // What was removed can come back; removing nothing changes nothing.
        for key in gone.prefix(10) { map.insert(Self.lease(key, identity: 1)) }
        #expect(map.removeAll { _ in false } == 0)
        #expect(Self.holds(map, kept + gone.prefix(10), absent: Array(gone.dropFirst(10))))
        // Removing all of them leaves an empty map that still takes leases.
        #expect(map.removeAll { _ in true } == kept.count + 10)
        #expect(map.count == 0)
        #expect(Self.holds(map, [], absent: keys))
        map.insert(Self.lease(keys[0], identity: 1))
        #expect(Self.holds(map, [keys[0]], absent: Array(keys.dropFirst())))
    }

    @Test func emptiesAndStartsAgain() {
        var map = LeaseMap()
        let keys = (0..<100).map { BucketKey(seed: 2, key: "k\($0)") }
        for key in keys { map.insert(Self.lease(key, identity: 0)) }
        map.removeAll()
        #expect(map.count == 0 && map.leases.isEmpty)
        #expect(Self.holds(map, [], absent: keys))
        map.insert(Self.lease(keys[5], identity: 0))
        #expect(Self.holds(map, [keys[5]], absent: [keys[4]]))
    }
}

/// The sharded table over the maps: its bound, its count of decisions, its sweep and its drain.
struct LeaseTableTests {
    static let allowed = LeaseTable.Outcome.decided(
        Decision(outcome: .allowed, limit: 10, remaining: 9, resetAfterNanoseconds: 0, retryAfterNanoseconds: 0), nil, nil
    )

    @Test func boundedPerShardCountsDecisionsAndForgetsUnavailableOnes() {
        let table = LeaseTable(capacity: 64)  // one lease per shard
        let keys = (0..<2000).map { BucketKey(seed: 4, key: "k\($0)") }
        var full = 0
        for (number, key) in keys.enumerated() {
            let outcome = table.withLease(key, now: 0, create: { LeaseMapTests.lease(key, identity: UInt64(number)) }) { _ in Self.allowed }
            if case .full = outcome { full += 1 }
        }
        #expect(table.counts.leases == 64)
        #expect(full == 2000 - 64)
        #expect(table.counts.decided == 64)
        // A lease that exists is found again (and counted); an unavailable outcome leaves nothing behind.
        let held = keys.filter { key in
            var found = false
            table.update(key, now: 0) { _ in found = true }
            return found
        }
        #expect(held.count == 64)
        _ = table.withLease(held[0], now: 0, create: { preconditionFailure("it exists") }) { _ in Self.allowed }
        #expect(table.counts.decided == 65)
        let spare = LeaseTable(capacity: 64)
        _ = spare.withLease(keys[0], now: 0, create: { LeaseMapTests.lease(keys[0], identity: 0) }) { _ in .unavailable }
        #expect(spare.counts.leases == 0 && spare.counts.decided == 0)
    }

    @Test func sweepsIdleLeasesAndDrainsTheRest() {
        let table = LeaseTable(capacity: 10_000)
        let second: Int64 = 1_000_000_000
        let keys = (0..<200).map { BucketKey(seed: 5, key: "k\($0)") }
        for (number, key) in keys.enumerated() {
            _ = table.withLease(key, now: 0, create: { LeaseMapTests.lease(key, identity: UInt64(number)) }) { lease in
                // Half hold a valid slice (not disposable); half hold nothing and were last used at 0.
                if number % 2 == 0 {
                    lease.remaining = 5
                    lease.validUntil = 100 * second
                }
                return Self.allowed
            }
        }
        for _ in 0..<8 { table.sweep(now: 10 * second) }  // 8 calls of 8 shards: every shard once
        #expect(table.counts.leases == 100)
        var kept = 0
        for (number, key) in keys.enumerated() {
            var found = false
            table.update(key, now: 0) { _ in found = true }
            #expect(found == (number % 2 == 0))
            if found { kept += 1 }
        }
        #expect(kept == 100)
        let returned = table.drainForReturn(now: 10 * second)
        #expect(returned.count == 100 && returned.allSatisfy { $0.remaining == 5 })
        #expect(table.counts.leases == 0)
    }
}
