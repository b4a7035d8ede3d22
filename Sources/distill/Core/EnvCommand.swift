import ArgumentParser
import DistillCore
import DistillRuntime
import Foundation

/// `distill env`: inspect an observed environment (its spec) and step it as JSON.
struct EnvCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "env",
        abstract: "Print an observed environment's spec, or step it with given actions, as JSON.",
        discussion: """
            Environments: cartpole (CartPole-v1), acrobot (Acrobot-v1), mountaincar (MountainCar-v0), \
            written from their equations with gymnasium's constants; and the tabular ones (gridworld, \
            many-actions, chain, fig2, random, --env-file) observed as state-id, one-hot, image or \
            window:K (image and window for gridworlds). docs/environments.md describes the channels.

            Examples:
              distill env spec --env cartpole
              distill env spec --env gridworld --seed 3 --observation window:5
              distill env spec --env gridworld --seeds 0-99 --held-out 100-109 --observation image
              distill env spec --env remote:tcp://127.0.0.1:5560
              distill env step --env cartpole --seed 3 --actions 0,1,1,0
              distill env step --env cartpole --state 0.01,0,0.2,0 --actions 1,1,1
              distill env step --env gridworld --seed 3 --observation image --actions 0,2,2
              echo '{"state":[0,0,0,0],"actions":[1,0,1]}' | distill env step --env cartpole --cases -
            """,
        subcommands: [EnvSpecCommand.self, EnvStepCommand.self]
    )
}

/// The environment flags of `distill env` (the tabular knobs keep the names of the other commands).
struct ObservedEnvironmentOptions: ParsableArguments {
    @Option(
        help:
            "Environment: cartpole, acrobot, mountaincar (gymnasium ids such as CartPole-v1 work too), gridworld, many-actions, chain, fig2, random; or remote:tcp://HOST:PORT, a remote environment server's (docs/remote-environments.md)."
    )
    var env = "gridworld"

    @Option(help: "Observation of a tabular environment: state-id, one-hot, image or window:K (K odd; gridworlds).")
    var observation = "state-id"

    @Option(
        help:
            "Time limit in steps (truncation); default: the environment's own (500, 500, 200; none for tabular); 0 = none."
    )
    var maxEpisodeSteps: Int?

    @Option(
        help: ArgumentHelp(
            "Tabular MDP as a JSON file (schema in docs/file-formats.md); replaces --env.", valueName: "path"))
    var envFile: String?

    @Option(help: "Seed of the gridworld/random generator, and of the resets and steps of `env step`.")
    var seed: UInt64 = 0

    @Option(help: "Gridworld side length (paper: 20).")
    var gridSize = EnvironmentSpec().gridworld.size

    @Option(help: "Gridworld slip probability η (ours).")
    var slip = EnvironmentSpec().gridworld.slip

    @Option(help: "Gridworld probability that the episode ends after an action (paper: 0.01).")
    var endProbability = EnvironmentSpec().gridworld.endProbability

    @Option(help: "Gridworld wall probability per cell (ours).")
    var wallProbability = EnvironmentSpec().gridworld.wallProbability

    @Option(help: "Gridworld −1 reward probability per cell (ours).")
    var penaltyProbability = EnvironmentSpec().gridworld.penaltyProbability

    @Option(help: "Gridworld probability of each terminal reward +10, +5, −5, −10 per cell (ours).")
    var terminalProbability = EnvironmentSpec().gridworld.terminalProbability

    @Option(help: "Number of actions of many-actions (Fig. 4: 4, 40, 400, 4000).")
    var actionCount = EnvironmentSpec().manyActionsCount

    @Option(help: "Chain half-length T.")
    var chainLength = EnvironmentSpec().chainHalfLength

    @Option(help: "Override the tabular environment's discount γ.")
    var discount: Double?

    /// The Codable spec.
    func spec() throws -> ObservedEnvironmentSpec {
        var spec = ObservedEnvironmentSpec()
        spec.kind = try validating { try envFile == nil ? ObservedEnvironmentSpec.Kind.named(env) : .file }
        spec.observation = try validating { try ObservationKind(parsing: observation) }
        spec.maxEpisodeSteps = maxEpisodeSteps
        var t = EnvironmentSpec()
        t.seed = seed
        t.gridworld.size = gridSize
        t.gridworld.slip = slip
        t.gridworld.endProbability = endProbability
        t.gridworld.wallProbability = wallProbability
        t.gridworld.penaltyProbability = penaltyProbability
        t.gridworld.terminalProbability = terminalProbability
        t.manyActionsCount = actionCount
        t.chainHalfLength = chainLength
        t.discount = discount
        if let envFile {
            t.path = envFile
            let data = try readInputFile(envFile, flag: "--env-file")
            t.mdp = try validating { try JSONInput.decode(MDPDescription.self, from: data, what: "MDP") }
        }
        spec.tabular = t
        return spec
    }

    /// Builds the environment (a remote one connects to its server).
    func build() throws -> any ObservedEnvironment {
        if env.hasPrefix("remote:") {
            var spec = EnvironmentSpec()
            spec.kind = .remote
            spec.remote = String(env.dropFirst("remote:".count))
            spec.discount = discount
            guard envFile == nil, observation == "state-id", maxEpisodeSteps == nil else {
                throw ValidationError(
                    "--env-file, --observation and --max-episode-steps do not apply to a remote environment (its server decides)"
                )
            }
            guard spec.remote?.hasPrefix("tcp://") == true else {
                throw ValidationError("--env \(env): a remote environment server is named remote:tcp://HOST:PORT")
            }
            return try remoteEnvironment(spec)
        }
        let s = try spec()
        return try validating { try s.build() }
    }

    /// Throws the failure of a remote environment's server, if `environment` is remote and one happened.
    static func checkHealthy(_ environment: any ObservedEnvironment) throws {
        try (environment as? RemoteEnvironment)?.client.checkHealthy()
    }
}

/// `distill env spec`.
struct EnvSpecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spec",
        abstract: "Print the environment's description (observation, actions, reward range, time limit) as JSON.",
        discussion: """
            Examples:
              distill env spec --env cartpole
              distill env spec --env gridworld --seed 3 --observation image
              distill env spec --env gridworld --seeds 0-99 --held-out 100-109 --observation window:5
            """)

    @OptionGroup var environment: ObservedEnvironmentOptions

    @Option(help: "A family of gridworlds: training seeds, e.g. 0-99 or 1,4,9 (replaces --seed).")
    var seeds: String?

    @Option(help: "Held-out gridworld seeds of the family, e.g. 100-109 (disjoint from --seeds).")
    var heldOut: String?

    func run() throws {
        if seeds != nil || heldOut != nil {
            guard let seeds else { throw ValidationError("--held-out needs --seeds") }
            let spec = try environment.spec()
            guard spec.kind == .gridworld else { throw ValidationError("--seeds makes a family of gridworlds only") }
            var config = spec.tabular.gridworld
            if let d = spec.tabular.discount { config.discount = d }
            let family = try validating { try GridworldFamily(configuration: config, seeds: seeds, heldOut: heldOut) }
            let first = try validating {
                try family.observed(
                    seed: family.seeds[0], observation: spec.observation, maxEpisodeSteps: spec.maxEpisodeSteps)
            }
            var description = first.description
            description.name =
                "gridworld family (\(family.seeds.count) seeds, \(family.heldOut.count) held out) observed as \(spec.observation)"
            // Any member can hold any of the generator's cells: −1, and terminal ±5, ±10.
            let terminals = config.terminalProbability > 0
            description.rewardRange = .init(
                min: terminals ? -10 : (config.penaltyProbability > 0 ? -1 : 0), max: terminals ? 10 : 0)
            try printJSON(FamilyOutput(description: description, seeds: family.seeds, heldOut: family.heldOut))
        } else {
            try printJSON(environment.build().description)
        }
    }

    private struct FamilyOutput: Encodable {
        var description: EnvironmentDescription
        var seeds: [UInt64]
        var heldOut: [UInt64]
    }

    private func printJSON(_ value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(value), as: UTF8.self))
    }
}

/// `distill env step`.
struct EnvStepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "step",
        abstract:
            "Step the environment from a reset (--seed) or a given state (--state) with given actions; JSON lines.",
        discussion: """
            Prints one JSON object per line: first the start (t = 0: observation and internal state), \
            then one per step (action, observation, reward, terminated, truncated, state). Stepping stops \
            when the episode ends (terminated or truncated).

            With --cases FILE (- for standard input) it runs many cases, one JSON object per input line: \
            {"state": [...], "actions": [...]} (or {"seed": N, ...} to start from a reset; optional \
            "elapsed": steps already taken, for the time limit), and prints one line per case: \
            {"observations": [[...]], "states": [[...]], "rewards": [...], "terminated": [...], \
            "truncated": [...]} with the start at index 0 of observations and states.

            Examples:
              distill env step --env cartpole --seed 3 --actions 0,1,1,0
              distill env step --env acrobot --state 0.1,0,0,0 --actions 2,2,0
              distill env step --env mountaincar --state=-1.19,-0.05 --actions 0,2 --elapsed 198
              distill env step --env gridworld --seed 3 --observation window:3 --actions 0,2
              distill env step --env cartpole --cases cases.jsonl
              distill env step --env remote:tcp://127.0.0.1:5560 --seed 3 --actions 0,1,1,0
            """)

    @OptionGroup var environment: ObservedEnvironmentOptions

    @Option(help: "Actions, comma-separated (e.g. 0,1,1,0).")
    var actions: String?

    @Option(
        help:
            "Start from this internal state instead of a reset (CartPole: x,x_dot,theta,theta_dot; a tabular state id); write --state=-1.2,0 when it starts with a minus."
    )
    var state: String?

    @Option(help: "Steps already taken when starting from --state (counts towards the time limit).")
    var elapsed = 0

    @Option(help: ArgumentHelp("Run many cases given as JSON lines (- for standard input).", valueName: "path"))
    var cases: String?

    func validate() throws {
        if cases != nil && (actions != nil || state != nil) {
            throw ValidationError("--cases replaces --actions and --state")
        }
        if cases == nil && actions == nil { throw ValidationError("give --actions (or --cases)") }
        guard elapsed >= 0 else { throw ValidationError("--elapsed must be non-negative") }
    }

    func run() throws {
        var env = try environment.build()
        if let cases {
            try runCases(&env, path: cases)
            return
        }
        let actionList = try parseList(actions ?? "", flag: "--actions") { Int($0) }
        let startState = try state.map { text in try parseList(text, flag: "--state") { Double($0) } }
        var rng = Xoshiro256StarStar(seed: environment.seed)
        let result = try run(&env, state: startState, seed: nil, elapsed: elapsed, actions: actionList, rng: &rng)
        try ObservedEnvironmentOptions.checkHealthy(env)
        var out = "{\"t\":0,\"observation\":\(json(result.observations[0])),\"state\":\(json(result.states[0]))}\n"
        for (k, outcome) in result.outcomes.enumerated() {
            out += "{\"t\":\(k + 1),\"action\":\(actionList[k]),\"observation\":\(json(result.observations[k + 1])),"
            out += "\"reward\":\(json(outcome.reward)),\"terminated\":\(outcome.terminated),"
            out += "\"truncated\":\(outcome.truncated),\"state\":\(json(result.states[k + 1]))}\n"
        }
        FileHandle.standardOutput.write(Data(out.utf8))
        if result.outcomes.count < actionList.count {
            let end = result.outcomes.last!.terminated ? "terminated" : "was truncated"
            FileHandle.standardError.write(
                Data(
                    "distill env step: the episode \(end) after step \(result.outcomes.count); \(actionList.count - result.outcomes.count) actions not taken\n"
                        .utf8))
        }
    }

    /// One case's record.
    struct Run {
        var observations: [[Float]] = []
        var states: [[Double]] = []
        var outcomes: [ObservedStep] = []
    }

    /// Runs one case: start (state or reset), then the actions until the episode ends.
    func run(
        _ env: inout any ObservedEnvironment, state: [Double]?, seed: UInt64?, elapsed: Int, actions: [Int],
        rng: inout Xoshiro256StarStar
    ) throws -> Run {
        let d = env.description
        if let bad = actions.first(where: { $0 < 0 || $0 >= d.actionCount }) {
            throw ValidationError("action \(bad) is out of range: \(d.name) has actions 0..<\(d.actionCount)")
        }
        if env is RemoteEnvironment && elapsed != 0 {
            throw ValidationError("--elapsed: a remote environment counts its own steps towards its time limit")
        }
        var record = Run()
        if let state {
            try validating { try env.setInternalState(state) }
            record.observations.append(env.observation())
        } else {
            if let seed { rng = Xoshiro256StarStar(seed: seed) }
            record.observations.append(env.reset(rng: &rng))
        }
        env.elapsedSteps = elapsed
        record.states.append(env.internalState)
        for a in actions {
            let (observation, outcome) = env.step(a, rng: &rng)
            record.observations.append(observation)
            record.states.append(env.internalState)
            record.outcomes.append(outcome)
            if outcome.done { break }
        }
        return record
    }

    private struct Case: Decodable {
        var state: [Double]?
        var seed: UInt64?
        var elapsed: Int?
        var actions: [Int]
    }

    private func runCases(_ env: inout any ObservedEnvironment, path: String) throws {
        let handle: FileHandle
        if path == "-" {
            handle = FileHandle.standardInput
        } else {
            guard let h = FileHandle(forReadingAtPath: path) else {
                throw ValidationError("--cases: cannot read '\(path)' (missing or unreadable)")
            }
            handle = h
        }
        let data = handle.readDataToEndOfFile()
        let decoder = JSONDecoder()
        var rng = Xoshiro256StarStar(seed: environment.seed)
        var out = ""
        var lineNumber = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") }) { continue }
            let c: Case
            do {
                c = try decoder.decode(Case.self, from: Data(line))
            } catch {
                throw ValidationError(
                    "--cases line \(lineNumber): not a case object {\"state\"|\"seed\", \"actions\"}: \(error)")
            }
            guard (c.state == nil) != (c.seed == nil) else {
                throw ValidationError("--cases line \(lineNumber): give exactly one of \"state\" and \"seed\"")
            }
            let r: Run
            do {
                r = try run(&env, state: c.state, seed: c.seed, elapsed: c.elapsed ?? 0, actions: c.actions, rng: &rng)
            } catch let e as ValidationError {
                throw ValidationError("--cases line \(lineNumber): \(e.message)")
            }
            try ObservedEnvironmentOptions.checkHealthy(env)
            out += "{\"observations\":[\(r.observations.map(json).joined(separator: ","))],"
            out += "\"states\":[\(r.states.map(json).joined(separator: ","))],"
            out += "\"rewards\":\(json(r.outcomes.map(\.reward))),"
            out += "\"terminated\":[\(r.outcomes.map { "\($0.terminated)" }.joined(separator: ","))],"
            out += "\"truncated\":[\(r.outcomes.map { "\($0.truncated)" }.joined(separator: ","))]}\n"
            if out.utf8.count > 1 << 20 {
                FileHandle.standardOutput.write(Data(out.utf8))
                out = ""
            }
        }
        FileHandle.standardOutput.write(Data(out.utf8))
    }

    private func parseList<T>(_ text: String, flag: String, _ parse: (String) -> T?) throws -> [T] {
        let pieces = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        return try pieces.map { piece in
            guard let v = parse(piece) else { throw ValidationError("\(flag): '\(piece)' is not a number") }
            return v
        }
    }
}

/// A number as JSON (shortest round-trip form; non-finite values become null).
private func json(_ x: Double) -> String { x.isFinite ? "\(x)" : "null" }
private func json(_ x: Float) -> String { x.isFinite ? "\(x)" : "null" }
private func json(_ xs: [Double]) -> String { "[" + xs.map(json).joined(separator: ",") + "]" }
private func json(_ xs: [Float]) -> String { "[" + xs.map(json).joined(separator: ",") + "]" }
