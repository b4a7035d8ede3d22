import DistillNN
import Foundation

/// A teacher that is a policy–value network read from a safetensors file (FUNCTION-APPROXIMATION.md §4).
///
/// Two kinds, from the file's `teacher.kind`, with the temperature τ of `teacher.temperature`:
///
/// - `policy`: π = softmax(z/τ) of the logits head z, V = the value head (an actor–critic's
///   student, trained with `distill train --method actor-critic --student …`).
/// - `q-values`: the logits head holds Q (a DQN's network; Rusu et al. 2016): π = softmax(Q/τ),
///   V = Σ_a π(a) Q(a), and Q is the teacher's action values (Rusu's losses need them). The value
///   head is not read.
///
/// The file also says which observation the network reads (`teacher.observation`: `one-hot`,
/// `image`, `window:5`, `state-id`, or for an environment with its own observation its name, e.g.
/// `CartPole-v1`) and which environment it was trained on (`teacher.environment.*`: its
/// ``EnvironmentDescription`` name, observation shape and action count, and for a tabular MDP
/// underneath ``Environment/identity``, so a teacher for gridworld seed 3 is refused on seed 4).
/// The keys are in docs/file-formats.md.
///
/// Observations are given in the environment's layout (`[C, H, W]` for images) and transposed for
/// convolutions as a student's are (``ObservationLayout``).
///
/// It owns a network, which keeps its last activations: one thread at a time.
public final class NetworkTeacher: @unchecked Sendable {
    /// How the network's logits head is read.
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        /// The logits head gives the policy's logits; the value head gives V.
        case policy
        /// The logits head gives Q; π = softmax(Q/τ), V = Σ_a π(a) Q(a).
        case qValues = "q-values"

        /// τ when a file is written without one: 1 for a policy (its own softmax), 0.01 for
        /// Q-values (Rusu et al. 2016's τ for the KL loss from DQN teachers).
        public var defaultTemperature: Double {
            switch self {
            case .policy: 1
            case .qValues: 0.01
            }
        }
    }

    /// A network teacher's outputs on a batch of `B` observations over `A` actions, row-major.
    ///
    /// (Not named `TeacherOutputs`: that is the protocol the update rules read teachers through.)
    public struct Outputs: Sendable, Hashable {
        /// `π(a|o_b)`, `[B × A]`.
        public var probabilities: [Double]
        /// `max(log π(a|o_b), log teacherLogProbabilityFloor)`, `[B × A]`, from a log-softmax (no
        /// `log` of a rounded probability).
        public var logProbabilities: [Double]
        /// `V(o_b)`, `[B]`.
        public var values: [Double]
        /// `Q(o_b, a)`, `[B × A]`, for a `q-values` teacher; nil for a `policy` teacher.
        public var actionValues: [Double]?

        /// Outputs from their parts.
        public init(probabilities: [Double], logProbabilities: [Double], values: [Double], actionValues: [Double]?) {
            self.probabilities = probabilities
            self.logProbabilities = logProbabilities
            self.values = values
            self.actionValues = actionValues
        }
    }

    /// The environment a teacher was trained on, as its file records it.
    public struct TrainingEnvironment: Sendable, Hashable {
        /// ``EnvironmentDescription/name`` (e.g. `CartPole-v1`, `gridworld(seed=3) observed as image`).
        public var name: String
        /// The observation shape in the environment's layout (`[C, H, W]` for images).
        public var observationShape: [Int]
        /// The number of actions.
        public var actionCount: Int
        /// ``Environment/identity`` when a tabular MDP is underneath, else nil.
        public var identity: String?

        /// A record from its parts.
        public init(name: String, observationShape: [Int], actionCount: Int, identity: String? = nil) {
            self.name = name
            self.observationShape = observationShape
            self.actionCount = actionCount
            self.identity = identity
        }

        /// The record of an observed environment without a tabular MDP (classic control).
        public init(_ description: EnvironmentDescription) {
            self.init(
                name: description.name, observationShape: description.observation.shape,
                actionCount: description.actionCount)
        }

        /// The record of a tabular environment observed as `observation` (with its identity).
        public init(_ environment: Environment, observation: ObservationKind) throws {
            let observed = try TabularObservedEnvironment(environment, observation: observation)
            self.init(
                name: observed.description.name, observationShape: observed.description.observation.shape,
                actionCount: observed.description.actionCount, identity: environment.identity)
        }
    }

    /// The prefix of every teacher key in `__metadata__` (`distill.` is DistillNN's).
    public static let metadataPrefix = "teacher."
    /// The value of `teacher.format`.
    public static let formatVersion = "network-teacher/1"

    /// The metadata keys, one place (docs/file-formats.md lists them).
    enum Key {
        static let format = "teacher.format"
        static let kind = "teacher.kind"
        static let temperature = "teacher.temperature"
        static let observation = "teacher.observation"
        static let environmentName = "teacher.environment.name"
        static let observationShape = "teacher.environment.observation_shape"
        static let actionCount = "teacher.environment.action_count"
        static let identity = "teacher.environment.identity"
        static let required = [
            format, kind, temperature, observation, environmentName, observationShape, actionCount,
        ]
        static let all = Set(required + [identity])
    }

    /// The network.
    public let network: PolicyValueNetwork
    /// How the logits head is read.
    public let kind: Kind
    /// τ of the softmax.
    public let temperature: Double
    /// The observation the network reads (`one-hot`, `image`, `window:K`, `state-id`, or an
    /// environment's own observation named by the environment, e.g. `CartPole-v1`).
    public let observation: String
    /// ``EnvironmentDescription/name`` of the environment it was trained on.
    public let environmentName: String
    /// The environment it was trained on.
    public let environment: TrainingEnvironment
    /// The file's other metadata (neither `distill.` nor `teacher.` keys; e.g. `run.*`).
    public let metadata: [String: String]
    /// Where it was read from (a path), for messages and identities.
    public let source: String

    /// A teacher from its parts; throws when the network does not fit the environment's
    /// observation shape or action count, or τ is not positive.
    public init(
        network: PolicyValueNetwork, kind: Kind, temperature: Double, observation: String,
        environment: TrainingEnvironment, metadata: [String: String] = [:], source: String = "network teacher"
    ) throws {
        func fail(_ problem: String) -> DistillError { DistillError(.invalidDescription, "\(source): \(problem)") }
        guard temperature > 0, temperature.isFinite else {
            throw fail("\(Key.temperature) is \(temperature); it must be a positive number (τ of softmax(z/τ))")
        }
        guard !observation.isEmpty else { throw fail("\(Key.observation) is empty") }
        guard !environment.observationShape.isEmpty, environment.observationShape.allSatisfy({ $0 > 0 }) else {
            throw fail("\(Key.observationShape) \(environment.observationShape) is not positive integers")
        }
        guard environment.actionCount == network.actionCount else {
            throw fail(
                "\(Key.actionCount) is \(environment.actionCount) but the network has \(network.actionCount) logits")
        }
        let expected = ObservationLayout.networkShape(
            network.architecture, environmentShape: environment.observationShape)
        let fits =
            network.architecture.convolutions.isEmpty
            ? Tensor.elementCount(network.inputShape) == Tensor.elementCount(environment.observationShape)
            : network.inputShape == expected
        guard fits else {
            throw fail(
                "the network (\(network.architecture)) reads inputs of shape \(network.inputShape), which do not fit "
                    + "observations of shape \(environment.observationShape) (\(Key.observationShape); expected "
                    + "\(expected))")
        }
        self.network = network
        self.kind = kind
        self.temperature = temperature
        self.observation = observation
        self.environment = environment
        self.environmentName = environment.name
        self.metadata = metadata
        self.source = source
    }

    // MARK: Files

    /// Reads a network teacher file: a DistillNN network file whose `__metadata__` also holds the
    /// `teacher.` keys. Any problem (unreadable file, malformed safetensors, a network that does not
    /// fit, a missing, unknown or malformed teacher key) is a ``DistillError`` naming the file and
    /// the field.
    public static func load(from url: URL) throws -> NetworkTeacher {
        let source = url.path
        let loaded: LoadedNetwork
        do {
            loaded = try PolicyValueNetwork.load(from: url)
        } catch let error as NetworkError {
            throw DistillError(.invalidDescription, error.message)
        }
        func fail(_ problem: String) -> DistillError { DistillError(.invalidDescription, "\(source): \(problem)") }
        guard loaded.network.heads == 1 else {
            throw fail(
                "\(loaded.network.architecture) has \(loaded.network.heads) heads, one per task: a teacher answers for "
                    + "observations without a task, so it must have one head")
        }
        let meta = loaded.metadata
        let present = meta.keys.filter { $0.hasPrefix(metadataPrefix) }
        guard !present.isEmpty else {
            throw fail(
                "a network file without teacher metadata (no __metadata__.\(Key.format)): write it with "
                    + "NetworkTeacher.save, or with `distill train --student ARCH --out DIR` (DIR/student.safetensors)")
        }
        if let unknown = present.sorted().first(where: { !Key.all.contains($0) }) {
            throw fail(
                "__metadata__.\(unknown) is not a teacher key (known: \(Key.all.sorted().joined(separator: ", ")))")
        }
        for key in Key.required where meta[key] == nil {
            throw fail("__metadata__ has no \(key) (docs/file-formats.md lists the teacher keys)")
        }
        let format = meta[Key.format]!
        guard format == formatVersion else {
            throw fail("__metadata__.\(Key.format) is \"\(format)\"; this distill reads \(formatVersion)")
        }
        let kindText = meta[Key.kind]!
        guard let kind = Kind(rawValue: kindText) else {
            throw fail(
                "__metadata__.\(Key.kind) is \"\(kindText)\"; expected "
                    + Kind.allCases.map(\.rawValue).joined(separator: " or "))
        }
        let temperatureText = meta[Key.temperature]!
        guard let temperature = Double(temperatureText), temperature > 0, temperature.isFinite else {
            throw fail("__metadata__.\(Key.temperature) is \"\(temperatureText)\"; expected a positive number like 1")
        }
        let shapeText = meta[Key.observationShape]!
        let shapeParts = shapeText.split(separator: ",", omittingEmptySubsequences: false)
        let shape = shapeParts.compactMap { Int($0) }
        guard !shape.isEmpty, shape.count == shapeParts.count, shape.allSatisfy({ $0 > 0 }) else {
            throw fail(
                "__metadata__.\(Key.observationShape) is \"\(shapeText)\"; expected positive integers like 7,20,20")
        }
        let actionText = meta[Key.actionCount]!
        guard let actions = Int(actionText), actions > 0 else {
            throw fail("__metadata__.\(Key.actionCount) is \"\(actionText)\"; expected a positive integer")
        }
        let environment = TrainingEnvironment(
            name: meta[Key.environmentName]!, observationShape: shape, actionCount: actions,
            identity: meta[Key.identity])
        return try NetworkTeacher(
            network: loaded.network, kind: kind, temperature: temperature, observation: meta[Key.observation]!,
            environment: environment, metadata: meta.filter { !$0.key.hasPrefix(metadataPrefix) }, source: source)
    }

    /// The `teacher.` metadata of a teacher of `kind` with τ `temperature` reading `observation`
    /// on `environment` (what ``save(network:kind:temperature:observation:environment:to:metadata:)``
    /// writes beside the caller's keys).
    public static func metadata(
        kind: Kind, temperature: Double, observation: String, environment: TrainingEnvironment
    ) -> [String: String] {
        var keys = [
            Key.format: formatVersion, Key.kind: kind.rawValue, Key.temperature: "\(temperature)",
            Key.observation: observation, Key.environmentName: environment.name,
            Key.observationShape: environment.observationShape.map(String.init).joined(separator: ","),
            Key.actionCount: "\(environment.actionCount)",
        ]
        if let identity = environment.identity { keys[Key.identity] = identity }
        return keys
    }

    /// Writes `network` as a teacher file: the network file of DistillNN with the `teacher.` keys
    /// and the caller's `metadata` (keys starting with `distill.` or `teacher.` are refused).
    /// Throws when the network does not fit `environment` or τ is not positive.
    public static func save(
        network: PolicyValueNetwork, kind: Kind, temperature: Double, observation: String,
        environment: TrainingEnvironment, to url: URL, metadata: [String: String] = [:]
    ) throws {
        if let reserved = metadata.keys.sorted().first(where: {
            $0.hasPrefix(metadataPrefix) || $0.hasPrefix(PolicyValueNetwork.reservedMetadataPrefix)
        }) {
            throw DistillError(
                .invalidConfiguration,
                "metadata key \"\(reserved)\" is reserved (teacher. and distill. keys are written by distill)")
        }
        let teacher = try NetworkTeacher(
            network: network, kind: kind, temperature: temperature, observation: observation,
            environment: environment, source: url.path)
        let keys = metadata.merging(
            Self.metadata(
                kind: kind, temperature: teacher.temperature, observation: observation, environment: environment)
        ) { own, _ in own }
        try network.save(to: url, metadata: keys)
    }

    // MARK: Checks

    /// Throws, naming the file and the field, unless this teacher was trained on an environment
    /// described as `description` (name, observation shape, action count) and reads `observation`.
    public func check(against description: EnvironmentDescription, observation: String) throws {
        func fail(_ problem: String) -> DistillError {
            DistillError(.invalidConfiguration, "teacher file \(source): \(problem)")
        }
        guard observation == self.observation else {
            throw fail(
                "the teacher reads observation '\(self.observation)' (\(Key.observation)), not '\(observation)': "
                    + "give the teacher its own observation or train a teacher on '\(observation)'")
        }
        guard description.actionCount == environment.actionCount else {
            throw fail(
                "the teacher has \(environment.actionCount) actions (\(Key.actionCount)); \(description.name) has "
                    + "\(description.actionCount)")
        }
        guard description.observation.shape == environment.observationShape else {
            throw fail(
                "the teacher reads observations of shape \(environment.observationShape) (\(Key.observationShape)); "
                    + "\(description.name) gives \(description.observation.shape)")
        }
        guard description.name == environment.name else {
            throw fail(
                "the teacher was trained on \(environment.name) (\(Key.environmentName)), not \(description.name): "
                    + "use a teacher trained on this environment")
        }
    }

    // MARK: Outputs

    /// The teacher's policy, log-policy, values (and Q for `q-values`) at `batch` observations,
    /// row-major `[batch] + observation shape` in the environment's layout.
    public func outputs(observations: [Float], batch: Int) -> Outputs {
        let per = Tensor.elementCount(environment.observationShape)
        precondition(batch > 0, "NetworkTeacher.outputs: batch must be positive")
        precondition(
            observations.count == batch * per,
            "NetworkTeacher.outputs: \(observations.count) scalars for \(batch) observations of \(per)")
        let input = ObservationLayout.networkInput(
            observations, environmentShape: environment.observationShape, architecture: network.architecture)
        let (logits, heads) = network.forward(input, batch: batch)
        return Self.outputs(
            logits: logits, values: heads, actionCount: network.actionCount, kind: kind, temperature: temperature)
    }

    /// The outputs of a teacher of `kind` with τ `temperature` whose network gave `logits`
    /// (`[B × A]`) and value-head `values` (`[B]`): per row, with x = z/τ,
    /// log π(a) = x_a − max x − log Σ_b exp(x_b − max x) (floored at log ``teacherLogProbabilityFloor``),
    /// π(a) = exp(log π(a)); V = the value head (`policy`) or Σ_a π(a) z_a (`q-values`, z = Q).
    static func outputs(
        logits: [Float], values heads: [Float], actionCount na: Int, kind: Kind, temperature: Double
    ) -> Outputs {
        let batch = heads.count
        let floor = Foundation.log(teacherLogProbabilityFloor)
        var probabilities = [Double](repeating: 0, count: batch * na)
        var logProbabilities = probabilities
        var values = heads.map(Double.init)
        for b in 0..<batch {
            let row = b * na
            var top = -Double.infinity
            for a in 0..<na { top = max(top, Double(logits[row + a]) / temperature) }
            var total = 0.0
            for a in 0..<na { total += Foundation.exp(Double(logits[row + a]) / temperature - top) }
            let logTotal = Foundation.log(total)
            var expected = 0.0
            for a in 0..<na {
                let logP = Double(logits[row + a]) / temperature - top - logTotal
                let p = Foundation.exp(logP)
                probabilities[row + a] = p
                logProbabilities[row + a] = max(logP, floor)
                expected += p * Double(logits[row + a])
            }
            if kind == .qValues { values[b] = expected }
        }
        return Outputs(
            probabilities: probabilities, logProbabilities: logProbabilities, values: values,
            actionValues: kind == .qValues ? logits.map(Double.init) : nil)
    }

    /// The teacher read at every state's observation of a tabular environment: a ``Teacher`` table
    /// (policy, values, and Q for `q-values`) that the exact evaluation, the trainers and the
    /// teacher server use unchanged. Throws when the file was made for another environment
    /// (another ``Environment/identity``: another seed, other knobs) or another observation.
    public func table(for environment: Environment, observation: ObservationKind) throws -> Teacher {
        if let identity = self.environment.identity, identity != environment.identity {
            throw DistillError(
                .invalidConfiguration,
                "teacher file \(source): the teacher was trained on \(identity) (\(Key.identity)), not on "
                    + "\(environment.identity): use a teacher trained on this environment (same seed and knobs)")
        }
        let observed = try TabularObservedEnvironment(environment, observation: observation)
        try check(against: observed.description, observation: observation.description)
        let out = outputs(observations: observed.observationTable(), batch: observed.stateCount)
        return Teacher(
            identity: identity, stateCount: observed.stateCount, actionCount: network.actionCount,
            probabilities: out.probabilities, values: out.values, actionValues: out.actionValues)
    }

    /// A short identity for tables and logs: `network(KIND,T=τ,FILE)`.
    public var identity: String {
        "network(\(kind.rawValue),T=\(temperature),\(URL(fileURLWithPath: source).lastPathComponent))"
    }
}

extension NetworkTeacher {
    /// A copy with another τ (same network object: still one thread at a time).
    public func withTemperature(_ temperature: Double) throws -> NetworkTeacher {
        try NetworkTeacher(
            network: network, kind: kind, temperature: temperature, observation: observation,
            environment: environment, metadata: metadata, source: source)
    }

    /// The teacher table that `--teacher-file` embeds in a run's configuration for a network
    /// teacher on a tabular environment: π (and Q) read from the network at every state's
    /// observation (``table(for:observation:)`` with the file's `teacher.observation`), and V_π by
    /// exact policy evaluation of that policy, as for the built-in teachers. The value head is
    /// not used here: where the MDP is known V_π is exact, and `distill train` does not train the
    /// value head of its students (their critic is tabular).
    public func tableDescription(for environment: Environment) throws -> TeacherDescription {
        let kind: ObservationKind
        do {
            kind = try ObservationKind(parsing: observation)
        } catch {
            throw DistillError(
                .invalidConfiguration,
                "teacher file \(source): it reads observation '\(observation)' (\(Key.observation)), which is not "
                    + "one of a tabular environment (state-id, one-hot, image, window:K): a --teacher-file network "
                    + "must be a teacher for a tabular environment")
        }
        let read = try table(for: environment, observation: kind)
        let values = try PolicyEvaluation.values(environment.mdp, policy: read.probabilities)
        let na = read.actionCount
        func rows(_ flat: [Double]) -> [[Double]] {
            (0..<read.stateCount).map { Array(flat[($0 * na)..<(($0 + 1) * na)]) }
        }
        return TeacherDescription(
            identity: read.identity, stateCount: read.stateCount, actionCount: na, policy: rows(read.probabilities),
            values: values, q: read.actionValues.map(rows))
    }
}

extension StudentTrainer where S == NetworkStudent {
    /// Writes the trained student as a teacher file: kind `policy`, τ 1, the student's
    /// observation and this environment in the `teacher.` keys, the run in `run.*` keys (student,
    /// observation, environment, method, iterations). `distill train --student ARCH --out DIR`
    /// writes DIR/student.safetensors with it; `--teacher-file` reads it back.
    public func saveStudentAsTeacher(to url: URL) throws {
        let observation = try ObservationKind(parsing: configuration.student.observation)
        try NetworkTeacher.save(
            network: state.student.network, kind: .policy,
            temperature: NetworkTeacher.Kind.policy.defaultTemperature, observation: observation.description,
            environment: NetworkTeacher.TrainingEnvironment(environment, observation: observation), to: url,
            metadata: [
                "run.student": configuration.student.architecture, "run.observation": observation.description,
                "run.environment": environment.name, "run.method": configuration.method.method.rawValue,
                "run.iterations": "\(iteration)",
            ])
    }
}
