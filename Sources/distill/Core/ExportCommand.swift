import ArgumentParser
import DistillCore
import DistillRuntime
import DistillWire
import Foundation

/// `distill export`: a run's student as a network file.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a run's student as a network file (safetensors) for `distill eval`, --teacher-file or Python.",
        discussion: """
            RUN is the output directory of `distill train --out` (its student.safetensors: a network \
            student as trained; a tabular student as the linear network on one-hot states whose logits \
            are its table) or of `distill cluster` / `distill learner --out` (the newest checkpoint's \
            table, written the same way). The file is a network teacher file (docs/networks.md): \
            `distill eval --student FILE` evaluates it, `--teacher-file FILE` distils it, \
            safetensors.numpy.load_file reads it.

            Examples:
              distill export runs/train-demo --out student.safetensors
              distill export runs/cluster-20261206-101500 --out student.safetensors
            """)

    @Argument(help: ArgumentHelp("The run directory.", valueName: "run"))
    var directory: String

    @Option(help: ArgumentHelp("The network file to write.", valueName: "file"))
    var out: String

    func run() throws {
        let run = URL(fileURLWithPath: directory)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: run.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("\(directory): no such run directory")
        }
        let destination = URL(fileURLWithPath: out)
        let student = run.appendingPathComponent("student.safetensors")
        let checkpoints = run.appendingPathComponent("checkpoints")
        if FileManager.default.fileExists(atPath: student.path) {
            // Loading validates it: a corrupt file is refused here, not by its user.
            let teacher = try validating { try NetworkTeacher.load(from: student) }
            try copy(student, to: destination)
            FileHandle.standardError.write(
                Data(
                    "export: \(destination.path): \(teacher.network.architecture) student of \(teacher.environmentName)\n"
                        .utf8))
        } else if FileManager.default.fileExists(atPath: checkpoints.path) {
            try exportCheckpoint(checkpoints, to: destination)
        } else if FileManager.default.fileExists(atPath: run.appendingPathComponent("config.json").path) {
            throw ValidationError(
                "\(directory) has no student.safetensors and no checkpoints/ (a `distill train` run from before students "
                    + "were kept, or one still running): train it again with "
                    + "`distill train --config \(run.appendingPathComponent("config.json").path) --out NEW_DIR`")
        } else {
            throw ValidationError(
                "\(directory) is not a run directory (neither student.safetensors of `distill train --out` nor "
                    + "checkpoints/ of `distill cluster`)")
        }
    }

    /// The newest checkpoint of a cluster run: its logits table on the run's environment.
    private func exportCheckpoint(_ checkpoints: URL, to destination: URL) throws {
        let store = try CheckpointStore(directory: checkpoints)
        guard let (checkpoint, file, _) = try store.latest() else {
            throw ValidationError("\(checkpoints.path) holds no checkpoint yet: wait for the learner's first one")
        }
        let configuration: RunConfiguration
        do {
            configuration = try JSONDecoder().decode(
                RunConfiguration.self, from: Data(checkpoint.configurationJSON.utf8))
        } catch {
            throw ValidationError("\(file.path): its configuration is not a run configuration (\(error))")
        }
        if !configuration.student.isTabular {
            try exportNetwork(checkpoint, file: file, configuration: configuration, to: destination)
            return
        }
        try checkMemory(configuration.environment)
        let environment = try validating { try configuration.environment.build() }
        let initial = Trainer.initialStudent(for: environment)
        guard checkpoint.shape == [initial.rowCount, initial.actionCount],
            checkpoint.parameters.count == initial.rowCount * initial.actionCount
        else {
            throw ValidationError(
                "\(file.path): a table of shape \(checkpoint.shape) for \(environment.name), whose student is "
                    + "[\(initial.rowCount), \(initial.actionCount)]: not a tabular student of this environment")
        }
        let parameters = StudentParameters(
            rowOfState: initial.rowOfState, rowCount: initial.rowCount, actionCount: initial.actionCount,
            logits: checkpoint.parameters)
        try validating {
            try TabularStudentNetwork.save(
                parameters, environment: environment, to: destination,
                metadata: [
                    "run.environment": environment.name, "run.method": configuration.method.method.rawValue,
                    "run.version": "\(checkpoint.version)", "run.environment_steps": "\(checkpoint.envSteps)",
                    "run.checkpoint": file.lastPathComponent,
                ])
        }
        FileHandle.standardError.write(
            Data(
                ("export: \(destination.path): the tabular student of \(environment.name) at version "
                    + "\(checkpoint.version) (\(checkpoint.envSteps) env steps), as a linear network on one-hot states\n")
                    .utf8))
    }

    /// A network run's checkpoint: its network (the run's architecture, the checkpoint's float32
    /// parameters) as a policy teacher file of the run's environment.
    private func exportNetwork(
        _ checkpoint: Checkpoint, file: URL, configuration: RunConfiguration, to destination: URL
    ) throws {
        if configuration.tasks != nil {
            throw ValidationError(
                "\(file.path): a multi-task run's student reads each gridworld with its task's label, which no "
                    + "teacher file describes; export is for runs of one environment (the checkpoint holds the "
                    + "network's \(checkpoint.parameters.count) parameters)")
        }
        if configuration.environment.kind.isTabular {
            try exportGridworldNetwork(checkpoint, file: file, configuration: configuration, to: destination)
            return
        }
        let description: EnvironmentDescription
        if configuration.environment.kind == .remote {
            // The run's environment server describes it (it must be up).
            description = try remoteEnvironment(configuration.environment).description
        } else {
            var observed = ObservedEnvironmentSpec()
            observed.kind = try validating {
                try ObservedEnvironmentSpec.Kind.named(configuration.environment.kind.rawValue)
            }
            description = try validating { try observed.build() }.description
        }
        let student = try validating {
            try configuration.student.buildNetwork(for: description, method: configuration.method)
        }
        let network = student.network
        network.parameters = try networkParameters(
            checkpoint, file: file, configuration: configuration, student: student)
        try validating {
            try NetworkTeacher.save(
                network: network, kind: .policy, temperature: NetworkTeacher.Kind.policy.defaultTemperature,
                observation: description.name, environment: NetworkTeacher.TrainingEnvironment(description),
                to: destination,
                metadata: [
                    "run.environment": description.name, "run.method": configuration.method.method.rawValue,
                    "run.version": "\(checkpoint.version)", "run.environment_steps": "\(checkpoint.envSteps)",
                    "run.checkpoint": file.lastPathComponent,
                ])
        }
        FileHandle.standardError.write(
            Data(
                ("export: \(destination.path): the \(configuration.student.architecture) student of \(description.name) "
                    + "at version \(checkpoint.version) (\(checkpoint.envSteps) env steps)\n").utf8))
    }

    /// A cluster run's network on a tabular environment (a gridworld observed as `observation`):
    /// the same teacher file `distill train --student ARCH --out DIR` writes.
    private func exportGridworldNetwork(
        _ checkpoint: Checkpoint, file: URL, configuration: RunConfiguration, to destination: URL
    ) throws {
        try checkMemory(configuration.environment)
        let environment = try validating { try configuration.environment.build() }
        let student = try validating {
            try configuration.student.buildNetwork(for: environment, method: configuration.method)
        }
        let parameters = try networkParameters(checkpoint, file: file, configuration: configuration, student: student)
        student.network.parameters = parameters
        let observation = try validating { try ObservationKind(parsing: configuration.student.observation) }
        try validating {
            try NetworkTeacher.save(
                network: student.network, kind: .policy, temperature: NetworkTeacher.Kind.policy.defaultTemperature,
                observation: observation.description,
                environment: NetworkTeacher.TrainingEnvironment(environment, observation: observation), to: destination,
                metadata: [
                    "run.student": configuration.student.architecture, "run.observation": observation.description,
                    "run.environment": environment.name, "run.method": configuration.method.method.rawValue,
                    "run.version": "\(checkpoint.version)", "run.environment_steps": "\(checkpoint.envSteps)",
                    "run.checkpoint": file.lastPathComponent,
                ])
        }
        FileHandle.standardError.write(
            Data(
                ("export: \(destination.path): the \(configuration.student.architecture) student of \(environment.name) "
                    + "observed as \(observation) at version \(checkpoint.version) (\(checkpoint.envSteps) env steps)\n")
                    .utf8))
    }

    /// The checkpoint's parameters as the float32 parameters of `student`'s network, or why not.
    private func networkParameters(
        _ checkpoint: Checkpoint, file: URL, configuration: RunConfiguration, student: NetworkStudent
    ) throws -> [Float] {
        let network = student.network
        let parameters = checkpoint.parameters.map(Float.init)
        guard checkpoint.shape == [network.parameterCount], parameters.count == network.parameterCount,
            zip(parameters, checkpoint.parameters).allSatisfy({ Double($0) == $1 && $0.isFinite })
        else {
            throw ValidationError(
                "\(file.path): \(checkpoint.parameters.count) parameters of shape \(checkpoint.shape), not the "
                    + "\(network.parameterCount) float32 parameters of this run's \(configuration.student.architecture) student"
            )
        }
        return parameters
    }

    private func copy(_ source: URL, to destination: URL) throws {
        guard source.standardizedFileURL != destination.standardizedFileURL else { return }
        do {
            if FileManager.default.fileExists(atPath: destination.path) {
                try FileManager.default.removeItem(at: destination)
            }
            try FileManager.default.copyItem(at: source, to: destination)
        } catch {
            throw ValidationError("--out: cannot write \(destination.path): \(error.localizedDescription)")
        }
    }
}
