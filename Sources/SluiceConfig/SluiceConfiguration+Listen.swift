extension SluiceConfiguration {
    /// Where the servers listen: the `listen` section.
    ///
    /// ```yaml
    /// listen:
    ///   line: "127.0.0.1:7379"   # the Redis-protocol (RESP) server
    ///   http: "127.0.0.1:7380"   # the HTTP API
    ///   grpc: "127.0.0.1:8081"   # Envoy's rate limit service (gRPC); absent: none
    ///   admin: "127.0.0.1:7381"  # the admin API on its own listener; absent: on the HTTP listener
    /// ```
    public struct Listen: Sendable, Hashable {
        /// The line-protocol default: loopback, the port after Redis's 6379 with a 7.
        public static let defaultLine = ListenAddress(host: "127.0.0.1", port: 7379)
        /// The HTTP default: loopback, the port after the line protocol's.
        public static let defaultHTTP = ListenAddress(host: "127.0.0.1", port: 7380)

        /// The line-protocol (RESP) listener, `listen.line`; default `127.0.0.1:7379`.
        public var line: ListenAddress
        /// The HTTP listener, `listen.http`; default `127.0.0.1:7380`.
        public var http: ListenAddress
        /// The gRPC listener of Envoy's rate limit service, `listen.grpc`; default none.
        public var grpc: ListenAddress?
        /// The admin API's own listener, `listen.admin`; default none (the admin routes are on the HTTP listener).
        public var admin: ListenAddress?

        /// Creates the listener settings.
        ///
        /// - Parameters:
        ///   - line: the line-protocol address; default `127.0.0.1:7379`.
        ///   - http: the HTTP address; default `127.0.0.1:7380`.
        ///   - grpc: the gRPC address; default none.
        ///   - admin: the admin API's own address; default none (on the HTTP listener).
        public init(line: ListenAddress = defaultLine, http: ListenAddress = defaultHTTP, grpc: ListenAddress? = nil, admin: ListenAddress? = nil) {
            self.line = line
            self.http = http
            self.grpc = grpc
            self.admin = admin
        }

        /// Each field out of range, with what is wrong; empty when valid.
        func problems() -> [(field: String, message: String)] {
            ([("line", line), ("http", http)] + (grpc.map { [("grpc", $0)] } ?? []) + (admin.map { [("admin", $0)] } ?? [])).compactMap { field, address in
                if address.host.isEmpty { return (field, "the host must not be empty") }
                if !(0...ListenAddress.maximumPort).contains(address.port) {
                    return (field, "the port must be an integer from 0 to \(ListenAddress.maximumPort), got \(address.port)")
                }
                return nil
            }
        }
    }
}
