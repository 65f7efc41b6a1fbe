import Foundation
import Logging
import SluiceConfig
import SluiceCore
import SluiceServer
import SluiceTestSupport
import Testing

/// Reloading: a valid file is put in force whole, an invalid one changes nothing, and buckets of
/// unchanged policies keep their state.
struct ConfigurationReloaderTests {
    static let original = """
        policies:
          api: { algorithm: fixed_window, limit: 5, period: 1h }
        """

    struct Fixture {
        let path: String
        let registry: PolicyRegistry
        let limiter = RateLimiter(store: BucketStore(maximumKeys: 1_000))
        let reloader: ConfigurationReloader

        init(yaml: String = ConfigurationReloaderTests.original) throws {
            path = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-reload-\(UUID().uuidString).yaml").path
            try yaml.write(toFile: path, atomically: true, encoding: .utf8)
            let (configuration, text) = try SluiceConfiguration.loadDocument(path: path)
            registry = PolicyRegistry(configuration.policySet)
            let state = ConfigurationState(path: path, configuration: configuration, text: text, registry: registry)
            reloader = ConfigurationReloader(state: state, logger: Logger(label: "sluice.test.reload"))
        }

        func write(_ yaml: String) throws { try yaml.write(toFile: path, atomically: true, encoding: .utf8) }

        func take(_ policy: String, _ key: String, now: Timestamp = Timestamp(nanoseconds: 1_767_225_600_000_000_000)) -> Decision? {
            let policies = registry.policies
            guard let index = policies.index(ofName: policy) else { return nil }
            var key = key
            let check = key.withUTF8 { policies.check(policy: index, key: UnsafeRawBufferPointer($0), cost: 1) }
            return limiter.decide(check, at: now)
        }
    }

    @Test func aValidFileIsPutInForceAndUnchangedPoliciesKeepTheirBuckets() throws {
        let fixture = try Fixture()
        for _ in 0..<3 { #expect(fixture.take("api", "user")?.isAllowed == true) }
        try fixture.write(Self.original + "\n  extra: { algorithm: token_bucket, limit: 1, period: 1m }\n")
        let generation = fixture.registry.generation
        #expect(fixture.reloader.reload() == .applied(policies: ["api", "extra"]))
        #expect(fixture.registry.generation != generation)
        // api did not change: its bucket still holds the 3 consumed requests.
        #expect(fixture.take("api", "user")?.remaining == 1)
        #expect(fixture.take("extra", "user")?.isAllowed == true)
    }

    @Test func aReloadCannotAddOrMoveRedis() throws {
        // Started without Redis: a file that brings global policies (and a redis section) is refused.
        let fixture = try Fixture()
        try fixture.write(
            "redis: { url: \"redis://127.0.0.1:6379\" }\npolicies:\n  api: { algorithm: fixed_window, limit: 5, period: 1h, scope: global }\n"
        )
        guard case .rejected(let error) = fixture.reloader.reload() else { Issue.record("a reload adding Redis was applied"); return }
        #expect(error.description.contains("redis: this process started without Redis"))
        #expect(fixture.registry.policies.policies.first?.scope == .local)

        // Started with Redis: policies may change, the redis section may not.
        let withRedis = "redis: { url: \"redis://127.0.0.1:6379\" }\npolicies:\n  api: { algorithm: fixed_window, limit: 5, period: 1h, scope: global }\n"
        try fixture.write(withRedis)
        let (configuration, text) = try SluiceConfiguration.loadDocument(path: fixture.path)
        let reloader = ConfigurationReloader(
            state: ConfigurationState(path: fixture.path, configuration: configuration, text: text, registry: fixture.registry),
            logger: Logger(label: "sluice.test.reload")
        )
        try fixture.write(withRedis + "  more: { algorithm: token_bucket, limit: 1, period: 1m, scope: global, sync: strict }\n")
        #expect(reloader.reload() == .applied(policies: ["api", "more"]))
        try fixture.write(withRedis.replacingOccurrences(of: "6379", with: "6380"))
        guard case .rejected(let moved) = reloader.reload() else { Issue.record("a reload moving Redis was applied"); return }
        #expect(moved.description.contains("the redis section changed"))
        #expect(fixture.registry.policies.policies.count == 2)
    }

    @Test func aChangedPolicyStartsWithFullBuckets() throws {
        let fixture = try Fixture()
        for _ in 0..<5 { _ = fixture.take("api", "user") }
        #expect(fixture.take("api", "user")?.isAllowed == false)
        try fixture.write("policies:\n  api: { algorithm: fixed_window, limit: 6, period: 1h }\n")
        #expect(fixture.reloader.reload() == .applied(policies: ["api"]))
        #expect(fixture.take("api", "user")?.remaining == 5)
    }

    @Test(arguments: [
        ("policies:\n  api: { algorithm: fixed_window, limit: -5, period: 1h }\n", "policies.api.limit (line 2)"),
        ("policies:\n  api: { algorithm: leaky, limit: 5, period: 1h }\n", "policies.api.algorithm (line 2)"),
        ("policies: [unclosed\n", "line"),
        ("", "empty"),
        ("policies:\n  api: { algorithm: fixed_window, limit: 5, period: 1h }\nforward_auth:\n  rules:\n    - { path_prefix: /, limits: [{ policy: nope, by: ip }] }\n", "unknown policy 'nope'"),
    ])
    func anInvalidFileChangesNothing(yaml: String, expected: String) throws {
        let fixture = try Fixture()
        _ = fixture.take("api", "user")
        let generation = fixture.registry.generation
        try fixture.write(yaml)
        guard case .rejected(let error) = fixture.reloader.reload() else {
            Issue.record("an invalid file was applied: \(yaml.debugDescription)")
            return
        }
        #expect(error.description.contains(expected), "\(error)")
        #expect(fixture.registry.generation == generation)
        #expect(fixture.registry.policies.policies.map(\.name) == ["api"])
        #expect(fixture.take("api", "user")?.remaining == 3)
    }

    @Test func aMissingFileIsRejectedAndTheEmbeddedDefaultCannotBeReloaded() throws {
        let fixture = try Fixture()
        try FileManager.default.removeItem(atPath: fixture.path)
        guard case .rejected(let error) = fixture.reloader.reload() else {
            Issue.record("a missing file was not rejected")
            return
        }
        #expect(error.code == .unreadableFile)
        #expect(fixture.registry.policies.policies.map(\.name) == ["api"])
        let embedded = ConfigurationReloader(
            state: ConfigurationState(path: nil, configuration: SluiceConfiguration.embeddedDefault, text: nil, registry: fixture.registry),
            logger: Logger(label: "sluice.test.reload")
        )
        #expect(embedded.reload() == .noFile)
    }
}
