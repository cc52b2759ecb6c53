// swift-tools-version:6.2
// Micro-benchmarks of the gateway's hot-path pieces (ordo-one/benchmark), kept in their own package so
// that the main package's `swift build` and `swift test` never build the benchmark dependency.
//
//   cd Benchmarks && swift package --allow-writing-to-package-directory benchmark --target GatewayBenchmarks
//   cd Benchmarks && swift package --allow-writing-to-package-directory benchmark --target ConsoleBenchmarks
import PackageDescription

import struct Foundation.URL

// A path dependency is identified by its directory's name, which is whatever the clone is called.
let gatewayPackage = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "redfire-gateway-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
    ],
    targets: [
        .executableTarget(
            name: "GatewayBenchmarks",
            dependencies: [
                .product(name: "RedFireGateway", package: gatewayPackage),
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            path: "Benchmarks/GatewayBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "ConsoleBenchmarks",
            dependencies: [
                .product(name: "RedFireDashboard", package: gatewayPackage),
                .product(name: "RedFireGateway", package: gatewayPackage),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/ConsoleBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
