// swift-tools-version:6.1
import Foundation
import PackageDescription

// A fuzz build (`SLUICE_FUZZ=1`, made by scripts/fuzz): Sluice's own modules get libFuzzer's coverage and
// AddressSanitizer, and the fuzz targets link libFuzzer's driver (called from their own `main`, see FuzzSupport).
// The dependencies are built exactly as in a plain build, so a fuzz build in the same folder reuses them (CI fuzzes
// in `.build` after the tests, recompiling only Sluice); `swift build --sanitize=fuzzer` would instrument all of
// gRPC and BoringSSL too, which took 13 minutes on 2 cores.
let fuzzing = ProcessInfo.processInfo.environment["SLUICE_FUZZ"] == "1"
let fuzzSettings: [SwiftSetting] = fuzzing ? [.define("SLUICE_FUZZ"), .unsafeFlags(["-sanitize=fuzzer,address"])] : []
let fuzzLinkerSettings: [LinkerSetting] = fuzzing ? [.unsafeFlags(["-sanitize=fuzzer,address"])] : []

/// One list of settings for every target: Swift 6 mode plus the upcoming features that keep imports honest.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
] + fuzzSettings

// Sluice is built and tested on Linux only (Debian 12): it calls Glibc directly (pthreads for the Redis thread,
// madvise for huge pages, hiredis from Debian's libhiredis-dev). No other platform is declared or claimed.
let package = Package(
    name: "sluice",
    products: [
        .executable(name: "sluice", targets: ["sluice"]),
        .library(name: "SluiceCore", targets: ["SluiceCore"]),
        // Seeded randomness and key distributions, shared by the tests, the benchmarks and `sluice bench`.
        .library(name: "SluiceWorkload", targets: ["SluiceWorkload"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
    ],
    targets: [
        // The store's two-halves read of a bucket's state (C11-style atomics Swift's Synchronization lacks).
        .target(name: "CSluiceAtomics"),
        .target(name: "SluiceCore", dependencies: ["CSluiceAtomics"], swiftSettings: swiftSettings),
        .target(name: "SluiceWorkload", swiftSettings: swiftSettings),
        .target(
            name: "SluiceConfig",
            dependencies: ["SluiceCore", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SluiceServer",
            dependencies: [
                "SluiceCore",
                "SluiceConfig",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
        .systemLibrary(name: "CHiredis"),
        .target(
            name: "SluiceRedis",
            dependencies: ["CSluiceAtomics", "SluiceCore", "SluiceConfig", "CHiredis", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // Envoy's rate limit service over gRPC, and envoyproxy/ratelimit's descriptor matching. Never Redis.
        .target(
            name: "SluiceRLS",
            dependencies: [
                "SluiceCore",
                "SluiceConfig",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // The proto the generated code comes from (scripts/generate-rls); CI never runs protoc.
            exclude: ["Proto"],
            swiftSettings: swiftSettings
        ),
        // `sluice bench`: the load generator (SwiftNIO connections for the line protocol and HTTP, grpc-swift for gRPC).
        .target(
            name: "SluiceBench",
            dependencies: [
                "SluiceWorkload",
                "SluiceRLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
            ],
            // Optimized in debug builds too: in the tests a debug `sluice bench` measures a debug `sluice serve` on
            // two cores, and must cost less per request than the server it measures, or it measures itself.
            swiftSettings: swiftSettings + [.unsafeFlags(["-O"])]
        ),
        .executableTarget(
            name: "sluice",
            dependencies: [
                "SluiceCore",
                "SluiceConfig",
                "SluiceServer",
                "SluiceRedis",
                "SluiceRLS",
                "SluiceBench",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings,
            // Linked by lld with packed relative relocations (DT_RELR, glibc 2.36 and later: Debian 12): the static
            // binary's 144,854 address fix-ups take 28 KiB instead of 3.3 MiB, which the loader read at every start
            // and which stayed resident (README, "Start-up and memory").
            linkerSettings: [.unsafeFlags(["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"], .when(platforms: [.linux]))]
        ),
        // Fuzzing: one executable per input surface (scripts/fuzz builds them with libFuzzer; a plain build replays
        // a corpus, which the tests do). FuzzSupport holds their main and the invariant check; CFuzzDriver declares
        // libFuzzer's driver.
        .target(name: "CFuzzDriver", path: "Fuzz/CFuzzDriver"),
        .target(name: "FuzzSupport", dependencies: ["CFuzzDriver"], path: "Fuzz/FuzzSupport", swiftSettings: swiftSettings),
        .executableTarget(
            name: "FuzzRESP",
            dependencies: ["FuzzSupport", "SluiceServer", "SluiceConfig", "SluiceCore", .product(name: "NIOCore", package: "swift-nio"), .product(name: "Logging", package: "swift-log")],
            path: "Fuzz/FuzzRESP", swiftSettings: swiftSettings,
            linkerSettings: fuzzLinkerSettings
        ),
        .executableTarget(
            name: "FuzzHTTP",
            dependencies: [
                "FuzzSupport", "SluiceServer", "SluiceConfig", "SluiceCore", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Fuzz/FuzzHTTP", swiftSettings: swiftSettings,
            linkerSettings: fuzzLinkerSettings
        ),
        .executableTarget(
            name: "FuzzConfig", dependencies: ["FuzzSupport", "SluiceConfig", "SluiceCore"], path: "Fuzz/FuzzConfig", swiftSettings: swiftSettings,
            linkerSettings: fuzzLinkerSettings
        ),
        .executableTarget(
            name: "FuzzRLS",
            dependencies: ["FuzzSupport", "SluiceRLS", "SluiceConfig", "SluiceCore", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            path: "Fuzz/FuzzRLS", swiftSettings: swiftSettings,
            linkerSettings: fuzzLinkerSettings
        ),
        // What the test targets share: child processes (redis-server, gateways) stopped by PID, free loopback ports,
        // and the traits that skip tests whose outside programs are missing.
        .target(
            name: "SluiceTestSupport",
            dependencies: ["SluiceCore", "SluiceWorkload", .product(name: "Logging", package: "swift-log")],
            path: "Tests/SluiceTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "SluiceCoreTests", dependencies: ["SluiceCore", "SluiceWorkload", "SluiceTestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "SluiceRedisTests",
            dependencies: ["SluiceRedis", "SluiceCore", "SluiceConfig", "SluiceTestSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SluiceRLSTests",
            dependencies: [
                "SluiceRLS", "SluiceCore", "SluiceConfig", "SluiceTestSupport",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SluiceBenchTests",
            dependencies: [
                "SluiceBench", "SluiceTestSupport", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "SluiceConfigTests", dependencies: ["SluiceConfig", "SluiceCore", "SluiceWorkload", "SluiceTestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "SluiceServerTests",
            dependencies: [
                "SluiceServer",
                "SluiceCore",
                "SluiceConfig",
                "SluiceTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)

// Subsets of the package for the sanitizer runs (scripts/sanitize), each built in a folder of its own: a sanitizer
// instruments everything it builds, so building only what the chosen suites need saves minutes of CI.
//   SLUICE_PACKAGE_SUBSET=servers  the core, Redis and server suites and what they need (no gRPC, no executables;
//                                  the end-to-end tests among them run the plain build's `sluice`)
//   SLUICE_PACKAGE_SUBSET=redis    the hiredis wrapper's suite and what it needs
let subsets: [String: (targets: Set<String>, packages: Set<String>)] = [
    "servers": (
        [
            "CSluiceAtomics", "SluiceCore", "SluiceWorkload", "SluiceConfig", "CHiredis", "SluiceRedis", "SluiceServer", "SluiceTestSupport",
            "SluiceCoreTests", "SluiceRedisTests", "SluiceServerTests",
        ],
        [
            "swift-nio", "swift-log", "swift-service-lifecycle", "Yams", "swift-crypto", "swift-metrics", "swift-prometheus",
            "async-http-client",
        ]
    ),
    "redis": (["CSluiceAtomics", "SluiceCore", "SluiceWorkload", "SluiceConfig", "CHiredis", "SluiceRedis", "SluiceTestSupport", "SluiceRedisTests"], ["swift-log", "Yams"]),
]
if let name = ProcessInfo.processInfo.environment["SLUICE_PACKAGE_SUBSET"], let subset = subsets[name] {
    package.targets.removeAll { !subset.targets.contains($0.name) }
    package.products = []
    package.dependencies.removeAll { dependency in
        guard case .sourceControl(_, let location, _) = dependency.kind else { return false }
        return !subset.packages.contains { location.hasSuffix("/\($0).git") }
    }
}

