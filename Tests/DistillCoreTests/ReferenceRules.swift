import DistillCore
import Foundation

/// An independent reference for the expected update of every method (METHODS.md eq. 1 and §4),
/// written from the definitions in METHODS.md and sharing no code with the production rules: its
/// own softmax, its own linear solver, its own occupancies and state-action pseudo-returns, its own
/// pseudo-rewards and loss gradients. It reads only the public data of ``TabularMDP``, ``Teacher``
/// and ``StudentParameters``; it never calls `ownStepReward`, `LossKernel`, `PolicyEvaluation`,
/// `StudentPolicy`, `ExactUpdate`, `VTrace` or `softmax`.
///
/// The update it computes is
///
///     u = Σ_s d_μ(s) [ Σ_a q(a|s) (Q̂(s,a) − b(s)) (e_a − π_θ(s)) − w(s) ∂ℓ(s)/∂z ],
///
/// with `d_μ` the expected number of visits of `s` in one episode under the behaviour `μ` (default
/// `q`), and `Q̂(s,a)` the expected pseudo-return `E_q[Σ_{i≥t} γ^{i−t} r̂_i | s_t = s, a_t = a]`,
/// obtained from a linear system over state-action pairs (the production code solves over states).
enum Reference {
    /// The options a method can be run with (everything the production rule can be configured with).
    struct Options {
        /// The control policy `q_θ`.
        var control: ControlPolicy = .student
        /// The behaviour that sets the state distribution (default `q`).
        var behaviour: [[Double]]? = nil
        /// Replaces `H×(π‖π_θ)` where the method uses it (fig2's agreement loss).
        var agreementScale: Double? = nil
        /// Rusu's temperature τ.
        var rusuTemperature = 0.01
        /// Kickstarting's λ (the weight of ℓ); 1 for every other method.
        var lossWeight = 1.0
        /// Overrides whether the student critic is subtracted as a baseline.
        var baseline: Bool? = nil
        /// Replaces the Monte-Carlo return of `+R` methods by `r̂_t + γV̂_θ(s_{t+1})` (TD(1)).
        var studentBootstrap = false
        /// The student critic `V̂_θ` (default: the exact value of the student).
        var critic: [Double]? = nil
    }

    // MARK: - Plain numerics

    /// `exp(z) / Σ exp(z)`, shifted by the maximum.
    static func softmaxRow(_ z: [Double]) -> [Double] {
        var m = z[0]
        for x in z where x > m { m = x }
        var e: [Double] = []
        var total = 0.0
        for x in z {
            e.append(exp(x - m))
            total += exp(x - m)
        }
        return e.map { $0 / total }
    }

    /// Solves `A x = b` by Gaussian elimination with partial pivoting.
    static func solve(_ matrix: [[Double]], _ rhs: [Double]) -> [Double] {
        var a = matrix
        var b = rhs
        let n = b.count
        for col in 0..<n {
            var pivot = col
            for r in col..<n where abs(a[r][col]) > abs(a[pivot][col]) { pivot = r }
            precondition(abs(a[pivot][col]) > 1e-300, "singular system in the reference")
            a.swapAt(col, pivot)
            b.swapAt(col, pivot)
            for r in (col + 1)..<n {
                let f = a[r][col] / a[col][col]
                if f == 0 { continue }
                for c in col..<n { a[r][c] -= f * a[col][c] }
                b[r] -= f * b[col]
            }
        }
        var x = [Double](repeating: 0, count: n)
        for r in stride(from: n - 1, through: 0, by: -1) {
            var s = b[r]
            for c in (r + 1)..<n { s -= a[r][c] * x[c] }
            x[r] = s / a[r][r]
        }
        return x
    }

    /// The transitions of `(s, a)` as `(next, probability, reward)`.
    static func outcomes(_ mdp: TabularMDP, _ s: Int, _ a: Int) -> [(next: Int, p: Double, r: Double)] {
        mdp.outcomes(state: s, action: a).map { ($0.next, $0.probability, $0.reward) }
    }

    /// `π_θ(·|s)` for every state (tied rows repeat).
    static func studentRows(_ p: StudentParameters) -> [[Double]] {
        (0..<p.stateCount).map { s in
            let r = Int(p.rowOfState[s])
            return softmaxRow(Array(p.logits[(r * p.actionCount)..<((r + 1) * p.actionCount)]))
        }
    }

    /// `π(·|s)` of the teacher for every state.
    static func teacherRows(_ t: Teacher) -> [[Double]] {
        (0..<t.stateCount).map { s in Array(t.probabilities[(s * t.actionCount)..<((s + 1) * t.actionCount)]) }
    }

    /// The control policy's rows.
    static func control(_ c: ControlPolicy, student pi: [[Double]], teacher: [[Double]]) -> [[Double]] {
        pi.indices.map { s in
            let na = pi[s].count
            return (0..<na).map { a in
                switch c {
                case .student: return pi[s][a]
                case .teacher: return teacher[s][a]
                case .uniform: return 1 / Double(na)
                case .mixture(let beta): return beta * teacher[s][a] + (1 - beta) * pi[s][a]
                }
            }
        }
    }

    /// Expected visits per episode, `d(s') = ρ0(s') + Σ_s d(s) Σ_a μ(a|s) P(s'|s,a)`; zero on terminals.
    static func visits(_ mdp: TabularMDP, _ mu: [[Double]]) -> [Double] {
        let live = (0..<mdp.stateCount).filter { !mdp.isTerminal[$0] }
        let index = Dictionary(uniqueKeysWithValues: live.enumerated().map { ($1, $0) })
        var m = [[Double]](repeating: [Double](repeating: 0, count: live.count), count: live.count)
        for (i, _) in live.enumerated() { m[i][i] = 1 }
        for s in live {
            for a in 0..<mdp.actionCount {
                for o in outcomes(mdp, s, a) {
                    guard let j = index[o.next] else { continue }
                    // Row j of (I − Pᵀ): −μ(a|s) P(s'=j|s,a) in column of s.
                    m[j][index[s]!] -= mu[s][a] * o.p
                }
            }
        }
        let x = solve(m, live.map { mdp.startDistribution[$0] })
        var d = [Double](repeating: 0, count: mdp.stateCount)
        for (i, s) in live.enumerated() { d[s] = x[i] }
        return d
    }

    /// The state-action values of a policy for a per-transition signal `f(s, a, s', r)` and a value
    /// `g(s')` gained on arriving in a live `s'` before the discounted continuation:
    /// `Q(s,a) = Σ_{s'} P(s'|s,a) [ f + 1[s' live]( g(s') + γ Σ_{a'} q(a'|s') Q(s',a') ) ]`.
    static func actionValues(
        _ mdp: TabularMDP, _ q: [[Double]], discount gamma: Double, arrival g: [Double],
        _ f: (Int, Int, Int, Double) -> Double
    ) -> [[Double]] {
        let na = mdp.actionCount
        let live = (0..<mdp.stateCount).filter { !mdp.isTerminal[$0] }
        let index = Dictionary(uniqueKeysWithValues: live.enumerated().map { ($1, $0) })
        let size = live.count * na
        var m = [[Double]](repeating: [Double](repeating: 0, count: size), count: size)
        var rhs = [Double](repeating: 0, count: size)
        for (i, s) in live.enumerated() {
            for a in 0..<na {
                let row = i * na + a
                m[row][row] += 1
                for o in outcomes(mdp, s, a) {
                    rhs[row] += o.p * f(s, a, o.next, o.r)
                    guard let j = index[o.next] else { continue }
                    rhs[row] += o.p * g[o.next]
                    for b in 0..<na { m[row][j * na + b] -= o.p * gamma * q[o.next][b] }
                }
            }
        }
        let x = solve(m, rhs)
        var out = [[Double]](repeating: [Double](repeating: 0, count: na), count: mdp.stateCount)
        for (i, s) in live.enumerated() { for a in 0..<na { out[s][a] = x[i * na + a] } }
        return out
    }

    /// `V(s) = Σ_a π(a|s) Q(s,a)` of the environment reward (discounted by the MDP's γ).
    static func values(_ mdp: TabularMDP, _ pi: [[Double]]) -> [Double] {
        let zero = [Double](repeating: 0, count: mdp.stateCount)
        let q = actionValues(mdp, pi, discount: mdp.discount, arrival: zero) { _, _, _, r in r }
        return (0..<mdp.stateCount).map { s in zip(pi[s], q[s]).reduce(0) { $0 + $1.0 * $1.1 } }
    }

    /// `log max(π, 1e-8)`: the documented floor of teacher log-probabilities.
    static func teacherLog(_ p: Double) -> Double { log(max(p, 1e-8)) }

    // MARK: - Losses

    enum Loss {
        case none
        case crossEntropy
        case reverseCrossEntropy
        case agreement(Double)
        case rusuKL(Double)
        case rusuNLL
        case rusuMSE
    }

    /// `ℓ(s)` for student row `pi`, logits `z`, teacher row `t` and Q row `qv`.
    static func lossValue(_ loss: Loss, pi: [Double], z: [Double], t: [Double], qv: [Double]?) -> Double {
        let n = pi.count
        switch loss {
        case .none: return 0
        case .crossEntropy: return -(0..<n).reduce(0) { $0 + (t[$1] == 0 ? 0 : t[$1] * log(pi[$1])) }
        case .reverseCrossEntropy: return -(0..<n).reduce(0) { $0 + pi[$1] * teacherLog(t[$1]) }
        case .agreement(let k): return -k * (0..<n).reduce(0) { $0 + t[$1] * pi[$1] }
        case .rusuKL(let tau):
            let p = softmaxRow(qv!.map { $0 / tau })
            return (0..<n).reduce(0) { $0 + (p[$1] == 0 ? 0 : p[$1] * (log(p[$1]) - log(pi[$1]))) }
        case .rusuNLL: return -log(pi[greedy(qv!)])
        case .rusuMSE: return (0..<n).reduce(0) { $0 + (qv![$1] - z[$1]) * (qv![$1] - z[$1]) }
        }
    }

    /// `∂ℓ(s)/∂z` (derived by hand from the definitions; checked by finite differences in
    /// `ReferenceRuleTests.referenceLossGradientsMatchFiniteDifferences`).
    static func lossGradient(_ loss: Loss, pi: [Double], z: [Double], t: [Double], qv: [Double]?) -> [Double] {
        let n = pi.count
        switch loss {
        case .none: return [Double](repeating: 0, count: n)
        case .crossEntropy:
            // −Σ_a t_a (δ_ab − π_b) = π_b Σt − t_b
            let total = t.reduce(0, +)
            return (0..<n).map { pi[$0] * total - t[$0] }
        case .reverseCrossEntropy:
            // −Σ_a π_a(δ_ab − π_b) L_a = −π_b (L_b − Σ_a π_a L_a)
            let l = t.map(teacherLog)
            let mean = (0..<n).reduce(0) { $0 + pi[$1] * l[$1] }
            return (0..<n).map { -pi[$0] * (l[$0] - mean) }
        case .agreement(let k):
            let mean = (0..<n).reduce(0) { $0 + pi[$1] * t[$1] }
            return (0..<n).map { -k * pi[$0] * (t[$0] - mean) }
        case .rusuKL(let tau):
            let p = softmaxRow(qv!.map { $0 / tau })
            return (0..<n).map { pi[$0] - p[$0] }
        case .rusuNLL:
            let g = greedy(qv!)
            return (0..<n).map { pi[$0] - ($0 == g ? 1 : 0) }
        case .rusuMSE:
            return (0..<n).map { -2 * (qv![$0] - z[$0]) }
        }
    }

    /// The first maximiser.
    static func greedy(_ x: [Double]) -> Int {
        var best = 0
        for i in x.indices where x[i] > x[best] { best = i }
        return best
    }

    // MARK: - Methods from METHODS.md §2

    /// What a method is, read from METHODS.md's tables (not from `Method.rule`).
    struct Definition {
        var loss: Loss = .none
        var gated = false
        /// `r̂` of the transition `(s, a, s')` before `+R`.
        var pseudo: Pseudo = .none
        var addsReward = false
        var returns: Returns = .monteCarlo
        var baseline = false
    }

    enum Pseudo { case none, teacherLog, negativeNextLoss, nextTeacherLog, valueShaping, kl }
    enum Returns { case monteCarlo, teacherBootstrap, studentBootstrap, zero }

    /// Table 1's control policy: the teacher for teacher distillation (and Rusu's variants), the
    /// student for everything else.
    static func defaultControl(_ method: Method) -> ControlPolicy {
        switch method {
        case .teacherDistill, .teacherDistillKL, .teacherDistillNLL, .teacherDistillMSE: .teacher
        default: .student
        }
    }

    static func definition(_ method: Method, _ o: Options) -> Definition {
        let ce: Loss = o.agreementScale.map { .agreement($0) } ?? .crossEntropy
        var d = Definition()
        switch method {
        case .teacherDistill: d.loss = ce
        case .teacherDistillKL: d.loss = .rusuKL(o.rusuTemperature)
        case .teacherDistillNLL: d.loss = .rusuNLL
        case .teacherDistillMSE: d.loss = .rusuMSE
        case .onPolicyDistill: d.loss = ce
        case .onPolicyDistillR, .kickstarting: (d.loss, d.addsReward) = (ce, true)
        case .entropyRegularised: d.pseudo = .teacherLog
        case .entropyRegularisedR: (d.pseudo, d.addsReward) = (.teacherLog, true)
        case .nDistill: (d.loss, d.pseudo) = (ce, .negativeNextLoss)
        case .nDistillR: (d.loss, d.pseudo, d.addsReward) = (ce, .negativeNextLoss, true)
        case .expEntropyRegularised: (d.loss, d.pseudo) = (.reverseCrossEntropy, .nextTeacherLog)
        case .expEntropyRegularisedR: (d.loss, d.pseudo, d.addsReward) = (.reverseCrossEntropy, .nextTeacherLog, true)
        case .teacherVReward: (d.pseudo, d.addsReward) = (.valueShaping, true)
        case .vGated: (d.loss, d.gated, d.addsReward) = (ce, true, true)
        case .tdTeacherV: (d.addsReward, d.returns) = (true, .teacherBootstrap)
        case .tdZeroV: (d.addsReward, d.returns) = (true, .zero)
        case .klRegularised: d.pseudo = .kl
        case .klRegularisedR: (d.pseudo, d.addsReward) = (.kl, true)
        case .baseline: (d.addsReward, d.baseline) = (true, true)
        case .actorCritic: (d.addsReward, d.returns, d.baseline) = (true, .studentBootstrap, true)
        }
        if let b = o.baseline { d.baseline = b }
        if o.studentBootstrap && d.addsReward && d.returns == .monteCarlo { d.returns = .studentBootstrap }
        return d
    }

    /// The expected update of one episode of `method` (METHODS.md eq. 1, §4).
    static func expectedUpdate(
        _ method: Method, mdp: TabularMDP, teacher: Teacher, student: StudentParameters, discount gamma: Double,
        options o: Options = Options()
    ) -> [Double] {
        let def = definition(method, o)
        let n = mdp.stateCount
        let na = mdp.actionCount
        let pi = studentRows(student)
        let t = teacherRows(teacher)
        let q = control(o.control, student: pi, teacher: t)
        let d = visits(mdp, o.behaviour ?? q)
        let critic = o.critic ?? values(mdp, pi)
        let vT = teacher.values
        func z(_ s: Int) -> [Double] {
            let r = Int(student.rowOfState[s])
            return Array(student.logits[(r * na)..<((r + 1) * na)])
        }
        func qv(_ s: Int) -> [Double]? {
            teacher.actionValues.map { Array($0[(s * na)..<((s + 1) * na)]) }
        }
        func ell(_ s: Int) -> Double { lossValue(def.loss, pi: pi[s], z: z(s), t: t[s], qv: qv(s)) }
        // Weight of ℓ at s: λ, times the gate 1[V_π(s) > V̂_θ(s)] for v-gated (not inside n-distill's r̂).
        func weight(_ s: Int) -> Double { def.gated ? (vT[s] > critic[s] ? o.lossWeight : 0) : o.lossWeight }
        // r̂ of the transition (s, a, s', r), the part fixed by it (METHODS.md §2 tables).
        func pseudo(_ s: Int, _ a: Int, _ next: Int, _ r: Double) -> Double {
            let live = !mdp.isTerminal[next]
            var x = def.addsReward ? r : 0
            switch def.pseudo {
            case .none, .nextTeacherLog: break
            case .teacherLog: x += teacherLog(t[s][a])
            case .negativeNextLoss: x -= live ? o.lossWeight * ell(next) : 0
            case .valueShaping: x += (live ? gamma * vT[next] : 0) - vT[s]
            case .kl: x += teacherLog(t[s][a]) - log(pi[s][a])
            }
            return x
        }
        // exp-entropy's r̂_i = log π(a_{i+1}|s_{i+1}): expected under q on arriving in a live s'.
        var arrival = [Double](repeating: 0, count: n)
        if def.pseudo == .nextTeacherLog {
            for s in 0..<n where !mdp.isTerminal[s] {
                arrival[s] = (0..<na).reduce(0) { $0 + q[s][$1] * teacherLog(t[s][$1]) }
            }
        }
        var qHat: [[Double]]
        switch def.returns {
        case .monteCarlo:
            qHat = actionValues(mdp, q, discount: gamma, arrival: arrival, pseudo)
        case .teacherBootstrap, .studentBootstrap, .zero:
            let boot: [Double] =
                def.returns == .teacherBootstrap
                ? vT : def.returns == .studentBootstrap ? critic : Array(repeating: 0, count: n)
            qHat = (0..<n).map { s in
                (0..<na).map { a in
                    mdp.isTerminal[s]
                        ? 0
                        : outcomes(mdp, s, a).reduce(0) { acc, x in
                            acc + x.p
                                * (pseudo(s, a, x.next, x.r)
                                    + (mdp.isTerminal[x.next] ? 0 : arrival[x.next] + gamma * boot[x.next]))
                        }
                }
            }
        }
        var u = [Double](repeating: 0, count: student.logits.count)
        for s in 0..<n where !mdp.isTerminal[s] {
            let base = Int(student.rowOfState[s]) * na
            // A baseline is subtracted from a return; a method whose R̂ is identically zero (pure
            // distillation: no r̂, no r, no bootstrap) has no score term for it to enter.
            let hasScore = def.pseudo != .none || def.addsReward || def.returns != .monteCarlo
            let b = def.baseline && hasScore ? critic[s] : 0
            for a in 0..<na {
                let w = d[s] * q[s][a] * (qHat[s][a] - b)
                for c in 0..<na { u[base + c] += w * ((c == a ? 1 : 0) - pi[s][c]) }
            }
            let g = lossGradient(def.loss, pi: pi[s], z: z(s), t: t[s], qv: qv(s))
            for c in 0..<na { u[base + c] -= d[s] * weight(s) * g[c] }
        }
        return u
    }

    // MARK: - Objectives for gradient checks

    /// `E_q[Σ_t f(s_t, a_t, s_{t+1}, r_t)]` (undiscounted sum over one episode).
    static func episodeSum(
        _ mdp: TabularMDP, _ q: [[Double]], _ f: (Int, Int, Int, Double) -> Double
    ) -> Double {
        let d = visits(mdp, q)
        var total = 0.0
        for s in 0..<mdp.stateCount where !mdp.isTerminal[s] {
            for a in 0..<mdp.actionCount {
                for o in outcomes(mdp, s, a) { total += d[s] * q[s][a] * o.p * f(s, a, o.next, o.r) }
            }
        }
        return total
    }

    /// Central-difference gradient of `f` at `theta`.
    static func numericalGradient(_ theta: [Double], h: Double = 1e-5, _ f: ([Double]) -> Double) -> [Double] {
        (0..<theta.count).map { i in
            var plus = theta
            var minus = theta
            plus[i] += h
            minus[i] -= h
            return (f(plus) - f(minus)) / (2 * h)
        }
    }
}

/// A random small episodic problem built without the production generators: 2–4 live states,
/// one or two terminal states, 2–4 actions, transitions with 1–3 outcomes and a guaranteed
/// chance of ending, random rewards, a random teacher (policy, values with non-zero terminal
/// entries to exercise the "terminal next state has no pseudo-reward" convention, Q-values),
/// and a random student (optionally with two states tied to one row).
struct ReferenceProblem {
    var mdp: TabularMDP
    var teacher: Teacher
    var student: StudentParameters

    init(mdp: TabularMDP, teacher: Teacher, student: StudentParameters) {
        self.mdp = mdp
        self.teacher = teacher
        self.student = student
    }

    init(seed: UInt64, discount: Double, tied: Bool = false, zeroTeacherProbability: Bool = false) {
        var rng = Xoshiro256StarStar(seed: seed)
        func u() -> Double { rng.unitInterval() }
        let liveCount = 2 + Int(rng.next() % 3)
        let terminalCount = 1 + Int(rng.next() % 2)
        let na = 2 + Int(rng.next() % 3)
        let n = liveCount + terminalCount
        var table: [[[Outcome]]] = []
        for _ in 0..<liveCount {
            var row: [[Outcome]] = []
            for _ in 0..<na {
                let k = 1 + Int(rng.next() % 3)
                let end = 0.25 + 0.3 * u()
                var w = (0..<k).map { _ in 0.1 + u() }
                let total = w.reduce(0, +)
                w = w.map { $0 / total * (1 - end) }
                var list = w.map {
                    Outcome(next: Int(rng.next() % UInt64(liveCount)), probability: $0, reward: 2 * u() - 1)
                }
                list.append(
                    Outcome(
                        next: liveCount + Int(rng.next() % UInt64(terminalCount)), probability: end, reward: 4 * u() - 2
                    ))
                row.append(list)
            }
            table.append(row)
        }
        var start = (0..<liveCount).map { _ in 0.1 + u() }
        let st = start.reduce(0, +)
        start = start.map { $0 / st } + [Double](repeating: 0, count: terminalCount)
        mdp = TabularMDP(
            stateCount: n, actionCount: na, discount: discount, startDistribution: start,
            isTerminal: [Bool](repeating: false, count: liveCount) + [Bool](repeating: true, count: terminalCount)
        ) { s, a in table[s][a] }
        var probs: [Double] = []
        for s in 0..<n {
            var row = Reference.softmaxRow((0..<na).map { _ in 3 * u() - 1.5 })
            if zeroTeacherProbability && s == 0 {
                row[0] = 0
                let total = row.reduce(0, +)
                row = row.map { $0 / total }
            }
            probs += row
        }
        let values = (0..<n).map { _ in 4 * u() - 2 }
        let q = (0..<(n * na)).map { _ in 2 * u() - 1 }
        teacher = Teacher(
            identity: "reference-random", stateCount: n, actionCount: na, probabilities: probs, values: values,
            actionValues: q)
        if tied {
            // States 0 and 1 share row 0; the rest have their own rows.
            let rows = (0..<n).map { Int32(max(0, $0 - 1)) }
            student = StudentParameters(rowOfState: rows, rowCount: n - 1, actionCount: na)
        } else {
            student = StudentParameters(stateCount: n, actionCount: na)
        }
        for i in 0..<student.logits.count { student.logits[i] = 3 * u() - 1.5 }
    }
}

/// The largest `|x − y| / (1 + |y|)` over coordinates.
func relativeDistance(_ x: [Double], _ y: [Double]) -> Double {
    precondition(x.count == y.count, "vectors differ in length")
    return zip(x, y).reduce(0) { max($0, abs($1.0 - $1.1) / (1 + abs($1.1))) }
}
