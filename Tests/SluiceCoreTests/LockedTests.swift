import Dispatch
import SluiceCore
import Testing

/// `Locked` and `LockedShards`: what each lock guards is updated by one thread at a time, each shard apart
/// from the others, and the values are released with their container.
struct LockedTests {
    /// A value that counts its releases, to see that a container releases what it holds exactly once.
    final class Tracked: Sendable {
        let released: Locked<Int>
        init(_ released: Locked<Int>) { self.released = released }
        deinit { released.withLock { $0 += 1 } }
    }

    @Test func lockedSerializesReadModifyWrites() {
        // Two reads and a write per update, so an unlocked interleaving would lose some of them.
        let counter = Locked((count: 0, checksum: 0))
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for step in 0..<20_000 {
                counter.withLock { state in
                    let before = state.count
                    state.count = before + 1
                    state.checksum = state.checksum &+ step
                }
            }
        }
        #expect(counter.withLock { $0.count } == 80_000)
        #expect(counter.withLock { $0.checksum } == 4 * (0..<20_000).reduce(0, +))
    }

    @Test func shardsAreCountedApartAndSerializedEach() {
        let shards = LockedShards(count: 8) { index in [index] }  // each shard's array starts with its index
        #expect(shards.count == 8)
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            for step in 0..<8_000 {
                shards.withLock((step &+ worker) % 8) { $0.append(worker) }
            }
        }
        for index in 0..<8 {
            let values = shards.withLock(index) { $0 }
            #expect(values.first == index, "shard \(index) kept its own first value")
            #expect(values.count == 1 + 4_000, "shard \(index) got every append of its own")
            #expect(values.dropFirst().sorted() == (0..<4).flatMap { Array(repeating: $0, count: 1_000) })
        }
    }

    @Test func shardsOfAnyLayoutKeepTheirValues() {
        // Values smaller than a line and larger than one: each region holds its mutex and its own value.
        let small = LockedShards(count: 3) { UInt8($0) }
        let large = LockedShards(count: 3) { index in (index, index * 2, index * 3, index * 4, index * 5, index * 6, index * 7, index * 8, index * 9) }
        for index in 0..<3 {
            small.withLock(index) { $0 &+= 10 }
            #expect(small.withLock(index) { $0 } == UInt8(index + 10))
            #expect(large.withLock(index) { $0.8 } == index * 9)
        }
    }

    @Test func eachShardsValueIsAlignedAndOnLinesOfItsOwn() {
        typealias Wide = SIMD16<Float>  // the most demanding alignment a value is likely to have
        let shards = LockedShards(count: 4) { Wide(repeating: Float($0)) }
        let addresses = (0..<4).map { index in
            shards.withLock(index) { value in withUnsafeMutablePointer(to: &value) { UInt(bitPattern: $0) } }
        }
        for (index, address) in addresses.enumerated() {
            #expect(address % UInt(MemoryLayout<Wide>.alignment) == 0, "shard \(index)'s value is aligned")
            #expect(shards.withLock(index) { $0[15] } == Float(index))
        }
        // Regions are whole lines: no two values (nor their mutexes) share one.
        for (first, second) in zip(addresses, addresses.dropFirst()) {
            #expect(second - first >= 64 && (second - first) % 64 == 0)
        }
    }

    @Test func valuesAreReleasedOnceWithTheirContainer() {
        let released = Locked(0)
        do {
            let shards = LockedShards(count: 5) { _ in Tracked(released) }
            shards.withLock(2) { $0 = Tracked(released) }  // replacing one releases the old one now
            #expect(released.withLock { $0 } == 1)
            let single = Locked(Tracked(released))
            _ = single.withLock { $0 }
        }
        #expect(released.withLock { $0 } == 1 + 5 + 1)
    }
}
