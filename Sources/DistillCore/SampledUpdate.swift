import Foundation

/// Where the teacher's outputs for a "slot" come from: a step of a trajectory (outputs that arrived
/// over the network) or a state id of a tabular teacher. The update-rule code is generic over this
/// protocol so that the runtime's path and the tabular fast path share it.
public protocol TeacherOutputs {
    /// `π(a|slot)`.
    func teacherProbability(_ slot: Int, _ action: Int) -> Double
    /// `log max(π(a|slot), floor)` (``teacherLogProbabilityFloor``).
    func teacherLogProbability(_ slot: Int, _ action: Int) -> Double
    /// `V_π(slot)`.
    func teacherValue(_ slot: Int) -> Double
    /// `Q(slot, a)`; only called for losses that need Q-values.
    func teacherActionValue(_ slot: Int, _ action: Int) -> Double
}

/// One episode as the update rules read it: steps `t = 0..<length` with state, action, reward and
/// behaviour probability, the final state at `t = length`, and the teacher's outputs per step
/// (slot = step index, `0...length`).
public protocol EpisodeView: TeacherOutputs {
    /// Number of steps `T`.
    var length: Int { get }
    /// Whether the episode terminated at `s_T` (false: truncated by a length cap).
    var terminated: Bool { get }
    /// `s_t` for `t` in `0...T`.
    func state(_ t: Int) -> Int
    /// `a_t`.
    func action(_ t: Int) -> Int
    /// `r_t`.
    func reward(_ t: Int) -> Double
    /// `μ(a_t|s_t)`, the probability the behaviour policy gave the action taken.
    func behaviourProbability(_ t: Int) -> Double
}

/// A tabular teacher read by state id (slot = state).
public struct TabularTeacherOutputs: TeacherOutputs, Sendable {
    /// The teacher.
    public let teacher: Teacher

    /// Wraps a teacher.
    public init(_ teacher: Teacher) { self.teacher = teacher }

    /// `π(a|s)`.
    @inlinable public func teacherProbability(_ slot: Int, _ action: Int) -> Double {
        teacher.probabilities[slot * teacher.actionCount + action]
    }
    /// `log π(a|s)` with the floor.
    @inlinable public func teacherLogProbability(_ slot: Int, _ action: Int) -> Double {
        teacher.logProbabilities[slot * teacher.actionCount + action]
    }
    /// `V_π(s)`.
    @inlinable public func teacherValue(_ slot: Int) -> Double { teacher.values[slot] }
    /// `Q(s,a)`.
    @inlinable public func teacherActionValue(_ slot: Int, _ action: Int) -> Double {
        teacher.actionValues![slot * teacher.actionCount + action]
    }
}

/// V-trace clipping constants (Espeholt et al. 2018; METHODS.md §3); defaults `ρ̄ = c̄ = λ = 1`.
public struct VTraceClipping: Sendable, Hashable, Codable {
    /// `ρ̄`, the clip of the score-function weight.
    public var rhoBar: Double = 1
    /// `c̄`, the clip of the trace weights.
    public var cBar: Double = 1
    /// `λ`, the trace decay.
    public var lambda: Double = 1

    /// Creates clipping constants.
    public init(rhoBar: Double = 1, cBar: Double = 1, lambda: Double = 1) {
        precondition(rhoBar > 0 && cBar > 0 && lambda >= 0 && lambda <= 1, "need ρ̄ > 0, c̄ > 0, λ in [0, 1]")
        self.rhoBar = rhoBar
        self.cBar = cBar
        self.lambda = lambda
    }
}

/// V-trace-style importance weights and corrected returns (Espeholt et al. 2018, METHODS.md §3).
public enum VTrace {
    /// `ρ_t = min(ρ̄, q/μ)` and `c_t = λ·min(c̄, q/μ)` for target probability `q` (the control
    /// policy with the current student) and behaviour probability `μ` of the action taken.
    @inlinable
    public static func weights(target: Double, behaviour: Double, clipping: VTraceClipping) -> (rho: Double, c: Double)
    {
        precondition(behaviour > 0, "behaviour probability of a taken action must be positive, got \(behaviour)")
        let ratio = target / behaviour
        return (min(clipping.rhoBar, ratio), clipping.lambda * min(clipping.cBar, ratio))
    }

    /// Corrected pseudo-returns by the backward recursion
    /// `Ĝ_t = x_t + c_{t+1}·(y_{t+1} + γ Ĝ_{t+1})`, with the term after the last step zero.
    ///
    /// `x_t` is the part of `r̂_t` fixed by `(s_t, a_t, s_{t+1})`; `y_t` the part of `r̂_{t−1}`
    /// fixed by the next action `a_t` (only exp. entropy regularised has one). With no clipping
    /// and `λ = 1`, `E_μ[Ĝ_t | s_t, a_t]` is the pseudo-return of the target policy.
    public static func correctedReturns(
        own x: [Double], nextAction y: [Double], traces c: [Double], discount: Double
    )
        -> [Double]
    {
        precondition(x.count == y.count && x.count == c.count, "x, y, c must have one entry per step")
        var g = [Double](repeating: 0, count: x.count)
        var carry = 0.0
        for t in stride(from: x.count - 1, through: 0, by: -1) {
            g[t] = x[t] + carry
            carry = c[t] * (y[t] + discount * g[t])
        }
        return g
    }
}

/// Everything an update needs besides the rule and the episode.
public struct UpdateContext: Sendable {
    /// Discount `γ` of the pseudo-return.
    public var discount: Double
    /// The control policy `q_θ` the update's expectation is defined under (target of the weights).
    public var control: ControlPolicy
    /// V-trace clipping.
    public var clipping: VTraceClipping
    /// The student critic `V̂_{π_θ}(s)` per state, for rules with a gate, baseline or TD bootstrap.
    public var studentValues: [Double]?

    /// Creates a context.
    public init(
        discount: Double, control: ControlPolicy, clipping: VTraceClipping = .init(), studentValues: [Double]? = nil
    ) {
        self.discount = discount
        self.control = control
        self.clipping = clipping
        self.studentValues = studentValues
    }
}

/// Where the update rules write: the direct part of each logit and the per-row weight of the
/// `−π_θ(row)` part (see ``UpdateAccumulator``). ``UpdateAccumulator`` is the public sink; the
/// sampled update writes through a pointer-backed sink with the same semantics.
public protocol UpdateSink {
    /// Number of actions (row length).
    var actionCount: Int { get }
    /// Marks a row as receiving a contribution.
    mutating func touch(_ row: Int)
    /// Adds to the direct part of logit `index`.
    mutating func addDirect(_ index: Int, _ weight: Double)
    /// Adds to the `−π_θ(row)` weight of `row`.
    mutating func addPolicyScale(_ row: Int, _ weight: Double)
}

extension UpdateSink {
    /// Adds `weight·∇_z log π_θ(action|row) = weight·(e_action − π_θ(row))`.
    @inlinable
    public mutating func addScore(row: Int, action: Int, weight: Double) {
        touch(row)
        addDirect(row * actionCount + action, weight)
        addPolicyScale(row, weight)
    }
}

/// The pointer-backed sink used inside ``accumulateSampledUpdate(_:policy:rule:context:into:)``:
/// valid only within the scope that pinned the accumulator's storage.
@usableFromInline
struct UnsafeUpdateSink: UpdateSink {
    @usableFromInline let direct: UnsafeMutablePointer<Double>
    @usableFromInline let scale: UnsafeMutablePointer<Double>
    @usableFromInline let touched: UnsafeMutablePointer<Bool>
    @usableFromInline let rows: UnsafeMutablePointer<Int32>
    @usableFromInline var count: Int
    @usableFromInline let actionCount: Int

    @inlinable
    init(
        direct: UnsafeMutablePointer<Double>, scale: UnsafeMutablePointer<Double>, touched: UnsafeMutablePointer<Bool>,
        rows: UnsafeMutablePointer<Int32>, count: Int, actionCount: Int
    ) {
        self.direct = direct
        self.scale = scale
        self.touched = touched
        self.rows = rows
        self.count = count
        self.actionCount = actionCount
    }

    @inlinable
    mutating func touch(_ row: Int) {
        if !touched[row] {
            touched[row] = true
            rows[count] = Int32(row)
            count += 1
        }
    }

    @inlinable
    func addDirect(_ index: Int, _ weight: Double) { direct[index] += weight }

    @inlinable
    func addPolicyScale(_ row: Int, _ weight: Double) { scale[row] += weight }
}

/// Accumulates update directions over episodes without allocating per step.
///
/// The score term `w·∇_z log π_θ(a|s) = w·(e_a − π_θ(s))` and the cross-entropy term
/// `w·(π(s) − π_θ(s))` both end in `−π_θ(s)·w`; that part is summed per row in ``policyScale`` and
/// applied once in ``finish(policy:)``, so a step costs O(1) for the score term.
public struct UpdateAccumulator: Sendable, UpdateSink {
    /// Parts of the update added directly, row-major `[rows × actions]`.
    public var direct: [Double]
    /// Per row, the total weight of the `−π_θ(row)` parts.
    public var policyScale: [Double]
    /// Number of actions.
    public let actionCount: Int
    /// Episodes accumulated since the last ``finish(policy:)``.
    public var episodes: Int = 0
    /// Steps accumulated since the last ``finish(policy:)``.
    public var steps: Int = 0
    /// Whether each row received a contribution since the last finish.
    public var isTouched: [Bool]
    /// Storage for the touched rows (capacity one per row; the first ``touchedCount`` are valid).
    public var touchedRowStorage: [Int32]
    /// Number of rows touched since the last finish.
    public var touchedCount = 0

    /// An empty accumulator for `rowCount × actionCount` parameters.
    public init(rowCount: Int, actionCount: Int) {
        direct = [Double](repeating: 0, count: rowCount * actionCount)
        policyScale = [Double](repeating: 0, count: rowCount)
        isTouched = [Bool](repeating: false, count: rowCount)
        touchedRowStorage = [Int32](repeating: 0, count: rowCount)
        self.actionCount = actionCount
    }

    /// The rows that received a contribution, in first-touch order.
    public var touchedRows: ArraySlice<Int32> { touchedRowStorage[0..<touchedCount] }

    /// Marks `row` as receiving a contribution (rows never touched stay exactly zero).
    @inlinable
    public mutating func touch(_ row: Int) {
        if !isTouched[row] {
            isTouched[row] = true
            touchedRowStorage[touchedCount] = Int32(row)
            touchedCount += 1
        }
    }

    /// Adds `weight` to the direct part of logit `index` (row-major).
    @inlinable
    public mutating func addDirect(_ index: Int, _ weight: Double) { direct[index] += weight }

    /// Adds `weight` to the `−π_θ(row)` part of row `row`.
    @inlinable
    public mutating func addPolicyScale(_ row: Int, _ weight: Double) { policyScale[row] += weight }

    /// The update `direct − π_θ·scale`, divided by the number of episodes when `perEpisode`
    /// (an unbiased estimate of the expected update of one episode); resets the accumulator.
    public mutating func finish(policy: StudentPolicy, perEpisode: Bool = true) -> [Double] {
        let na = actionCount
        var out = [Double](repeating: 0, count: direct.count)
        let scale = perEpisode && episodes > 0 ? 1 / Double(episodes) : 1
        for r32 in touchedRows {
            let r = Int(r32)
            let w = policyScale[r]
            for a in 0..<na { out[r * na + a] = (direct[r * na + a] - policy.probabilities[r * na + a] * w) * scale }
        }
        clear()
        return out
    }

    /// The fast path of SGD: `θ ← θ + α·u` on the touched rows only (the others have `u = 0`),
    /// refreshing those rows of the policy cache; returns `‖u‖²`. Same `u` as ``finish(policy:perEpisode:)``.
    public mutating func applyStochasticGradientStep(
        learningRate: Double, to parameters: inout StudentParameters, policy: inout StudentPolicy,
        perEpisode: Bool = true
    ) -> Double {
        let na = actionCount
        let scale = perEpisode && episodes > 0 ? 1 / Double(episodes) : 1
        var squared = 0.0
        for r32 in touchedRows {
            let r = Int(r32)
            let w = policyScale[r]
            for a in 0..<na {
                let u = (direct[r * na + a] - policy.probabilities[r * na + a] * w) * scale
                squared += u * u
                parameters.logits[r * na + a] += learningRate * u
            }
        }
        for r32 in touchedRows { policy.refresh(row: Int(r32), from: parameters) }
        clear()
        return squared
    }

    /// Zeroes the touched rows and the counters.
    public mutating func clear() {
        let na = actionCount
        for r32 in touchedRows {
            let r = Int(r32)
            for a in 0..<na { direct[r * na + a] = 0 }
            policyScale[r] = 0
            isTouched[r] = false
        }
        touchedCount = 0
        episodes = 0
        steps = 0
    }
}

/// The per-state losses ℓ: value and negative gradient with respect to the logits.
public enum LossKernel {
    /// `ℓ(slot)` for the student row `row` (see ``DistillationLoss`` for the formulas).
    @inlinable
    public static func value<O: TeacherOutputs>(
        _ loss: DistillationLoss, _ o: O, slot: Int, policy: StudentPolicy, row: Int
    ) -> Double {
        let na = policy.actionCount
        let base = row * na
        switch loss {
        case .none:
            return 0
        case .crossEntropy:
            var h = 0.0
            for a in 0..<na {
                let p = o.teacherProbability(slot, a)
                if p != 0 { h -= p * policy.logProbabilities[base + a] }
            }
            return h
        case .reverseCrossEntropy:
            var h = 0.0
            for a in 0..<na { h -= policy.probabilities[base + a] * o.teacherLogProbability(slot, a) }
            return h
        case .agreement(let k):
            var h = 0.0
            for a in 0..<na { h -= k * o.teacherProbability(slot, a) * policy.probabilities[base + a] }
            return h
        case .rusuKL(let tau):
            var m = -Double.infinity
            for a in 0..<na { m = max(m, o.teacherActionValue(slot, a) / tau) }
            var z = 0.0
            for a in 0..<na { z += Foundation.exp(o.teacherActionValue(slot, a) / tau - m) }
            let logZ = m + Foundation.log(z)
            var kl = 0.0
            for a in 0..<na {
                let lp = o.teacherActionValue(slot, a) / tau - logZ
                kl += Foundation.exp(lp) * (lp - policy.logProbabilities[base + a])
            }
            return kl
        case .rusuNLL:
            return -policy.logProbabilities[base + greedyAction(o, slot: slot, actionCount: na)]
        case .rusuMSE:
            var e = 0.0
            for a in 0..<na {
                let d = o.teacherActionValue(slot, a) - policy.logits[base + a]
                e += d * d
            }
            return e
        }
    }

    /// Adds `−weight·∂ℓ(slot)/∂z_θ(row,·)` to the accumulator.
    @inlinable
    public static func addNegativeGradient<O: TeacherOutputs, S: UpdateSink>(
        _ loss: DistillationLoss, _ o: O, slot: Int, policy: StudentPolicy, row: Int, weight w: Double,
        into acc: inout S
    ) {
        let na = policy.actionCount
        let base = row * na
        if loss != .none { acc.touch(row) }
        switch loss {
        case .none:
            return
        case .crossEntropy:
            // −∂H×(π‖π_θ)/∂z = π − π_θ
            for a in 0..<na { acc.addDirect(base + a, w * o.teacherProbability(slot, a)) }
            acc.addPolicyScale(row, w)
        case .reverseCrossEntropy, .agreement:
            // ℓ = −Σ_a π_θ(a) f(a) with f = log π or κπ:  −∂ℓ/∂z_b = π_θ(b)(f(b) + ℓ)
            let l = value(loss, o, slot: slot, policy: policy, row: row)
            for a in 0..<na {
                let f: Double
                if case .agreement(let k) = loss {
                    f = k * o.teacherProbability(slot, a)
                } else {
                    f = o.teacherLogProbability(slot, a)
                }
                acc.addDirect(base + a, w * policy.probabilities[base + a] * (f + l))
            }
        case .rusuKL(let tau):
            var m = -Double.infinity
            for a in 0..<na { m = max(m, o.teacherActionValue(slot, a) / tau) }
            var z = 0.0
            for a in 0..<na { z += Foundation.exp(o.teacherActionValue(slot, a) / tau - m) }
            for a in 0..<na { acc.addDirect(base + a, w * Foundation.exp(o.teacherActionValue(slot, a) / tau - m) / z) }
            acc.addPolicyScale(row, w)
        case .rusuNLL:
            acc.addDirect(base + greedyAction(o, slot: slot, actionCount: na), w)
            acc.addPolicyScale(row, w)
        case .rusuMSE:
            for a in 0..<na {
                acc.addDirect(base + a, w * 2 * (o.teacherActionValue(slot, a) - policy.logits[base + a]))
            }
        }
    }

    /// `argmax_a Q(slot, a)`, the first on ties.
    @inlinable
    public static func greedyAction<O: TeacherOutputs>(_ o: O, slot: Int, actionCount: Int) -> Int {
        var best = 0
        for a in 1..<max(1, actionCount) where o.teacherActionValue(slot, a) > o.teacherActionValue(slot, best) {
            best = a
        }
        return best
    }
}

/// The part `x_t` of the pseudo-reward `r̂_t` (plus `r_t` for `+R`) fixed by `(s_t, a_t, s_{t+1})`;
/// shared by the sampled and the exact update so that both use one definition (METHODS.md §2).
@inlinable
public func ownStepReward<O: TeacherOutputs>(
    _ rule: UpdateRule, _ o: O, slot: Int, nextSlot: Int, nextIsLive: Bool, action: Int, reward: Double,
    policy: StudentPolicy, row: Int, nextRow: Int, discount: Double
) -> Double {
    var x = rule.addsReward ? reward : 0
    switch rule.pseudoReward {
    case .none, .nextTeacherLogProbability:
        break
    case .teacherLogProbability:
        x += o.teacherLogProbability(slot, action)
    case .negativeNextLoss:
        if nextIsLive {
            x -=
                stepLossWeight(rule, o, slot: nextSlot, studentValue: nil)
                * LossKernel.value(rule.loss, o, slot: nextSlot, policy: policy, row: nextRow)
        }
    case .teacherValueShaping:
        x += (nextIsLive ? discount * o.teacherValue(nextSlot) : 0) - o.teacherValue(slot)
    case .klRegularised:
        x += o.teacherLogProbability(slot, action) - policy.logProbabilities[row * policy.actionCount + action]
    }
    return x
}

/// The weight of ℓ at a slot: the rule's λ, times the gate `1[V_π(s) > V̂_{π_θ}(s)]` for v-gated.
@inlinable
public func stepLossWeight<O: TeacherOutputs>(_ rule: UpdateRule, _ o: O, slot: Int, studentValue: Double?) -> Double {
    if rule.gatesLossOnValue, let v = studentValue { return o.teacherValue(slot) > v ? rule.lossWeight : 0 }
    return rule.lossWeight
}

/// Adds the sampled update of one episode (METHODS.md eq. 1 with V-trace weights, §3) to `acc`:
///
///     Σ_t [ −w_t ∇ℓ(s_t) + ρ_t ∇log π_θ(a_t|s_t) (Ĝ_t − b(s_t)) ],
///     Ĝ_t = x_t + c_{t+1}(y_{t+1} + γ Ĝ_{t+1})   (Monte Carlo), or
///     Ĝ_t = x_t + c_{t+1} y_{t+1} + γ V(s_{t+1})   (one-step bootstrapped from V).
///
/// `ρ_t, c_t` compare the control policy evaluated with the CURRENT student (`policy`) with the
/// recorded behaviour probability; ℓ terms are not weighted (so under a behaviour `μ ≠ q` the
/// states are distributed as under `μ`, as in V-trace). The generic parameter specialises for
/// the tabular fast path and for network trajectories alike.
@inlinable
public func accumulateSampledUpdate<E: EpisodeView>(
    _ e: E, policy: StudentPolicy, rule: UpdateRule, context: UpdateContext, into acc: inout UpdateAccumulator
) {
    precondition(acc.actionCount == policy.actionCount, "accumulator and student disagree on |A|")
    precondition(
        acc.policyScale.count * policy.actionCount == policy.probabilities.count, "accumulator has the wrong shape")
    let count = acc.touchedCount
    let newCount = acc.direct.withUnsafeMutableBufferPointer { direct in
        acc.policyScale.withUnsafeMutableBufferPointer { scale in
            acc.isTouched.withUnsafeMutableBufferPointer { touched in
                acc.touchedRowStorage.withUnsafeMutableBufferPointer { rows in
                    var sink = UnsafeUpdateSink(
                        direct: direct.baseAddress!, scale: scale.baseAddress!, touched: touched.baseAddress!,
                        rows: rows.baseAddress!, count: count, actionCount: policy.actionCount)
                    accumulateEpisode(e, policy: policy, rule: rule, context: context, into: &sink)
                    return sink.count
                }
            }
        }
    }
    acc.touchedCount = newCount
    acc.episodes += 1
    acc.steps += e.length
}

/// The body of ``accumulateSampledUpdate(_:policy:rule:context:into:)``, generic over the sink.
@inlinable
public func accumulateEpisode<E: EpisodeView, S: UpdateSink>(
    _ e: E, policy: StudentPolicy, rule: UpdateRule, context: UpdateContext, into acc: inout S
) {
    let length = e.length
    let na = policy.actionCount
    let gamma = context.discount
    let uniform = 1 / Double(na)
    precondition(
        !rule.needsStudentValues || context.studentValues != nil, "this rule needs the student critic's values")
    let studentValues = context.studentValues ?? []
    let hasScore = rule.hasScoreTerm
    let hasLoss = rule.loss != .none
    var carry = 0.0
    var nextY = 0.0
    var t = length - 1
    while t >= 0 {
        let s = e.state(t)
        let a = e.action(t)
        let row = Int(policy.rowOfState[s])
        let s1 = e.state(t + 1)
        let nextIsLive = t + 1 < length || !e.terminated
        let target = context.control.probability(
            student: policy.probabilities[row * na + a], teacher: e.teacherProbability(t, a), uniform: uniform)
        let (rho, c) = VTrace.weights(target: target, behaviour: e.behaviourProbability(t), clipping: context.clipping)
        let x = ownStepReward(
            rule, e, slot: t, nextSlot: t + 1, nextIsLive: nextIsLive, action: a, reward: e.reward(t), policy: policy,
            row: row, nextRow: Int(policy.rowOfState[s1]), discount: gamma)
        // One-step forms keep the next action's pseudo-reward c_{t+1}·y_{t+1} (exp-entropy's
        // log π(a_{t+1}|s_{t+1})): it is part of r̂_t, not of what the bootstrap replaces.
        let g: Double
        switch rule.returnEstimate {
        case .monteCarlo: g = x + carry
        case .bootstrapTeacherValue: g = x + nextY + (nextIsLive ? gamma * e.teacherValue(t + 1) : 0)
        case .bootstrapStudentValue: g = x + nextY + (nextIsLive ? gamma * studentValues[s1] : 0)
        case .bootstrapZero: g = x + nextY
        }
        let y = rule.pseudoReward == .nextTeacherLogProbability ? e.teacherLogProbability(t, a) : 0
        carry = c * (y + gamma * g)
        nextY = c * y
        if hasScore {
            let advantage = rule.subtractsBaseline ? g - studentValues[s] : g
            acc.addScore(row: row, action: a, weight: rho * advantage)
        }
        if hasLoss {
            let w = stepLossWeight(rule, e, slot: t, studentValue: rule.gatesLossOnValue ? studentValues[s] : nil)
            if w != 0 {
                LossKernel.addNegativeGradient(rule.loss, e, slot: t, policy: policy, row: row, weight: w, into: &acc)
            }
        }
        t -= 1
    }
}
