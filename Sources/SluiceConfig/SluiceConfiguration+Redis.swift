import SluiceCore

extension SluiceConfiguration {
    /// Where the fleet's Redis is: the `redis` section, needed by any policy with `scope: global`.
    ///
    /// ```yaml
    /// redis:
    ///   # exactly one of:
    ///   url: "redis://127.0.0.1:6379/0"                            # one node: redis://[[user]:password@]host[:port][/db]
    ///   cluster: ["10.0.0.1:6379", "10.0.0.2:6379"]                # Redis Cluster seed nodes (any one suffices)
    ///   sentinel: { master: mymaster, nodes: ["10.0.0.9:26379"] }  # the master Sentinel names (sentinel_password: for them)
    ///   username: "..."          # the data nodes' ACL user
    ///   password: "..."          # or password_file: PATH (its first line)
    ///   timeout: 50ms            # the longest a decision waits for Redis
    ///   key_prefix: "sluice:"    # prepended to every key Sluice writes
    ///   max_leases: 100000       # buckets holding a lease at once
    /// ```
    ///
    /// A password can also come from the environment variable `SLUICE_REDIS_PASSWORD` (the executable applies
    /// it when the configuration has none), so it need not sit in the file.
    public struct Redis: Sendable, Hashable, CustomStringConvertible {
        /// The longest `timeout`: a decision must never wait longer than this for Redis.
        public static let maximumTimeoutNanoseconds: Int64 = 10_000_000_000
        /// The longest `key_prefix`, in bytes.
        public static let maximumKeyPrefixBytes = 64
        /// The largest `max_leases`.
        public static let maximumLeases = 10_000_000

        /// Where Redis is: one node, a Cluster, or the master Sentinel names.
        public enum Deployment: Sendable, Hashable {
            /// One node (`url`).
            case single(Node, database: Int)
            /// A Redis Cluster, found from any of its seed nodes (`cluster`).
            case cluster(seeds: [Node])
            /// The master the sentinels name (`sentinel: { master, nodes }`); `password` authenticates to the
            /// sentinels themselves (`sentinel_password`).
            case sentinel(master: String, sentinels: [Node], password: String?)
        }

        /// A Redis node's address.
        public struct Node: Sendable, Hashable, CustomStringConvertible {
            /// The host, without brackets.
            public var host: String
            public var port: Int

            public init(host: String, port: Int) {
                self.host = host
                self.port = port
            }

            /// `host:port`, an IPv6 host in brackets.
            public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

            /// Parses `host:port` or `[ipv6]:port`, saying what is wrong.
            public static func parse(_ text: String) -> Result<Node, URLError> {
                var host = Substring(text)
                var portText: Substring
                if text.hasPrefix("[") {
                    guard let close = text.firstIndex(of: "]") else { return .failure(URLError(reason: "an IPv6 host needs a closing bracket")) }
                    host = text[text.index(after: text.startIndex)..<close]
                    let rest = text[text.index(after: close)...]
                    guard rest.first == ":" else { return .failure(URLError(reason: "a port must follow the bracketed host after a colon")) }
                    portText = rest.dropFirst()
                } else {
                    guard let colon = text.lastIndex(of: ":") else { return .failure(URLError(reason: "must be host:port, such as 10.0.0.1:6379")) }
                    host = text[..<colon]
                    portText = text[text.index(after: colon)...]
                }
                guard !host.isEmpty else { return .failure(URLError(reason: "the host is missing, as in 10.0.0.1:6379")) }
                guard let port = Int(portText), (1...65_535).contains(port) else {
                    return .failure(URLError(reason: "the port must be a number from 1 to 65535, got '\(portText)'"))
                }
                return .success(Node(host: String(host), port: port))
            }
        }

        /// Where Redis is.
        public var deployment: Deployment
        /// The ACL user of the data nodes, if any.
        public var username: String?
        /// The password of the data nodes, if any. It never appears in logs, `INFO`, metrics or error messages.
        public var password: String?
        /// `redis.timeout` in nanoseconds, 1 ms through 10 s; default 50 ms.
        public var timeoutNanoseconds: Int64
        /// `redis.key_prefix`: up to 64 bytes, no braces (they would break the hash tag); default `sluice:`.
        public var keyPrefix: String
        /// `redis.max_leases`, 1 through ``maximumLeases``; default 100,000.
        public var maxLeases: Int

        /// Creates the settings of one node.
        public init(
            host: String = "127.0.0.1", port: Int = 6379, database: Int = 0, username: String? = nil, password: String? = nil,
            timeoutNanoseconds: Int64 = 50_000_000, keyPrefix: String = "sluice:", maxLeases: Int = 100_000
        ) {
            self.init(
                deployment: .single(Node(host: host, port: port), database: database), username: username, password: password,
                timeoutNanoseconds: timeoutNanoseconds, keyPrefix: keyPrefix, maxLeases: maxLeases
            )
        }

        /// Creates the settings.
        public init(
            deployment: Deployment, username: String? = nil, password: String? = nil, timeoutNanoseconds: Int64 = 50_000_000,
            keyPrefix: String = "sluice:", maxLeases: Int = 100_000
        ) {
            self.deployment = deployment
            self.username = username
            self.password = password
            self.timeoutNanoseconds = timeoutNanoseconds
            self.keyPrefix = keyPrefix
            self.maxLeases = maxLeases
        }

        /// ``timeoutNanoseconds`` as a `Duration`: how long any decision may wait for Redis, and the socket
        /// timeout of every read and write.
        public var timeout: Duration { .nanoseconds(timeoutNanoseconds) }

        /// Where Redis is, without credentials: what logs and `INFO` show (`host:port/db`, `cluster a:1,b:2`,
        /// `sentinel mymaster@a:1`).
        public var endpoint: String {
            switch deployment {
            case .single(let node, let database): "\(node)/\(database)"
            case .cluster(let seeds): "cluster " + seeds.map(\.description).joined(separator: ",")
            case .sentinel(let master, let sentinels, _): "sentinel \(master)@" + sentinels.map(\.description).joined(separator: ",")
            }
        }

        /// Parses `redis://[[user]:password@]host[:port][/db]` (also `[ipv6]` hosts), saying what is wrong.
        public static func parseURL(_ text: String) -> Result<Redis, URLError> {
            guard text.hasPrefix("redis://") else {
                return .failure(URLError(reason: "must start with redis:// (TLS, rediss://, is not supported by Debian's hiredis 0.14)"))
            }
            var rest = Substring(text.dropFirst("redis://".count))
            var node = Node(host: "127.0.0.1", port: 6379)
            var database = 0
            var settings = Redis()
            if let at = rest.lastIndex(of: "@") {
                let credentials = rest[..<at]
                rest = rest[rest.index(after: at)...]
                if let colon = credentials.firstIndex(of: ":") {
                    let user = credentials[..<colon]
                    settings.username = user.isEmpty ? nil : String(user)
                    settings.password = String(credentials[credentials.index(after: colon)...])
                } else {
                    settings.password = String(credentials)
                }
            }
            if let slash = rest.firstIndex(of: "/") {
                let databaseText = rest[rest.index(after: slash)...]
                rest = rest[..<slash]
                if !databaseText.isEmpty {
                    guard let parsed = Int(databaseText), (0...15_999).contains(parsed) else {
                        return .failure(URLError(reason: "the database after / must be a number from 0, got '\(databaseText)'"))
                    }
                    database = parsed
                }
            }
            var hostText = rest
            if rest.hasPrefix("[") {
                guard let close = rest.firstIndex(of: "]") else { return .failure(URLError(reason: "an IPv6 host needs a closing bracket")) }
                node.host = String(rest[rest.index(after: rest.startIndex)..<close])
                hostText = rest[rest.index(after: close)...]
                if !hostText.isEmpty {
                    guard hostText.first == ":" else { return .failure(URLError(reason: "a port must follow the bracketed host after a colon")) }
                    hostText = hostText.dropFirst()
                    guard let port = Int(hostText), (1...65_535).contains(port) else {
                        return .failure(URLError(reason: "the port must be a number from 1 to 65535, got '\(hostText)'"))
                    }
                    node.port = port
                }
            } else {
                if let colon = rest.lastIndex(of: ":") {
                    let portText = rest[rest.index(after: colon)...]
                    guard let port = Int(portText), (1...65_535).contains(port) else {
                        return .failure(URLError(reason: "the port must be a number from 1 to 65535, got '\(portText)'"))
                    }
                    node.port = port
                    hostText = rest[..<colon]
                }
                node.host = String(hostText)
            }
            guard !node.host.isEmpty else { return .failure(URLError(reason: "the host is missing, as in redis://127.0.0.1:6379/0")) }
            settings.deployment = .single(node, database: database)
            return .success(settings)
        }

        /// Why a URL was refused.
        public struct URLError: Error, Sendable {
            /// What is wrong, as a sentence fragment.
            public let reason: String
        }

        /// The settings without the password: what `\(redis)` shows, so a log line can never carry it.
        public var description: String {
            "redis \(endpoint)" + (username.map { " user \($0)" } ?? "") + (password == nil ? "" : " (password set)")
        }

        /// Each field out of range, with what is wrong; empty when valid.
        func problems() -> [(field: String, message: String)] {
            var problems: [(field: String, message: String)] = []
            if !(1_000_000...Self.maximumTimeoutNanoseconds).contains(timeoutNanoseconds) {
                problems.append(("timeout", "must be from 1ms to 10s, got \(PolicyDuration.format(nanoseconds: timeoutNanoseconds))"))
            }
            if keyPrefix.utf8.count > Self.maximumKeyPrefixBytes || keyPrefix.contains("{") || keyPrefix.contains("}") {
                problems.append(("key_prefix", "must be at most \(Self.maximumKeyPrefixBytes) bytes without { or } (Sluice adds the hash tag), got '\(keyPrefix)'"))
            }
            if !(1...Self.maximumLeases).contains(maxLeases) {
                problems.append(("max_leases", "must be an integer from 1 to \(Self.maximumLeases), got \(maxLeases)"))
            }
            return problems
        }
    }
}
