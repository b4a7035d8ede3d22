// swift-tools-version:6.0
// The `distill` package: policy distillation on a distributed actor-learner cluster.
// Module map and dependency direction: docs/architecture.md.
import PackageDescription

let package = Package(
    name: "distill",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "distill", targets: ["distill"]),
        .library(name: "DistillCore", targets: ["DistillCore"]),
        .library(name: "DistillWire", targets: ["DistillWire"]),
        .library(name: "DistillRuntime", targets: ["DistillRuntime"]),
        .library(name: "DistillExperiments", targets: ["DistillExperiments"]),
        .library(name: "DistillNN", targets: ["DistillNN"]),
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
        // OpenBLAS (Debian libopenblas-dev) as a Swift module: header and module map only.
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS"),
        // Networks: tensors, layers, a policy-value network, optimisers, safetensors (docs/networks.md).
        // -fno-math-errno lets sqrt vectorise in the optimisers (design §2: Adam 4-6x faster).
        .target(
            name: "DistillNN",
            dependencies: ["COpenBLAS"],
            swiftSettings: strictSwift + [.unsafeFlags(["-Xcc", "-fno-math-errno"])]
        ),
        // The science, no I/O: MDPs, environments, teachers, students (tables and networks), update
        // rules, exact expectations, the one learning step.
        .target(name: "DistillCore", dependencies: ["DistillNN"], swiftSettings: strictSwift),
        // The paper's experiments: runs, a multi-threaded scheduler, aggregation, findings.
        .target(name: "DistillExperiments", dependencies: ["DistillCore", "DistillNN"], swiftSettings: strictSwift),
        // Bytes on the wire: ZeroMQ sockets and the codec between Swift values and protobuf.
        .target(
            name: "DistillWire",
            dependencies: ["CZeroMQ", "CDistillProto"],
            swiftSettings: strictSwift
        ),
        // The roles' loops: teacher server, actor, learner, launcher, checkpoints.
        .target(
            name: "DistillRuntime",
            dependencies: ["DistillCore", "DistillWire", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "distill",
            dependencies: [
                "DistillCore",
                "DistillWire",
                "DistillRuntime",
                "DistillExperiments",
                "DistillNN",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        // Starting and watching real `distill` processes, for the multi-process tests.
        .target(name: "DistillTestSupport", path: "Tests/DistillTestSupport", swiftSettings: strictSwift),
        .testTarget(
            name: "DistillCoreTests", dependencies: ["DistillCore", "DistillNN"], swiftSettings: strictSwift),
        .testTarget(name: "DistillNNTests", dependencies: ["DistillNN"], swiftSettings: strictSwift),
        .testTarget(
            name: "DistillExperimentsTests", dependencies: ["DistillExperiments", "DistillCore"],
            swiftSettings: strictSwift),
        // The roles in-process: their cores with a fake clock, authorization, checkpoints (no binary).
        .testTarget(
            name: "DistillRuntimeTests", dependencies: ["DistillRuntime", "DistillTestSupport"],
            swiftSettings: strictSwift),
        // Real `distill` processes: the cluster, failures, attacks, the command line. Depends on the
        // executable so that `swift test` builds the binary these tests start.
        .testTarget(
            name: "DistillClusterTests", dependencies: ["DistillRuntime", "DistillTestSupport", "distill"],
            swiftSettings: strictSwift),
        // Depends on the executable so `swift test` builds the `distill` binary its multi-process tests start.
        .testTarget(
            name: "DistillWireTests", dependencies: ["DistillWire", "DistillTestSupport", "distill"],
            swiftSettings: strictSwift),
    ],
    swiftLanguageModes: [.v6]
)

var strictSwift: [SwiftSetting] {
    [.enableUpcomingFeature("ExistentialAny")]
}
