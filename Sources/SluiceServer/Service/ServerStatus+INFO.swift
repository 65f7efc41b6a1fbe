import SluiceCore

extension ServerStatus {
    /// The status as the line protocol's `INFO` reply: Redis's `# Section` and `field:value` lines.
    func info(version: String) -> String {
        var text = """
            # Server\r
            sluice_version:\(version)\r
            uptime_in_seconds:\(statistics.uptimeSeconds)\r
            \r
            # Clients\r
            connected_clients:\(statistics.connectionsOpen)\r
            total_connections_received:\(statistics.connectionsTotal)\r
            rejected_connections:\(statistics.connectionsRefused)\r
            idle_closed_connections:\(statistics.idleClosed)\r
            http_request_timeouts:\(statistics.requestTimeouts)\r
            \r
            # Stats\r
            total_commands_processed:\(statistics.commands)\r
            decisions_allowed:\(statistics.allowed)\r
            decisions_denied:\(statistics.denied)\r
            decisions_shadow_denied:\(statistics.shadowDenied)\r
            protocol_errors:\(statistics.protocolErrors)\r
            \r
            # Keyspace\r
            keys:\(store.keys)\r
            max_keys:\(store.maximumKeys)\r
            shards:\(store.shards)\r
            evicted_idle_keys:\(store.idleEvictions)\r
            evicted_pressure_keys:\(store.pressureEvictions)\r
            policies:\(policies)\r

            """
        if !rls.isEmpty {
            text += "\r\n# RLS\r\n"
            for domain in rls { text += "rls_domain:\(domain.label.replacingNewlines),ok=\(domain.allowed),over_limit=\(domain.denied)\r\n" }
        }
        guard let global else { return text }
        text += """
            \r
            # Redis\r
            redis_state:\(global.isConnected ? "up" : "down")\r
            redis_authentication:\(global.authenticationFailed ? "failed" : "ok")\r
            redis_endpoint:\(global.endpoint)\r
            global_local_decisions:\(global.localDecisions)\r
            global_redis_decisions:\(global.redisDecisions)\r
            global_local_share:\(globalLocalShare)\r
            global_fallback_decisions:\(global.fallbackDecisions)\r
            lease_requests:\(global.leaseRequests)\r
            strict_calls:\(global.strictCalls)\r
            redis_errors:\(global.errors)\r
            redis_reconnections:\(global.reconnections)\r
            leases:\(global.leases)\r

            """
        return text
    }
}

extension String {
    /// The text with CR and LF as spaces, so a configured name cannot break a line-based reply.
    var replacingNewlines: String { String(map { $0 == "\r" || $0 == "\n" ? " " : $0 }) }
}
