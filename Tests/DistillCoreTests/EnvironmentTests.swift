import DistillCore
import Foundation
import Testing

/// Environments, generators and parameter plumbing.
@Suite struct EnvironmentTests {
    @Test func gridworldFollowsTheAppendixDynamics() throws {
        let env = try Environments.gridworld(seed: 5)
        let mdp = env.mdp
        let grid = env.grid!
        #expect(mdp.stateCount == 401 && mdp.actionCount == 4)
        #expect(grid.start == 10 * 20 + 10 && grid.cells[grid.start] == .empty)
        #expect(mdp.startDistribution[grid.start] == 1 && mdp.isTerminal[400])
        // From the start cell, every action ends the episode with probability 0.01 unless it
        // enters a terminal cell, and the intended move has probability 1 − η + η/4 (walls aside).
        for a in 0..<4 {
            let outcomes = mdp.outcomes(state: grid.start, action: a)
            let total = outcomes.reduce(0) { $0 + $1.probability }
            #expect(abs(total - 1) < 1e-12)
            let ended = outcomes.filter { mdp.isTerminal[$0.next] }.reduce(0) { $0 + $1.probability }
            #expect(ended >= 0.01 - 1e-12)
        }
        let kinds = grid.cells.reduce(into: [String: Int]()) { counts, cell in
            switch cell {
            case .empty: counts["empty", default: 0] += 1
            case .wall: counts["wall", default: 0] += 1
            case .reward: counts["penalty", default: 0] += 1
            case .terminal: counts["terminal", default: 0] += 1
            }
        }
        // 400 cells with p(wall) = 0.1, p(−1) = 0.08, p(terminal) = 0.04: generous 5-sigma bounds.
        #expect((20...60).contains(kinds["wall", default: 0]))
        #expect((12...52).contains(kinds["penalty", default: 0]))
        #expect((2...36).contains(kinds["terminal", default: 0]))
        #expect(grid.window(around: 0, radius: 1).count == 27)
        #expect(Array(grid.window(around: 0, radius: 1).prefix(3)) == [1, 0, 0])  // off-grid reads as wall
    }

    @Test func manyActionsAddsActionsThatStayPut() throws {
        var config = GridworldConfiguration()
        config.actionCount = 40
        let env = try Environments.gridworld(config, seed: 5)
        let start = env.grid!.start
        let outcomes = env.mdp.outcomes(state: start, action: 17)
        #expect(outcomes.count == 2 && outcomes.contains { $0.next == start && abs($0.probability - 0.99) < 1e-12 })
    }

    @Test func generatorStateRestoresTheSameStream() {
        var a = Xoshiro256StarStar(seed: 42)
        _ = a.next()
        var b = Xoshiro256StarStar(words: a.words)
        #expect((0..<10).map { _ in a.next() } == (0..<10).map { _ in b.next() })
        var c = Xoshiro256StarStar(seed: 42)
        var d = Xoshiro256StarStar(seed: 43)
        #expect(c.next() != d.next())
    }

    @Test func studentLogitsRoundTripThroughFloat32() {
        var student = StudentParameters(stateCount: 3, actionCount: 2)
        student.logits = [0.25, -1.5, 2, 0, 1, -0.75]
        var copy = StudentParameters(stateCount: 3, actionCount: 2)
        copy.setLogits(float32: student.float32Logits())
        #expect(copy == student)
        let p = student.probabilities(state: 0)
        #expect(abs(p[0] - 1 / (1 + exp(-1.75))) < 1e-12)
    }

    @Test func adamFirstStepMovesEachCoordinateByTheLearningRate() {
        var student = StudentParameters(stateCount: 1, actionCount: 2)
        var adam = Optimiser(kind: .adam, learningRate: 0.1)
        adam.apply([3, -0.5], to: &student)
        // Bias-corrected first Adam step is α·sign(u) (up to ε).
        #expect(abs(student.logits[0] - 0.1) < 1e-6 && abs(student.logits[1] + 0.1) < 1e-6)
    }

    @Test func noisyTeacherFlipsTheRequestedFractionOfVisitedStates() throws {
        let env = try Environments.chain(halfLength: 5)
        let base = try Teachers.optimal(env.mdp)
        let noisy = try Teachers.noisy(base, fraction: 0.25, mdp: env.mdp, seed: 1)
        // The optimal teacher visits the 5 cells from the middle to the right end (5..9).
        let flipped = (1..<10).filter { noisy.probabilities(state: $0) != base.probabilities(state: $0) }
        #expect(flipped.count == 1 && flipped.allSatisfy { (5..<10).contains($0) })
    }
}
