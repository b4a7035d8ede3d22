import Foundation

// Classic control, written from the published equations with the constants gymnasium documents
// (gymnasium 1.x, MIT): CartPole-v1 (Barto, Sutton & Anderson 1983; Florian 2007's equations),
// Acrobot-v1 (Sutton 1996; Sutton & Barto's book dynamics, RK4), MountainCar-v0 (Moore 1990).
// The state is kept in Double (gymnasium keeps float64 numpy state) and the observation is its
// Float32 rounding. Arithmetic is written in the same order as the reference so that a state and
// an action give the same next state bit for bit where the platform's sin/cos agree.

/// Writes `values` rounded to Float into `out`.
@inlinable
func writeObservation(_ out: UnsafeMutableBufferPointer<Float>, _ values: Double...) {
    precondition(out.count == values.count, "observation buffer has \(out.count) floats, expected \(values.count)")
    for (i, v) in values.enumerated() { out[i] = Float(v) }
}

/// Checks a state given from outside: `count` finite values.
func checkedState(_ state: [Double], count: Int, names: String, environment: String) throws -> [Double] {
    guard state.count == count else {
        throw DistillError(
            .invalidConfiguration, "\(environment) state has \(count) values (\(names)), got \(state.count)")
    }
    if let bad = state.firstIndex(where: { !$0.isFinite }) {
        throw DistillError(.invalidConfiguration, "\(environment) state value \(bad) is \(state[bad]), not finite")
    }
    return state
}

/// CartPole-v1: a pole hinged on a cart moving on a track; push left (0) or right (1) with 10 N.
///
/// State `(x, ẋ, θ, θ̇)`; explicit Euler with τ = 0.02 s. Terminated when |x| > 2.4 or
/// |θ| > 12° (= 12·2π/360 rad; strictly greater, so exactly at the threshold goes on). Reward +1
/// for every step, the terminating one included (0 for steps after termination, as gymnasium).
/// Time limit 500 steps (truncation). Reset: each state value uniform in [−0.05, 0.05).
public struct CartPole: ObservedEnvironment {
    /// g (m/s²).
    public static let gravity = 9.8
    /// Cart mass (kg).
    public static let cartMass = 1.0
    /// Pole mass (kg).
    public static let poleMass = 0.1
    /// Half the pole's length (m).
    public static let halfLength = 0.5
    /// Force of a push (N).
    public static let forceMagnitude = 10.0
    /// Time step τ (s).
    public static let tau = 0.02
    /// |x| beyond which the episode terminates (m).
    public static let xThreshold = 2.4
    /// |θ| beyond which the episode terminates: 12° in radians.
    public static let thetaThreshold = 12 * 2 * Double.pi / 360
    /// gymnasium's time limit of CartPole-v1.
    public static let timeLimit = 500

    /// `(x, ẋ, θ, θ̇)`.
    public var state: (x: Double, xDot: Double, theta: Double, thetaDot: Double) = (0, 0, 0, 0)
    /// Steps since the last reset or state change.
    public var elapsedSteps = 0
    /// Whether a step has already terminated (later steps give reward 0).
    public var hasTerminated = false
    public let description: EnvironmentDescription

    /// CartPole-v1 with the given time limit (default 500; nil for none).
    public init(maxEpisodeSteps: Int? = CartPole.timeLimit) {
        let inf = Float.infinity
        description = EnvironmentDescription(
            name: "CartPole-v1",
            observation: .init(
                shape: [4], dtype: .float32,
                low: [-Float(2 * Self.xThreshold), -inf, -Float(2 * Self.thetaThreshold), -inf],
                high: [Float(2 * Self.xThreshold), inf, Float(2 * Self.thetaThreshold), inf]),
            actionCount: 2, rewardRange: .init(min: 0, max: 1), maxEpisodeSteps: maxEpisodeSteps, discount: 0.99,
            tabular: false, stateSize: 4,
            source: "gymnasium CartPole-v1 constants and equations (Barto, Sutton & Anderson 1983; Florian 2007)")
    }

    public var internalState: [Double] { [state.x, state.xDot, state.theta, state.thetaDot] }

    public mutating func setInternalState(_ values: [Double]) throws {
        let s = try checkedState(values, count: 4, names: "x, x_dot, theta, theta_dot", environment: "CartPole")
        state = (s[0], s[1], s[2], s[3])
        elapsedSteps = 0
        hasTerminated = false
    }

    public mutating func reset(rng: inout Xoshiro256StarStar, into observation: UnsafeMutableBufferPointer<Float>) {
        func u() -> Double { -0.05 + 0.1 * rng.unitInterval() }
        state = (u(), u(), u(), u())
        elapsedSteps = 0
        hasTerminated = false
        observe(into: observation)
    }

    public func observe(into observation: UnsafeMutableBufferPointer<Float>) {
        writeObservation(observation, state.x, state.xDot, state.theta, state.thetaDot)
    }

    /// Whether `(x, θ)` is outside the thresholds.
    @inlinable
    public static func isTerminal(x: Double, theta: Double) -> Bool {
        x < -xThreshold || x > xThreshold || theta < -thetaThreshold || theta > thetaThreshold
    }

    public mutating func step(
        _ action: Int, rng: inout Xoshiro256StarStar, into observation: UnsafeMutableBufferPointer<Float>
    ) -> ObservedStep {
        precondition(action == 0 || action == 1, "CartPole action must be 0 or 1, got \(action)")
        let totalMass = Self.poleMass + Self.cartMass
        let poleMassLength = Self.poleMass * Self.halfLength
        let (x, xDot, theta, thetaDot) = state
        let force = action == 1 ? Self.forceMagnitude : -Self.forceMagnitude
        let cosTheta = cos(theta)
        let sinTheta = sin(theta)
        let temp = (force + poleMassLength * (thetaDot * thetaDot) * sinTheta) / totalMass
        let thetaAcc =
            (Self.gravity * sinTheta - cosTheta * temp)
            / (Self.halfLength * (4.0 / 3.0 - Self.poleMass * (cosTheta * cosTheta) / totalMass))
        let xAcc = temp - poleMassLength * thetaAcc * cosTheta / totalMass
        state = (
            x + Self.tau * xDot, xDot + Self.tau * xAcc, theta + Self.tau * thetaDot, thetaDot + Self.tau * thetaAcc
        )
        let terminated = Self.isTerminal(x: state.x, theta: state.theta)
        let reward: Double = hasTerminated ? 0 : 1
        if terminated { hasTerminated = true }
        elapsedSteps += 1
        observe(into: observation)
        return ObservedStep(reward: reward, terminated: terminated, truncated: reachedTimeLimit())
    }
}

/// Acrobot-v1: two links hanging from a fixed hinge, torque −1, 0, +1 (actions 0, 1, 2) on the
/// joint between them; swing the tip above the bar.
///
/// State `(θ1, θ2, θ̇1, θ̇2)`; the book's dynamics (Sutton & Barto), one RK4 step over dt = 0.2 s
/// with the torque held, then θ wrapped into [−π, π] and the velocities clipped to ±4π and ±9π.
/// Terminated when `−cos θ1 − cos(θ1 + θ2) > 1`. Reward −1 per step, 0 on the terminating step.
/// Observation `(cos θ1, sin θ1, cos θ2, sin θ2, θ̇1, θ̇2)`. Time limit 500 steps (truncation).
/// Reset: each state value uniform in [−0.1, 0.1), rounded to Float32 (as gymnasium).
public struct Acrobot: ObservedEnvironment {
    /// Integration time step (s).
    public static let dt = 0.2
    /// Link lengths (m).
    public static let linkLength1 = 1.0
    /// Length of link 2 (m; used only for drawing).
    public static let linkLength2 = 1.0
    /// Link masses (kg).
    public static let linkMass1 = 1.0
    /// Mass of link 2 (kg).
    public static let linkMass2 = 1.0
    /// Position of each link's centre of mass (m).
    public static let linkCentre1 = 0.5
    /// Centre of mass of link 2 (m).
    public static let linkCentre2 = 0.5
    /// Moment of inertia of each link.
    public static let linkInertia = 1.0
    /// Bound of |θ̇1|.
    public static let maxVelocity1 = 4 * Double.pi
    /// Bound of |θ̇2|.
    public static let maxVelocity2 = 9 * Double.pi
    /// Torque of each action.
    public static let torques: [Double] = [-1, 0, 1]
    /// g (m/s²).
    public static let gravity = 9.8
    /// gymnasium's time limit of Acrobot-v1.
    public static let timeLimit = 500

    /// `(θ1, θ2, θ̇1, θ̇2)`.
    public var state: (Double, Double, Double, Double) = (0, 0, 0, 0)
    public var elapsedSteps = 0
    public let description: EnvironmentDescription

    /// Acrobot-v1 with the given time limit (default 500; nil for none).
    public init(maxEpisodeSteps: Int? = Acrobot.timeLimit) {
        let high: [Float] = [1, 1, 1, 1, Float(Self.maxVelocity1), Float(Self.maxVelocity2)]
        description = EnvironmentDescription(
            name: "Acrobot-v1",
            observation: .init(shape: [6], dtype: .float32, low: high.map { -$0 }, high: high),
            actionCount: 3, rewardRange: .init(min: -1, max: 0), maxEpisodeSteps: maxEpisodeSteps, discount: 0.99,
            tabular: false, stateSize: 4,
            source: "gymnasium Acrobot-v1 constants; book dynamics (Sutton & Barto), RK4 over dt = 0.2 s")
    }

    public var internalState: [Double] { [state.0, state.1, state.2, state.3] }

    public mutating func setInternalState(_ values: [Double]) throws {
        let s = try checkedState(
            values, count: 4, names: "theta1, theta2, dtheta1, dtheta2", environment: "Acrobot")
        state = (s[0], s[1], s[2], s[3])
        elapsedSteps = 0
    }

    public mutating func reset(rng: inout Xoshiro256StarStar, into observation: UnsafeMutableBufferPointer<Float>) {
        func u() -> Double { Double(Float(-0.1 + 0.2 * rng.unitInterval())) }
        state = (u(), u(), u(), u())
        elapsedSteps = 0
        observe(into: observation)
    }

    public func observe(into observation: UnsafeMutableBufferPointer<Float>) {
        writeObservation(observation, cos(state.0), sin(state.0), cos(state.1), sin(state.1), state.2, state.3)
    }

    /// Whether the tip is above the bar: `−cos θ1 − cos(θ1 + θ2) > 1`.
    @inlinable
    public static func isTerminal(theta1: Double, theta2: Double) -> Bool {
        -cos(theta1) - cos(theta2 + theta1) > 1.0
    }

    /// The time derivative of `(θ1, θ2, θ̇1, θ̇2)` under `torque` (the book's equations).
    @inlinable
    public static func derivative(_ s: SIMD4<Double>, torque a: Double) -> SIMD4<Double> {
        let m1 = linkMass1
        let m2 = linkMass2
        let l1 = linkLength1
        let lc1 = linkCentre1
        let lc2 = linkCentre2
        let i1 = linkInertia
        let i2 = linkInertia
        let g = gravity
        let theta1 = s[0]
        let theta2 = s[1]
        let dtheta1 = s[2]
        let dtheta2 = s[3]
        let d1 = m1 * (lc1 * lc1) + m2 * (l1 * l1 + lc2 * lc2 + 2 * l1 * lc2 * cos(theta2)) + i1 + i2
        let d2 = m2 * (lc2 * lc2 + l1 * lc2 * cos(theta2)) + i2
        let phi2 = m2 * lc2 * g * cos(theta1 + theta2 - Double.pi / 2.0)
        let phi1 =
            -m2 * l1 * lc2 * (dtheta2 * dtheta2) * sin(theta2) - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * sin(theta2)
            + (m1 * lc1 + m2 * l1) * g * cos(theta1 - Double.pi / 2) + phi2
        let ddtheta2 =
            (a + d2 / d1 * phi1 - m2 * l1 * lc2 * (dtheta1 * dtheta1) * sin(theta2) - phi2)
            / (m2 * (lc2 * lc2) + i2 - (d2 * d2) / d1)
        let ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
        return SIMD4(dtheta1, dtheta2, ddtheta1, ddtheta2)
    }

    /// One classical Runge–Kutta step of length `dt` with the torque held.
    @inlinable
    public static func rk4(_ y: SIMD4<Double>, torque: Double, dt: Double) -> SIMD4<Double> {
        let half = dt / 2.0
        let k1 = derivative(y, torque: torque)
        let k2 = derivative(y + half * k1, torque: torque)
        let k3 = derivative(y + half * k2, torque: torque)
        let k4 = derivative(y + dt * k3, torque: torque)
        return y + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    }

    /// `x` moved by whole turns into `[low, high]`.
    @inlinable
    public static func wrap(_ x: Double, _ low: Double, _ high: Double) -> Double {
        let span = high - low
        var x = x
        while x > high { x = x - span }
        while x < low { x = x + span }
        return x
    }

    public mutating func step(
        _ action: Int, rng: inout Xoshiro256StarStar, into observation: UnsafeMutableBufferPointer<Float>
    ) -> ObservedStep {
        precondition(action >= 0 && action < 3, "Acrobot action must be 0, 1 or 2, got \(action)")
        let next = Self.rk4(SIMD4(state.0, state.1, state.2, state.3), torque: Self.torques[action], dt: Self.dt)
        state = (
            Self.wrap(next[0], -Double.pi, Double.pi), Self.wrap(next[1], -Double.pi, Double.pi),
            min(max(next[2], -Self.maxVelocity1), Self.maxVelocity1),
            min(max(next[3], -Self.maxVelocity2), Self.maxVelocity2)
        )
        let terminated = Self.isTerminal(theta1: state.0, theta2: state.1)
        elapsedSteps += 1
        observe(into: observation)
        return ObservedStep(reward: terminated ? 0 : -1, terminated: terminated, truncated: reachedTimeLimit())
    }
}

/// MountainCar-v0: an under-powered car in a valley; push left (0), nothing (1), right (2).
///
/// State `(position, velocity)`: `v ← clip(v + (a−1)·0.001 − 0.0025·cos(3p), ±0.07)`,
/// `p ← clip(p + v, [−1.2, 0.6])`, and at the left wall (p = −1.2) a negative velocity becomes 0.
/// Terminated when `p ≥ 0.5` (and v ≥ 0). Reward −1 every step. Time limit 200 steps
/// (truncation). Reset: position uniform in [−0.6, −0.4), velocity 0.
public struct MountainCar: ObservedEnvironment {
    /// Left end of the track.
    public static let minPosition = -1.2
    /// Right end of the track.
    public static let maxPosition = 0.6
    /// Bound of |velocity|.
    public static let maxSpeed = 0.07
    /// Position of the goal (terminates at or beyond it).
    public static let goalPosition = 0.5
    /// Velocity needed at the goal.
    public static let goalVelocity = 0.0
    /// The engine's force per unit of action.
    public static let force = 0.001
    /// The slope's pull.
    public static let gravity = 0.0025
    /// gymnasium's time limit of MountainCar-v0.
    public static let timeLimit = 200

    /// `(position, velocity)`.
    public var state: (position: Double, velocity: Double) = (-0.5, 0)
    public var elapsedSteps = 0
    public let description: EnvironmentDescription

    /// MountainCar-v0 with the given time limit (default 200; nil for none).
    public init(maxEpisodeSteps: Int? = MountainCar.timeLimit) {
        description = EnvironmentDescription(
            name: "MountainCar-v0",
            observation: .init(
                shape: [2], dtype: .float32, low: [Float(Self.minPosition), -Float(Self.maxSpeed)],
                high: [Float(Self.maxPosition), Float(Self.maxSpeed)]),
            actionCount: 3, rewardRange: .init(min: -1, max: -1), maxEpisodeSteps: maxEpisodeSteps, discount: 0.99,
            tabular: false, stateSize: 2, source: "gymnasium MountainCar-v0 constants and equations (Moore 1990)")
    }

    public var internalState: [Double] { [state.position, state.velocity] }

    public mutating func setInternalState(_ values: [Double]) throws {
        let s = try checkedState(values, count: 2, names: "position, velocity", environment: "MountainCar")
        state = (s[0], s[1])
        elapsedSteps = 0
    }

    public mutating func reset(rng: inout Xoshiro256StarStar, into observation: UnsafeMutableBufferPointer<Float>) {
        state = (-0.6 + 0.2 * rng.unitInterval(), 0)
        elapsedSteps = 0
        observe(into: observation)
    }

    public func observe(into observation: UnsafeMutableBufferPointer<Float>) {
        writeObservation(observation, state.position, state.velocity)
    }

    public mutating func step(
        _ action: Int, rng: inout Xoshiro256StarStar, into observation: UnsafeMutableBufferPointer<Float>
    ) -> ObservedStep {
        precondition(action >= 0 && action < 3, "MountainCar action must be 0, 1 or 2, got \(action)")
        var (position, velocity) = state
        velocity += Double(action - 1) * Self.force + cos(3 * position) * -Self.gravity
        velocity = min(max(velocity, -Self.maxSpeed), Self.maxSpeed)
        position += velocity
        position = min(max(position, Self.minPosition), Self.maxPosition)
        if position == Self.minPosition && velocity < 0 { velocity = 0 }
        let terminated = position >= Self.goalPosition && velocity >= Self.goalVelocity
        state = (position, velocity)
        elapsedSteps += 1
        observe(into: observation)
        return ObservedStep(reward: -1, terminated: terminated, truncated: reachedTimeLimit())
    }
}
