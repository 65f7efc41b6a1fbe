import Foundation
import SluiceTestSupport
import Testing

/// Real gateways from Debian's packages in front of a trivial site, asking a real Sluice through the shipped
/// example configurations (only their ports are changed): the fourth POST /login in a 3-per-minute policy
/// gets 429 with Retry-After through the gateway, and other routes pass.
@Suite(.serialized)
struct GatewayTests {
    /// The example Sluice configuration, as shipped.
    static func sluiceConfiguration() throws -> String { try exampleFile("sluice-gateway.yaml") }

    static func expectLoginLimited(gatewayPort: Int, gateway: String) throws {
        for attempt in 1...3 {
            let response = try rawHTTPRequest(port: gatewayPort, method: "POST", path: "/login")
            #expect(response.status == 200, "\(gateway): login \(attempt) -> \(response.status) \(response.body)")
            #expect(response.body.contains("site: POST /login"), "\(gateway): \(response.body)")
        }
        let limited = try rawHTTPRequest(port: gatewayPort, method: "POST", path: "/login")
        #expect(limited.status == 429, "\(gateway): 4th login -> \(limited.status) \(limited.body)")
        let retryAfter = Int(limited.headers["retry-after"] ?? "") ?? 0
        #expect(retryAfter >= 1 && retryAfter <= 120, "\(gateway): Retry-After \(limited.headers["retry-after"] ?? "missing")")
        #expect(limited.headers["x-ratelimit-remaining"] == "0", "\(gateway): \(limited.headers)")
        // Other routes pass, and so does a GET to /login (the rule is for POST).
        let other = try rawHTTPRequest(port: gatewayPort, method: "GET", path: "/products")
        #expect(other.status == 200 && other.body.contains("site: GET /products"), "\(gateway): \(other.status) \(other.body)")
        let getLogin = try rawHTTPRequest(port: gatewayPort, method: "GET", path: "/login")
        #expect(getLogin.status == 200, "\(gateway): GET /login -> \(getLogin.status)")
    }

    @Test(.requires("caddy")) func caddyForwardAuth() async throws {
        let sluice = try await RunningSluiceHTTP.start(yaml: try Self.sluiceConfiguration())
        let port = try freeLoopbackPort()
        let directory = try temporaryDirectory("caddy")
        let caddyfile = try exampleFile("caddy/Caddyfile")
            .replacingOccurrences(of: "127.0.0.1:7380", with: "127.0.0.1:\(sluice.port)")
            .replacingOccurrences(of: "127.0.0.1:8081", with: "127.0.0.1:\(port)")
        try caddyfile.write(to: directory.appendingPathComponent("Caddyfile"), atomically: true, encoding: .utf8)
        let caddy = try ChildProcess(
            executable: "caddy", arguments: ["run", "--config", "Caddyfile", "--adapter", "caddyfile"], directory: directory,
            environment: ["HOME": directory.path, "XDG_DATA_HOME": directory.path, "XDG_CONFIG_HOME": directory.path]
        )
        defer { caddy.stop() }
        try await caddy.waitUntilListening(port: port)
        try Self.expectLoginLimited(gatewayPort: port, gateway: "caddy")
        caddy.stop()
        try await sluice.stop()
    }

    @Test(.requires("nginx")) func nginxAuthRequest() async throws {
        let sluice = try await RunningSluiceHTTP.start(yaml: try Self.sluiceConfiguration())
        let port = try freeLoopbackPort()
        let sitePort = try freeLoopbackPort()
        let directory = try temporaryDirectory("nginx")
        var configuration = try exampleFile("nginx/nginx.conf")
            .replacingOccurrences(of: "127.0.0.1:7380", with: "127.0.0.1:\(sluice.port)")
            .replacingOccurrences(of: "127.0.0.1:8082", with: "127.0.0.1:\(port)")
            .replacingOccurrences(of: "127.0.0.1:9082", with: "127.0.0.1:\(sitePort)")
        if getuid() == 0 { configuration = "user root;\n" + configuration }  // as root, workers would otherwise drop to nobody
        try configuration.write(to: directory.appendingPathComponent("nginx.conf"), atomically: true, encoding: .utf8)
        let nginx = try ChildProcess(
            executable: "nginx", arguments: ["-p", directory.path, "-c", directory.appendingPathComponent("nginx.conf").path, "-e", "error.log"],
            directory: directory
        )
        defer { nginx.stop() }
        try await nginx.waitUntilListening(port: port)
        try Self.expectLoginLimited(gatewayPort: port, gateway: "nginx")
        nginx.stop()
        try await sluice.stop()
    }
}
