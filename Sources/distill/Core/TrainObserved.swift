import ArgumentParser
import DistillCore
import DistillNN
import DistillRuntime
import Foundation

/// The prototype of a `remote` environment spec: connects to its server and reads its description.
func remoteEnvironment(_ spec: EnvironmentSpec) throws -> RemoteEnvironment {
    guard let endpoint = spec.remote else {
        throw ValidationError("a remote environment needs its server: --env remote:tcp://HOST:PORT")
    }
    if let d = spec.discount, !(d >= 0 && d <= 1) { throw ValidationError("discount must be in [0, 1], got \(d)") }
    do {
        return try RemoteEnvironment(endpoint: endpoint, discount: spec.discount ?? 0.99)
    } catch let error as RuntimeError {
        throw ValidationError(error.description)
    }
}

extension Train {
    /// The CSV columns of a run on an environment without a tabular MDP: the tabular run's
    /// (the exact ones stay empty) and the sampled evaluation with its 95 % interval.
    static let observedHeader = header + ",evaluation_return,evaluation_return_ci95"

    /// `distill train` on cartpole, acrobot or mountaincar: a network student, N environments
    /// stepped together, sampled evaluations every --evaluate-every iterations, and the network
    /// written to OUT/student.safetensors at each evaluation and at the end.
    func trainObserved(_ config: TrainingConfiguration) throws {
        if config.environment.kind == .remote {
            let prototype = try remoteEnvironment(config.environment)
            try trainObserved(config, prototype: prototype, checkEnvironments: prototype.client.checkHealthy)
            return
        }
        var spec = ObservedEnvironmentSpec()
        spec.kind = try validating { try ObservedEnvironmentSpec.Kind.named(config.environment.kind.rawValue) }
        let environment = try validating { try spec.build() }
        try trainObserved(config, prototype: environment, checkEnvironments: {})
    }

    /// `checkEnvironments` throws when stepping the environments failed (a remote server that
    /// went away); called after every iteration and evaluation.
    private func trainObserved<Env: ObservedEnvironment>(
        _ config: TrainingConfiguration, prototype: Env, checkEnvironments: () throws -> Void
    ) throws {
        let description = prototype.description
        let student = try validating { try config.student.buildNetwork(for: description, method: config.method) }
        var teacher: NetworkTeacher?
        if config.teacher.kind == .file, let path = config.teacher.path {
            teacher = try validating { try NetworkTeacher.load(from: URL(fileURLWithPath: path)) }
        }
        var trainer = try validating {
            try ObservedTrainer(
                method: config.method, environments: [Env](repeating: prototype, count: config.environments),
                student: student, teacher: teacher, seed: config.seed, replay: config.replay)
        }
        let sink = try openMetrics(config, header: Self.observedHeader)
        defer { sink.close() }
        let file = out.map { URL(fileURLWithPath: $0).appendingPathComponent("student.safetensors") }
        // The student is written as a teacher file (kind policy, τ 1), so that it can be distilled.
        func save() throws {
            guard let file else { return }
            var metadata = [
                "run.student": config.student.architecture, "run.environment": description.name,
                "run.method": config.method.method.rawValue, "run.iterations": "\(trainer.iteration)",
                "run.environment_steps": "\(trainer.totalEnvironmentSteps)",
            ]
            if let last = lastEvaluation {
                metadata["run.evaluation_return"] = "\(last.mean)"
                metadata["run.evaluation_return_ci95"] = "\(last.halfWidth)"
            }
            try validating {
                try NetworkTeacher.save(
                    network: trainer.state.student.network, kind: .policy,
                    temperature: NetworkTeacher.Kind.policy.defaultTemperature, observation: description.name,
                    environment: NetworkTeacher.TrainingEnvironment(description), to: file, metadata: metadata)
            }
        }
        var lastEvaluation: ReturnEstimate95?
        let started = Date()
        var lastProgress = started
        if !quiet {
            let taught = teacher.map { ", teacher \($0.identity)" } ?? ""
            let replayText =
                config.replay.map {
                    " from a replay memory of \($0.capacity) rows (minibatches of \($0.batchSize), \($0.updatesPerStep) updates per environment step)"
                } ?? ""
            FileHandle.standardError.write(
                Data(
                    ("train: \(description.name)\(taught), \(config.environments) environments, student \(config.student.architecture) "
                        + "(\(student.network.parameterCount) parameters), \(config.method.method.rawValue), "
                        + "\(config.iterations) iterations\(replayText)\n").utf8))
        }
        func f(_ x: Double?) -> String { x.map { "\($0)" } ?? "" }
        for _ in 0..<config.iterations {
            let r = trainer.runIteration()
            try checkEnvironments()
            var evaluation: ReturnEstimate95?
            if config.evaluateEvery > 0 && (r.iteration % config.evaluateEvery == 0 || r.iteration == config.iterations)
            {
                evaluation = trainer.evaluate(
                    episodes: config.evaluationEpisodes, seed: config.seed &+ 0x9E37_79B9 &+ UInt64(r.iteration))
                try checkEnvironments()
                lastEvaluation = evaluation
                try save()
            }
            let elapsed = Date().timeIntervalSince(started)
            let row = [
                "\(r.iteration)", "\(r.environmentSteps)", "\(r.episodes)", "\(r.totalEnvironmentSteps)",
                f(r.sampledReturn), f(r.sampledCrossEntropy), "", "", "", "", "\(r.lossWeight)", f(r.beta),
                "\(r.updateNorm)", String(format: "%.3f", elapsed), f(evaluation?.mean), f(evaluation?.halfWidth),
            ]
            sink.write(row, step: r.iteration)
            if !quiet && (Date().timeIntervalSince(lastProgress) >= 1 || r.iteration == config.iterations) {
                lastProgress = Date()
                let evaluated =
                    lastEvaluation.map {
                        String(
                            format: ", evaluation return %.1f ± %.1f (%d episodes)", $0.mean, $0.halfWidth, $0.episodes)
                    } ?? ""
                FileHandle.standardError.write(
                    Data(
                        ("train: iteration \(r.iteration)/\(config.iterations), \(r.totalEnvironmentSteps) env steps, "
                            + (r.sampledReturn.map { String(format: "sampled return %.1f", $0) } ?? "no episode ended")
                            + evaluated
                            + String(format: ", %.1f s\n", elapsed)).utf8))
            }
        }
        try save()
        if let file, !quiet { FileHandle.standardError.write(Data("train: wrote \(file.path)\n".utf8)) }
    }
}
