// swift-tools-version:6.0
// The `distill` package: policy distillation on a distributed actor-learner cluster.
// Module map and dependency direction: README.md, "Architecture".
import PackageDescription

let package = Package(
    name: "distill",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "distill", targets: ["distill"]),
        .library(name: "DistillWire", targets: ["DistillWire"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // libzmq (Debian libzmq3-dev) as a Swift module: header and module map only.
        .systemLibrary(name: "CZeroMQ", path: "Sources/CZeroMQ"),
        // protoc-c output for proto/distill.proto; regenerate with scripts/generate-proto.
        .target(
            name: "CDistillProto",
            path: "Sources/CDistillProto",
            linkerSettings: [.linkedLibrary("protobuf-c")]
        ),
        // Bytes on the wire: ZeroMQ sockets and the codec between Swift values and protobuf.
        .target(
            name: "DistillWire",
            dependencies: ["CZeroMQ", "CDistillProto"],
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "distill",
            dependencies: [
                "DistillWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        // Depends on the executable so `swift test` builds the `distill` binary its multi-process tests start.
        .testTarget(name: "DistillWireTests", dependencies: ["DistillWire", "distill"], swiftSettings: strictSwift),
    ],
    swiftLanguageModes: [.v6]
)

var strictSwift: [SwiftSetting] {
    [.enableUpcomingFeature("ExistentialAny")]
}
