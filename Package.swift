// swift-tools-version: 6.0
// Temporary manifest for the `core` branch; the final Package.swift is owned by the runtime branch.
import PackageDescription

let package = Package(
    name: "distill",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "DistillCore", targets: ["DistillCore"]),
        .executable(name: "distill", targets: ["distill"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
    ],
    targets: [
        .target(name: "DistillCore"),
        .executableTarget(
            name: "distill",
            dependencies: [
                "DistillCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "DistillCoreTests", dependencies: ["DistillCore"]),
    ],
    swiftLanguageModes: [.v6]
)
