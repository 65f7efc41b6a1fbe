/// What `sluice bench` runs: where, how hard, for how long, and which requests.
public struct BenchPlan: Sendable, Equatable {
    /// The server under load.
    public enum Target: Sendable, Equatable, CustomStringConvertible {
        /// The line protocol (RESP): `line://HOST:PORT`.
        case line(host: String, port: Int)
        /// The HTTP API: `http://HOST:PORT` (`GET /v1/check`) or `http://HOST:PORT/v1/forward-auth`.
        case http(host: String, port: Int, forwardAuth: Bool)
        /// Envoy's rate limit service: `grpc://HOST:PORT`.
        case grpc(host: String, port: Int)

        /// Parses `line://HOST:PORT`, `http://HOST:PORT[/v1/check|/v1/forward-auth]` or `grpc://HOST:PORT`
        /// (an IPv6 host in brackets).
        public init(parsing text: String) throws(BenchPlanError) {
            let parts = text.split(separator: "://", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw BenchPlanError("--target must be line://HOST:PORT, http://HOST:PORT or grpc://HOST:PORT, got '\(text)'")
            }
            let scheme = parts[0].lowercased()
            var rest = parts[1]
            var path = ""
            if let slash = rest.firstIndex(of: "/") {
                path = String(rest[slash...])
                rest = rest[..<slash]
            }
            let (host, port) = try Self.hostAndPort(rest, in: text)
            switch (scheme, path) {
            case ("line", ""): self = .line(host: host, port: port)
            case ("grpc", ""): self = .grpc(host: host, port: port)
            case ("http", ""), ("http", "/"), ("http", "/v1/check"): self = .http(host: host, port: port, forwardAuth: false)
            case ("http", "/v1/forward-auth"): self = .http(host: host, port: port, forwardAuth: true)
            case ("http", _):
                throw BenchPlanError("--target http://HOST:PORT takes the path /v1/check (the default) or /v1/forward-auth, got '\(path)'")
            default:
                throw BenchPlanError("--target's scheme must be line, http or grpc (without a path), got '\(text)'")
            }
        }

        private static func hostAndPort(_ authority: Substring, in text: String) throws(BenchPlanError) -> (String, Int) {
            let host: Substring
            let portText: Substring
            if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
                host = authority[authority.index(after: authority.startIndex)..<close]
                let after = authority[authority.index(after: close)...]
                guard after.hasPrefix(":") else { throw BenchPlanError("--target needs a port: '\(text)'") }
                portText = after.dropFirst()
            } else if let colon = authority.lastIndex(of: ":") {
                host = authority[..<colon]
                portText = authority[authority.index(after: colon)...]
            } else {
                throw BenchPlanError("--target needs a port: '\(text)'")
            }
            guard !host.isEmpty, let port = Int(portText), (1...65535).contains(port) else {
                throw BenchPlanError("--target needs a host and a port from 1 to 65535: '\(text)'")
            }
            return (String(host), port)
        }

        public var host: String {
            switch self {
            case .line(let host, _), .http(let host, _, _), .grpc(let host, _): host
            }
        }

        public var port: Int {
            switch self {
            case .line(_, let port), .http(_, let port, _), .grpc(_, let port): port
            }
        }

        public var description: String {
            let authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            switch self {
            case .line: return "line://\(authority)"
            case .http(_, _, let forwardAuth): return "http://\(authority)" + (forwardAuth ? "/v1/forward-auth" : "/v1/check")
            case .grpc: return "grpc://\(authority)"
            }
        }
    }

    /// The line protocol's command.
    public enum LineCommand: String, Sendable, Equatable, CaseIterable {
        /// `TAKE policy key cost`.
        case take
        /// `THROTTLE key limit period cost`: an inline limit.
        case throttle
        /// `MTAKE policy key cost policy key cost ...`: every policy of `--policy`, all or nothing.
        case mtake
    }

    /// How keys are drawn from `0..<keys`.
    public enum Distribution: Sendable, Equatable, CustomStringConvertible {
        case uniform
        /// Rank `r` with probability proportional to `1 / (r + 1)^exponent`.
        case zipf(exponent: Double)

        /// `uniform`, `zipf` (exponent 1) or `zipf:S`.
        public init(parsing text: String) throws(BenchPlanError) {
            if text == "uniform" {
                self = .uniform
            } else if text == "zipf" {
                self = .zipf(exponent: 1)
            } else if text.hasPrefix("zipf:"), let exponent = Double(text.dropFirst(5)), exponent > 0, exponent <= 10 {
                self = .zipf(exponent: exponent)
            } else {
                throw BenchPlanError("--distribution must be uniform, zipf or zipf:S with 0 < S <= 10, got '\(text)'")
            }
        }

        public var description: String {
            switch self {
            case .uniform: "uniform"
            case .zipf(let exponent): "zipf:\(exponent)"
            }
        }
    }

    /// When the run ends.
    public enum Length: Sendable, Equatable {
        /// After this many replies (or errors) in all.
        case requests(Int)
        /// After this long: nothing is sent after it, and replies still due are awaited up to the timeout.
        case duration(nanoseconds: Int64)
    }

    public var target: Target
    public var connections: Int = 50
    /// Requests in flight per connection (the line protocol and HTTP pipeline them; gRPC runs them as concurrent calls).
    public var pipeline: Int = 1
    public var length: Length = .duration(nanoseconds: 10_000_000_000)
    /// Requests per second offered in all (open loop), or nil for as fast as replies come (closed loop).
    public var rate: Double?
    public var keys: Int = 100_000
    public var distribution: Distribution = .uniform
    /// Policies (the line protocol's MTAKE takes all of them, the others the first); for gRPC, the domain.
    public var policies: [String] = ["bench"]
    public var cost: Int64 = 1
    public var command: LineCommand = .take
    /// THROTTLE's inline limit: `limit` per `period` (as the line protocol writes it, `10s` or milliseconds).
    public var throttleLimit: Int64 = 100
    public var throttlePeriod: String = "1s"
    /// gRPC: the descriptor entry's key (its value is the drawn key).
    public var descriptorKey: String = "key"
    public var keyPrefix: String = "bench:"
    /// Event-loop threads driving the connections.
    public var threads: Int = 1
    /// A reply later than this is counted as a timeout, and its connection is reopened.
    public var timeoutNanoseconds: Int64 = 5_000_000_000
    public var seed: UInt64 = 1

    public init(target: Target) { self.target = target }

    /// Throws the plan's first mistake, naming its flag.
    public func validate() throws(BenchPlanError) {
        guard (1...10_000).contains(connections) else { throw BenchPlanError("--connections must be from 1 to 10000, got \(connections)") }
        guard (1...1024).contains(pipeline) else { throw BenchPlanError("--pipeline must be from 1 to 1024, got \(pipeline)") }
        switch length {
        case .requests(let count): guard count >= 1 else { throw BenchPlanError("--requests must be at least 1, got \(count)") }
        case .duration(let nanoseconds): guard nanoseconds > 0 else { throw BenchPlanError("--duration must be positive") }
        }
        if let rate { guard rate > 0, rate <= 10_000_000 else { throw BenchPlanError("--rate must be from 1 to 10000000 per second, got \(rate)") } }
        guard (1...100_000_000).contains(keys) else { throw BenchPlanError("--keys must be from 1 to 100000000, got \(keys)") }
        guard (1...1_000_000_000).contains(cost) else { throw BenchPlanError("--cost must be from 1 to 1000000000, got \(cost)") }
        guard (1...64).contains(threads) else { throw BenchPlanError("--threads must be from 1 to 64, got \(threads)") }
        guard timeoutNanoseconds > 0 else { throw BenchPlanError("--timeout must be positive") }
        let names = policies + [keyPrefix, descriptorKey, throttlePeriod]
        guard !policies.isEmpty, !policies.contains(where: \.isEmpty) else { throw BenchPlanError("--policy must name at least one policy") }
        // Names go on the wire as they are: no spaces or line breaks (inline commands), no bytes a URL must escape.
        for name in names where name.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F || $0 == UInt8(ascii: "&") || $0 == UInt8(ascii: "%") }) {
            throw BenchPlanError("'\(name)': policy names, --key-prefix, --descriptor and --throttle-period must be printable ASCII without spaces, & or %")
        }
        if policies.count > 1, case .line = target, command != .mtake {
            throw BenchPlanError("several policies need --command mtake")
        }
    }
}

/// A plan that cannot run, with the flag that is wrong.
public struct BenchPlanError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
