// swift-tools-version:6.1
import PackageDescription

// The root package is a path dependency, so its identity is the name of its folder, which is `main` in a
// developer's work tree but something else where CI clones it. Derive it instead of hard-coding it.
let rootPackage = String(Context.packageDirectory.split(separator: "/").dropLast().last ?? "sluice").lowercased()

/// The root package's settings: Swift 6 mode plus the upcoming features that keep imports honest.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "sluice-benchmarks",
    dependencies: [
        .package(path: ".."),
        // The default traits pull in a runtime interposer that is not mirrored here; malloc counting is enough.
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "CoreBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "SluiceCore", package: rootPackage),
                .product(name: "SluiceWorkload", package: rootPackage),
            ],
            path: "Benchmarks/CoreBenchmarks",
            swiftSettings: swiftSettings,
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        )
    ]
)
