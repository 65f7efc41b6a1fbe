import ArgumentParser
import CoreMetrics
import Logging
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle
import SluiceConfig
import SluiceCore
import SluiceRLS
import SluiceRedis
import SluiceServer
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// `sluice`: the executable. Parses arguments, bootstraps logging, and wires the concrete types together.
@main
struct SluiceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice",
        abstract: "A rate-limiting sidecar: answers \"may this caller do this now?\" in microseconds.",
        version: LineCommandProcessor.version,
        subcommands: [Serve.self, Validate.self, Keygen.self, Bench.self],
        defaultSubcommand: Serve.self
    )
}

/// `sluice serve [--config FILE]`.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the line protocol and the HTTP API, with the embedded default configuration or --config FILE."
    )

    @Option(name: .long, help: "YAML configuration file; without it the embedded default is used.")
    var config: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(name: .long, help: "Event-loop threads serving connections (default: one per core).")
    var eventLoops: Int?

    /// The process's metrics: swift-metrics bootstrapped (once per process) with Sluice's Prometheus factory,
    /// so a library's metrics land in the same registry that `/metrics` renders.
    static let metrics: SluiceMetrics = {
        let registry = PrometheusCollectorRegistry()
        let factory = SluiceMetrics.factory(registry: registry)
        MetricsSystem.bootstrap(factory)
        return SluiceMetrics(factory: factory, registry: registry)
    }()

    func run() async throws {
        // Until the reload service traps SIGHUP, its default action would kill the process: ignore it from
        // the start (the service's signal source still receives it).
        signal(SIGHUP, SIG_IGN)
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("unknown log level '\(logLevel)'; use trace, debug, info, notice, warning, error or critical")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "sluice")
        let configuration: SluiceConfiguration
        let text: String?
        do {
            if let config {
                (configuration, text) = try SluiceConfiguration.loadDocument(path: config)
            } else {
                (configuration, text) = (SluiceConfiguration.embeddedDefault, nil)
            }
        } catch {
            printError("sluice: \(error)")
            throw ExitCode(1)
        }
        logger.info(
            "starting sluice",
            metadata: [
                "sluice.config": "\(config ?? "embedded default")",
                "sluice.policies": "\(configuration.policies.map(\.name).joined(separator: ","))",
            ]
        )

        if let eventLoops, eventLoops < 1 || eventLoops > 1024 {
            throw ValidationError("--event-loops must be from 1 to 1024, got \(eventLoops)")
        }
        let eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: eventLoops ?? System.coreCount)
        let clock = MonotonicClock(epochNanoseconds: Self.wallClockNanoseconds())
        // Transparent huge pages for the slot table once it is busy: random lookups in a large table otherwise pay
        // a page walk per decision (two-dimensional under virtualization). Not before: see adviseMemoryIfBusy.
        let store = BucketStore(maximumKeys: configuration.store.maxKeys, shardCount: configuration.store.shards) { region, byteCount in
            _ = madvise(region, byteCount, MADV_HUGEPAGE)
            // Collapse the pages already touched now rather than whenever khugepaged gets to them (tens of seconds
            // for a large table). MADV_COLLAPSE (Linux 6.1) is not in Debian 12's C headers; an older kernel
            // refuses it and khugepaged does it later.
            _ = madvise(region, byteCount, 25)
        }
        let registry = PolicyRegistry(
            configuration.policySet, forwardAuth: ForwardAuthRules(configuration.forwardAuth, policies: configuration.policySet)
        )
        let global = configuration.redis.map { redis in
            var settings = redis
            // A password the URL lacks may come from the environment, so it need not sit in the file.
            if settings.password == nil { settings.password = getenv("SLUICE_REDIS_PASSWORD").map { String(cString: $0) } }
            return RedisGlobalLimiter(settings: settings, store: store, clock: clock, logger: logger)
        }
        if let global {
            global.start()
            if await !global.waitUntilConnected(limit: .seconds(1)) {
                logger.warning("Redis does not answer yet; global policies follow on_store_failure until it does",
                               metadata: ["redis.endpoint": "\(global.status().endpoint)"])
            }
        }
        let limiter = RateLimiter(store: store, global: global)
        let rlsCounters = OutcomeCounters()
        let state = ConfigurationState(path: config, configuration: configuration, text: text, registry: registry)
        // Limit events: the live stream always; webhooks when the events section lists some.
        let webhooks = configuration.events.webhooks
        let transport = webhooks.isEmpty
            ? nil
            : HTTPClientWebhookTransport(
                eventLoopGroup: eventLoopGroup, readTimeout: .nanoseconds(webhooks.map(\.timeoutNanoseconds).max() ?? 5_000_000_000)
            )
        let events = EventHub(
            settings: configuration.events,
            webhooks: transport.map { WebhookDispatcher(webhooks: webhooks, transport: $0, clock: clock, logger: logger) }
        )
        let context = ServerContext(
            limiter: limiter, registry: registry, clock: clock, limits: configuration.limits, logger: logger, rlsDecisions: rlsCounters,
            admin: AdminAPI(state: state, logger: logger), events: events, metrics: Self.metrics
        )
        let line = ListenerService.line(address: configuration.listen.line, context: context, eventLoopGroup: eventLoopGroup)
        let http = ListenerService.http(
            address: configuration.listen.http, limits: configuration.http, context: context, eventLoopGroup: eventLoopGroup,
            routes: configuration.listen.admin == nil ? .all : .api
        )
        // The admin API on a listener of its own, when listen.admin says where.
        let admin = configuration.listen.admin.map { address in
            ListenerService.http(address: address, limits: configuration.http, context: context, eventLoopGroup: eventLoopGroup, routes: .admin)
        }
        // Envoy's rate limit service, when listen.grpc is set: the envoyproxy/ratelimit domains, compiled.
        let rlsRegistry = try RLSRegistry(configuration.rls ?? SluiceConfiguration.RLS())
        let rls = configuration.listen.grpc.map { address in
            RLSListenerService(
                address: address,
                service: RateLimitService(
                    registry: rlsRegistry, limiter: limiter, clock: clock, counters: rlsCounters, logger: logger,
                    recordLatency: { [metrics = context.metrics] in metrics.recordLatency(.grpc, nanoseconds: $0) },
                    observe: { decision, check, policy, key, now in
                        guard events.wants(decision) else { return }
                        events.record(
                            decision, policy: policy, key: String(decoding: key.map { $0 == 0x1F ? UInt8(ascii: "|") : $0 }, as: UTF8.self),
                            periodNanoseconds: check.rateLimit.periodNanoseconds, now: now
                        )
                    }
                ),
                eventLoopGroup: eventLoopGroup, logger: logger,
                guards: RLSListenerService.Guards(
                    maxConnections: configuration.limits.maxConnections,
                    idleTimeout: configuration.limits.idleTimeoutNanoseconds > 0 ? .nanoseconds(configuration.limits.idleTimeoutNanoseconds) : nil,
                    onRefused: { [statistics = context.statistics] in statistics.connectionRefused() }
                )
            )
        }
        var services: [any Service] = []
        // First in, last out: on shutdown the servers stop deciding before the leases go back to Redis.
        if let global { services.append(ReturnLeasesOnShutdownService(limiter: global)) }
        services += [line, http]
        if let admin { services.append(admin) }
        if let rls { services.append(rls) }
        services += [
            EventsService(hub: events, context: context) { await transport?.shutdown() },
            StoreSweeperService(store: store, clock: clock),
            ReloadOnHangupService(
                reloader: ConfigurationReloader(
                    state: state, logger: logger, applyFirst: { try rlsRegistry.replace(with: $0.rls ?? SluiceConfiguration.RLS()) }
                )
            ),
        ]
        var groupConfiguration = ServiceGroupConfiguration(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        // Connections get a few seconds to flush (each handler also closes itself after 5 s); past this,
        // the group cancels what is left, so a stuck client cannot keep the process alive.
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(10)
        let group = ServiceGroup(configuration: groupConfiguration)
        try await group.run()
        try await eventLoopGroup.shutdownGracefully()
        logger.info("sluice stopped")
    }

    static func wallClockNanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }
}

/// `sluice validate FILE`.
struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a configuration file without serving; exits 1 listing every mistake found, each with its field and line."
    )

    @Argument(help: "The YAML configuration file to check.")
    var file: String

    func run() throws {
        let problems = SluiceConfiguration.problems(path: file)
        guard problems.isEmpty else {
            // In file order; a problem without a line (a whole-file one) first.
            for problem in problems.enumerated().sorted(by: { ($0.element.line ?? 0, $0.offset) < ($1.element.line ?? 0, $1.offset) }) {
                printError("\(file): \(problem.element)")
            }
            if problems.count > 1 { printError("\(file): \(problems.count) mistakes") }
            throw ExitCode(1)
        }
        do {
            let configuration = try SluiceConfiguration.load(path: file)
            var summary = "\(file): ok, \(configuration.policies.count) policies (\(configuration.policies.map(\.name).joined(separator: ", ")))"
            if let rls = configuration.rls {
                summary += ", \(rls.domains.count) rate limit service domains (\(rls.domains.map(\.name).joined(separator: ", ")))"
            }
            print(summary)
        } catch {
            printError("\(file): \(error)")
            throw ExitCode(1)
        }
    }
}

/// `sluice keygen [--test] [--name NAME]`.
struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a new admin API key and the admin.api_keys line that holds its SHA-256 (the key itself is stored nowhere)."
    )

    @Flag(name: .long, help: "Make a test key (sk_test_…) instead of a live one (sk_live_…).")
    var test = false

    @Option(name: .long, help: "The key's name in the configuration and in logs.")
    var name = "ops"

    func run() throws {
        guard !name.isEmpty, name.utf8.count <= 64, !name.contains(where: { $0 == "\"" || $0 == "\\" || $0.isNewline }) else {
            throw ValidationError("--name must be 1 to 64 characters without quotes, backslashes or line breaks")
        }
        let (key, sha256) = AdminKeys.generate(test: test)
        print("key: \(key)")
        print("Keep the key in your secret store: it is shown only now. Add this line under admin.api_keys:")
        print("    - { name: \(ConfigurationText.quoted(name)), sha256: \"\(sha256)\" }")
    }
}

/// Waits for shutdown, then gives unused leases back to Redis and stops its thread.
struct ReturnLeasesOnShutdownService: Service {
    let limiter: RedisGlobalLimiter

    func run() async throws {
        try? await gracefulShutdown()
        await limiter.shutdown()
    }
}

/// Runs a ``ConfigurationReloader`` on every SIGHUP.
struct ReloadOnHangupService: Service {
    let reloader: ConfigurationReloader

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            reloader.reload()
        }
    }
}

func printError(_ message: String) {
    var standardError = FileHandleStream.standardError
    print(message, to: &standardError)
}

/// Writes to standard error without Foundation.
struct FileHandleStream: TextOutputStream {
    static let standardError = FileHandleStream()
    mutating func write(_ string: String) {
        var bytes = Array(string.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
            guard written > 0 else { return }
            offset += written
        }
    }
}
