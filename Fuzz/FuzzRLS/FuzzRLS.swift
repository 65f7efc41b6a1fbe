import FuzzSupport
import SluiceConfig
import SluiceCore
import SluiceRLS
import SwiftProtobuf

/// Envoy's rate limit service: the envoyproxy/ratelimit configuration loader and the handling of a request,
/// fed arbitrary bytes. The input is a domain file (YAML), a zero byte, then a serialized `RateLimitRequest`; an
/// empty file, or one that does not load, is replaced by a fixed one, so requests are exercised either way.
///
/// Invariants: a refused file or request says why; an answer has one status per descriptor, is over the limit
/// exactly when one of them is, and no status claims more remaining than its limit.
enum FuzzRLS {
    static let fallback = """
        domain: fuzz
        descriptors:
          - key: user
            rate_limit: { unit: minute, requests_per_unit: 3, name: per-user }
            descriptors:
              - key: path
                value: /pay
                rate_limit: { unit: hour, requests_per_unit: 1 }
          - key: internal
            rate_limit: { unlimited: true }
          - key: blocked
            rate_limit: { unit: second, requests_per_unit: 0 }
        """
    static let fallbackMatcher: DescriptorMatcher = {
        do {
            return try DescriptorMatcher(domains: [RLSDomain.parse(yaml: fallback, file: "fuzz.yaml")])
        } catch {
            fatalError("the fallback file loads: \(error)")
        }
    }()
    static let limiter = RateLimiter(store: BucketStore(maximumKeys: 4_096))
    static let clock = ManualClock()

    static func run(_ data: UnsafeRawBufferPointer) {
        var input = FuzzInput(data)
        let file = input.take(until: 0)
        let matcher: DescriptorMatcher
        if file.isEmpty {
            matcher = fallbackMatcher  // no file: the requests alone, at full speed
        } else {
            do {
                matcher = try DescriptorMatcher(domains: [try RLSDomain.parse(yaml: String(decoding: file, as: UTF8.self), file: "fuzz.yaml")])
            } catch let error as ConfigurationError {
                Fuzz.require(!error.message.isEmpty, "a refused file says why")
                matcher = fallbackMatcher
            } catch {
                Fuzz.require(!"\(error)".isEmpty, "a refused domain says why")
                matcher = fallbackMatcher
            }
        }
        guard let message = try? Envoy_Service_Ratelimit_V3_RateLimitRequest(serializedBytes: input.rest()) else { return }
        let request = RateLimitService.request(message)
        let decider = RLSDecider(limiter: limiter, clock: clock, settings: SluiceConfiguration.RLS())
        let result: Result<RLSAnswer, RLSRequestError> = Fuzz.wait {
            do throws(RLSRequestError) { return .success(try await decider.decide(request, matcher: matcher)) } catch { return .failure(error) }
        }
        switch result {
        case .failure(let error):
            Fuzz.require(!error.message.isEmpty, "a refused request says why")
        case .success(let answer):
            Fuzz.require(answer.statuses.count == request.descriptors.count, "one status per descriptor")
            Fuzz.require(answer.isOverLimit == answer.statuses.contains(where: \.isOverLimit), "over the limit exactly when a descriptor is")
            for status in answer.statuses {
                guard let limit = status.currentLimit, status.remaining != .max else { continue }
                Fuzz.require(status.remaining <= limit.requestsPerUnit, "remaining \(status.remaining) within \(limit.requestsPerUnit)")
                Fuzz.require(!status.isOverLimit || status.remaining == 0, "nothing remains over the limit")
            }
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRLS(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzRLS.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@main
enum Main {
    static func main() { Fuzz.main(fuzzRLS) }
}
