import DistillCore
import DistillRuntime
import DistillWire
import FuzzSupport

/// An `Unroll` decoded from the input goes where the learner role takes it: the codec's checks,
/// the learner's compatibility and plausibility checks, and, if it passes, the learning step
/// (`LearnerState<TabularStudent>`, bound `.standard`, the 5×5 gridworld of ``FuzzProblem``),
/// twice over so that the second pass starts from updated parameters. The unroll's `sequence`
/// picks the method and its `parameterVersion` the optimiser and batch size. Properties, after
/// every update: every parameter is finite and within the bound (finding 1 of issue 10), a
/// refused update changed nothing, the critic's values are finite and the student's policy is
/// a probability table.
enum UnrollTarget {
    static let name = "fuzz-unroll"
    static let bound = ParameterBound.standard

    static func test(_ bytes: [UInt8]) -> CInt {
        guard let envelope = try? WireCodec().decode(bytes, expecting: [.unroll]),
            case .unroll(let unroll) = envelope.message
        else { return 0 }
        let problem = FuzzProblem.shared
        let method = problem.method(for: unroll)
        var state: LearnerState<TabularStudent>
        do {
            state = try problem.learnerState(method)
        } catch {
            FuzzDriver.violated(name, "method \(method.method.rawValue) does not build a learner state: \(error)")
        }
        let bounds = PlausibleOutputs(problem.environment, maxEpisodeSteps: method.maxEpisodeSteps)
        if incompatibility(of: unroll, mdp: problem.environment.mdp, rule: state.rule, bounds: bounds) != nil {
            return 0
        }
        for _ in 0..<2 {
            UnrollEpisode.withEpisodes(of: unroll) { episodes in
                for episode in episodes {
                    state.accumulate(episode)
                    if state.updateDue { update(&state, method) }
                }
            }
        }
        if state.student.pendingEpisodes > 0 { update(&state, method) }
        return 0
    }

    /// `Learner.incompatibility(of:)` (private to the learner role), step for step: why the
    /// learner would refuse `unroll` after the codec accepted it, or nil.
    static func incompatibility(
        of unroll: Unroll, mdp: TabularMDP, rule: UpdateRule, bounds: PlausibleOutputs
    ) -> String? {
        guard unroll.actionCount == mdp.actionCount else { return "action count" }
        if unroll.observations.contains(where: { Int($0) >= mdp.stateCount }) { return "state out of range" }
        if let problem = bounds.implausibility(of: unroll) { return problem }
        if rule.loss.needsActionValues && unroll.teacherQValues.isEmpty { return "no Q-values" }
        return nil
    }

    /// One optimisation step, then the properties.
    static func update(_ state: inout LearnerState<TabularStudent>, _ method: MethodSpec) {
        let before = state.student.parameters
        let outcome = state.applyUpdate()
        let what = "\(method.method.rawValue) with \(method.optimiser.rawValue), update \(state.updates)"
        let logits = state.student.parameters.logits
        if let i = logits.firstIndex(where: { !bound.admits($0) }) {
            FuzzDriver.violated(
                name, "\(what): parameter \(i) is \(logits[i]), outside ±\(bound.magnitude) (\(outcome))")
        }
        if case .refused = outcome, state.student.parameters != before {
            FuzzDriver.violated(name, "\(what): a refused update changed the parameters")
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
            let rule = try problem.learnerState(spec).rule
            // Every fourth seed without Q-values, unless its method needs them.
            let unroll = try problem.unroll(
                episodes: 1 + index % 3, sequence: UInt64(index), parameterVersion: UInt64(index % 6),
                seed: UInt64(index), withQ: index % 4 != 3 || rule.loss.needsActionValues)
            // A seed the learner would refuse would only exercise the checks, not the learning step.
            let bounds = PlausibleOutputs(problem.environment, maxEpisodeSteps: spec.maxEpisodeSteps)
            if let why = incompatibility(of: unroll, mdp: problem.environment.mdp, rule: rule, bounds: bounds) {
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
