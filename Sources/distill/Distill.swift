import ArgumentParser
import DistillRuntime
import Foundation

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
              distill cluster                                   # the main job, on defaults
              distill cluster --env chain --teacher adversarial --method teacher-v-reward --steps 200000
              distill train --env gridworld --method n-distill+R --iterations 300
              distill analyze gradient-field --env random --method on-policy-distill
              distill control status --learner tcp://127.0.0.1:5559
              distill probe --socket pull --bind 'tcp://*:5555' --count 10
              distill bench core

            Every flag of a subcommand can also come from the environment: --bind-control is
            DISTILL_BIND_CONTROL, --learner is DISTILL_LEARNER (a flag on the command line wins;
            an unknown DISTILL_ variable is warned about).
            """,
        version: distillVersion,
        subcommands: [
            ClusterCommand.self, TeacherCommand.self, LearnerCommand.self, ActorCommand.self, ControlCommand.self,
            KeysCommand.self, Train.self, Export.self, Eval.self, Analyze.self, ExperimentCommand.self,
            RecommendCommand.self, PlotCommand.self,
            Probe.self, Bench.self, EnvCommand.self, NNCommand.self,
        ]
    )

    /// Parses the command line, with `DISTILL_*` environment variables as defaults for flags,
    /// and runs the command; errors name the failing subcommand's usage (CommandLineDriver).
    static func main() {
        CommandLineDriver.run(
            Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment)
    }
}

/// The release of this build, printed by `distill --version`.
let distillVersion = BuildInfo.version

/// `distill bench`: throughput and latency figures, always with a baseline measured in the same run.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print throughput and latency figures (benchmarks, not tests).",
        subcommands: [BenchCore.self, BenchCodec.self, BenchCluster.self, BenchExperiment.self, BenchNN.self]
    )
}
