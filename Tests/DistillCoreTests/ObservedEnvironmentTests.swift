import DistillCore
import Foundation
import Testing

/// Observed environments: gridworld renderers, seed families, classic control from the equations.
@Suite struct ObservedEnvironmentTests {
    /// A hand-made 3×3 grid (plus the absorbing end state 9):
    ///
    ///     W  .  -1
    ///    +10 S  .
    ///     . -5  W
    static func smallGrid(terminal: Double = 10) -> Environment {
        let cells: [GridCell] = [
            .wall, .empty, .reward(-1),
            .terminal(terminal), .empty, .empty,
            .empty, .terminal(-5), .wall,
        ]
        // GridLayout has no public memberwise initialiser: build it through its Codable form.
        struct Layout: Codable {
            var size: Int
            var cells: [GridCell]
            var start: Int
        }
        let grid = try! JSONDecoder().decode(
            GridLayout.self, from: JSONEncoder().encode(Layout(size: 3, cells: cells, start: 4)))
        var terminalFlags = [Bool](repeating: false, count: 10)
        terminalFlags[3] = true
        terminalFlags[7] = true
        terminalFlags[9] = true
        var start = [Double](repeating: 0, count: 10)
        start[4] = 1
        let mdp = TabularMDP(
            stateCount: 10, actionCount: 4, discount: 0.99, startDistribution: start, isTerminal: terminalFlags
        ) { _, _ in [Outcome(next: 9, probability: 1, reward: 0)] }
        return Environment(name: "small", mdp: mdp, grid: grid)
    }

    /// Plane `c` of a `[C, n, n]` observation as rows.
    static func plane(_ o: [Float], _ c: Int, _ n: Int) -> [[Float]] {
        (0..<n).map { r in Array(o[(c * n * n + r * n)..<(c * n * n + r * n + n)]) }
    }

    @Test func imageChannelsFollowTheDocumentedLayout() throws {
        let env = try TabularObservedEnvironment(Self.smallGrid(), observation: .image)
        #expect(env.description.observation.shape == [7, 3, 3])
        #expect(env.description.tabular)
        let o = env.observation(ofState: 4)
        #expect(Self.plane(o, 0, 3) == [[1, 0, 0], [0, 0, 0], [0, 0, 1]])  // walls
        #expect(Self.plane(o, 1, 3) == [[0, 0, -1], [0, 0, 0], [0, 0, 0]])  // −1 cell
        #expect(Self.plane(o, 2, 3) == [[0, 0, 0], [1, 0, 0], [0, 0, 0]])  // +10
        #expect(Self.plane(o, 3, 3) == [[0, 0, 0], [0, 0, 0], [0, 0, 0]])  // +5
        #expect(Self.plane(o, 4, 3) == [[0, 0, 0], [0, 0, 0], [0, 1, 0]])  // −5
        #expect(Self.plane(o, 5, 3) == [[0, 0, 0], [0, 0, 0], [0, 0, 0]])  // −10
        #expect(Self.plane(o, 6, 3) == [[0, 0, 0], [0, 1, 0], [0, 0, 0]])  // agent at the centre
        // The agent moves; the rest stays.
        let corner = env.observation(ofState: 2)
        #expect(Self.plane(corner, 6, 3) == [[0, 0, 1], [0, 0, 0], [0, 0, 0]])
        #expect(Array(corner[0..<(6 * 9)]) == Array(o[0..<(6 * 9)]))
        // The absorbing end state: no agent anywhere.
        #expect(Self.plane(env.observation(ofState: 9), 6, 3) == [[0, 0, 0], [0, 0, 0], [0, 0, 0]])
    }

    @Test func windowsAreEgocentricAndReadOutsideAsWall() throws {
        let env3 = try TabularObservedEnvironment(Self.smallGrid(), observation: .window(3))
        #expect(env3.description.observation.shape == [6, 3, 3])
        // Around the top-left cell (a wall itself): the row above and the column left are outside.
        let o = env3.observation(ofState: 0)
        #expect(Self.plane(o, 0, 3) == [[1, 1, 1], [1, 1, 0], [1, 0, 0]])
        #expect(Self.plane(o, 1, 3) == [[0, 0, 0], [0, 0, 0], [0, 0, 0]])
        #expect(Self.plane(o, 2, 3) == [[0, 0, 0], [0, 0, 0], [0, 1, 0]])  // +10 below
        // Around the bottom-right cell: the −5 terminal is to the left.
        let br = env3.observation(ofState: 8)
        #expect(Self.plane(br, 0, 3) == [[0, 0, 1], [0, 1, 1], [1, 1, 1]])
        #expect(Self.plane(br, 4, 3) == [[0, 0, 0], [1, 0, 0], [0, 0, 0]])
        // A 5×5 window around the centre is the whole grid in a ring of walls.
        let env5 = try TabularObservedEnvironment(Self.smallGrid(), observation: .window(5))
        let w = env5.observation(ofState: 4)
        #expect(
            Self.plane(w, 0, 5) == [
                [1, 1, 1, 1, 1], [1, 1, 0, 0, 1], [1, 0, 0, 0, 1], [1, 0, 0, 1, 1], [1, 1, 1, 1, 1],
            ])
        #expect(Self.plane(w, 1, 5)[1] == [0, 0, 0, -1, 0])
        // The image's planes 0–5 cropped: a window as large as needed equals the image around the centre.
        let image = try TabularObservedEnvironment(Self.smallGrid(), observation: .image).observation(ofState: 4)
        for c in 0..<6 {
            #expect(Self.plane(w, c, 5)[1...3].map { Array($0[1...3]) } == Self.plane(image, c, 3))
        }
        // A 1×1 window is the agent's own cell; the end state reads all zero.
        let env1 = try TabularObservedEnvironment(Self.smallGrid(), observation: .window(1))
        #expect(env1.observation(ofState: 0) == [1, 0, 0, 0, 0, 0])
        #expect(env5.observation(ofState: 9).allSatisfy { $0 == 0 })
    }

    @Test func stateIDAndOneHot() throws {
        let id = try TabularObservedEnvironment(Self.smallGrid(), observation: .stateID)
        #expect(id.description.observation.shape == [1])
        #expect(id.observation(ofState: 7) == [7])
        let hot = try TabularObservedEnvironment(Self.smallGrid(), observation: .oneHot)
        #expect(hot.description.observation.shape == [10])
        #expect(hot.observation(ofState: 3) == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
        let table = hot.observationTable()
        #expect(table.count == 100)
        for s in 0..<10 { #expect(Array(table[(s * 10)..<(s * 10 + 10)]) == hot.observation(ofState: s)) }
        // Non-grid environments take state-id and one-hot but not image or window.
        let chain = try Environments.chain()
        #expect(try TabularObservedEnvironment(chain, observation: .oneHot).observation(ofState: 2)[2] == 1)
        #expect(throws: DistillError.self) { try TabularObservedEnvironment(chain, observation: .image) }
        #expect(throws: DistillError.self) { try TabularObservedEnvironment(chain, observation: .window(3)) }
        // A terminal reward without a plane is refused by image, not by one-hot.
        #expect(throws: DistillError.self) {
            try TabularObservedEnvironment(Self.smallGrid(terminal: 3), observation: .image)
        }
        _ = try TabularObservedEnvironment(Self.smallGrid(terminal: 3), observation: .oneHot)
    }

    @Test func observationKindsParse() throws {
        #expect(try ObservationKind(parsing: "state-id") == .stateID)
        #expect(try ObservationKind(parsing: "one-hot") == .oneHot)
        #expect(try ObservationKind(parsing: "image") == .image)
        #expect(try ObservationKind(parsing: "window:5") == .window(5))
        for bad in ["window:4", "window:0", "window:-1", "window:", "window", "pixels", ""] {
            #expect(throws: DistillError.self) { try ObservationKind(parsing: bad) }
        }
        let encoded = try JSONEncoder().encode([ObservationKind.window(7)])
        #expect(String(decoding: encoded, as: UTF8.self) == "[\"window:7\"]")
        #expect(try JSONDecoder().decode([ObservationKind].self, from: encoded) == [.window(7)])
    }

    @Test func gridworldStepsAreTheTabularMDPsDrawForDraw() throws {
        let tabular = try Environments.gridworld(seed: 3)
        var env = try TabularObservedEnvironment(tabular, observation: .image, maxEpisodeSteps: 50)
        #expect(env.description.rewardRange.min == -10 && env.description.rewardRange.max == 10)
        var a = Xoshiro256StarStar(seed: 11)
        var b = Xoshiro256StarStar(seed: 11)
        let first = env.reset(rng: &a)
        var s = tabular.mdp.reset(&b)
        #expect(first == env.observation(ofState: Int(s)))
        var steps = 0
        while true {
            let action = steps % 4
            let (o, outcome) = env.step(action, rng: &a)
            let reference = tabular.mdp.step(s, action, &b)
            s = reference.next
            steps += 1
            #expect(o == env.observation(ofState: Int(s)) && env.internalState == [Double(s)])
            #expect(outcome.reward == reference.reward && outcome.terminated == reference.terminal)
            #expect(outcome.truncated == (steps == 50))
            if outcome.done { break }
        }
        #expect(throws: DistillError.self) { try env.setInternalState([400]) }  // the end state is terminal
        #expect(throws: DistillError.self) { try env.setInternalState([2.5]) }
        try env.setInternalState([210])
        #expect(env.elapsedSteps == 0 && env.internalState == [210])
    }

    @Test func seedListsParseWithClearErrors() throws {
        #expect(try SeedList.parse("0-99") == Array(0...99))
        #expect(try SeedList.parse("1,4,9") == [1, 4, 9])
        #expect(try SeedList.parse("0-2, 7, 10-11") == [0, 1, 2, 7, 10, 11])
        #expect(try SeedList.parse("5-5") == [5])
        let cases: [(String, String)] = [
            ("", "empty"), ("5-3", "backwards"), ("a", "not a non-negative integer"), ("1,,2", "empty item"),
            ("1,1", "named twice"), ("0-3,2", "named twice"), ("1-2-3", "not a seed or a range"),
            ("-4", "not a range"), ("0-99999999", "more than"),
        ]
        for (text, words) in cases {
            do {
                _ = try SeedList.parse(text, what: "--seeds")
                Issue.record("'\(text)' parsed")
            } catch let e as DistillError {
                #expect(e.message.contains(words) && e.message.contains("--seeds"), "\(e.message)")
            }
        }
        let family = try GridworldFamily(seeds: "0-9", heldOut: "100-102")
        #expect(family.seeds.count == 10 && family.heldOut == [100, 101, 102])
        let held = try family.heldOutEnvironments(observation: .window(5))
        #expect(held.count == 3 && held.allSatisfy { $0.description.observation.shape == [6, 5, 5] })
        #expect(
            try family.observed(seed: 4, observation: .image).environment.grid == Environments.gridworld(seed: 4).grid)
        #expect(throws: DistillError.self) { try GridworldFamily(seeds: "0-9", heldOut: "9-12") }
    }

    @Test func environmentNamesSuggestTheClosest() throws {
        #expect(try ObservedEnvironmentSpec.Kind.named("CartPole-v1") == .cartpole)
        #expect(try ObservedEnvironmentSpec.Kind.named("MountainCar-v0") == .mountaincar)
        do {
            _ = try ObservedEnvironmentSpec.Kind.named("cartpol")
            Issue.record("cartpol was accepted")
        } catch let e as DistillError {
            #expect(e.message.contains("Did you mean 'cartpole'?"))
        }
        var spec = ObservedEnvironmentSpec()
        spec.kind = .acrobot
        #expect(try spec.build().description.maxEpisodeSteps == 500)
        spec.maxEpisodeSteps = 0
        #expect(try spec.build().description.maxEpisodeSteps == nil)
        spec.observation = .image
        #expect(throws: DistillError.self) { try spec.build() }
        spec.kind = .gridworld
        spec.maxEpisodeSteps = nil
        #expect(try spec.build().description.observation.shape == [7, 20, 20])
    }

    @Test func descriptionsRoundTripThroughJSON() throws {
        for env in [CartPole().description, Acrobot().description, MountainCar().description] {
            let data = try JSONEncoder().encode(env)
            #expect(try JSONDecoder().decode(EnvironmentDescription.self, from: data) == env)
        }
        #expect(CartPole().description.maxEpisodeSteps == 500)
        #expect(Acrobot().description.maxEpisodeSteps == 500)
        #expect(MountainCar().description.maxEpisodeSteps == 200)
        #expect(CartPole().description.observation.high![1] == .infinity)
    }

    // MARK: CartPole

    static func step<E: ObservedEnvironment>(
        _ env: inout E, from state: [Double], _ action: Int
    ) throws
        -> (observation: [Float], step: ObservedStep)
    {
        try env.setInternalState(state)
        var rng = Xoshiro256StarStar(seed: 0)
        return env.step(action, rng: &rng)
    }

    @Test func cartPoleOneStepByHand() throws {
        // From rest, push right: temp = F/M = 100/11; θ̈ = −temp / (l(4/3 − m/M)) = −600/41;
        // ẍ = temp − m l θ̈ / M = 4400/451. Euler over τ = 0.02 moves only the velocities.
        var env = CartPole()
        let (o, s) = try Self.step(&env, from: [0, 0, 0, 0], 1)
        let expected = [0, 0.02 * 4400 / 451, 0, 0.02 * -600 / 41]
        for (x, y) in zip(env.internalState, expected) { #expect(abs(x - y) < 1e-12) }
        #expect(o == expected.map { Float($0) })
        #expect(s == ObservedStep(reward: 1, terminated: false, truncated: false))
        // Pushing left mirrors it.
        _ = try Self.step(&env, from: [0, 0, 0, 0], 0)
        for (x, y) in zip(env.internalState, expected) { #expect(abs(x + y) < 1e-12) }
        // With the pole tilted and moving, Euler uses the OLD velocities for the positions.
        _ = try Self.step(&env, from: [0.1, 0.5, 0.05, -0.3], 1)
        #expect(env.internalState[0] == 0.1 + 0.02 * 0.5 && env.internalState[2] == 0.05 + 0.02 * -0.3)
    }

    @Test func cartPoleTerminatesStrictlyBeyondTheThresholds() throws {
        var env = CartPole()
        let t = CartPole.thetaThreshold
        #expect(abs(t - 12 * Double.pi / 180) < 1e-15)
        // With zero velocities x and θ stay put for one step: exactly at the threshold goes on.
        for sign in [-1.0, 1.0] {
            #expect(try !Self.step(&env, from: [sign * 2.4, 0, 0, 0], 1).step.terminated)
            #expect(try Self.step(&env, from: [sign * (2.4).nextUp, 0, 0, 0], 1).step.terminated)
            #expect(try !Self.step(&env, from: [sign * (2.4).nextDown, 0, 0, 0], 1).step.terminated)
            #expect(try !Self.step(&env, from: [0, 0, sign * t, 0], 1).step.terminated)
            #expect(try Self.step(&env, from: [0, 0, sign * t.nextUp, 0], 1).step.terminated)
            // Crossing during the step: x + τ ẋ beyond 2.4.
            #expect(try Self.step(&env, from: [sign * 2.39, sign * 1, 0, 0], 1).step.terminated)
        }
        // The terminating step pays +1, steps after it 0.
        let end = try Self.step(&env, from: [(2.4).nextUp, 0, 0, 0], 1)
        #expect(end.step.reward == 1)
        var rng = Xoshiro256StarStar(seed: 0)
        #expect(env.step(1, rng: &rng).step.reward == 0)
    }

    @Test func cartPoleTruncatesAtFiveHundredSteps() throws {
        var env = CartPole()
        try env.setInternalState([0, 0, 0, 0])
        env.elapsedSteps = 498
        var rng = Xoshiro256StarStar(seed: 0)
        #expect(env.step(1, rng: &rng).step == ObservedStep(reward: 1, terminated: false, truncated: false))
        #expect(env.step(0, rng: &rng).step == ObservedStep(reward: 1, terminated: false, truncated: true))
        // A whole episode balanced by a controller: truncated at step 500 exactly, never terminated.
        var o = env.reset(rng: &rng)
        var steps = 0
        while true {
            let a = o[2] + 0.3 * o[3] + 0.02 * o[0] + 0.05 * o[1] > 0 ? 1 : 0
            let (next, s) = env.step(a, rng: &rng)
            o = next
            steps += 1
            #expect(!s.terminated)
            if s.done {
                #expect(s.truncated)
                break
            }
        }
        #expect(steps == 500)
        // Without a limit there is no truncation.
        var free = CartPole(maxEpisodeSteps: nil)
        try free.setInternalState([0, 0, 0, 0])
        free.elapsedSteps = 10_000
        #expect(!free.step(1, rng: &rng).step.truncated)
    }

    @Test func resetDistributions() {
        var rng = Xoshiro256StarStar(seed: 9)
        var cart = CartPole()
        var acro = Acrobot()
        var car = MountainCar()
        for _ in 0..<1000 {
            let c = cart.reset(rng: &rng)
            #expect(c.allSatisfy { abs($0) <= 0.05 } && cart.elapsedSteps == 0)
            _ = acro.reset(rng: &rng)
            #expect(acro.internalState.allSatisfy { abs($0) <= 0.1 && Double(Float($0)) == $0 })
            let m = car.reset(rng: &rng)
            #expect(m[0] >= -0.6 && m[0] <= -0.4 && m[1] == 0)
        }
    }

    // MARK: MountainCar

    @Test func mountainCarClipsVelocityAndStopsAtTheLeftWall() throws {
        var env = MountainCar()
        // At p = −π/3 the slope pushes right with 0.0025 (cos 3p = −1): 0.07 + 0.001 + 0.0025 → 0.07.
        let p = -Double.pi / 3
        var (o, s) = try Self.step(&env, from: [p, 0.07], 2)
        #expect(env.internalState == [p + 0.07, 0.07])
        #expect(s == ObservedStep(reward: -1, terminated: false, truncated: false))
        // Symmetric clip on the other side: at p = 0 the slope pulls left with 0.0025.
        (o, s) = try Self.step(&env, from: [0, -0.07], 0)
        #expect(env.internalState == [-0.07, -0.07])
        // The left wall: the position clips to −1.2 and a negative velocity becomes 0.
        (o, s) = try Self.step(&env, from: [-1.19, -0.05], 0)
        #expect(env.internalState == [-1.2, 0])
        #expect(o == [-1.2, 0] && !s.terminated)
        // The goal: p ≥ 0.5 with v ≥ 0.
        (o, s) = try Self.step(&env, from: [0.49, 0.02], 2)
        #expect(s.terminated && s.reward == -1 && env.internalState[0] >= 0.5)
        (o, s) = try Self.step(&env, from: [0.5, -0.0001], 0)
        #expect(!s.terminated)
        // Truncation at 200.
        try env.setInternalState([-0.5, 0])
        env.elapsedSteps = 199
        var rng = Xoshiro256StarStar(seed: 0)
        #expect(env.step(1, rng: &rng).step == ObservedStep(reward: -1, terminated: false, truncated: true))
    }

    // MARK: Acrobot

    @Test func acrobotTerminationAndBounds() throws {
        #expect(Acrobot.isTerminal(theta1: .pi, theta2: 0))  // straight up: −cos π − cos π = 2
        #expect(!Acrobot.isTerminal(theta1: 0, theta2: 0))  // hanging: −2
        #expect(!Acrobot.isTerminal(theta1: .pi / 2, theta2: 0))  // horizontal: 0
        #expect(!Acrobot.isTerminal(theta1: .pi, theta2: .pi))  // first link up, second folded: 0
        // Tip at height 1 exactly is not above the line; a hair higher is.
        #expect(!Acrobot.isTerminal(theta1: .pi / 2, theta2: .pi / 2 - 1e-9))
        #expect(Acrobot.isTerminal(theta1: .pi, theta2: 1))
        // Wrap into [−π, π].
        #expect(abs(Acrobot.wrap(3.5, -.pi, .pi) - (3.5 - 2 * .pi)) < 1e-15)
        #expect(abs(Acrobot.wrap(-7, -.pi, .pi) - (-7 + 2 * .pi)) < 1e-15)
        #expect(Acrobot.wrap(1, -.pi, .pi) == 1)
        var env = Acrobot()
        // At rest hanging down with no torque the state barely moves (cos(−π/2) is 6e−17, not 0).
        var (o, s) = try Self.step(&env, from: [0, 0, 0, 0], 1)
        #expect(env.internalState.allSatisfy { abs($0) < 1e-12 })
        #expect(s == ObservedStep(reward: -1, terminated: false, truncated: false))
        #expect(abs(o[0] - 1) < 1e-7 && abs(o[2] - 1) < 1e-7)
        // Velocities clip to ±4π and ±9π.
        (o, s) = try Self.step(&env, from: [0, 0, 6 * .pi, -12 * .pi], 1)
        #expect(abs(env.internalState[2]) <= 4 * .pi && abs(env.internalState[3]) <= 9 * .pi)
        #expect(env.internalState.prefix(2).allSatisfy { abs($0) <= .pi })
        #expect(o[4] == Float(env.internalState[2]) && o[5] == Float(env.internalState[3]))
        // Every step: terminated iff the new state is above the line, reward 0 then, −1 otherwise.
        var rng = Xoshiro256StarStar(seed: 4)
        for k in 0..<200 {
            let start = (0..<4).map { i in (2 * rng.unitInterval() - 1) * [Double.pi, .pi, 4 * .pi, 9 * .pi][i] }
            (o, s) = try Self.step(&env, from: start, k % 3)
            let st = env.internalState
            #expect(s.terminated == Acrobot.isTerminal(theta1: st[0], theta2: st[1]))
            #expect(s.reward == (s.terminated ? 0 : -1))
            #expect(o[0] == Float(cos(st[0])) && o[1] == Float(sin(st[0])))
        }
        // The torque drives the second joint: +1 accelerates θ2 the other way from −1.
        _ = try Self.step(&env, from: [0, 0, 0, 0], 2)
        let plus = env.internalState[3]
        _ = try Self.step(&env, from: [0, 0, 0, 0], 0)
        #expect(plus > 0 && abs(env.internalState[3] + plus) < 1e-9)
    }

    // MARK: Batches

    @Test func batchesStepIntoOneArrayAndResetEndedEpisodes() throws {
        var batch = ObservedBatch((0..<4).map { _ in CartPole() }, seed: 1)
        #expect(batch.observations.count == 16)
        for i in 0..<4 {
            #expect(Array(batch.observations[(4 * i)..<(4 * i + 4)]) == batch.environments[i].observation())
        }
        var ended = 0
        for t in 0..<300 {
            batch.step((0..<4).map { ($0 + t) % 2 == 0 ? 1 : 0 })
            for i in 0..<4 {
                #expect(Array(batch.observations[(4 * i)..<(4 * i + 4)]) == batch.environments[i].observation())
                if batch.outcomes[i].done {
                    ended += 1
                    #expect(batch.environments[i].elapsedSteps == 0)
                    let last = Array(batch.finalObservations[(4 * i)..<(4 * i + 4)])
                    #expect(abs(last[0]) > 2.4 || abs(last[2]) > Float(CartPole.thetaThreshold))
                }
            }
        }
        #expect(ended > 0)
    }
}
