import SluiceCore

extension ServerStatus {
    /// The status in the Prometheus text format (version 0.0.4), for `GET /metrics`.
    func prometheus() -> String {
        var text = """
            # HELP sluice_decisions_total Decisions by outcome (a multi-check request counts once).
            # TYPE sluice_decisions_total counter
            sluice_decisions_total{outcome="allowed"} \(statistics.allowed)
            sluice_decisions_total{outcome="denied"} \(statistics.denied)
            sluice_decisions_total{outcome="shadow_denied"} \(statistics.shadowDenied)
            # HELP sluice_requests_total Commands and HTTP requests served.
            # TYPE sluice_requests_total counter
            sluice_requests_total \(statistics.commands)
            # HELP sluice_protocol_errors_total Line-protocol connections closed for a malformed frame.
            # TYPE sluice_protocol_errors_total counter
            sluice_protocol_errors_total \(statistics.protocolErrors)
            # HELP sluice_connections_open Open line-protocol connections.
            # TYPE sluice_connections_open gauge
            sluice_connections_open \(statistics.connectionsOpen)
            # HELP sluice_keys Live buckets.
            # TYPE sluice_keys gauge
            sluice_keys \(store.keys)
            # HELP sluice_keys_max Buckets the store holds before evicting.
            # TYPE sluice_keys_max gauge
            sluice_keys_max \(store.maximumKeys)
            # HELP sluice_evictions_total Buckets dropped: idle (full again, no state lost) or pressure (store full).
            # TYPE sluice_evictions_total counter
            sluice_evictions_total{reason="idle"} \(store.idleEvictions)
            sluice_evictions_total{reason="pressure"} \(store.pressureEvictions)
            # HELP sluice_uptime_seconds Seconds since start.
            # TYPE sluice_uptime_seconds gauge
            sluice_uptime_seconds \(statistics.uptimeSeconds)

            """
        if !rls.isEmpty {
            text += "# HELP sluice_rls_decisions_total Envoy rate limit service requests by domain and overall code.\n"
            text += "# TYPE sluice_rls_decisions_total counter\n"
            for domain in rls {
                let label = Self.labelValue(domain.label)
                text += "sluice_rls_decisions_total{domain=\"\(label)\",outcome=\"ok\"} \(domain.allowed)\n"
                text += "sluice_rls_decisions_total{domain=\"\(label)\",outcome=\"over_limit\"} \(domain.denied)\n"
            }
        }
        guard let global else { return text }
        text += """
            # HELP sluice_redis_up Whether Redis answers (1) or global policies follow on_store_failure (0).
            # TYPE sluice_redis_up gauge
            sluice_redis_up \(global.isConnected ? 1 : 0)
            # HELP sluice_redis_authentication_failed Whether Redis refused the configured credentials at the last attempt.
            # TYPE sluice_redis_authentication_failed gauge
            sluice_redis_authentication_failed \(global.authenticationFailed ? 1 : 0)
            # HELP sluice_global_decisions_total Global decisions by how they were made: from a lease or known exhaustion (local), after waiting for Redis (redis), by on_store_failure (fallback).
            # TYPE sluice_global_decisions_total counter
            sluice_global_decisions_total{path="local"} \(global.localDecisions)
            sluice_global_decisions_total{path="redis"} \(global.redisDecisions)
            sluice_global_decisions_total{path="fallback"} \(global.fallbackDecisions)
            # HELP sluice_redis_calls_total Script calls sent to Redis: lease requests and strict decisions.
            # TYPE sluice_redis_calls_total counter
            sluice_redis_calls_total{kind="lease"} \(global.leaseRequests)
            sluice_redis_calls_total{kind="strict"} \(global.strictCalls)
            # HELP sluice_redis_errors_total Redis failures: timeouts, lost connections, error replies.
            # TYPE sluice_redis_errors_total counter
            sluice_redis_errors_total \(global.errors)
            # HELP sluice_redis_reconnections_total Connections to Redis made again after a failure.
            # TYPE sluice_redis_reconnections_total counter
            sluice_redis_reconnections_total \(global.reconnections)
            # HELP sluice_leases Buckets holding a lease of a global budget.
            # TYPE sluice_leases gauge
            sluice_leases \(global.leases)

            """
        return text
    }
}

extension ServerStatus {
    /// `text` as a Prometheus label value: backslash, double quote and newline escaped.
    static func labelValue(_ text: String) -> String {
        var escaped = ""
        for character in text {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
