import DistillCore
import DistillNN
import Foundation
import Testing

/// Network teachers (FUNCTION-APPROXIMATION.md §4): their outputs against hand computations, the
/// table read from a network against the network itself, the round trip train → file → teacher,
/// and a clear error naming the file and the field for every bad file.
@Suite("network teachers")
struct NetworkTeacherTests {
    /// A temporary path, removed by the caller.
    static func temporaryFile(_ name: String = "teacher") -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("distill-\(name)-\(UUID()).safetensors")
    }

    /// A `linear` network on 2 inputs with 3 actions whose weights are set by hand:
    /// logits = W·x + b with W = [[1, 0], [0, 1], [−1, −1]], b = [0.5, 0, −0.5];
    /// value = [0.25, −1]·x + 0.1.
    static func handNetwork() throws -> PolicyValueNetwork {
        let network = try PolicyValueNetwork(
            architecture: NetworkArchitecture(parsing: "linear"), inputShape: [2], actionCount: 3, seed: 0)
        let values: [String: [Float]] = [
            "logits.weight": [1, 0, 0, 1, -1, -1], "logits.bias": [0.5, 0, -0.5],
            "value.weight": [0.25, -1], "value.bias": [0.1],
        ]
        for p in network.parameterTensors {
            network.parameters.replaceSubrange(p.offset..<(p.offset + p.count), with: values[p.name]!)
        }
        return network
    }

    static let handEnvironment = NetworkTeacher.TrainingEnvironment(
        name: "hand", observationShape: [2], actionCount: 3)

    static func expectClose(
        _ actual: [Double], _ expected: [Double], tolerance: Double, _ what: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(actual.count == expected.count, "\(what): \(actual.count) values, expected \(expected.count)")
        for (i, (a, e)) in zip(actual, expected).enumerated() {
            #expect(
                abs(a - e) <= tolerance, "\(what)[\(i)] = \(a), expected \(e)", sourceLocation: sourceLocation)
        }
    }

    /// At x = (1, 2) the logits are (1.5, 2, −3.5) and the value −1.65; at x = (0, 0) they are
    /// (0.5, 0, −0.5) and 0.1. With τ = 0.5: π ∝ (e³, e⁴, e⁻⁷) and (e¹, e⁰, e⁻¹).
    @Test func policyTeacherIsSoftmaxOfLogitsOverTemperatureWithTheValueHead() throws {
        let teacher = try NetworkTeacher(
            network: Self.handNetwork(), kind: .policy, temperature: 0.5, observation: "hand",
            environment: Self.handEnvironment)
        let out = teacher.outputs(observations: [1, 2, 0, 0], batch: 2)
        let z1 = exp(3.0) + exp(4.0) + exp(-7.0)
        let z2 = exp(1.0) + 1 + exp(-1.0)
        let expected = [exp(3.0) / z1, exp(4.0) / z1, exp(-7.0) / z1, exp(1.0) / z2, 1 / z2, exp(-1.0) / z2]
        Self.expectClose(out.probabilities, expected, tolerance: 1e-12, "π")
        Self.expectClose(out.logProbabilities, expected.map { log($0) }, tolerance: 1e-12, "log π")
        Self.expectClose(out.values, [-1.65, 0.1], tolerance: 1e-6, "V")
        #expect(out.actionValues == nil)
    }

    /// The logits head holds Q: with τ = 0.01 (Rusu's), Q = (1.5, 2, −3.5) gives
    /// π = (e⁻⁵⁰, 1, e⁻⁵⁵⁰) / (1 + e⁻⁵⁰ + e⁻⁵⁵⁰); V = Σ π Q; the value head (−1.65) is not read.
    @Test func qValuesTeacherIsSoftmaxOfQOverTemperatureWithExpectedValue() throws {
        let teacher = try NetworkTeacher(
            network: Self.handNetwork(), kind: .qValues, temperature: 0.01, observation: "hand",
            environment: Self.handEnvironment)
        let out = teacher.outputs(observations: [1, 2], batch: 1)
        let z = 1 + exp(-50.0) + exp(-550.0)
        let pi = [exp(-50.0) / z, 1 / z, exp(-550.0) / z]
        Self.expectClose(out.probabilities, pi, tolerance: 1e-15, "π")
        let q = [1.5, 2, -3.5]
        Self.expectClose(out.actionValues ?? [], q, tolerance: 1e-6, "Q")
        Self.expectClose(out.values, [zip(pi, q).map(*).reduce(0, +)], tolerance: 1e-6, "V = Σ π Q")
        // log π(0) = −50 − log z and log π(2) = −550 − log z are both below the floor log 1e−8.
        let floor = log(teacherLogProbabilityFloor)
        Self.expectClose(out.logProbabilities, [floor, -log(z), floor], tolerance: 1e-12, "log π")
        // At τ = 0.1: Q/τ = (15, 20, −35), log π = Q/τ − 20 − log(1 + e⁻⁵ + e⁻⁵⁵) from the log-softmax
        // (log π(2) = −55 − … is floored).
        let tenth = try teacher.withTemperature(0.1).outputs(observations: [1, 2], batch: 1)
        let logZ = log(1 + exp(-5.0) + exp(-55.0))
        Self.expectClose(tenth.logProbabilities, [-5 - logZ, -logZ, floor], tolerance: 1e-9, "log π at τ = 0.1")
        // At τ = 1 (the same Q): the plain softmax.
        let plain = try teacher.withTemperature(1).outputs(observations: [1, 2], batch: 1)
        let z1 = exp(1.5) + exp(2.0) + exp(-3.5)
        Self.expectClose(plain.probabilities, [exp(1.5) / z1, exp(2.0) / z1, exp(-3.5) / z1], tolerance: 1e-12, "π")
    }

    /// Huge logits neither overflow nor give NaN: the log-softmax subtracts the maximum.
    @Test func logProbabilitiesAreStableForHugeLogits() throws {
        let network = try Self.handNetwork()
        let teacher = try NetworkTeacher(
            network: network, kind: .policy, temperature: 1, observation: "hand", environment: Self.handEnvironment)
        // x = (1000, −1000): logits (1000.5, −1000, −0.5).
        let out = teacher.outputs(observations: [1000, -1000], batch: 1)
        #expect(out.probabilities.allSatisfy { $0.isFinite })
        #expect(out.logProbabilities.allSatisfy { $0.isFinite })
        Self.expectClose(out.probabilities, [1, 0, exp(-1001.0)], tolerance: 1e-12, "π")
        Self.expectClose(
            out.logProbabilities, [0, log(teacherLogProbabilityFloor), log(teacherLogProbabilityFloor)],
            tolerance: 1e-9, "log π")
    }

    static func smallGridworld(seed: UInt64 = 3) throws -> Environment {
        var config = GridworldConfiguration()
        config.size = 5
        config.terminalProbability = 0.05
        return try Environments.gridworld(config, seed: seed)
    }

    /// A network with every parameter uniform in [−0.5, 0.5], so every output depends on every layer.
    static func randomNetwork(_ architecture: String, inputShape: [Int], actions: Int) throws -> PolicyValueNetwork {
        let network = try PolicyValueNetwork(
            architecture: NetworkArchitecture(parsing: architecture), inputShape: inputShape, actionCount: actions,
            seed: 5)
        var generator = WeightGenerator(seed: 6)
        network.parameters = (0..<network.parameterCount).map { _ in Float.random(in: -0.5...0.5, using: &generator) }
        return network
    }

    /// The table at state s is the network run on state s's observation alone (batch 1), the image
    /// transposed to [H, W, C] by this test's own index formula, then softmax / Σ π Q by hand.
    @Test(arguments: [NetworkTeacher.Kind.policy, .qValues])
    func tableIsTheNetworkAtEveryStateObservation(kind: NetworkTeacher.Kind) throws {
        let environment = try Self.smallGridworld()
        let observed = try TabularObservedEnvironment(environment, observation: .image)
        let (c, h, w) = (7, 5, 5)
        #expect(observed.description.observation.shape == [c, h, w])
        let network = try Self.randomNetwork("conv:3x3/mlp:8", inputShape: [h, w, c], actions: 4)
        let url = Self.temporaryFile()
        defer { try? FileManager.default.removeItem(at: url) }
        try NetworkTeacher.save(
            network: network, kind: kind, temperature: 0.7, observation: "image",
            environment: .init(environment, observation: .image), to: url)
        let table = try NetworkTeacher.load(from: url).table(for: environment, observation: .image)
        #expect(table.stateCount == environment.mdp.stateCount)
        for s in 0..<environment.mdp.stateCount {
            let chw = observed.observation(ofState: s)
            var hwc = [Float](repeating: 0, count: chw.count)
            for ch in 0..<c {
                for y in 0..<h {
                    for x in 0..<w { hwc[(y * w + x) * c + ch] = chw[ch * h * w + y * w + x] }
                }
            }
            let (logits, heads) = network.forward(hwc, batch: 1)
            let z = logits.map { Double($0) }
            let e = z.map { exp($0 / 0.7) }
            let pi = e.map { $0 / e.reduce(0, +) }
            Self.expectClose(table.probabilities(state: s), pi, tolerance: 1e-6, "π(·|\(s))")
            let value = kind == .policy ? Double(heads[0]) : zip(pi, z).map(*).reduce(0, +)
            #expect(abs(table.values[s] - value) <= 1e-5, "V(\(s)) = \(table.values[s]), expected \(value)")
            if kind == .qValues {
                Self.expectClose(Array(table.actionValues![(s * 4)..<(s * 4 + 4)]), z, tolerance: 1e-5, "Q(\(s))")
            } else {
                #expect(table.actionValues == nil)
            }
        }
    }

    /// Train a network student, write it as `distill train --out` does, read it back as a teacher:
    /// its table is the trained student's policy at every state.
    @Test func trainedStudentFileIsATeacherWithTheStudentsPolicy() throws {
        let environment = try Self.smallGridworld()
        var config = TrainingConfiguration()
        config.environment.gridworld.size = 5
        config.teacher.kind = .uniform
        config.method.method = .actorCritic
        config.method.optimiser = .adam
        config.method.learningRate = 0.01
        config.method.episodesPerIteration = 4
        config.method.maxEpisodeSteps = 100
        config.iterations = 15
        config.evaluateEvery = 0
        config.student = StudentSpec(architecture: "mlp:16", observation: "one-hot", seed: 2)
        let student = try config.student.buildNetwork(for: environment, method: config.method)
        var trainer = try StudentTrainer(
            config, environment: environment, teacher: try Teachers.uniform(environment.mdp), student: student)
        for _ in 0..<config.iterations { _ = try trainer.runIteration() }
        let url = Self.temporaryFile("student")
        defer { try? FileManager.default.removeItem(at: url) }
        try trainer.saveStudentAsTeacher(to: url)

        let teacher = try NetworkTeacher.load(from: url)
        #expect(teacher.kind == .policy)
        #expect(teacher.temperature == 1)
        #expect(teacher.observation == "one-hot")
        #expect(teacher.environment.identity == environment.identity)
        #expect(teacher.metadata["run.method"] == "actor-critic")
        #expect(teacher.metadata["run.iterations"] == "15")
        let table = try teacher.table(for: environment, observation: .oneHot)
        let policy = trainer.state.student.stateTable()
        Self.expectClose(table.probabilities, policy, tolerance: 1e-12, "teacher π vs student π_θ")
        // The student learned something: its policy is no longer the near-uniform initial one.
        #expect(policy.map { abs($0 - 0.25) }.max()! > 0.01)

        // The table --teacher-file embeds: the same policy, V_π by exact policy evaluation.
        let description = try teacher.tableDescription(for: environment)
        Self.expectClose(description.policy.flatMap { $0 }, policy, tolerance: 1e-12, "embedded π")
        Self.expectClose(
            description.values, try PolicyEvaluation.values(environment.mdp, policy: policy), tolerance: 1e-9,
            "embedded V_π")
    }

    // MARK: Bad input

    /// Runs `body`, expecting a DistillError whose message holds every fragment.
    static func expectError(
        _ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
    ) {
        do {
            try body()
            Issue.record("expected an error containing \(fragments)", sourceLocation: sourceLocation)
        } catch let error as DistillError {
            for fragment in fragments {
                #expect(
                    error.message.contains(fragment), "message \"\(error.message)\" lacks \"\(fragment)\"",
                    sourceLocation: sourceLocation)
            }
        } catch {
            Issue.record("expected a DistillError, got \(error)", sourceLocation: sourceLocation)
        }
    }

    /// A valid teacher file for the small gridworld of seed 3 observed one-hot.
    static func validFile() throws -> (url: URL, environment: Environment) {
        let environment = try smallGridworld()
        let network = try randomNetwork("mlp:4", inputShape: [environment.mdp.stateCount], actions: 4)
        let url = temporaryFile()
        try NetworkTeacher.save(
            network: network, kind: .policy, temperature: 1, observation: "one-hot",
            environment: .init(environment, observation: .oneHot), to: url)
        return (url, environment)
    }

    @Test func aMultiHeadNetworkIsRefusedAsATeacher() throws {
        let environment = try Self.smallGridworld()
        let network = try Self.randomNetwork("mlp:4/heads:3", inputShape: [environment.mdp.stateCount], actions: 4)
        let url = Self.temporaryFile()
        defer { try? FileManager.default.removeItem(at: url) }
        try NetworkTeacher.save(
            network: network, kind: .policy, temperature: 1, observation: "one-hot",
            environment: .init(environment, observation: .oneHot), to: url)
        Self.expectError([url.path, "mlp:4/heads:3", "3 heads", "must have one head"]) {
            _ = try NetworkTeacher.load(from: url)
        }
    }

    @Test func teacherForAnotherEnvironmentOrObservationIsRefused() throws {
        let (url, environment) = try Self.validFile()
        defer { try? FileManager.default.removeItem(at: url) }
        let teacher = try NetworkTeacher.load(from: url)
        _ = try teacher.table(for: environment, observation: .oneHot)
        // Seed 4: the same size, so the same observation shape; the identity tells them apart.
        Self.expectError([url.path, "teacher.environment.identity", "gridworld(seed=3)", "gridworld(seed=4)"]) {
            _ = try teacher.table(for: try Self.smallGridworld(seed: 4), observation: .oneHot)
        }
        Self.expectError([url.path, "teacher.observation", "'one-hot'", "'image'"]) {
            _ = try teacher.table(for: environment, observation: .image)
        }
        Self.expectError([url.path, "teacher.observation", "CartPole-v1"]) {
            try teacher.check(against: CartPole().description, observation: "CartPole-v1")
        }
        Self.expectError([url.path, "teacher.environment.action_count", "CartPole-v1"]) {
            try teacher.check(against: CartPole().description, observation: "one-hot")
        }
        // A file written without the identity (e.g. by Python) is still told apart by its description name.
        let observed = try TabularObservedEnvironment(try Self.smallGridworld(seed: 4), observation: .oneHot)
        Self.expectError([url.path, "teacher.environment.name", "gridworld(seed=4)"]) {
            try teacher.check(against: observed.description, observation: "one-hot")
        }
    }

    /// The file's bytes with its JSON header replaced by `edit(header)`.
    static func editedHeader(_ bytes: [UInt8], _ edit: (inout [String: Any]) -> Void) throws -> [UInt8] {
        var length = 0
        for i in 0..<8 { length |= Int(bytes[i]) << (8 * i) }
        var header = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + length)])) as! [String: Any]
        edit(&header)
        let json = [UInt8](try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        var out: [UInt8] = []
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        return out + json + bytes[(8 + length)...]
    }

    static func editMetadata(_ edit: @escaping (inout [String: String]) -> Void) -> (inout [String: Any]) -> Void {
        { header in
            var metadata = header["__metadata__"] as! [String: String]
            edit(&metadata)
            header["__metadata__"] = metadata
        }
    }

    @Test func malformedTeacherFilesGiveErrorsNamingTheFileAndField() throws {
        let (url, _) = try Self.validFile()
        defer { try? FileManager.default.removeItem(at: url) }
        let good = [UInt8](try Data(contentsOf: url))
        let bad = Self.temporaryFile("bad")
        defer { try? FileManager.default.removeItem(at: bad) }
        func expect(_ bytes: [UInt8], _ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation) {
            do { try Data(bytes).write(to: bad) } catch { Issue.record("cannot write \(bad.path): \(error)") }
            Self.expectError([bad.path] + fragments, sourceLocation: sourceLocation) {
                _ = try NetworkTeacher.load(from: bad)
            }
        }
        // The safetensors layer: header length, offsets, dtype, truncated data.
        var wrongLength = good
        wrongLength[0] = 0xff
        wrongLength[1] = 0xff
        expect(wrongLength, ["header length", "larger than"])
        expect(
            try Self.editedHeader(good) { header in
                var entry = header["logits.bias"] as! [String: Any]
                entry["data_offsets"] = [0, 1_000_000]
                header["logits.bias"] = entry
            }, ["logits.bias", "data_offsets", "run past the end"])
        expect(
            try Self.editedHeader(good) { header in
                var entry = header["value.bias"] as! [String: Any]
                entry["dtype"] = "F16"
                header["value.bias"] = entry
            }, ["value.bias", "F16 is not supported"])
        expect(Array(good.dropLast(12)), ["truncated"])
        expect([], ["too short"])
        // The network layer: an unknown architecture string, a missing tensor.
        expect(
            try Self.editedHeader(good, Self.editMetadata { $0["distill.architecture"] = "mlp:four" }),
            ["distill.architecture", "mlp:four"])
        expect(
            try Self.editedHeader(good, Self.editMetadata { $0["distill.architecture"] = "transformer:8" }),
            ["distill.architecture", "transformer:8"])
        // The teacher layer: missing, unknown and malformed keys.
        expect(
            try Self.editedHeader(
                good, Self.editMetadata { $0 = $0.filter { !$0.key.hasPrefix("teacher.") } }),
            ["without teacher metadata", "teacher.format"])
        for key in [
            "teacher.format", "teacher.kind", "teacher.temperature", "teacher.observation", "teacher.environment.name",
            "teacher.environment.observation_shape", "teacher.environment.action_count",
        ] {
            expect(try Self.editedHeader(good, Self.editMetadata { $0[key] = nil }), ["has no \(key)"])
        }
        expect(
            try Self.editedHeader(good, Self.editMetadata { $0["teacher.colour"] = "blue" }),
            ["teacher.colour", "not a teacher key"])
        expect(
            try Self.editedHeader(good, Self.editMetadata { $0["teacher.kind"] = "advantage" }),
            ["teacher.kind", "\"advantage\"", "policy or q-values"])
        expect(
            try Self.editedHeader(good, Self.editMetadata { $0["teacher.format"] = "network-teacher/9" }),
            ["teacher.format", "network-teacher/9"])
        for temperature in ["0", "-1", "hot", "inf", "nan"] {
            expect(
                try Self.editedHeader(good, Self.editMetadata { $0["teacher.temperature"] = temperature }),
                ["teacher.temperature", temperature])
        }
        expect(
            try Self.editedHeader(good, Self.editMetadata { $0["teacher.environment.observation_shape"] = "26,x" }),
            ["teacher.environment.observation_shape", "26,x"])
        expect(
            try Self.editedHeader(good, Self.editMetadata { $0["teacher.environment.observation_shape"] = "7,5,5" }),
            ["teacher.environment.observation_shape", "do not fit"])
        expect(
            try Self.editedHeader(good, Self.editMetadata { $0["teacher.environment.action_count"] = "5" }),
            ["teacher.environment.action_count", "5", "4 logits"])
        // A file that is not there.
        Self.expectError(["/nonexistent/teacher.safetensors", "cannot read"]) {
            _ = try NetworkTeacher.load(from: URL(fileURLWithPath: "/nonexistent/teacher.safetensors"))
        }
    }

    /// Every prefix of a teacher file is an error, never a crash.
    @Test func everyTruncationOfATeacherFileIsAnError() throws {
        let (url, _) = try Self.validFile()
        defer { try? FileManager.default.removeItem(at: url) }
        let good = [UInt8](try Data(contentsOf: url))
        let cut = Self.temporaryFile("cut")
        defer { try? FileManager.default.removeItem(at: cut) }
        for length in stride(from: 0, to: good.count, by: 7) {
            try Data(good[0..<length]).write(to: cut)
            #expect(throws: DistillError.self, "prefix of \(length) bytes") { _ = try NetworkTeacher.load(from: cut) }
        }
    }

    @Test func savingRefusesReservedKeysAndNetworksThatDoNotFit() throws {
        let network = try Self.handNetwork()
        let url = Self.temporaryFile()
        defer { try? FileManager.default.removeItem(at: url) }
        Self.expectError(["teacher.kind", "reserved"]) {
            try NetworkTeacher.save(
                network: network, kind: .policy, temperature: 1, observation: "hand",
                environment: Self.handEnvironment, to: url, metadata: ["teacher.kind": "q-values"])
        }
        Self.expectError(["distill.format", "reserved"]) {
            try NetworkTeacher.save(
                network: network, kind: .policy, temperature: 1, observation: "hand",
                environment: Self.handEnvironment, to: url, metadata: ["distill.format": "x"])
        }
        Self.expectError(["teacher.environment.action_count", "3 logits"]) {
            try NetworkTeacher.save(
                network: network, kind: .policy, temperature: 1, observation: "hand",
                environment: .init(name: "hand", observationShape: [2], actionCount: 4), to: url)
        }
        Self.expectError(["teacher.temperature"]) {
            try NetworkTeacher.save(
                network: network, kind: .qValues, temperature: 0, observation: "hand",
                environment: Self.handEnvironment, to: url)
        }
        #expect(!FileManager.default.fileExists(atPath: url.path))
    }

    /// A teacher for an environment without a tabular MDP (the lead's batched loop): it names the
    /// environment's own observation, runs on batches of its observations, and is refused elsewhere.
    @Test func classicControlTeacherRunsOnItsOwnObservationsOnly() throws {
        let cartPole = CartPole().description
        let network = try Self.randomNetwork("mlp:8/tanh", inputShape: [4], actions: 2)
        let url = Self.temporaryFile("cartpole")
        defer { try? FileManager.default.removeItem(at: url) }
        try NetworkTeacher.save(
            network: network, kind: .qValues, temperature: NetworkTeacher.Kind.qValues.defaultTemperature,
            observation: cartPole.name, environment: .init(cartPole), to: url, metadata: ["trained_by": "test"])
        let teacher = try NetworkTeacher.load(from: url)
        #expect(teacher.temperature == 0.01)
        #expect(teacher.environmentName == "CartPole-v1")
        #expect(teacher.environment.identity == nil)
        #expect(teacher.metadata == ["trained_by": "test"])
        try teacher.check(against: cartPole, observation: "CartPole-v1")
        let observations: [Float] = [0.01, -0.2, 0.03, 0.1, -0.04, 0.5, -0.1, -0.3, 0, 0, 0, 0]
        let out = teacher.outputs(observations: observations, batch: 3)
        let (logits, _) = network.forward(observations, batch: 3)
        #expect(out.actionValues == logits.map(Double.init))
        for b in 0..<3 {
            let q = logits[(2 * b)..<(2 * b + 2)].map(Double.init)
            // Two actions: π(0) = 1 / (1 + e^((Q1 − Q0)/τ)).
            let p0 = 1 / (1 + exp((q[1] - q[0]) / 0.01))
            Self.expectClose(Array(out.probabilities[(2 * b)..<(2 * b + 2)]), [p0, 1 - p0], tolerance: 1e-12, "π")
            #expect(abs(out.values[b] - (p0 * q[0] + (1 - p0) * q[1])) <= 1e-9)
        }
        Self.expectError([url.path, "teacher.environment.action_count", "Acrobot-v1"]) {
            try teacher.check(against: Acrobot().description, observation: "CartPole-v1")
        }
        Self.expectError([url.path, "teacher.observation", "not one of a tabular environment"]) {
            _ = try teacher.tableDescription(for: try Self.smallGridworld())
        }
    }

    @Test func environmentIdentityTellsSeedsAndKnobsApart() throws {
        let a = try Self.smallGridworld(seed: 3)
        #expect(a.identity == (try Self.smallGridworld(seed: 3)).identity)
        #expect(a.identity.hasPrefix("gridworld(seed=3) [26 states, 4 actions, mdp "))
        #expect(a.identity != (try Self.smallGridworld(seed: 4)).identity)
        var config = GridworldConfiguration()
        config.size = 5
        config.terminalProbability = 0.05
        config.slip = 0.2
        let slipped = try Environments.gridworld(config, seed: 3)
        #expect(slipped.name == a.name)
        #expect(slipped.identity != a.identity)
    }
}
