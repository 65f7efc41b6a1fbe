import SluiceCore

extension SluiceConfiguration {
    /// Where the fleet's Redis is: the `redis` section, needed by any policy with `scope: global`.
    ///
    /// ```yaml
    /// redis:
    ///   url: "redis://127.0.0.1:6379/0"   # redis://[[user]:password@]host[:port][/db]
    ///   timeout: 50ms                     # the longest a decision waits for Redis
    ///   key_prefix: "sluice:"             # prepended to every key Sluice writes
    ///   max_leases: 100000                # buckets holding a lease at once
    /// ```
    ///
    /// A password can also come from the environment variable `SLUICE_REDIS_PASSWORD` (the executable applies
    /// it when the URL has none), so it need not sit in the file.
    public struct Redis: Sendable, Hashable {
        /// The longest `timeout`: a decision must never wait longer than this for Redis.
        public static let maximumTimeoutNanoseconds: Int64 = 10_000_000_000
        /// The longest `key_prefix`, in bytes.
        public static let maximumKeyPrefixBytes = 64
        /// The largest `max_leases`.
        public static let maximumLeases = 10_000_000

        /// The host, without brackets.
        public var host: String
        /// The port; default 6379.
        public var port: Int
        /// The database index; default 0.
        public var database: Int
        /// The ACL user, if the URL names one.
        public var username: String?
        /// The password, if the URL has one.
        public var password: String?
        /// `redis.timeout` in nanoseconds, 1 ms through 10 s; default 50 ms.
        public var timeoutNanoseconds: Int64
        /// `redis.key_prefix`: up to 64 bytes, no braces (they would break the hash tag); default `sluice:`.
        public var keyPrefix: String
        /// `redis.max_leases`, 1 through ``maximumLeases``; default 100,000.
        public var maxLeases: Int

        /// Creates the settings.
        public init(
            host: String = "127.0.0.1", port: Int = 6379, database: Int = 0, username: String? = nil, password: String? = nil,
            timeoutNanoseconds: Int64 = 50_000_000, keyPrefix: String = "sluice:", maxLeases: Int = 100_000
        ) {
            self.host = host
            self.port = port
            self.database = database
            self.username = username
            self.password = password
            self.timeoutNanoseconds = timeoutNanoseconds
            self.keyPrefix = keyPrefix
            self.maxLeases = maxLeases
        }

        /// ``timeoutNanoseconds`` as a `Duration`: how long any decision may wait for Redis, and the socket
        /// timeout of every read and write.
        public var timeout: Duration { .nanoseconds(timeoutNanoseconds) }

        /// `host:port/db`, without credentials: what logs and `INFO` show.
        public var endpoint: String {
            let shownHost = host.contains(":") ? "[\(host)]" : host
            return "\(shownHost):\(port)/\(database)"
        }

        /// Parses `redis://[[user]:password@]host[:port][/db]` (also `[ipv6]` hosts), saying what is wrong.
        public static func parseURL(_ text: String) -> Result<Redis, URLError> {
            guard text.hasPrefix("redis://") else {
                return .failure(URLError(reason: "must start with redis:// (TLS, rediss://, is not supported by Debian's hiredis 0.14)"))
            }
            var rest = Substring(text.dropFirst("redis://".count))
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
                    guard let database = Int(databaseText), (0...15_999).contains(database) else {
                        return .failure(URLError(reason: "the database after / must be a number from 0, got '\(databaseText)'"))
                    }
                    settings.database = database
                }
            }
            var hostText = rest
            if rest.hasPrefix("[") {
                guard let close = rest.firstIndex(of: "]") else { return .failure(URLError(reason: "an IPv6 host needs a closing bracket")) }
                settings.host = String(rest[rest.index(after: rest.startIndex)..<close])
                hostText = rest[rest.index(after: close)...]
                if !hostText.isEmpty {
                    guard hostText.first == ":" else { return .failure(URLError(reason: "a port must follow the bracketed host after a colon")) }
                    hostText = hostText.dropFirst()
                    guard let port = Int(hostText), (1...65_535).contains(port) else {
                        return .failure(URLError(reason: "the port must be a number from 1 to 65535, got '\(hostText)'"))
                    }
                    settings.port = port
                }
            } else {
                if let colon = rest.lastIndex(of: ":") {
                    let portText = rest[rest.index(after: colon)...]
                    guard let port = Int(portText), (1...65_535).contains(port) else {
                        return .failure(URLError(reason: "the port must be a number from 1 to 65535, got '\(portText)'"))
                    }
                    settings.port = port
                    hostText = rest[..<colon]
                }
                settings.host = String(hostText)
            }
            guard !settings.host.isEmpty else { return .failure(URLError(reason: "the host is missing, as in redis://127.0.0.1:6379/0")) }
            return .success(settings)
        }

        /// Why a URL was refused.
        public struct URLError: Error, Sendable {
            /// What is wrong, as a sentence fragment.
            public let reason: String
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
