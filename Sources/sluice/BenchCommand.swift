import ArgumentParser
import SluiceBench
import SluiceCore

#if canImport(Glibc)
import Glibc
#endif

/// `sluice bench --target URL ...`: the load generator.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load a running Sluice (line protocol, HTTP or gRPC) and report throughput, latency percentiles and errors.",
        discussion: """
            Closed loop by default (each connection keeps --pipeline requests in flight); with --rate, open loop: \
            requests are due at a fixed rate whether or not replies keep up, and latency counts from when a request \
            was due, so a stalled server cannot hide its queue (coordinated omission). Errors (refused connections, \
            error replies, timeouts, connections closed with requests in flight) are counted apart from denials. \
            Exits 1 when nothing was decided.
            """
    )

    @Option(name: .long, help: "line://HOST:PORT, http://HOST:PORT (/v1/check; /v1/forward-auth for forward auth) or grpc://HOST:PORT.")
    var target: String

    @Option(name: .long, help: "Connections.")
    var connections = 50

    @Option(name: .long, help: "Requests in flight per connection (gRPC: concurrent calls).")
    var pipeline = 1

    @Option(name: .long, help: "Requests in all; the run ends when each has a reply or an error.")
    var requests: Int?

    @Option(name: .long, help: "How long to send (250ms, 10s, 1m); default 10s unless --requests is given.")
    var duration: String?

    @Option(name: .long, help: "Requests per second in all, offered on a fixed schedule (open loop).")
    var rate: Double?

    @Option(name: .long, help: "Distinct keys.")
    var keys = 100_000

    @Option(name: .long, help: "How keys are drawn: uniform, zipf (exponent 1) or zipf:S.")
    var distribution = "uniform"

    @Option(name: .long, help: "The policy (several, comma-separated, for --command mtake); for gRPC, the domain.")
    var policy = "bench"

    @Option(name: .long, help: "The cost of each request.")
    var cost: Int64 = 1

    @Option(name: .long, help: "The line protocol's command: take, throttle (an inline limit) or mtake.")
    var command = "take"

    @Option(name: .long, help: "THROTTLE's inline limit, as LIMIT/PERIOD.")
    var throttle = "100/1s"

    @Option(name: .long, help: "gRPC: the descriptor entry's key (its value is the key drawn).")
    var descriptor = "key"

    @Option(name: .long, help: "Keys are PREFIX followed by a number.")
    var keyPrefix = "bench:"

    @Option(name: .long, help: "Event-loop threads driving the connections.")
    var threads = 1

    @Option(name: .long, help: "A reply later than this is a timeout (its connection is reopened).")
    var timeout = "5s"

    @Option(name: .long, help: "Seed of the key sequence.")
    var seed: UInt64 = 1

    @Flag(name: .long, help: "Print the report as one JSON object.")
    var json = false

    @Flag(name: .long, help: "No progress line each second.")
    var quiet = false

    func plan() throws -> BenchPlan {
        do {
            var plan = BenchPlan(target: try BenchPlan.Target(parsing: target))
            plan.connections = connections
            plan.pipeline = pipeline
            switch (requests, duration) {
            case (.some, .some): throw BenchPlanError("give --requests or --duration, not both")
            case (.some(let count), nil): plan.length = .requests(count)
            case (nil, .some(let text)): plan.length = .duration(nanoseconds: try Self.nanoseconds(text, flag: "--duration"))
            case (nil, nil): break
            }
            plan.rate = rate
            plan.keys = keys
            plan.distribution = try BenchPlan.Distribution(parsing: distribution)
            plan.policies = policy.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            plan.cost = cost
            guard let command = BenchPlan.LineCommand(rawValue: command.lowercased()) else {
                throw BenchPlanError("--command must be take, throttle or mtake, got '\(command)'")
            }
            plan.command = command
            let limit = throttle.split(separator: "/", maxSplits: 1)
            guard limit.count == 2, let count = Int64(limit[0]), count > 0 else {
                throw BenchPlanError("--throttle must be LIMIT/PERIOD, such as 100/1s, got '\(throttle)'")
            }
            _ = try Self.nanoseconds(String(limit[1]), flag: "--throttle")
            plan.throttleLimit = count
            plan.throttlePeriod = String(limit[1])
            plan.descriptorKey = descriptor
            plan.keyPrefix = keyPrefix
            plan.threads = threads
            plan.timeoutNanoseconds = try Self.nanoseconds(timeout, flag: "--timeout")
            plan.seed = seed
            try plan.validate()
            return plan
        } catch let error as BenchPlanError {
            throw ValidationError(error.description)
        }
    }

    static func nanoseconds(_ text: String, flag: String) throws(BenchPlanError) -> Int64 {
        do {
            return try PolicyDuration.parseNanoseconds(text)
        } catch {
            throw BenchPlanError("\(flag): \(error.message)")
        }
    }

    func run() async throws {
        let plan = try plan()
        let quiet = quiet
        let report = try await BenchRunner.run(plan) { progress in
            if !quiet { printError(progress.line) }
        }
        print(json ? report.json : report.text)
        if report.counts.decisions == 0 { throw ExitCode(1) }
    }
}
