import DistillCore
import Foundation

/// A random small problem: MDP, a stochastic teacher with exact values and random Q, a student.
struct RandomProblem {
    var mdp: TabularMDP
    var teacher: Teacher
    var student: StudentParameters

    init(mdp: TabularMDP, teacher: Teacher, student: StudentParameters) {
        self.mdp = mdp
        self.teacher = teacher
        self.student = student
    }

    init(seed: UInt64, states: Int = 4, actions: Int = 3, discount: Double = 1, endProbability: Double = 0.35) throws {
        mdp = try Environments.random(
            states: states, actions: actions, endProbability: endProbability, discount: discount, seed: seed
        ).mdp
        var rng = Xoshiro256StarStar(seed: seed &+ 1000)
        var probs: [Double] = []
        var q: [Double] = []
        for _ in 0..<mdp.stateCount {
            let w = (0..<actions).map { _ in 0.2 + rng.unitInterval() }
            let t = w.reduce(0, +)
            probs += w.map { $0 / t }
            q += (0..<actions).map { _ in 2 * rng.unitInterval() - 1 }
        }
        let values = try PolicyEvaluation.values(mdp, policy: probs)
        teacher = Teacher(
            identity: "random", stateCount: mdp.stateCount, actionCount: actions, probabilities: probs, values: values,
            actionValues: q)
        student = StudentParameters(stateCount: mdp.stateCount, actionCount: actions)
        for i in 0..<student.logits.count { student.logits[i] = 2 * rng.unitInterval() - 1 }
    }
}

/// The standard normal quantile, by bisection on erfc (accurate to ~1e-12).
func normalQuantile(_ p: Double) -> Double {
    var lo = -40.0
    var hi = 40.0
    for _ in 0..<200 {
        let mid = (lo + hi) / 2
        if 0.5 * erfc(-mid / 2.0.squareRoot()) < p { lo = mid } else { hi = mid }
    }
    return (lo + hi) / 2
}

/// Mean and standard error per coordinate of a set of vectors.
struct RunningMoments {
    var n = 0
    var sum: [Double]
    var sumSquares: [Double]
    init(size: Int) {
        sum = [Double](repeating: 0, count: size)
        sumSquares = sum
    }
    mutating func add(_ x: [Double]) {
        n += 1
        for i in 0..<x.count {
            sum[i] += x[i]
            sumSquares[i] += x[i] * x[i]
        }
    }
    var mean: [Double] { sum.map { $0 / Double(n) } }
    var standardError: [Double] {
        (0..<sum.count).map { i in
            let m = sum[i] / Double(n)
            let variance = max(0, (sumSquares[i] / Double(n) - m * m)) * Double(n) / Double(n - 1)
            return (variance / Double(n)).squareRoot()
        }
    }
}

/// Coordinates where the Monte-Carlo mean leaves the Bonferroni-corrected 99 % band around the
/// exact value (empty when all are inside).
func outsideConfidenceBand(
    mean: [Double], standardError: [Double], exact: [Double], familyLevel: Double = 0.01
)
    -> [String]
{
    let z = normalQuantile(1 - familyLevel / (2 * Double(exact.count)))
    var bad: [String] = []
    for i in 0..<exact.count {
        let tolerance = z * standardError[i] + 1e-9 * (1 + abs(exact[i]))
        if abs(mean[i] - exact[i]) > tolerance {
            bad.append("coordinate \(i): sampled \(mean[i]) ± \(standardError[i]), exact \(exact[i])")
        }
    }
    return bad
}
