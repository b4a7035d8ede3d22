// swift-tools-version:6.0
// Coverage-guided fuzz targets (libFuzzer) for the `distill` package, in a package of their own
// so that the ordinary `swift build` and `swift test` never compile them. Build and run them with
// scripts/fuzz (which passes `-sanitize=fuzzer,address`); what they check: docs/fuzzing.md.
import PackageDescription

/// A fuzz target: an executable whose main hands its arguments to libFuzzer.
func fuzzTarget(_ name: String, _ dependencies: [Target.Dependency]) -> Target {
    .executableTarget(
        name: name,
        dependencies: ["FuzzSupport"] + dependencies,
        path: "Sources/\(name)",
        swiftSettings: [.enableUpcomingFeature("ExistentialAny")],
        // gold fails on the sanitizer runtime's objects (an internal error in its DWARF reader); lld links them.
        linkerSettings: [.unsafeFlags(["-use-ld=lld"])]
    )
}

let package = Package(
    name: "distill-fuzz",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "fuzz-codec", targets: ["FuzzCodec"]),
        .executable(name: "fuzz-unroll", targets: ["FuzzUnroll"]),
        .executable(name: "fuzz-json-input", targets: ["FuzzJSONInput"]),
        .executable(name: "fuzz-checkpoint", targets: ["FuzzCheckpoint"]),
    ],
    dependencies: [
        .package(name: "distill", path: "../..")
    ],
    targets: [
        // libFuzzer's LLVMFuzzerRunDriver, declared for Swift (the library itself comes with -sanitize=fuzzer).
        .target(name: "CFuzzerDriver", path: "Sources/CFuzzerDriver"),
        // The common main, the seed writer and the small run the targets learn in.
        .target(
            name: "FuzzSupport",
            dependencies: [
                "CFuzzerDriver",
                .product(name: "DistillCore", package: "distill"),
                .product(name: "DistillWire", package: "distill"),
                .product(name: "DistillRuntime", package: "distill"),
            ],
            path: "Sources/FuzzSupport",
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
        ),
        fuzzTarget("FuzzCodec", [.product(name: "DistillWire", package: "distill")]),
        fuzzTarget(
            "FuzzUnroll",
            [
                .product(name: "DistillCore", package: "distill"),
                .product(name: "DistillWire", package: "distill"),
                .product(name: "DistillRuntime", package: "distill"),
            ]),
        fuzzTarget("FuzzJSONInput", [.product(name: "DistillCore", package: "distill")]),
        fuzzTarget(
            "FuzzCheckpoint",
            [
                .product(name: "DistillCore", package: "distill"),
                .product(name: "DistillWire", package: "distill"),
                .product(name: "DistillRuntime", package: "distill"),
            ]),
    ],
    swiftLanguageModes: [.v6]
)
