import DistillCore
import Foundation
import Testing

/// Tests that separate what can be confused (issue 15, item 2): V-trace's ρ̄, c̄ and λ; the
/// gridworld's slip; the teacher's temperature.
@Suite struct SeparationTests {
    /// V-trace with ρ̄ = 0.5 ≠ c̄ = 1.5 and λ = 0.8, worked by hand.
    ///
    /// Uniform two-action student on states 0, 1; state 2 terminal; γ = 0.5; rule `+R` only (x = r).
    /// Trajectory (s0, a=0, r=1, μ=0.8), (s1, a=1, r=2, μ=0.25), (s0, a=1, r=4, μ=0.5), end in s2.
    /// Ratios q/μ = 0.5/0.8 = 0.625, 0.5/0.25 = 2, 0.5/0.5 = 1.
    ///   ρ = min(ρ̄, ratio)      = (0.5, 0.5, 0.5)
    ///   c = λ·min(c̄, ratio)    = 0.8·(0.625, 1.5, 1) = (0.5, 1.2, 0.8)
    ///   Ĝ2 = 4
    ///   Ĝ1 = 2 + c2·γ·Ĝ2 = 2 + 0.8·0.5·4   = 3.6
    ///   Ĝ0 = 1 + c1·γ·Ĝ1 = 1 + 1.2·0.5·3.6 = 3.16
    /// Update per step ρ_t Ĝ_t (e_a − (½, ½)):
    ///   t=0 (row 0, a=0): 0.5·3.16·(½, −½) = ( 0.79, −0.79)
    ///   t=1 (row 1, a=1): 0.5·3.6 ·(−½, ½) = (−0.9,   0.9)
    ///   t=2 (row 0, a=1): 0.5·4   ·(−½, ½) = (−1,     1)
    ///   row 0 = (−0.21, 0.21), row 1 = (−0.9, 0.9), row 2 = (0, 0).
    /// With ρ̄ and c̄ swapped, c = 0.8·(0.5, 0.5, 0.5) and Ĝ1 = 2.8; without λ, Ĝ1 = 2 + 1·0.5·4 = 4.
    @Test func vTraceWithDistinctClipsAndLambdaOnAHandWorkedTrajectory() {
        let clipping = VTraceClipping(rhoBar: 0.5, cBar: 1.5, lambda: 0.8)
        let w = [(0.5, 0.8), (0.5, 0.25), (0.5, 0.5)].map {
            VTrace.weights(target: $0.0, behaviour: $0.1, clipping: clipping)
        }
        #expect(zip(w.map(\.rho), [0.5, 0.5, 0.5]).allSatisfy { abs($0 - $1) < 1e-15 }, "\(w)")
        #expect(zip(w.map(\.c), [0.5, 1.2, 0.8]).allSatisfy { abs($0 - $1) < 1e-15 }, "\(w)")
        let g = VTrace.correctedReturns(own: [1, 2, 4], nextAction: [0, 0, 0], traces: w.map(\.c), discount: 0.5)
        #expect(zip(g, [3.16, 3.6, 4]).allSatisfy { abs($0 - $1) < 1e-12 }, "\(g)")

        let trajectory = Trajectory(
            actionCount: 2, observations: [0, 1, 0, 2], actions: [0, 1, 1], rewards: [1, 2, 4],
            behaviourProbabilities: [0.8, 0.25, 0.5],
            teacherProbabilities: [Double](repeating: 0.5, count: 8), teacherValues: [0, 0, 0, 0], end: .terminated)
        let policy = StudentPolicy(StudentParameters(stateCount: 3, actionCount: 2))
        var acc = UpdateAccumulator(rowCount: 3, actionCount: 2)
        accumulateSampledUpdate(
            trajectory: trajectory, policy: policy, rule: UpdateRule(addsReward: true),
            context: UpdateContext(discount: 0.5, control: .student, clipping: clipping), into: &acc)
        let u = acc.finish(policy: policy)
        let expected = [-0.21, 0.21, -0.9, 0.9, 0, 0]
        #expect(zip(u, expected).allSatisfy { abs($0 - $1) < 1e-12 }, "\(u) vs \(expected)")
    }

    /// The trace of an exp-entropy next-action term is cut by c, not by ρ: one step
    /// (s0, a=0, μ=0.8) → (s1, a=1, μ=0.25) → terminal, γ = 1, rewards 0, teacher π(·|s) = (0.25, 0.75),
    /// ρ̄ = 0.5, c̄ = 1.5, λ = 0.8: c1 = 0.8·min(1.5, 2) = 1.2, so Ĝ0 = c1·log 0.75 and the step-0 score
    /// is ρ0 Ĝ0 (½, −½) with ρ0 = 0.5; the step-1 score is 0 (its own r̂ is zero: the next state ends).
    @Test func nextActionTermIsCarriedByTheTraceWeight() {
        let clipping = VTraceClipping(rhoBar: 0.5, cBar: 1.5, lambda: 0.8)
        let trajectory = Trajectory(
            actionCount: 2, observations: [0, 1, 2], actions: [0, 1], rewards: [0, 0],
            behaviourProbabilities: [0.8, 0.25], teacherProbabilities: [0.25, 0.75, 0.25, 0.75, 0.25, 0.75],
            teacherValues: [0, 0, 0], end: .terminated)
        let policy = StudentPolicy(StudentParameters(stateCount: 3, actionCount: 2))
        var acc = UpdateAccumulator(rowCount: 3, actionCount: 2)
        accumulateSampledUpdate(
            trajectory: trajectory, policy: policy,
            rule: UpdateRule(pseudoReward: .nextTeacherLogProbability),
            context: UpdateContext(discount: 1, control: .student, clipping: clipping), into: &acc)
        let u = acc.finish(policy: policy)
        let g0 = 1.2 * log(0.75)
        let expected = [0.5 * g0 * 0.5, -0.5 * g0 * 0.5, 0, 0, 0, 0]
        #expect(zip(u, expected).allSatisfy { abs($0 - $1) < 1e-12 }, "\(u) vs \(expected)")
    }

    /// TD(1) keeps exp-entropy's next-action term, and discounts only the bootstrap, by hand:
    /// uniform student (ρ = c = 1 with μ = ½), teacher π(·|s) = (¼, ¾), γ = ½, rewards 0, critic
    /// V̂ = (0.3, 0.8, 0); trajectory (s0, a=0) → (s1, a=1) → terminal.
    ///   t = 1: the next state ends the episode: Ĝ1 = 0.
    ///   t = 0: Ĝ0 = c1·log π(a1|s1) + γ·V̂(s1) = log 0.75 + 0.5·0.8 ≈ 0.11232.
    ///   update: row 0 = Ĝ0·(½, −½); rows 1, 2 = 0 (Ĝ1 = 0).
    /// Dropping the next-action term gives Ĝ0 = 0.4; dropping γ gives log 0.75 + 0.8.
    @Test func oneStepReturnKeepsTheNextActionTermAndDiscountsTheBootstrap() {
        let trajectory = Trajectory(
            actionCount: 2, observations: [0, 1, 2], actions: [0, 1], rewards: [0, 0],
            behaviourProbabilities: [0.5, 0.5], teacherProbabilities: [0.25, 0.75, 0.25, 0.75, 0.25, 0.75],
            teacherValues: [0, 0, 0], end: .terminated)
        let policy = StudentPolicy(StudentParameters(stateCount: 3, actionCount: 2))
        var acc = UpdateAccumulator(rowCount: 3, actionCount: 2)
        accumulateSampledUpdate(
            trajectory: trajectory, policy: policy,
            rule: UpdateRule(pseudoReward: .nextTeacherLogProbability, returnEstimate: .bootstrapStudentValue),
            context: UpdateContext(discount: 0.5, control: .student, studentValues: [0.3, 0.8, 0]), into: &acc)
        let u = acc.finish(policy: policy)
        let g0 = log(0.75) + 0.5 * 0.8
        let expected = [0.5 * g0, -0.5 * g0, 0, 0, 0, 0]
        #expect(zip(u, expected).allSatisfy { abs($0 - $1) < 1e-12 }, "\(u) vs \(expected)")
    }

    /// The gridworld's transition probabilities cell by cell against the documented slip model
    /// (METHODS.md §5, paper A.1): the intended move with probability 1 − η, plus a uniformly
    /// random direction with probability η (η/4 each, the intended one included); a move into a
    /// wall or off the grid stays put; arriving in a terminal cell ends the episode there, any
    /// other arrival ends the episode (absorbing "over" state) with probability 0.01.
    @Test(arguments: [(UInt64(3), 0.1), (UInt64(8), 0.3)])
    func gridworldTransitionsFollowTheDocumentedSlipModel(seed: UInt64, slip: Double) throws {
        var config = GridworldConfiguration()
        config.size = 6
        config.slip = slip
        config.wallProbability = 0.2
        config.penaltyProbability = 0.1
        config.terminalProbability = 0.05
        let env = try Environments.gridworld(config, seed: seed)
        let grid = env.grid!
        let n = grid.size
        let over = n * n
        func isWall(_ i: Int) -> Bool { if case .wall = grid.cells[i] { true } else { false } }
        func isTerminalCell(_ i: Int) -> Bool { if case .terminal = grid.cells[i] { true } else { false } }
        func cellReward(_ i: Int) -> Double {
            switch grid.cells[i] {
            case .reward(let x), .terminal(let x): x
            default: 0
            }
        }
        #expect(grid.cells.contains { if case .wall = $0 { true } else { false } }, "no wall to test")
        #expect(grid.cells.indices.contains(where: isTerminalCell), "no terminal cell to test")
        // L, R, U, D as (Δrow, Δcol).
        let moves = [(0, -1), (0, 1), (-1, 0), (1, 0)]
        func target(_ s: Int, _ d: Int) -> Int {
            let (r, c) = (s / n + moves[d].0, s % n + moves[d].1)
            if r < 0 || r >= n || c < 0 || c >= n || isWall(r * n + c) { return s }
            return r * n + c
        }
        var checked = 0
        for s in 0..<(n * n) where !isWall(s) && !isTerminalCell(s) {
            for a in 0..<4 {
                var cell: [Int: Double] = [:]
                cell[target(s, a), default: 0] += 1 - slip
                for d in 0..<4 { cell[target(s, d), default: 0] += slip / 4 }
                var expected: [Int: Double] = [:]
                var expectedReward = 0.0
                for (next, p) in cell {
                    expectedReward += p * cellReward(next)
                    if isTerminalCell(next) {
                        expected[next, default: 0] += p
                    } else {
                        expected[next, default: 0] += p * 0.99
                        expected[over, default: 0] += p * 0.01
                    }
                }
                var actual: [Int: Double] = [:]
                var actualReward = 0.0
                for o in env.mdp.outcomes(state: s, action: a) {
                    actual[o.next, default: 0] += o.probability
                    actualReward += o.probability * o.reward
                }
                for key in Set(expected.keys).union(actual.keys) {
                    let e = expected[key] ?? 0
                    let x = actual[key] ?? 0
                    #expect(abs(e - x) < 1e-12, "cell \(s) action \(a) → \(key): documented \(e), generated \(x)")
                }
                #expect(abs(expectedReward - actualReward) < 1e-12, "cell \(s) action \(a): reward")
                checked += 1
            }
        }
        #expect(checked > 40)
        #expect(env.mdp.isTerminal[over] && env.mdp.startDistribution[grid.start] == 1)
    }

    /// `softmax(x/T)` on hand values: (0, ln 3) at T = 1 is (¼, ¾); at T = ½ it is (1/10, 9/10);
    /// at T = 2 it is (1/(1+√3), √3/(1+√3)); T = 0 is greedy with ties shared.
    @Test func softmaxDividesByTheTemperature() {
        let x = [0, log(3.0)]
        let cases: [(Double, [Double])] = [
            (1, [0.25, 0.75]), (0.5, [0.1, 0.9]),
            (2, [1 / (1 + 3.0.squareRoot()), 3.0.squareRoot() / (1 + 3.0.squareRoot())]),
        ]
        for (t, expected) in cases {
            let p = softmax(x, temperature: t)
            #expect(zip(p, expected).allSatisfy { abs($0 - $1) < 1e-12 }, "T = \(t): \(p)")
        }
        #expect(softmax([1, 3, 3, 2], temperature: 0) == [0, 0.5, 0.5, 0])
    }

    /// The Q-learning teacher's policy is softmax(Q/T) of its own Q-values, computed here
    /// independently, and its value is the exact value of that policy.
    @Test(arguments: [0.0, 0.01, 0.1, 1.0])
    func qLearningTeacherIsTheSoftmaxOfItsQValuesAtItsTemperature(temperature: Double) throws {
        let env = try Environments.chain(halfLength: 3, discount: 0.9)
        var config = QLearningConfiguration()
        config.steps = 20_000
        config.temperature = temperature
        let teacher = try Teachers.qLearning(env.mdp, config, seed: 5)
        let q = teacher.actionValues!
        let na = env.mdp.actionCount
        var peaked = false
        for s in 0..<env.mdp.stateCount where !env.mdp.isTerminal[s] {
            let row = Array(q[(s * na)..<((s + 1) * na)])
            let expected: [Double]
            if temperature == 0 {
                let m = row.max()!
                let k = Double(row.filter { $0 == m }.count)
                expected = row.map { $0 == m ? 1 / k : 0 }
            } else {
                let e = row.map { exp(($0 - row.max()!) / temperature) }
                let z = e.reduce(0, +)
                expected = e.map { $0 / z }
            }
            let actual = teacher.probabilities(state: s)
            #expect(zip(actual, expected).allSatisfy { abs($0 - $1) < 1e-12 }, "state \(s): \(actual) vs \(expected)")
            if expected.max()! > 0.9 { peaked = true }
        }
        // At low temperature the teacher is near-greedy somewhere (a T-multiplying bug gives ~uniform).
        if temperature <= 0.01 { #expect(peaked) }
        let v = Reference.values(env.mdp, Reference.teacherRows(teacher))
        #expect(relativeDistance(teacher.values, v) < 1e-9, "\(teacher.values) vs \(v)")
    }

    /// The optimal teacher is greedy in Q* and its value satisfies the Bellman optimality equation.
    @Test func optimalTeacherIsGreedyAndBellmanOptimal() throws {
        let p = ReferenceProblem(seed: 11, discount: 0.9)
        let teacher = try Teachers.optimal(p.mdp)
        let v = Reference.values(p.mdp, Reference.teacherRows(teacher))
        #expect(relativeDistance(teacher.values, v) < 1e-9)
        for s in 0..<p.mdp.stateCount where !p.mdp.isTerminal[s] {
            let q = (0..<p.mdp.actionCount).map { a in
                Reference.outcomes(p.mdp, s, a).reduce(0) { $0 + $1.p * ($1.r + 0.9 * v[$1.next]) }
            }
            #expect(abs(q.max()! - v[s]) < 1e-6, "state \(s): max Q \(q.max()!) vs V \(v[s])")
        }
    }
}
