import Foundation
import SluiceConfig
import Testing

/// The `events` section: webhooks, their secrets, types, retry schedule and timeout.
struct EventsConfigurationTests {
    @Test func webhooksParseWithTheirDefaults() throws {
        let secretFile = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-webhook-secret-\(getpid())").path
        try "whsec_from_file\n".write(toFile: secretFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: secretFile) }
        let configuration = try SluiceConfiguration.parse(
            yaml: onePolicy + """

                events:
                  threshold: 0.9
                  webhooks:
                    - url: "https://hooks.example.com/sluice"
                      secret: "whsec_abc"
                    - url: "http://127.0.0.1:9000/in"
                      secret_file: \(secretFile)
                      types: [store.down, store.up]
                      retry: [1s, 2s]
                      timeout: 250ms
                """
        )
        let events = configuration.events
        #expect(events.threshold == 0.9)
        #expect(events.webhooks.count == 2)
        #expect(events.webhooks[0].secret == "whsec_abc")
        #expect(events.webhooks[0].types == Set(SluiceConfiguration.Events.EventType.allCases))
        #expect(events.webhooks[0].retryNanoseconds == [60, 300, 1800, 7200].map { $0 * 1_000_000_000 })
        #expect(events.webhooks[0].timeoutNanoseconds == 5_000_000_000)
        #expect(events.webhooks[1].secret == "whsec_from_file", "the file's first line, without its newline")
        #expect(events.webhooks[1].types == [.storeDown, .storeUp])
        #expect(events.webhooks[1].retryNanoseconds == [1_000_000_000, 2_000_000_000])
        #expect(events.webhooks[1].timeoutNanoseconds == 250_000_000)
        #expect(!"\(events.webhooks[0])".contains("whsec"), "a webhook's description never shows its secret")
        // No section: threshold 0.8, no webhooks.
        #expect(try SluiceConfiguration.parse(yaml: onePolicy).events == SluiceConfiguration.Events())
    }

    @Test(arguments: [
        ("events:\n  threshold: 1.5", "events.threshold", "between 0 and 1"),
        ("events:\n  threshold: often", "events.threshold", "between 0 and 1"),
        ("events:\n  webhooks:\n    - { url: \"ftp://x.example/a\", secret: s }", "events.webhooks[0].url", "http:// or https://"),
        ("events:\n  webhooks:\n    - { url: \"https://x.example/a\" }", "events.webhooks[0].secret", "missing"),
        ("events:\n  webhooks:\n    - { url: \"https://x.example/a\", secret: \"\" }", "events.webhooks[0].secret", "non-empty"),
        ("events:\n  webhooks:\n    - { url: \"https://x.example/a\", secret: s, secret_file: /x }", "events.webhooks[0].secret_file", "not both"),
        ("events:\n  webhooks:\n    - { url: \"https://x.example/a\", secret_file: /nonexistent/secret }", "events.webhooks[0].secret_file", "cannot read"),
        ("events:\n  webhooks:\n    - { url: \"https://x.example/a\", secret: s, types: [limit.exceded] }", "events.webhooks[0].types[0]", "must be one of limit.exceeded"),
        ("events:\n  webhooks:\n    - { url: \"https://x.example/a\", secret: s, types: [] }", "events.webhooks[0].types", "at least one"),
        ("events:\n  webhooks:\n    - { url: \"https://x.example/a\", secret: s, retry: [0s] }", "events.webhooks[0].retry[0]", "from 1ms to 1d"),
        ("events:\n  webhooks:\n    - { url: \"https://x.example/a\", secret: s, timeout: 10m }", "events.webhooks[0].timeout", "5m"),
        ("events:\n  webhooks:\n    - { url: \"https://x.example/a\", secret: s, header: x }", "events.webhooks[0].header", "unknown field"),
        ("events:\n  hooks: []", "events.hooks", "unknown field"),
    ])
    func eventsMistakes(section: String, path: String, message: String) throws {
        let error = try #require(parseError(onePolicy + "\n" + section + "\n"))
        #expect(error.path == path, "\(error)")
        #expect(error.message.contains(message), "\(error)")
    }
}

/// The connection guards of the `limits` section.
struct ConnectionLimitsConfigurationTests {
    @Test func guardsParseWithTheirDefaults() throws {
        let defaults = try SluiceConfiguration.parse(yaml: onePolicy).limits
        #expect(defaults.maxConnections == 10_000 && defaults.idleTimeoutNanoseconds == 300_000_000_000)
        #expect(defaults.requestTimeoutNanoseconds == 10_000_000_000)
        let set = try SluiceConfiguration.parse(yaml: onePolicy + "\nlimits: { max_connections: 50, idle_timeout: 0, request_timeout: 2s }\n").limits
        #expect(set.maxConnections == 50 && set.idleTimeoutNanoseconds == 0 && set.requestTimeoutNanoseconds == 2_000_000_000)
    }

    @Test(arguments: [
        ("limits: { max_connections: 0 }", "limits.max_connections", "positive"),
        ("limits: { max_connections: 2000000 }", "limits.max_connections", "from 1 to 1000000"),
        ("limits: { idle_timeout: 50ms }", "limits.idle_timeout", "0 (never) or a duration from 100ms to 1d"),
        ("limits: { idle_timeout: soon }", "limits.idle_timeout", "must be a duration"),
        ("limits: { request_timeout: 2h }", "limits.request_timeout", "from 100ms to 1h"),
    ])
    func guardMistakes(section: String, path: String, message: String) throws {
        let error = try #require(parseError(onePolicy + "\n" + section + "\n"))
        #expect(error.path == path, "\(error)")
        #expect(error.message.contains(message), "\(error)")
    }
}
