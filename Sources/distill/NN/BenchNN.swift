import ArgumentParser
import DistillCore
import DistillNN
import Foundation

/// `distill bench nn`: the network costs of a learner and a student, against the GEMM rate of this machine.
struct BenchNN: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nn",
        abstract: "Measure GEMM GFLOP/s, learner updates/s and student forwards/s on one core.",
        discussion: """
            One BLAS thread, in this process. First the ceiling: single-threaded cblas_sgemm at each \
            shape the learner's update uses (the same row-major transposes). Then the learner's \
            update (forward + backward + Adam) of an MLP input→256→256→actions at --batch, in \
            samples/s and as a share of the ceiling (the update's flops at the GEMM rates measured \
            for its shapes); Adam alone; and the student's forward pass at batch 1 and 64. Each \
            figure is the best and the median of --segments slices (machines are shared).

            Examples:
              distill bench nn
              distill bench nn --seconds 5 --input 400 --actions 7 --batch 256
            """)

    @Option(help: "Seconds per measurement.")
    var seconds = 2.0

    @Option(help: "Segments per measurement; the best and the median are reported.")
    var segments = 5

    @Option(help: "Observation size of the MLP.")
    var input = 400

    @Option(help: "Number of actions.")
    var actions = 7

    @Option(help: "Hidden width of the two layers.")
    var width = 256

    @Option(help: "Learner batch size.")
    var batch = 256

    func validate() throws {
        guard seconds > 0, segments > 0, input > 0, actions > 0, width > 0, batch > 0 else {
            throw ValidationError("every option must be positive")
        }
    }

    /// Rates (per second) of `work` units per call, over `segments` slices of `seconds / segments`; sorted.
    func measure(work: Double, segments: Int? = nil, _ body: () -> Void) -> [Double] {
        body()  // warm-up: allocation, page faults, OpenBLAS's buffers
        let slice = seconds / Double(self.segments)
        var rates: [Double] = []
        for _ in 0..<(segments ?? self.segments) {
            var calls = 0
            let start = DispatchTime.now().uptimeNanoseconds
            var elapsed = 0.0
            while elapsed < slice {
                body()
                calls += 1
                elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            }
            rates.append(Double(calls) * work / elapsed)
        }
        return rates.sorted()
    }

    static func pad(_ label: String) -> String { label.padding(toLength: 44, withPad: " ", startingAt: 0) }

    struct Shape {
        var label: String
        var transposeA: Bool
        var transposeB: Bool
        var m: Int
        var n: Int
        var k: Int
        var flops: Double { 2 * Double(m) * Double(n) * Double(k) }
    }

    func run() throws {
        setSingleThreaded()
        let (b, i, h, a) = (batch, input, width, actions)
        print(
            "bench nn: MLP \(i)→\(h)→\(h)→\(a)+1, batch \(b), 1 BLAS thread, \(segments) segments of \(seconds / Double(segments)) s"
        )

        // The GEMMs of one update, as the layers call them (Linear: Y = X·Wᵀ, dW = dYᵀ·X, dX = dY·W).
        let shapes = [
            Shape(label: "fwd  X·W1ᵀ", transposeA: false, transposeB: true, m: b, n: h, k: i),
            Shape(label: "fwd  H·W2ᵀ", transposeA: false, transposeB: true, m: b, n: h, k: h),
            Shape(label: "fwd  heads (logits+value)", transposeA: false, transposeB: true, m: b, n: a + 1, k: h),
            Shape(label: "bwd  dW1 = dYᵀ·X", transposeA: true, transposeB: false, m: h, n: i, k: b),
            Shape(label: "bwd  dW2 = dYᵀ·H", transposeA: true, transposeB: false, m: h, n: h, k: b),
            Shape(label: "bwd  dX2 = dY·W2", transposeA: false, transposeB: false, m: b, n: h, k: h),
            Shape(label: "bwd  dW heads", transposeA: true, transposeB: false, m: a + 1, n: h, k: b),
            Shape(label: "bwd  dH = dY heads·W heads", transposeA: false, transposeB: false, m: b, n: h, k: a + 1),
        ]
        let largest = max(b, h, i) * max(b, h, i)
        var generator = WeightGenerator(seed: 1)
        let x = (0..<largest).map { _ in Float.random(in: -1...1, using: &generator) }
        let y = (0..<largest).map { _ in Float.random(in: -1...1, using: &generator) }
        var c = [Float](repeating: 0, count: largest)
        var gemmSeconds = 0.0
        var totalFlops = 0.0
        var peak = 0.0
        print("GEMM ceiling (cblas_sgemm, row-major, 1 thread):")
        for shape in shapes {
            let rates = x.withUnsafeBufferPointer { xp in
                y.withUnsafeBufferPointer { yp in
                    c.withUnsafeMutableBufferPointer { cp in
                        measure(work: shape.flops) {
                            sgemm(
                                transposeA: shape.transposeA, transposeB: shape.transposeB, m: shape.m, n: shape.n,
                                k: shape.k, a: xp.baseAddress!, lda: shape.transposeA ? shape.m : shape.k,
                                b: yp.baseAddress!, ldb: shape.transposeB ? shape.k : shape.n, beta: 0,
                                c: cp.baseAddress!, ldc: shape.n)
                        }
                    }
                }
            }
            let best = rates.last!
            gemmSeconds += shape.flops / best
            totalFlops += shape.flops
            peak = max(peak, best)
            print(
                Self.pad("  \(shape.label) \(shape.m)×\(shape.k)·\(shape.k)×\(shape.n)")
                    + String(format: "%7.1f GFLOP/s best, median %.1f", best / 1e9, rates[rates.count / 2] / 1e9))
        }
        let ceiling = totalFlops / gemmSeconds
        print(
            Self.pad("  the update's GEMMs together")
                + String(format: "%7.1f GFLOP/s (%.3f ms per update)", ceiling / 1e9, gemmSeconds * 1e3))

        // The learner's update: forward, backward of a fixed loss gradient, Adam.
        let network = try PolicyValueNetwork(
            architecture: NetworkArchitecture(hiddenWidths: [h, h]), inputShape: [i], actionCount: a, seed: 0)
        let observations = (0..<(b * i)).map { _ in Float.random(in: 0...1, using: &generator) }
        let logitGradient = (0..<(b * a)).map { _ in Float.random(in: -1...1, using: &generator) / Float(b) }
        let valueGradient = (0..<b).map { _ in Float.random(in: -1...1, using: &generator) / Float(b) }
        var adam = Adam(parameterCount: network.parameterCount, learningRate: 1e-5)
        let updateRates = observations.withUnsafeBufferPointer { obs in
            logitGradient.withUnsafeBufferPointer { gl in
                valueGradient.withUnsafeBufferPointer { gv in
                    measure(work: Double(b)) {
                        network.forward(observations: obs, batch: b)
                        network.zeroGradients()
                        network.backward(logitGradient: gl, valueGradient: gv)
                        network.step(&adam)
                    }
                }
            }
        }
        // On a shared machine the load changes between measurements: pair each slice of the update
        // with a slice of its GEMMs alone (same shapes, back to back) and report the median share.
        var shares: [Double] = []
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeBufferPointer { yp in
                c.withUnsafeMutableBufferPointer { cp in
                    observations.withUnsafeBufferPointer { obs in
                        logitGradient.withUnsafeBufferPointer { gl in
                            valueGradient.withUnsafeBufferPointer { gv in
                                for _ in 0..<segments {
                                    let gemms = measure(work: totalFlops, segments: 1) {
                                        for shape in shapes {
                                            sgemm(
                                                transposeA: shape.transposeA, transposeB: shape.transposeB,
                                                m: shape.m, n: shape.n, k: shape.k, a: xp.baseAddress!,
                                                lda: shape.transposeA ? shape.m : shape.k, b: yp.baseAddress!,
                                                ldb: shape.transposeB ? shape.k : shape.n, beta: 0,
                                                c: cp.baseAddress!, ldc: shape.n)
                                        }
                                    }[0]
                                    let update = measure(work: totalFlops, segments: 1) {
                                        network.forward(observations: obs, batch: b)
                                        network.zeroGradients()
                                        network.backward(logitGradient: gl, valueGradient: gv)
                                        network.step(&adam)
                                    }[0]
                                    shares.append(update / gemms)
                                }
                            }
                        }
                    }
                }
            }
        }
        shares.sort()
        let best = updateRates.last!
        let achieved = best / Double(b) * totalFlops
        print(
            Self.pad("learner update (fwd+bwd+Adam)")
                + String(
                    format:
                        "%9.0f samples/s best, median %.0f; %.1f GFLOP/s = %.0f %% of the GEMM ceiling, %.0f %% of the peak shape",
                    best, updateRates[updateRates.count / 2], achieved / 1e9, 100 * achieved / ceiling,
                    100 * achieved / peak))
        print(
            Self.pad("  paired slices: update / its GEMMs alone")
                + String(
                    format: "%7.0f %% median of %d pairs (range %.0f–%.0f %%)", 100 * shares[shares.count / 2],
                    shares.count, 100 * shares.first!, 100 * shares.last!))
        print(
            Self.pad("  parameters")
                + "\(network.parameterCount), \(String(format: "%.2f", totalFlops / Double(b) / 1e6)) MFLOP per sample")
        var parameters = network.parameters
        let gradients = network.gradients
        let adamRates = measure(work: 1) { adam.step(parameters: &parameters, gradients: gradients) }
        print(
            Self.pad("Adam step alone")
                + String(
                    format: "%9.3f ms best, median %.3f", 1e3 / adamRates.last!, 1e3 / adamRates[adamRates.count / 2]))

        // The student's forward pass (allocation-free form).
        for size in [1, 64] {
            let rates = observations.withUnsafeBufferPointer { obs in
                let slice = UnsafeBufferPointer(rebasing: obs[0..<(size * i)])
                return measure(work: Double(size)) { network.forward(observations: slice, batch: size) }
            }
            print(
                Self.pad("student forward, batch \(size)")
                    + String(
                        format: "%9.0f samples/s best, median %.0f (%.1f µs per call)", rates.last!,
                        rates[rates.count / 2], 1e6 * Double(size) / rates.last!))
        }
        try environmentsAndTheTrainingLoop()
    }

    /// Environment steps per second per core (256 environments stepped together, uniform random
    /// actions), then the whole `distill train` loop on CartPole (2×64 student, actor-critic, 256
    /// environments) as a share of the bare environment rate measured here.
    func environmentsAndTheTrainingLoop() throws {
        let count = 256
        func stepRate<E: ObservedEnvironment>(_ prototype: E) -> [Double] {
            var environments = ObservedBatch([E](repeating: prototype, count: count), seed: 1)
            var generator = Xoshiro256StarStar(seed: 2)
            let actionCount = prototype.description.actionCount
            var actions = [Int](repeating: 0, count: count)
            return measure(work: Double(count)) {
                for i in 0..<count { actions[i] = Int(generator.next() % UInt64(actionCount)) }
                environments.step(actions)
            }
        }
        print("environments (\(count) stepped together, random actions, 1 core):")
        var cartPoleRate = 0.0
        for (name, rates) in [
            ("CartPole-v1", stepRate(CartPole(maxEpisodeSteps: CartPole.timeLimit))),
            ("Acrobot-v1", stepRate(Acrobot(maxEpisodeSteps: Acrobot.timeLimit))),
            ("MountainCar-v0", stepRate(MountainCar(maxEpisodeSteps: MountainCar.timeLimit))),
        ] {
            if name == "CartPole-v1" { cartPoleRate = rates.last! }
            print(
                Self.pad("  \(name)")
                    + String(format: "%11.0f steps/s best, median %.0f", rates.last!, rates[rates.count / 2]))
        }
        var method = MethodSpec()
        method.method = .actorCritic
        method.optimiser = .adam
        method.learningRate = 0.001
        method.criticLearningRate = 1
        method.episodesPerIteration = 8
        let cartPole = CartPole(maxEpisodeSteps: CartPole.timeLimit)
        let student = try StudentSpec(architecture: "mlp:64,64", seed: 0).buildNetwork(
            for: cartPole.description, method: method)
        var trainer = try ObservedTrainer(
            method: method, environments: [CartPole](repeating: cartPole, count: count), student: student,
            teacher: nil, seed: 0)
        var rates: [Double] = []
        for _ in 0..<segments {
            let start = Date()
            let steps = trainer.totalEnvironmentSteps
            while Date().timeIntervalSince(start) < seconds / Double(segments) { _ = trainer.runIteration() }
            rates.append(Double(trainer.totalEnvironmentSteps - steps) / Date().timeIntervalSince(start))
        }
        rates.sort()
        print(
            Self.pad("train loop, CartPole, 2×64, \(count) envs")
                + String(
                    format: "%11.0f env steps/s best, median %.0f = %.0f %% of the bare environment rate",
                    rates.last!, rates[rates.count / 2], 100 * rates.last! / cartPoleRate))
        print(
            Self.pad("  against a PyTorch loop")
                + String(
                    format: "%.1f× the ~190,000 env steps/s issue 11 measured here with one thread (not rerun: "
                        + "torch is no dependency)", rates.last! / 190_000))
    }
}
