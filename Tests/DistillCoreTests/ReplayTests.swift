import DistillCore
import DistillNN
import Foundation
import Testing

/// Rusu's setting (Rusu et al. 2016): the teacher's gameplay in a replay memory, the student
/// trained on uniformly sampled minibatches with KL(τ), NLL or MSE. The ring's order, the sampling
/// distribution and the minibatch gradient are checked against their definitions; learning against
/// a hand-written CartPole controller's return.
@Suite("replay memory and supervised minibatches")
struct ReplayTests {
    /// A memory of `capacity` rows of one number and two actions.
    static func memory(capacity: Int, actionValues: Bool = false) throws -> ReplayMemory {
        try ReplayMemory(capacity: capacity, observationSize: 1, actionCount: 2, hasActionValues: actionValues)
    }

    /// Appends a row whose observation and value are `x`.
    static func append(_ x: Double, to memory: inout ReplayMemory) {
        memory.append(
            observation: [Float(x)], probabilities: [0.5, 0.5], logProbabilities: [-0.7, -0.7], value: x,
            actionValues: memory.hasActionValues ? [x, -x] : nil)
    }

    @Test func theRingKeepsTheLastCapacityRowsOverwritingTheOldestFirst() throws {
        var memory = try Self.memory(capacity: 3, actionValues: true)
        for x in 0..<2 { Self.append(Double(x), to: &memory) }
        #expect(memory.count == 2 && memory.nextSlot == 2)
        for x in 2..<5 { Self.append(Double(x), to: &memory) }
        // Rows 0…4 into 3 slots: row 3 replaced row 0 in slot 0, row 4 replaced row 1 in slot 1.
        #expect(memory.count == 3 && memory.appended == 5 && memory.nextSlot == 2)
        #expect((0..<3).map { memory.teacherValue($0) } == [3, 4, 2])
        #expect((0..<3).map { Array(memory.observation($0)) } == [[3], [4], [2]])
        #expect((0..<3).map { memory.teacherActionValue($0, 1) } == [-3, -4, -2])
        // Storage is the capacity's, allocated once.
        #expect(memory.observations.count == 3)
    }

    /// 100 000 draws over 10 rows: Pearson's χ² with 9 degrees of freedom stays below its 99.9 %
    /// quantile (27.88); a memory holding 4 rows of a capacity of 10 draws only those 4.
    @Test func samplingIsUniformOverTheRowsStored() throws {
        var full = try Self.memory(capacity: 10)
        for x in 0..<25 { Self.append(Double(x), to: &full) }
        var rng = Xoshiro256StarStar(seed: 42)
        let draws = 100_000
        var counts = [Int](repeating: 0, count: 10)
        for _ in 0..<(draws / 50) {
            for slot in full.sample(50, using: &rng) { counts[slot] += 1 }
        }
        let expected = Double(draws) / 10
        let chiSquare = counts.reduce(0) { $0 + (Double($1) - expected) * (Double($1) - expected) / expected }
        #expect(chiSquare < 27.88, "χ² = \(chiSquare), counts \(counts)")

        var partial = try Self.memory(capacity: 10)
        for x in 0..<4 { Self.append(Double(x), to: &partial) }
        let slots = partial.sample(4_000, using: &rng)
        #expect(Set(slots) == Set(0..<4))
    }

    @Test func badMemoriesAndReplaySettingsAreRefusedWithTheirReason() throws {
        #expect(throws: DistillError.self) { try Self.memory(capacity: 0) }
        // 2^40 rows of 2,800 floats: refused before allocating, naming the option to lower.
        do {
            _ = try ReplayMemory(capacity: 1 << 40, observationSize: 2_800, actionCount: 4, hasActionValues: true)
            Issue.record("a memory larger than the machine was allocated")
        } catch let error as DistillError {
            #expect(error.message.contains("--replay-size"), "\(error.message)")
        }
        var teacherDistill = MethodSpec()
        teacherDistill.method = .teacherDistillKL
        func message(_ spec: ReplaySpec, _ method: MethodSpec) -> String {
            do {
                try spec.check(method)
                return ""
            } catch let error as DistillError {
                return error.message
            } catch {
                return "\(error)"
            }
        }
        #expect(message(ReplaySpec(capacity: 100), teacherDistill).isEmpty)
        #expect(message(ReplaySpec(capacity: 0), teacherDistill).contains("--replay-size"))
        #expect(message(ReplaySpec(capacity: 10, batchSize: 11), teacherDistill).contains("--replay-batch"))
        for ratio in [0, -1, Double.nan, .infinity] {
            #expect(
                message(ReplaySpec(capacity: 100, updatesPerStep: ratio), teacherDistill).contains("--replay-ratio"))
        }
        // Every rule with a score term (or a gate) is refused for that reason; only the supervised
        // teacher-distill losses pass, and only under the teacher's control.
        for method in Method.allCases {
            var spec = MethodSpec()
            spec.method = method
            let text = message(ReplaySpec(capacity: 100), spec)
            switch method {
            case .teacherDistill, .teacherDistillKL, .teacherDistillNLL, .teacherDistillMSE:
                #expect(text.isEmpty, "\(method.rawValue): \(text)")
            case .onPolicyDistill:
                #expect(text.contains("teacher controls"), "\(method.rawValue): \(text)")
            default:
                #expect(text.contains("score-function"), "\(method.rawValue): \(text)")
            }
        }
        teacherDistill.control = .student
        #expect(message(ReplaySpec(capacity: 100), teacherDistill).contains("--control student"))
    }

    /// `−(1/B) Σ_k ℓ_k` by the losses' definitions (METHODS.md §2), written out here.
    static func meanLoss(
        _ loss: DistillationLoss, logits: [Float], q: [[Double]], p: [[Double]], slots: [Int], actions: Int
    ) -> Double {
        var total = 0.0
        for (k, slot) in slots.enumerated() {
            let z = (0..<actions).map { Double(logits[k * actions + $0]) }
            let m = z.max()!
            let logZ = m + Foundation.log(z.reduce(0) { $0 + Foundation.exp($1 - m) })
            let logPi = z.map { $0 - logZ }
            switch loss {
            case .rusuKL(let tau):
                let scaled = q[slot].map { $0 / tau }
                let sm = scaled.max()!
                let logTarget = scaled.map {
                    $0 - sm - Foundation.log(scaled.reduce(0) { $0 + Foundation.exp($1 - sm) })
                }
                for a in 0..<actions { total += Foundation.exp(logTarget[a]) * (logTarget[a] - logPi[a]) }
            case .rusuNLL:
                total -= logPi[q[slot].indices.max { q[slot][$0] < q[slot][$1] }!]
            case .rusuMSE:
                for a in 0..<actions { total += (q[slot][a] - z[a]) * (q[slot][a] - z[a]) }
            case .crossEntropy:
                for a in 0..<actions { total -= p[slot][a] * logPi[a] }
            default:
                preconditionFailure("not a supervised loss")
            }
        }
        return total / Double(slots.count)
    }

    /// The minibatch's gradient (with a repeated row) equals central finite differences of
    /// `w × mean loss` over every parameter of a small tanh network, for each supervised loss.
    @Test(arguments: [
        DistillationLoss.rusuKL(temperature: 0.3), .rusuNLL, .rusuMSE, .crossEntropy,
    ])
    func theMinibatchGradientIsTheGradientOfTheMeanLoss(_ loss: DistillationLoss) throws {
        let actions = 3
        let rows = 6
        var memory = try ReplayMemory(capacity: rows, observationSize: 4, actionCount: actions, hasActionValues: true)
        var rng = Xoshiro256StarStar(seed: 5)
        var q: [[Double]] = []
        var p: [[Double]] = []
        for _ in 0..<rows {
            let observation = (0..<4).map { _ in Float(2 * rng.nextUnit() - 1) }
            let values = (0..<actions).map { _ in 2 * rng.nextUnit() - 1 }
            let e = values.map { Foundation.exp($0) }
            let probabilities = e.map { $0 / e.reduce(0, +) }
            q.append(values)
            p.append(probabilities)
            memory.append(
                observation: observation[...], probabilities: probabilities[...],
                logProbabilities: probabilities.map { Foundation.log($0) }[...], value: 0, actionValues: values[...])
        }
        let network = try PolicyValueNetwork(
            architecture: NetworkArchitecture(parsing: "mlp:5/tanh"), inputShape: [4], actionCount: actions, seed: 9)
        // Larger initial logits than the default head's, so that the losses are not flat.
        for i in network.parameters.indices { network.parameters[i] *= 20 }
        var student = try NetworkStudent(
            network: network, optimizer: NetworkOptimizer(.sgd, learningRate: 0.1, parameterCount: 1),
            observations: [], critic: .valueHead(target: .monteCarlo, weight: 1))
        let slots = [0, 2, 2, 5]
        let weight = 0.7
        student.accumulateSupervised(memory, slots: slots, loss: loss, weight: weight)
        #expect(student.pendingEpisodes == 1)
        let gradient = network.gradients
        let batch = memory.observations(slots)
        func objective() -> Double {
            weight
                * Self.meanLoss(
                    loss, logits: network.forward(batch, batch: slots.count).logits, q: q, p: p, slots: slots,
                    actions: actions)
        }
        let epsilon: Float = 1e-2
        var worst = 0.0
        for i in network.parameters.indices {
            let saved = network.parameters[i]
            network.parameters[i] = saved + epsilon
            let up = objective()
            network.parameters[i] = saved - epsilon
            let down = objective()
            network.parameters[i] = saved
            let numeric = (up - down) / Double(2 * epsilon)
            let error = abs(Double(gradient[i]) - numeric) / max(1, abs(numeric))
            worst = max(worst, error)
            #expect(error < 1e-4, "\(loss) parameter \(i): backprop \(gradient[i]), finite differences \(numeric)")
        }
        // The value head is no part of the supervised loss.
        let value = try #require(network.parameterTensors.first { $0.name == "value.weight" })
        #expect(gradient[value.offset..<(value.offset + value.count)].allSatisfy { $0 == 0 })
        #expect(gradient.contains { $0 != 0 })
        print("\(loss): worst relative error \(worst)")
    }

    /// A CartPole teacher written by hand: `Q(o, right) = −Q(o, left) = 10 w·o` with
    /// `w = (0.1, 0.5, 1, 1)` over (x, ẋ, θ, θ̇), read as Q-values (π = softmax(Q/0.01), nearly
    /// greedy): it pushes towards where the pole falls and keeps the pole up for the 500 steps.
    static func handTeacher() throws -> (NetworkTeacher, URL) {
        let cartPole = CartPole(maxEpisodeSteps: CartPole.timeLimit)
        let network = try PolicyValueNetwork(
            architecture: NetworkArchitecture(parsing: "linear"), inputShape: [4], actionCount: 2, seed: 0)
        network.parameters = [Float](repeating: 0, count: network.parameterCount)
        let weights = try #require(network.parameterTensors.first { $0.name == "logits.weight" })
        for (j, w) in [Float(0.1), 0.5, 1, 1].enumerated() {
            network.parameters[weights.offset + j] = -10 * w
            network.parameters[weights.offset + 4 + j] = 10 * w
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("distill-hand-\(UUID()).safetensors")
        try NetworkTeacher.save(
            network: network, kind: .qValues, temperature: NetworkTeacher.Kind.qValues.defaultTemperature,
            observation: cartPole.description.name, environment: .init(cartPole.description), to: file, metadata: [:])
        return (try NetworkTeacher.load(from: file), file)
    }

    /// Rusu's setting end to end: the hand teacher plays CartPole into a memory of 20 000 rows and
    /// a 16-unit student learns from 1 500 minibatches of 32 (KL, τ = 0.01; one update per 4
    /// steps): it keeps ≥ 95 % of the teacher's mean return over 50 episodes, from below 25 %.
    @Test func aStudentTrainedFromReplayKeepsMostOfAHandTeachersReturnOnCartPole() throws {
        let (teacher, file) = try Self.handTeacher()
        defer { try? FileManager.default.removeItem(at: file) }
        let cartPole = CartPole(maxEpisodeSteps: CartPole.timeLimit)
        let teacherReturn = ObservedTrainer<CartPole>.evaluate(
            prototype: cartPole, episodes: 50, seed: 8,
            policy: { teacher.outputs(observations: $0, batch: $1).probabilities })
        #expect(teacherReturn.mean > 450, "the hand controller balances: \(teacherReturn.mean)")
        var method = MethodSpec()
        method.method = .teacherDistillKL
        method.optimiser = .adam
        method.learningRate = 0.01
        let student = try StudentSpec(architecture: "mlp:16", seed: 4).buildNetwork(
            for: cartPole.description, method: method)
        let replay = ReplaySpec(capacity: 20_000, batchSize: 32, updatesPerStep: 0.25)
        var trainer = try ObservedTrainer(
            method: method, environments: [CartPole](repeating: cartPole, count: 8), student: student,
            teacher: teacher, seed: 4, replay: replay)
        let untrained = trainer.evaluate(episodes: 50, seed: 9)
        var last: ObservedIterationResult?
        for _ in 0..<1_500 { last = trainer.runIteration() }
        let trained = trainer.evaluate(episodes: 50, seed: 9)
        print(
            "replay KL on CartPole: \(untrained.mean) → \(trained.mean) ± \(trained.halfWidth) (hand teacher \(teacherReturn.mean)), "
                + "\(trainer.totalEnvironmentSteps) env steps, memory \(trainer.memory!.count) rows")
        // 1 500 updates at 4 env steps each (8 environments: 2 updates per batched step), after the
        // first minibatch's 32 rows.
        #expect(trainer.totalEnvironmentSteps == 6_000 + 32)
        #expect(trainer.memory!.count == 6_032)
        #expect(last?.iteration == 1_500)
        #expect(untrained.mean < 0.25 * teacherReturn.mean)
        #expect(trained.mean >= 0.95 * teacherReturn.mean)
    }

    /// On a tabular environment (exact evaluation): the optimal teacher's episodes on the gridworld
    /// fill the memory, iterations count one minibatch each and the environment steps the ratio
    /// asks for, and an mlp:32 student on one-hot states reaches ≥ 95 % of the teacher's exact return.
    @Test func aNetworkStudentTrainedFromReplayOnTheGridworldReachesTheTeachersExactReturn() throws {
        var config = TrainingConfiguration()
        config.environment.kind = .gridworld
        config.environment.seed = 3
        config.teacher.kind = .optimal
        config.method.method = .teacherDistill
        config.method.optimiser = .adam
        config.method.learningRate = 0.01
        config.iterations = 600
        config.evaluateEvery = 600
        config.seed = 3
        config.student = StudentSpec(architecture: "mlp:32", observation: "one-hot", seed: 3)
        config.replay = ReplaySpec(capacity: 5_000, batchSize: 32, updatesPerStep: 0.5)
        let environment = try config.environment.build()
        let teacher = try config.teacher.build(for: environment)
        let student = try config.student.buildNetwork(for: environment, method: config.method)
        var trainer = try StudentTrainer(config, environment: environment, teacher: teacher, student: student)
        var steps = 0
        var last: IterationRecord?
        for i in 1...config.iterations {
            let r = try trainer.runIteration()
            #expect(r.iteration == i)
            steps += r.environmentSteps
            last = r
        }
        let memory = try #require(trainer.memory)
        // Updates start at the 32nd stored step and take 2 steps each; whole episodes are played,
        // so the last one may leave a little credit over.
        #expect(steps == trainer.totalEnvironmentSteps && steps == memory.appended)
        #expect(steps >= 31 + 2 * 600 && steps < 31 + 2 * 600 + environment.mdp.stateCount * 10)
        let teacherReturn = try PolicyEvaluation.expectedReturn(environment.mdp, policy: teacher.probabilities)
        let reached = try #require(last?.exact?.studentReturn)
        print("replay on the gridworld: \(reached) of the teacher's \(teacherReturn) after \(steps) steps")
        #expect(reached >= 0.95 * teacherReturn)
    }

    /// Replay is refused where it cannot work: a policy teacher for a Q-value loss, a rule with a
    /// score-function term, and (on a tabular environment) a tabular student.
    @Test func replayTrainersRefuseWhatTheyCannotLearnFrom() throws {
        let (teacher, file) = try Self.handTeacher()
        defer { try? FileManager.default.removeItem(at: file) }
        let cartPole = CartPole(maxEpisodeSteps: CartPole.timeLimit)
        var method = MethodSpec()
        method.method = .nDistill
        let student = try StudentSpec(architecture: "mlp:4", seed: 0).buildNetwork(
            for: cartPole.description, method: method)
        #expect(throws: DistillError.self) {
            try ObservedTrainer(
                method: method, environments: [cartPole], student: student, teacher: teacher, seed: 0,
                replay: ReplaySpec(capacity: 64))
        }
        var config = TrainingConfiguration()
        config.environment.kind = .chain
        config.teacher.kind = .optimal
        config.method.method = .teacherDistill
        config.replay = ReplaySpec(capacity: 64)
        let environment = try config.environment.build()
        do {
            _ = try StudentTrainer(
                config, environment: environment, teacher: try config.teacher.build(for: environment))
            Issue.record("a tabular student was given a replay memory")
        } catch let error as DistillError {
            #expect(error.message.contains("network student"), "\(error.message)")
        }
        // Further kickstarting teachers would be left out of the memory: refused.
        config.student = StudentSpec(architecture: "mlp:4", observation: "one-hot")
        let optimal = try config.teacher.build(for: environment)
        do {
            _ = try StudentTrainer(
                config, environment: environment, teacher: optimal, kickstartTeachers: [optimal],
                student: try config.student.buildNetwork(for: environment, method: config.method))
            Issue.record("kickstarting teachers were given a replay memory")
        } catch let error as DistillError {
            #expect(error.message.contains("--kickstart-teacher"), "\(error.message)")
        }
    }
}
