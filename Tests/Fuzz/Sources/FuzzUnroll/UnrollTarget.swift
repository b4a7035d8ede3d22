import DistillCore
import DistillRuntime
import DistillWire
import FuzzSupport

/// The input goes where the learner role takes it: into `LearnerCore.receiveUnroll`, the code the
/// learner's poll loop runs (the codec, the compatibility and plausibility checks, who may push
/// which teacher's targets, and the learning step: `LearnerState<TabularStudent>`, bound
/// `.standard`, the 5×5 gridworld of ``FuzzProblem``), three times over so that later passes
/// start from updated parameters and every batch size (1–3) makes an update. The unroll's
/// `sequence` picks the method and its `parameterVersion` the optimiser and batch size (an input
/// the codec refuses goes to the first method). Properties, after every pass: every parameter is
/// finite and within the bound (finding 1 of issue 10); the version advanced by exactly the
/// updates applied, and without one the parameters are unchanged (a refused update or a rejected
/// unroll changed nothing); the critic's values are finite and the student's policy is a
/// probability table.
enum UnrollTarget {
    static let name = "fuzz-unroll"
    static let bound = ParameterBound.standard

    static func test(_ bytes: [UInt8]) -> CInt {
        let problem = FuzzProblem.shared
        let method: MethodSpec
        if let envelope = try? WireCodec().decode(bytes, expecting: [.unroll]),
            case .unroll(let unroll) = envelope.message
        {
            method = problem.method(for: unroll)
        } else {
            method = problem.method(0, 0)
        }
        var core: LearnerCore<TabularLearnerModel>
        do {
            core = try problem.learnerCore(method)
        } catch {
            FuzzDriver.violated(name, "method \(method.method.rawValue) does not build a learner core: \(error)")
        }
        for pass in 0..<3 {
            let before = core
            _ = core.receiveUnroll([bytes], peer: nil, now: Int64(pass))
            _ = core.takeReceipts()
            check(core, after: before, "\(method.method.rawValue) with \(method.optimiser.rawValue), pass \(pass)")
        }
        return 0
    }

    /// The properties of `core` after one unroll taken by `before`.
    static func check(
        _ core: LearnerCore<TabularLearnerModel>, after before: LearnerCore<TabularLearnerModel>, _ what: String
    ) {
        let state = core.state
        let logits = state.student.parameters.logits
        if let i = logits.firstIndex(where: { !bound.admits($0) }) {
            FuzzDriver.violated(name, "\(what): parameter \(i) is \(logits[i]), outside ±\(bound.magnitude)")
        }
        let applied = state.updates - before.state.updates
        guard core.version == before.version + UInt64(applied) else {
            FuzzDriver.violated(
                name, "\(what): version \(before.version) → \(core.version) after \(applied) applied update(s)")
        }
        if applied == 0 && state.student.parameters != before.state.student.parameters {
            FuzzDriver.violated(
                name, "\(what): the parameters changed without an applied update (\(state.quarantined) quarantined)")
        }
        if let values = state.critic?.values, let i = values.firstIndex(where: { !$0.isFinite }) {
            FuzzDriver.violated(name, "\(what): critic value \(i) is \(values[i])")
        }
        let table = state.student.stateTable()
        if let i = table.firstIndex(where: { !($0 >= 0 && $0 <= 1) }) {
            FuzzDriver.violated(name, "\(what): policy entry \(i) is \(table[i])")
        }
    }

    /// Valid unrolls of every method (the `sequence` picks it), optimiser and batch size, with
    /// and without Q-values, plus the 3e38 reward of finding 1 (refused as implausible).
    static func seeds() throws -> [Seed] {
        let codec = WireCodec()
        let actor = Sender(role: .actor, id: "actor-0", runNonce: 42)
        let problem = FuzzProblem.shared
        var seeds: [Seed] = []
        for (index, method) in Method.allCases.enumerated() {
            let spec = problem.method(UInt64(index), UInt64(index % 6))
            let core = try problem.learnerCore(spec)
            let rule = core.state.rule
            // Every fourth seed without Q-values, unless its method needs them.
            let unroll = try problem.unroll(
                episodes: 1 + index % 3, sequence: UInt64(index), parameterVersion: UInt64(index % 6),
                seed: UInt64(index), withQ: index % 4 != 3 || rule.loss.needsActionValues)
            // A seed the learner would refuse would only exercise the checks, not the learning step.
            if let why = core.incompatibility(of: unroll) {
                throw FuzzSeedError("the seed of \(method.rawValue) would be refused: \(why)")
            }
            seeds.append(
                Seed("\(method.rawValue)", codec.encode(Envelope(sender: actor, message: .unroll(unroll)))))
        }
        var poisoned = try problem.unroll(episodes: 1, sequence: 0, parameterVersion: 0, seed: 99)
        poisoned.rewards[0] = 3e38
        seeds.append(Seed("reward-3e38", codec.encode(Envelope(sender: actor, message: .unroll(poisoned)))))
        return seeds
    }
}
