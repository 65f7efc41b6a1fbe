import Logging
public import ServiceLifecycle
public import SluiceCore

/// Drops idle keys (buckets that are full again) in the background, one shard per tick, and asks for huge pages
/// for the store's table once it is busy (``BucketStore/adviseMemoryIfBusy()``).
///
/// Deciding never waits for it: a sweep holds one shard's insert lock, which decisions on existing keys
/// do not take.
public struct StoreSweeperService: Service {
    private let store: BucketStore
    private let clock: any SluiceClock
    private let tick: Duration

    /// Creates a sweeper that visits one shard every `tick` (default 100 ms).
    public init(store: BucketStore, clock: any SluiceClock, tick: Duration = .milliseconds(100)) {
        self.store = store
        self.clock = clock
        self.tick = tick
    }

    public func run() async throws {
        let store = self.store
        let clock = self.clock
        let tick = self.tick
        await cancelWhenGracefulShutdown {
            var shard = 0
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: tick)
                } catch {
                    return  // cancelled: shutting down
                }
                store.sweep(shard: shard, now: clock.now())
                store.adviseMemoryIfBusy()
                shard = (shard + 1) % store.shardCount
            }
        }
    }
}
