extension SluiceConfiguration {
    /// The configuration Sluice runs with when given no file: local policies, loopback listeners, no Redis.
    ///
    /// It is also the documented example of the file format; every field is explained in its comments.
    public static let embeddedDefaultYAML: String = """
        # Sluice configuration. Every section but `policies` may be left out; defaults are shown.

        # Where the servers listen, as "host:port" or "[ipv6]:port". Port 0 picks any free port.
        listen:
          line: "127.0.0.1:7379"    # the Redis-protocol server: TAKE, PEEK, THROTTLE, ... (redis-cli works)
          http: "127.0.0.1:7380"    # the HTTP API: /v1/check, /healthz, /metrics (and the admin API, unless `admin` below)
          # admin: "127.0.0.1:7381" # the admin API on a listener of its own

        # Named limits, checked by name (`TAKE api user:42`). Names use A-Z a-z 0-9 _ . : - (at most 64).
        #   algorithm: token_bucket | sliding_window | fixed_window
        #   limit:     requests (cost units) admitted per period; a positive integer
        #   period:    a positive integer with a unit: 250ms, 1s, 1m, 1h or 1d
        #   burst:     token_bucket only: the bucket's capacity (default: limit)
        #   mode:      enforce (default) denies over the limit; shadow decides and reports, but always allows
        #   overrides: other limits for some keys: an exact key, or a prefix ending in *; { limit, burst, period }
        #              (the policy's unless given). An exact key beats the longest prefix, which beats the policy:
        #                overrides: { "user:vip": { limit: 1000, burst: 200 }, "partner:*": { limit: 500 } }
        policies:
          api:   { algorithm: token_bucket, limit: 100, period: 1s, burst: 20 }
          login: { algorithm: sliding_window, limit: 5, period: 1m }
          daily: { algorithm: fixed_window, limit: 10000, period: 1d, mode: shadow }

        # The in-memory bucket store. Memory is allocated up front: about 43 to 86 bytes per key.
        store:
          max_keys: 1000000         # live buckets at most; past it, the least useful are evicted
          shards: 64                # a power of two; more shards, less contention when keys are added

        # Caps on what clients send; a client over a cap gets an error and is disconnected.
        # limits:
        #   max_key_bytes: 512      # the longest bucket key
        #   max_line_bytes: 65536   # the longest inline command, or one bulk string
        #   max_arguments: 1024     # the most elements in one RESP array

        # Caps on what the HTTP API accepts; a request over a cap gets a 4xx error.
        # http:
        #   max_body_bytes: 1048576  # the largest request body, 1 to 67108864 (64 MiB)
        #   max_checks: 100          # the most checks in one /v1/check request, 1 to 10000
        #   max_batch: 1000          # the most items in one /v1/check/batch request, 1 to 100000

        # /v1/forward-auth, for Caddy forward_auth, Traefik ForwardAuth and nginx auth_request.
        #   deny_status:     the status of a denial, 400 to 499; nginx auth_request passes only 401 and 403
        #   trusted_proxies: addresses or CIDR blocks whose X-Forwarded-For is believed (quote IPv6 ones)
        #   rules:           tried in order, the first match wins; a request no rule matches is not limited
        #     path_prefix:   required; the request path starts with it ("/" matches every path)
        #     methods:       optional; the methods matched, such as [GET, POST] (default: any method)
        #     limits:        required; checked together, all or nothing
        #       policy:      a policy named above
        #       by:          the bucket key: ip, api_key, header:NAME, or several joined by +,
        #                    such as "ip+header:X-Account" for login attempts by address and account together.
        #                    A limit whose source is absent from a request (no API key, no such header) is skipped.
        forward_auth:
          deny_status: 429
          trusted_proxies: ["127.0.0.1/32", "::1/128"]
          rules:
            - path_prefix: /login
              methods: [POST]
              limits: [{ policy: login, by: ip }]
            - path_prefix: /
              limits: [{ policy: api, by: api_key }]

        # Global limits across a fleet of sidecars, through Redis. Policies with `scope: global` need it:
        #   api: { algorithm: fixed_window, limit: 1000, period: 1m, scope: global, sync: leased, on_store_failure: local }
        # redis:
        #   url: "redis://127.0.0.1:6379/0"   # redis://[[user]:password@]host[:port][/db]; or SLUICE_REDIS_PASSWORD
        #   timeout: 50ms                     # the longest a decision waits for Redis, then on_store_failure decides
        #   key_prefix: "sluice:"             # prepended to every key Sluice writes
        #   max_leases: 100000                # buckets holding a lease at once

        # The admin API (GET/PUT /v1/policies, overrides, buckets) needs a key; without keys it answers 404.
        # `sluice keygen` prints a new key and its line here; only the key's SHA-256 is stored. Several keys
        # may be live at once: rotate by adding the new one, deploying, then removing the old.
        # admin:
        #   api_keys:
        #     - { name: ops, sha256: "<64 hex digits from sluice keygen>" }

        # Any other top-level key is an error.

        """

    /// ``embeddedDefaultYAML``, parsed once.
    private static let parsedEmbeddedDefault: SluiceConfiguration = {
        do {
            return try parse(yaml: embeddedDefaultYAML)
        } catch {
            preconditionFailure("the embedded default configuration is invalid: \(error)")
        }
    }()

    /// The configuration Sluice runs with when given no file: ``embeddedDefaultYAML``, parsed.
    public static var embeddedDefault: SluiceConfiguration { parsedEmbeddedDefault }
}
