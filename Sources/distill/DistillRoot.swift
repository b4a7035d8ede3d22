import ArgumentParser

/// Temporary root command of the `core` branch; the runtime branch owns the final one.
@main
struct Distill: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distill",
        abstract: "Policy distillation (Czarnecki et al. 2019): analysis, training and benchmarks.",
        subcommands: [Analyze.self, Train.self, Bench.self])
}
