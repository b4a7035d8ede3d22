import ArgumentParser

/// The `distill` command: policy distillation on a distributed actor-learner cluster.
@main
struct Distill: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distill",
        abstract: "Train student policies from teacher policies on a distributed actor-learner cluster.",
        discussion: """
            Implements the update rules of "Distilling Policy Distillation" (Czarnecki et al., 2019) \
            over ZeroMQ between real processes.

            Examples:
              distill probe --socket pull --bind 'tcp://*:5555' --count 10
              distill probe --socket push --connect tcp://learner-host:5555 --count 10
              distill bench codec
            """,
        version: distillVersion,
        subcommands: [Probe.self, Bench.self]
    )
}

/// The release of this build, printed by `distill --version`.
let distillVersion = "0.1.0"

/// `distill bench`: throughput and latency figures, always with a baseline measured in the same run.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print throughput and latency figures (benchmarks, not tests).",
        subcommands: [BenchCodec.self]
    )
}
