// Swift values of the messages in proto/distill.proto, field for field. The codec
// (`WireCodec`) turns them into bytes and back; nothing else in the system touches protobuf.

/// The protocol version this build speaks (`Envelope.protocol_version`).
/// 2: typed observation tensors, environment specs and network architectures.
public let currentProtocolVersion: UInt32 = 2

/// The part a process plays in the system.
public enum Role: Int32, Sendable, CaseIterable, CustomStringConvertible {
    /// Runs environments with the student policy and pushes unrolls.
    case actor = 1
    /// Applies the update rule and publishes parameters.
    case learner = 2
    /// Serves a teacher's policy, value and Q-values.
    case teacher = 3
    /// `distill cluster`: starts and supervises the other roles.
    case launcher = 4
    /// A control client (`distill control ...`).
    case control = 5
    /// A diagnostic or test tool.
    case tool = 6

    /// The lower-case role name used in logs and ids.
    public var description: String {
        switch self {
        case .actor: "actor"
        case .learner: "learner"
        case .teacher: "teacher"
        case .launcher: "launcher"
        case .control: "control"
        case .tool: "tool"
        }
    }
}

/// Who sent a message; present on every message.
public struct Sender: Sendable, Hashable {
    /// The sender's role.
    public var role: Role
    /// A human-readable id, unique within a cluster (1 to 128 bytes of UTF-8).
    public var id: String
    /// Drawn at process start, never 0: a restarted process has a new nonce.
    public var runNonce: UInt64

    /// Creates a sender identity.
    public init(role: Role, id: String, runNonce: UInt64) {
        self.role = role
        self.id = id
        self.runNonce = runNonce
    }

    /// A fresh identity for a process that is starting now (a random non-zero nonce).
    public static func starting(role: Role, id: String) -> Sender {
        Sender(role: role, id: id, runNonce: UInt64.random(in: 1...UInt64.max))
    }
}

/// A dense row-major float32 tensor.
public struct Tensor: Sendable, Equatable {
    /// Extent of each dimension, outermost first; empty for a scalar.
    public var shape: [Int]
    /// The values in row-major order; `values.count` is the product of `shape`.
    public var values: [Float]

    /// Creates a tensor; the shape must describe exactly `values.count` elements.
    public init(shape: [Int], values: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor shape \(shape) has a negative extent")
        precondition(
            shape.reduce(1, *) == values.count,
            "Tensor shape \(shape) describes \(shape.reduce(1, *)) values, got \(values.count)")
        self.shape = shape
        self.values = values
    }

    /// An empty tensor (shape [0]), the encoding of an absent optional tensor.
    public static let empty = Tensor(shape: [0], values: [])

    /// True when the tensor holds no values.
    public var isEmpty: Bool { values.isEmpty }
}

/// The element type of an `ObservationTensor`.
public enum DType: Int32, Sendable, CaseIterable, CustomStringConvertible {
    /// Little-endian binary32, 4 bytes per element; finite.
    case float32 = 1
    /// One byte per element (pixels), read as 0…255.
    case uint8 = 2
    /// Booleans, 8 per byte, least significant bit first; read as 0 or 1.
    case boolPacked = 3

    /// Bytes of `elements` elements of this type.
    public func byteCount(elements: Int) -> Int {
        switch self {
        case .float32: elements * 4
        case .uint8: elements
        case .boolPacked: (elements + 7) / 8
        }
    }

    /// The name used in specs and errors.
    public var description: String {
        switch self {
        case .float32: "float32"
        case .uint8: "uint8"
        case .boolPacked: "bool"
        }
    }
}

/// A batch of observations as typed bytes, shape [rows, feature...] (validated by `WireCodec`).
public struct ObservationTensor: Sendable, Equatable {
    /// Element type.
    public var dtype: DType
    /// [rows, feature...].
    public var shape: [Int]
    /// Row-major elements in `dtype`'s encoding.
    public var data: [UInt8]

    /// Creates a tensor from raw bytes (checked when decoded, not here).
    public init(dtype: DType, shape: [Int], data: [UInt8]) {
        self.dtype = dtype
        self.shape = shape
        self.data = data
    }

    /// A float32 tensor of `rows` rows of `rowShape` from `values` (little-endian bytes).
    public init(rows: Int, rowShape: [Int], float32 values: [Float]) {
        precondition(rows * rowShape.reduce(1, *) == values.count, "observation shape does not fit its values")
        var bytes = [UInt8](repeating: 0, count: values.count * 4)
        bytes.withUnsafeMutableBytes { raw in
            for (index, value) in values.enumerated() {
                raw.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: index * 4, as: UInt32.self)
            }
        }
        self.init(dtype: .float32, shape: [rows] + rowShape, data: bytes)
    }

    /// An absent tensor.
    public static let empty = ObservationTensor(dtype: .float32, shape: [], data: [])

    /// True when absent.
    public var isEmpty: Bool { shape.isEmpty && data.isEmpty }

    /// Rows (the first extent), 0 when absent.
    public var rowCount: Int { shape.first ?? 0 }

    /// Shape of one row.
    public var rowShape: [Int] { Array(shape.dropFirst()) }

    /// Whether a float32 tensor holds a NaN or an infinity (read in place, nothing allocated);
    /// false for the other types, whose elements are always finite.
    public var hasNonFiniteElement: Bool {
        guard dtype == .float32 else { return false }
        return data.withUnsafeBytes { raw in
            (0..<(raw.count / 4)).contains {
                // An exponent of all ones is an infinity or a NaN.
                UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)) & 0x7F80_0000
                    == 0x7F80_0000
            }
        }
    }

    /// The elements as floats (uint8 as 0…255, booleans as 0 or 1), row-major.
    public func floats() -> [Float] {
        let count = shape.reduce(1, *)
        guard !isEmpty else { return [] }
        switch dtype {
        case .float32:
            return data.withUnsafeBytes { raw in
                (0..<count).map {
                    Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)))
                }
            }
        case .uint8:
            return data.map { Float($0) }
        case .boolPacked:
            return (0..<count).map { Float((data[$0 >> 3] >> UInt8($0 & 7)) & 1) }
        }
    }
}

/// What an observed environment looks like to a network; peers with different specs refuse
/// each other.
public struct WireEnvironmentSpec: Sendable, Hashable, CustomStringConvertible {
    /// The environment's name, e.g. "cartpole".
    public var name: String
    /// Shape of one observation, e.g. [4].
    public var observationShape: [Int]
    /// Element type on the wire.
    public var observationDType: DType
    /// Number of actions.
    public var actionCount: Int

    /// Creates a spec.
    public init(name: String, observationShape: [Int], observationDType: DType = .float32, actionCount: Int) {
        self.name = name
        self.observationShape = observationShape
        self.observationDType = observationDType
        self.actionCount = actionCount
    }

    /// Numbers in one observation.
    public var observationSize: Int { observationShape.reduce(1, *) }

    /// E.g. "cartpole(obs=[4] float32, actions=2)".
    public var description: String {
        "\(name)(obs=\(observationShape) \(observationDType), actions=\(actionCount))"
    }

    /// Why a peer with `other` cannot work with this one, or nil when they agree.
    public func mismatch(with other: WireEnvironmentSpec) -> String? {
        guard other != self else { return nil }
        return "environment \(other) does not match \(self)"
    }
}

/// A batch of observations whose teacher outputs an actor needs.
public struct TeacherQuery: Sendable, Equatable {
    /// Echoed in the reply.
    public var queryID: UInt64
    /// Tabular observations, one state id per row; empty when `features` is used.
    public var stateIDs: [Int32]
    /// Feature observations [batch, feature...]; empty when `stateIDs` is used.
    public var features: Tensor
    /// Typed observations [batch, feature...] (network teachers); empty otherwise.
    public var observations: ObservationTensor = .empty

    /// Creates a query for tabular states.
    public init(queryID: UInt64, stateIDs: [Int32]) {
        self.queryID = queryID
        self.stateIDs = stateIDs
        self.features = .empty
    }

    /// Creates a query for feature observations.
    public init(queryID: UInt64, features: Tensor) {
        self.queryID = queryID
        self.stateIDs = []
        self.features = features
    }

    /// Creates a query for typed observations.
    public init(queryID: UInt64, observations: ObservationTensor) {
        self.queryID = queryID
        self.stateIDs = []
        self.features = .empty
        self.observations = observations
    }

    /// Number of rows asked for.
    public var batchSize: Int {
        if !stateIDs.isEmpty { return stateIDs.count }
        if !observations.isEmpty { return observations.rowCount }
        return features.shape.first ?? 0
    }
}

/// A teacher's outputs for the rows of one `TeacherQuery`.
public struct TeacherReply: Sendable, Equatable {
    /// The `queryID` answered.
    public var queryID: UInt64
    /// The teacher that produced these targets.
    public var teacherID: String
    /// Increments whenever the server's teacher changes.
    public var teacherVersion: UInt64
    /// Action probabilities [batch, actions].
    public var probabilities: Tensor
    /// V_π(s), one per row.
    public var values: [Float]
    /// Q(s, a) [batch, actions], or empty.
    public var qValues: Tensor
    /// True when answers may be cached for this (teacherID, teacherVersion).
    public var cacheable: Bool
    /// The environment the teacher serves (as `Hello.environment` names it); empty if unsaid.
    public var environment: String
    /// The environment spec a network teacher serves; nil for tables.
    public var environmentSpec: WireEnvironmentSpec?

    /// Creates a reply.
    public init(
        queryID: UInt64, teacherID: String, teacherVersion: UInt64, probabilities: Tensor, values: [Float],
        qValues: Tensor = .empty, cacheable: Bool, environment: String = "", environmentSpec: WireEnvironmentSpec? = nil
    ) {
        self.environment = environment
        self.environmentSpec = environmentSpec
        self.queryID = queryID
        self.teacherID = teacherID
        self.teacherVersion = teacherVersion
        self.probabilities = probabilities
        self.values = values
        self.qValues = qValues
        self.cacheable = cacheable
    }
}

/// A batch of episodes played by one actor, with behaviour probabilities and teacher outputs.
///
/// Holds E episodes of lengths L_1..L_E (T = ΣL_e steps). Step arrays have T entries; state
/// arrays have T + E: each episode's visited states followed by the state it ended in.
public struct Unroll: Sendable, Equatable {
    /// Per-actor sequence number (gaps mean lost unrolls).
    public var sequence: UInt64
    /// The student version the actor acted with.
    public var parameterVersion: UInt64
    /// The teacher that produced the teacher outputs.
    public var teacherID: String
    /// That teacher's version.
    public var teacherVersion: UInt64
    /// Number of actions; the width of the teacher tensors.
    public var actionCount: Int
    /// Steps per episode (E entries, each ≥ 1).
    public var episodeLengths: [UInt32]
    /// Whether each episode terminated (true) or was cut at the length cap (false).
    public var episodeTerminated: [Bool]
    /// State ids, T + E entries.
    public var observations: [Int32]
    /// Actions, T entries.
    public var actions: [Int32]
    /// Rewards, T entries.
    public var rewards: [Float]
    /// μ(a_t|s_t) of the control policy, T entries.
    public var behaviourProbabilities: [Float]
    /// Teacher probabilities [T + E, actionCount].
    public var teacherProbabilities: Tensor
    /// V_π, T + E entries.
    public var teacherValues: [Float]
    /// Teacher Q-values [T + E, actionCount], or empty.
    public var teacherQValues: Tensor
    /// Observed environments: the student's observations [T + E, ...] (then `observations` is
    /// empty); empty for tabular ones.
    public var observationTensor: ObservationTensor = .empty
    /// What a privileged teacher observed [T + E, ...], or empty.
    public var teacherObservationTensor: ObservationTensor = .empty

    /// Creates an unroll; `WireCodec` checks its consistency when it is decoded.
    public init(
        sequence: UInt64, parameterVersion: UInt64, teacherID: String, teacherVersion: UInt64, actionCount: Int,
        episodeLengths: [UInt32], episodeTerminated: [Bool], observations: [Int32], actions: [Int32],
        rewards: [Float], behaviourProbabilities: [Float], teacherProbabilities: Tensor, teacherValues: [Float],
        teacherQValues: Tensor = .empty
    ) {
        self.sequence = sequence
        self.parameterVersion = parameterVersion
        self.teacherID = teacherID
        self.teacherVersion = teacherVersion
        self.actionCount = actionCount
        self.episodeLengths = episodeLengths
        self.episodeTerminated = episodeTerminated
        self.observations = observations
        self.actions = actions
        self.rewards = rewards
        self.behaviourProbabilities = behaviourProbabilities
        self.teacherProbabilities = teacherProbabilities
        self.teacherValues = teacherValues
        self.teacherQValues = teacherQValues
    }

    /// Total environment steps T.
    public var stepCount: Int { actions.count }
}

/// The learner's receipt for an actor's unrolls (flow control).
public struct UnrollAck: Sendable, Equatable {
    /// The highest unroll sequence of the actor the learner has consumed.
    public var sequence: UInt64
    /// The learner's parameter version after consuming it.
    public var parameterVersion: UInt64

    /// Creates a receipt.
    public init(sequence: UInt64, parameterVersion: UInt64) {
        self.sequence = sequence
        self.parameterVersion = parameterVersion
    }
}

/// The student's parameters with their version and checksum.
public struct Parameters: Sendable, Equatable {
    /// Increases with every applied update, across learner restarts.
    public var version: UInt64
    /// The parameters.
    public var values: Tensor
    /// FNV-1a 64 of the little-endian bytes of `values.values`.
    public var checksum: UInt64
    /// Environment steps the learner has consumed.
    public var envSteps: UInt64
    /// The network `values` belong to (e.g. "mlp:64,64"); empty for a table.
    public var architecture: String

    /// Creates parameters, computing the checksum of `values`.
    public init(version: UInt64, values: Tensor, envSteps: UInt64, architecture: String = "") {
        self.init(
            version: version, values: values, checksum: Checksum.fnv1a64(values.values), envSteps: envSteps,
            architecture: architecture)
    }

    /// Creates parameters with a given checksum (as received; see `hasValidChecksum`).
    public init(version: UInt64, values: Tensor, checksum: UInt64, envSteps: UInt64, architecture: String = "") {
        self.version = version
        self.values = values
        self.checksum = checksum
        self.envSteps = envSteps
        self.architecture = architecture
    }

    /// True when `checksum` matches the values.
    public var hasValidChecksum: Bool { Checksum.fnv1a64(values.values) == checksum }
}

/// A client's first message to the learner.
public struct Hello: Sendable, Equatable {
    /// Identifies the environment, e.g. "gridworld(seed=1,20x20)".
    public var environment: String
    /// Number of states of the client's environment.
    public var stateCount: Int
    /// Number of actions of the client's environment.
    public var actionCount: Int
    /// The teacher endpoint the client uses now.
    public var teacherEndpoint: String
    /// Observed environments: the client's environment spec (then `stateCount` is 0).
    public var environmentSpec: WireEnvironmentSpec?
    /// The student architecture the client runs; empty for tables.
    public var architecture: String

    /// Creates a hello.
    public init(
        environment: String, stateCount: Int, actionCount: Int, teacherEndpoint: String,
        environmentSpec: WireEnvironmentSpec? = nil, architecture: String = ""
    ) {
        self.environmentSpec = environmentSpec
        self.architecture = architecture
        self.environment = environment
        self.stateCount = stateCount
        self.actionCount = actionCount
        self.teacherEndpoint = teacherEndpoint
    }
}

/// The learner's answer to `Hello`: its other ports, the teacher to use, the newest parameters.
public struct Welcome: Sendable, Equatable {
    /// The learner's PULL port for unrolls (on the host the client reached it at).
    public var unrollPort: Int
    /// The learner's PUB port for parameters.
    public var parametersPort: Int
    /// The teacher endpoint to use (after a swap); empty to keep the client's own.
    public var teacherEndpoint: String
    /// The newest parameters.
    public var parameters: Parameters
    /// The control settings actors must use, as a JSON object.
    public var actorSettingsJSON: String
    /// The learner's environment spec (observed environments), else nil.
    public var environmentSpec: WireEnvironmentSpec?
    /// The learner's student architecture; empty for tables.
    public var architecture: String

    /// Creates a welcome.
    public init(
        unrollPort: Int, parametersPort: Int, teacherEndpoint: String, parameters: Parameters,
        actorSettingsJSON: String, environmentSpec: WireEnvironmentSpec? = nil, architecture: String = ""
    ) {
        self.environmentSpec = environmentSpec
        self.architecture = architecture
        self.unrollPort = unrollPort
        self.parametersPort = parametersPort
        self.teacherEndpoint = teacherEndpoint
        self.parameters = parameters
        self.actorSettingsJSON = actorSettingsJSON
    }
}

/// Liveness and progress of a client.
public struct Heartbeat: Sendable, Equatable {
    /// Increments per heartbeat.
    public var sequence: UInt64
    /// Environment steps taken in total.
    public var envSteps: UInt64
    /// The parameter version held.
    public var parameterVersion: UInt64
    /// Unrolls held back because a teacher was unreachable.
    public var unrollsWithheld: UInt64
    /// Messages rejected as malformed.
    public var messagesRejected: UInt64
    /// Microseconds spent stepping environments, in total.
    public var observationMicroseconds: UInt64
    /// Microseconds spent in student and teacher inference, in total.
    public var inferenceMicroseconds: UInt64

    /// Creates a heartbeat.
    public init(
        sequence: UInt64, envSteps: UInt64 = 0, parameterVersion: UInt64 = 0, unrollsWithheld: UInt64 = 0,
        messagesRejected: UInt64 = 0, observationMicroseconds: UInt64 = 0, inferenceMicroseconds: UInt64 = 0
    ) {
        self.observationMicroseconds = observationMicroseconds
        self.inferenceMicroseconds = inferenceMicroseconds
        self.sequence = sequence
        self.envSteps = envSteps
        self.parameterVersion = parameterVersion
        self.unrollsWithheld = unrollsWithheld
        self.messagesRejected = messagesRejected
    }
}

/// A request for the newest parameters.
public struct GetParams: Sendable, Equatable {
    /// The version the sender holds (0 for none).
    public var haveVersion: UInt64

    /// Creates a request.
    public init(haveVersion: UInt64) { self.haveVersion = haveVersion }
}

/// A command to a running role, or its echo.
public struct Control: Sendable, Equatable {
    /// What to do.
    public enum Command: Int32, Sendable, CaseIterable {
        /// Stop cleanly.
        case stop = 1
        /// Move to another teacher server.
        case swapTeacher = 2
        /// Set the distillation weights λ_k.
        case setLambda = 3
        /// Report status only.
        case status = 4
    }

    /// The command.
    public var command: Command
    /// For `.swapTeacher`: the new endpoint.
    public var teacherEndpoint: String
    /// For `.setLambda`: one weight per teacher.
    public var lambdas: [Float]
    /// In a reply: whether the command was applied.
    public var accepted: Bool
    /// In a reply: the receiver's state as a JSON object.
    public var statusJSON: String
    /// Echoed in the reply.
    public var requestID: UInt64
    /// The learner's run token, for commands other than `.status` without CURVE operator keys.
    public var token: String

    /// Creates a command.
    public init(
        command: Command, teacherEndpoint: String = "", lambdas: [Float] = [], accepted: Bool = false,
        statusJSON: String = "", requestID: UInt64 = 0, token: String = ""
    ) {
        self.token = token
        self.command = command
        self.teacherEndpoint = teacherEndpoint
        self.lambdas = lambdas
        self.accepted = accepted
        self.statusJSON = statusJSON
        self.requestID = requestID
    }
}

/// A receiver's answer to a message it could not accept.
public struct ErrorReply: Sendable, Equatable {
    /// Why a message was rejected (`Error.Code` in the proto).
    public enum Code: Int32, Sendable, CaseIterable {
        /// Not a valid message, or a field is invalid.
        case malformed = 1
        /// A protocol version the receiver does not speak.
        case unsupportedVersion = 2
        /// A valid message of a type this socket does not take.
        case unexpectedType = 3
        /// Larger than the receiver's maximum.
        case tooLarge = 4
        /// Valid but incompatible (environment, shape, teacher).
        case incompatible = 5
        /// The receiver cannot serve now; retry later.
        case unavailable = 6
    }

    /// Why.
    public var code: Code
    /// What was wrong and what to do.
    public var message: String
    /// The id of the rejected request, when it could be read.
    public var inReplyTo: UInt64

    /// Creates an error reply.
    public init(code: Code, message: String, inReplyTo: UInt64 = 0) {
        self.code = code
        self.message = message
        self.inReplyTo = inReplyTo
    }
}

/// Everything a learner needs to continue a run; also the on-disk checkpoint format.
public struct Checkpoint: Sendable, Equatable {
    /// The parameter version at the checkpoint.
    public var version: UInt64
    /// Shape of the parameter table.
    public var shape: [Int]
    /// The master copy of the parameters (float64).
    public var parameters: [Double]
    /// Optimiser state (float64).
    public var optimiserState: [Double]
    /// Optimiser step counter.
    public var optimiserSteps: UInt64
    /// The student critic's table, or empty.
    public var critic: [Double]
    /// Environment steps consumed.
    public var envSteps: UInt64
    /// Updates applied.
    public var updates: UInt64
    /// The learner's RNG state.
    public var rngState: [UInt64]
    /// The run's configuration as JSON.
    public var configurationJSON: String
    /// Wall-clock time of writing, ms since the Unix epoch.
    public var createdUnixMilliseconds: UInt64
    /// The learner's replay memory (Rusu's setting), or nil without one.
    public var replay: ReplayRows?

    /// Creates a checkpoint.
    public init(
        version: UInt64, shape: [Int], parameters: [Double], optimiserState: [Double] = [],
        optimiserSteps: UInt64 = 0, critic: [Double] = [], envSteps: UInt64, updates: UInt64,
        rngState: [UInt64] = [], configurationJSON: String, createdUnixMilliseconds: UInt64, replay: ReplayRows? = nil
    ) {
        self.replay = replay
        self.version = version
        self.shape = shape
        self.parameters = parameters
        self.optimiserState = optimiserState
        self.optimiserSteps = optimiserSteps
        self.critic = critic
        self.envSteps = envSteps
        self.updates = updates
        self.rngState = rngState
        self.configurationJSON = configurationJSON
        self.createdUnixMilliseconds = createdUnixMilliseconds
    }
}

/// A replay memory's rows in a checkpoint: a ring of `capacity` rows, the first
/// `min(appended, capacity)` stored, the next row going to `appended % capacity`.
public struct ReplayRows: Sendable, Equatable {
    /// Rows the memory holds at most.
    public var capacity: Int
    /// Rows appended since the memory was created.
    public var appended: UInt64
    /// Numbers per observation.
    public var observationSize: Int
    /// Number of actions.
    public var actionCount: Int
    /// `[count × observationSize]`.
    public var observations: [Float]
    /// The teacher's `π(·|o)`, `[count × actionCount]`.
    public var probabilities: [Double]
    /// The teacher's `log π(·|o)`, `[count × actionCount]`.
    public var logProbabilities: [Double]
    /// The teacher's `V(o)`, `[count]`.
    public var values: [Double]
    /// The teacher's `Q(o,·)`, `[count × actionCount]`, or empty.
    public var actionValues: [Double]
    /// Minibatch updates owed by the rows stored so far.
    public var credit: Double

    /// Rows stored.
    public var count: Int { values.count }

    /// Creates the rows of a memory.
    public init(
        capacity: Int, appended: UInt64, observationSize: Int, actionCount: Int, observations: [Float],
        probabilities: [Double], logProbabilities: [Double], values: [Double], actionValues: [Double], credit: Double
    ) {
        self.capacity = capacity
        self.appended = appended
        self.observationSize = observationSize
        self.actionCount = actionCount
        self.observations = observations
        self.probabilities = probabilities
        self.logProbabilities = logProbabilities
        self.values = values
        self.actionValues = actionValues
        self.credit = credit
    }

    /// Why these rows are not a memory's (sizes that disagree, a count that is not
    /// `min(appended, capacity)`, a credit that is not a finite non-negative number), or nil.
    public var inconsistency: String? {
        guard capacity > 0, observationSize > 0, actionCount > 0 else {
            return
                "capacity \(capacity), observation size \(observationSize) and action count \(actionCount) must be positive"
        }
        guard UInt64(count) == min(appended, UInt64(capacity)) else {
            return "\(count) rows stored, but \(appended) appended to a ring of \(capacity)"
        }
        let na = count * actionCount
        guard observations.count == count * observationSize, probabilities.count == na,
            logProbabilities.count == na, actionValues.isEmpty || actionValues.count == na
        else {
            return "\(count) rows of \(observationSize) numbers and \(actionCount) actions, but \(observations.count) "
                + "observation numbers, \(probabilities.count) probabilities, \(logProbabilities.count) log "
                + "probabilities and \(actionValues.count) Q-values"
        }
        guard credit.isFinite && credit >= 0 else { return "credit \(credit) is not a finite non-negative number" }
        return nil
    }
}

/// The body of an `Envelope`: exactly one message.
public enum Message: Sendable, Equatable {
    case teacherQuery(TeacherQuery)
    case teacherReply(TeacherReply)
    case unroll(Unroll)
    case parameters(Parameters)
    case hello(Hello)
    case heartbeat(Heartbeat)
    case getParams(GetParams)
    case control(Control)
    case error(ErrorReply)
    case checkpoint(Checkpoint)
    case welcome(Welcome)
    case unrollAck(UnrollAck)
    case environmentRequest(EnvironmentRequest)
    case environmentReply(EnvironmentReply)

    /// The kind of this message, for dispatch and error messages.
    public var kind: MessageKind {
        switch self {
        case .teacherQuery: .teacherQuery
        case .teacherReply: .teacherReply
        case .unroll: .unroll
        case .parameters: .parameters
        case .hello: .hello
        case .heartbeat: .heartbeat
        case .getParams: .getParams
        case .control: .control
        case .error: .error
        case .checkpoint: .checkpoint
        case .welcome: .welcome
        case .unrollAck: .unrollAck
        case .environmentRequest: .environmentRequest
        case .environmentReply: .environmentReply
        }
    }
}

/// The kinds of message a socket can expect.
public enum MessageKind: String, Sendable, CaseIterable {
    case teacherQuery = "TeacherQuery"
    case teacherReply = "TeacherReply"
    case unroll = "Unroll"
    case parameters = "Parameters"
    case hello = "Hello"
    case heartbeat = "Heartbeat"
    case getParams = "GetParams"
    case control = "Control"
    case error = "Error"
    case checkpoint = "Checkpoint"
    case welcome = "Welcome"
    case unrollAck = "UnrollAck"
    case environmentRequest = "EnvironmentRequest"
    case environmentReply = "EnvironmentReply"
}

/// A message with the protocol header: what actually travels in one ZeroMQ frame.
public struct Envelope: Sendable, Equatable {
    /// Who sent it.
    public var sender: Sender
    /// The message.
    public var message: Message

    /// Wraps a message from a sender.
    public init(sender: Sender, message: Message) {
        self.sender = sender
        self.message = message
    }
}
