internal import CDistillProto
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Turns `Envelope` values into the bytes of proto/distill.proto and back.
///
/// Decoding never trusts its input: beyond protobuf's own checks it verifies the protocol
/// version, the sender, that the body is the kind the caller expects, that every tensor's
/// shape matches its data, that every float is finite, that probabilities are distributions,
/// that parameter checksums match, and that an unroll's arrays agree with each other. A
/// failure is a `DecodingError` that says what was wrong; it never crashes.
public struct WireCodec: Sendable {
    /// The default largest message, in bytes (64 MiB): far above any unroll or parameter table
    /// this system sends, small enough that a hostile peer cannot exhaust memory.
    public static let defaultMaxMessageBytes = 64 << 20

    /// Largest message `decode` accepts, in bytes. Sockets set the same `ZMQ_MAXMSGSIZE`.
    public var maxMessageBytes: Int

    /// How far a probability row may sum from 1 (float32 rounding of large action sets).
    public static let probabilityTolerance: Float = 1e-3

    /// Creates a codec.
    public init(maxMessageBytes: Int = WireCodec.defaultMaxMessageBytes) {
        precondition(maxMessageBytes > 0, "maxMessageBytes must be positive")
        self.maxMessageBytes = maxMessageBytes
    }

    // MARK: Encoding

    /// Largest observation tensor `decode` accepts, in elements (a CartPole unroll of 10,000
    /// steps has 40,000; a 84×84×4 Atari frame stack 28,224 per row).
    public var maxObservationElements: Int = 16 << 20

    /// Serializes an envelope (the current protocol version).
    public func encode(_ envelope: Envelope) -> [UInt8] {
        let arena = CArena()
        var sender = Distill__V1__Sender()
        distill__v1__sender__init(&sender)
        sender.role = .init(rawValue: numericCast(envelope.sender.role.rawValue))
        sender.id = arena.string(envelope.sender.id)
        sender.run_nonce = envelope.sender.runNonce

        var root = Distill__V1__Envelope()
        distill__v1__envelope__init(&root)
        root.protocol_version = currentProtocolVersion
        root.sender = arena.store(sender)
        encodeBody(envelope.message, into: &root, arena: arena)

        let size = distill__v1__envelope__get_packed_size(&root)
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            count = distill__v1__envelope__pack(&root, buffer.baseAddress)
        }
    }

    private func encodeBody(_ message: Message, into root: inout Distill__V1__Envelope, arena: CArena) {
        switch message {
        case .teacherQuery(let query):
            var m = Distill__V1__TeacherQuery()
            distill__v1__teacher_query__init(&m)
            m.query_id = query.queryID
            (m.n_state_ids, m.state_ids) = arena.array(query.stateIDs)
            m.features = arena.tensor(query.features)
            m.observations = arena.observations(query.observations)
            root.body_case = DISTILL__V1__ENVELOPE__BODY_TEACHER_QUERY
            root.teacher_query = arena.store(m)
        case .teacherReply(let reply):
            var m = Distill__V1__TeacherReply()
            distill__v1__teacher_reply__init(&m)
            m.query_id = reply.queryID
            m.teacher_id = arena.string(reply.teacherID)
            m.teacher_version = reply.teacherVersion
            m.probabilities = arena.tensor(reply.probabilities)
            (m.n_values, m.values) = arena.array(reply.values)
            m.q_values = arena.tensor(reply.qValues)
            m.cacheable = reply.cacheable ? 1 : 0
            m.environment = arena.string(reply.environment)
            m.environment_spec = arena.spec(reply.environmentSpec)
            root.body_case = DISTILL__V1__ENVELOPE__BODY_TEACHER_REPLY
            root.teacher_reply = arena.store(m)
        case .unroll(let unroll):
            var m = Distill__V1__Unroll()
            distill__v1__unroll__init(&m)
            m.sequence = unroll.sequence
            m.parameter_version = unroll.parameterVersion
            m.teacher_id = arena.string(unroll.teacherID)
            m.teacher_version = unroll.teacherVersion
            m.action_count = UInt32(clamping: unroll.actionCount)
            (m.n_episode_lengths, m.episode_lengths) = arena.array(unroll.episodeLengths)
            (m.n_episode_terminated, m.episode_terminated) = arena.array(
                unroll.episodeTerminated.map { $0 ? protobuf_c_boolean(1) : protobuf_c_boolean(0) })
            (m.n_observations, m.observations) = arena.array(unroll.observations)
            (m.n_actions, m.actions) = arena.array(unroll.actions)
            (m.n_rewards, m.rewards) = arena.array(unroll.rewards)
            (m.n_behaviour_probabilities, m.behaviour_probabilities) = arena.array(unroll.behaviourProbabilities)
            m.teacher_probabilities = arena.tensor(unroll.teacherProbabilities)
            (m.n_teacher_values, m.teacher_values) = arena.array(unroll.teacherValues)
            m.teacher_q_values = arena.tensor(unroll.teacherQValues)
            m.observation_tensor = arena.observations(unroll.observationTensor)
            m.teacher_observation_tensor = arena.observations(unroll.teacherObservationTensor)
            root.body_case = DISTILL__V1__ENVELOPE__BODY_UNROLL
            root.unroll = arena.store(m)
        case .parameters(let parameters):
            root.body_case = DISTILL__V1__ENVELOPE__BODY_PARAMETERS
            root.parameters = arena.parameters(parameters)
        case .unrollAck(let ack):
            var m = Distill__V1__UnrollAck()
            distill__v1__unroll_ack__init(&m)
            m.sequence = ack.sequence
            m.parameter_version = ack.parameterVersion
            root.body_case = DISTILL__V1__ENVELOPE__BODY_UNROLL_ACK
            root.unroll_ack = arena.store(m)
        case .welcome(let welcome):
            var m = Distill__V1__Welcome()
            distill__v1__welcome__init(&m)
            m.unroll_port = UInt32(clamping: welcome.unrollPort)
            m.parameters_port = UInt32(clamping: welcome.parametersPort)
            m.teacher_endpoint = arena.string(welcome.teacherEndpoint)
            m.parameters = arena.parameters(welcome.parameters)
            m.actor_settings_json = arena.string(welcome.actorSettingsJSON)
            m.environment_spec = arena.spec(welcome.environmentSpec)
            m.architecture = arena.string(welcome.architecture)
            root.body_case = DISTILL__V1__ENVELOPE__BODY_WELCOME
            root.welcome = arena.store(m)
        case .hello(let hello):
            var m = Distill__V1__Hello()
            distill__v1__hello__init(&m)
            m.environment = arena.string(hello.environment)
            m.state_count = UInt32(clamping: hello.stateCount)
            m.action_count = UInt32(clamping: hello.actionCount)
            m.teacher_endpoint = arena.string(hello.teacherEndpoint)
            m.environment_spec = arena.spec(hello.environmentSpec)
            m.architecture = arena.string(hello.architecture)
            root.body_case = DISTILL__V1__ENVELOPE__BODY_HELLO
            root.hello = arena.store(m)
        case .heartbeat(let heartbeat):
            var m = Distill__V1__Heartbeat()
            distill__v1__heartbeat__init(&m)
            m.sequence = heartbeat.sequence
            m.env_steps = heartbeat.envSteps
            m.parameter_version = heartbeat.parameterVersion
            m.unrolls_withheld = heartbeat.unrollsWithheld
            m.messages_rejected = heartbeat.messagesRejected
            m.observation_micros = heartbeat.observationMicroseconds
            m.inference_micros = heartbeat.inferenceMicroseconds
            root.body_case = DISTILL__V1__ENVELOPE__BODY_HEARTBEAT
            root.heartbeat = arena.store(m)
        case .getParams(let request):
            var m = Distill__V1__GetParams()
            distill__v1__get_params__init(&m)
            m.have_version = request.haveVersion
            root.body_case = DISTILL__V1__ENVELOPE__BODY_GET_PARAMS
            root.get_params = arena.store(m)
        case .control(let control):
            var m = Distill__V1__Control()
            distill__v1__control__init(&m)
            m.command = .init(rawValue: numericCast(control.command.rawValue))
            m.teacher_endpoint = arena.string(control.teacherEndpoint)
            (m.n_lambdas, m.lambdas) = arena.array(control.lambdas)
            m.accepted = control.accepted ? 1 : 0
            m.status_json = arena.string(control.statusJSON)
            m.request_id = control.requestID
            m.token = arena.string(control.token)
            root.body_case = DISTILL__V1__ENVELOPE__BODY_CONTROL
            root.control = arena.store(m)
        case .error(let error):
            var m = Distill__V1__Error()
            distill__v1__error__init(&m)
            m.code = .init(rawValue: numericCast(error.code.rawValue))
            m.message = arena.string(error.message)
            m.in_reply_to = error.inReplyTo
            root.body_case = DISTILL__V1__ENVELOPE__BODY_ERROR
            root.error = arena.store(m)
        case .checkpoint(let checkpoint):
            var m = Distill__V1__Checkpoint()
            distill__v1__checkpoint__init(&m)
            m.version = checkpoint.version
            (m.n_shape, m.shape) = arena.array(checkpoint.shape.map { UInt32(clamping: $0) })
            (m.n_parameters, m.parameters) = arena.array(checkpoint.parameters)
            (m.n_optimiser_state, m.optimiser_state) = arena.array(checkpoint.optimiserState)
            m.optimiser_steps = checkpoint.optimiserSteps
            (m.n_critic, m.critic) = arena.array(checkpoint.critic)
            m.env_steps = checkpoint.envSteps
            m.updates = checkpoint.updates
            (m.n_rng_state, m.rng_state) = arena.array(checkpoint.rngState)
            m.configuration_json = arena.string(checkpoint.configurationJSON)
            m.created_unix_ms = checkpoint.createdUnixMilliseconds
            if let replay = checkpoint.replay {
                var r = Distill__V1__ReplayRows()
                distill__v1__replay_rows__init(&r)
                r.capacity = UInt64(replay.capacity)
                r.appended = replay.appended
                r.observation_size = UInt32(clamping: replay.observationSize)
                r.action_count = UInt32(clamping: replay.actionCount)
                (r.n_observations, r.observations) = arena.array(replay.observations)
                (r.n_probabilities, r.probabilities) = arena.array(replay.probabilities)
                (r.n_log_probabilities, r.log_probabilities) = arena.array(replay.logProbabilities)
                (r.n_values, r.values) = arena.array(replay.values)
                (r.n_action_values, r.action_values) = arena.array(replay.actionValues)
                r.credit = replay.credit
                m.replay = arena.store(r)
            }
            root.body_case = DISTILL__V1__ENVELOPE__BODY_CHECKPOINT
            root.checkpoint = arena.store(m)
        case .environmentRequest(let request):
            var m = Distill__V1__EnvironmentRequest()
            distill__v1__environment_request__init(&m)
            m.request_id = request.requestID
            m.command = .init(rawValue: numericCast(request.command.rawValue))
            m.count = UInt32(clamping: request.count)
            (m.n_environments, m.environments) = arena.array(request.environments.map { UInt32(clamping: $0) })
            (m.n_actions, m.actions) = arena.array(request.actions.map { Int32(clamping: $0) })
            (m.n_seeds, m.seeds) = arena.array(request.seeds)
            root.body_case = DISTILL__V1__ENVELOPE__BODY_ENVIRONMENT_REQUEST
            root.environment_request = arena.store(m)
        case .environmentReply(let reply):
            var m = Distill__V1__EnvironmentReply()
            distill__v1__environment_reply__init(&m)
            m.request_id = reply.requestID
            m.description = arena.remoteDescription(reply.description)
            (m.n_environments, m.environments) = arena.array(reply.environments.map { UInt32(clamping: $0) })
            m.observations = arena.observations(reply.observations)
            (m.n_rewards, m.rewards) = arena.array(reply.rewards)
            (m.n_terminated, m.terminated) = arena.array(reply.terminated.map { protobuf_c_boolean($0 ? 1 : 0) })
            (m.n_truncated, m.truncated) = arena.array(reply.truncated.map { protobuf_c_boolean($0 ? 1 : 0) })
            (m.n_states, m.states) = arena.array(reply.states)
            root.body_case = DISTILL__V1__ENVELOPE__BODY_ENVIRONMENT_REPLY
            root.environment_reply = arena.store(m)
        }
    }

    // MARK: Decoding

    /// Parses and validates one envelope of any kind.
    public func decode(_ bytes: [UInt8]) throws(DecodingError) -> Envelope {
        let result = bytes.withUnsafeBytes { buffer in Result { () throws(DecodingError) in try decode(buffer) } }
        return try result.get()
    }

    /// Parses and validates one envelope whose body must be one of `kinds`.
    public func decode(_ bytes: [UInt8], expecting kinds: Set<MessageKind>) throws(DecodingError) -> Envelope {
        let envelope = try decode(bytes)
        guard kinds.contains(envelope.message.kind) else {
            let expected = kinds.map(\.rawValue).sorted().joined(separator: " or ")
            throw DecodingError(
                .unexpectedType,
                "expected \(expected), got \(envelope.message.kind.rawValue) from "
                    + "\(envelope.sender.role) '\(envelope.sender.id)': is it connected to the right endpoint?")
        }
        return envelope
    }

    /// Parses and validates one envelope from raw bytes.
    public func decode(_ buffer: UnsafeRawBufferPointer) throws(DecodingError) -> Envelope {
        guard buffer.count <= maxMessageBytes else {
            throw DecodingError(
                .tooLarge, "message of \(buffer.count) bytes exceeds the maximum of \(maxMessageBytes) bytes")
        }
        guard buffer.count > 0 else { throw DecodingError(.malformed, "empty message: no envelope") }
        let base = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
        // Every C allocation of this decode goes through a counting allocator, so a leak shows
        // up in `WireCodec.leakedAllocations` instead of silently growing the heap.
        var live = 0
        return try withUnsafeMutablePointer(to: &live) { (counter) throws(DecodingError) -> Envelope in
            var allocator = ProtobufCAllocator(
                alloc: { data, size in
                    data!.assumingMemoryBound(to: Int.self).pointee += 1
                    return malloc(size)
                },
                free: { data, pointer in
                    if pointer != nil { data!.assumingMemoryBound(to: Int.self).pointee -= 1 }
                    free(pointer)
                },
                allocator_data: UnsafeMutableRawPointer(counter))
            let unpacked = distill__v1__envelope__unpack(&allocator, buffer.count, base)
            Self.allocationsAudited.add(counter.pointee, ordering: .relaxed)
            defer {
                distill__v1__envelope__free_unpacked(unpacked, &allocator)
                if counter.pointee != 0 { Self.leaked.add(counter.pointee, ordering: .relaxed) }
            }
            guard let root = unpacked else {
                throw DecodingError(
                    .malformed, "\(buffer.count) bytes are not a distill protocol Envelope (protobuf parse failed)")
            }
            return try readEnvelope(root.pointee)
        }
    }

    private static let leaked = Atomic<Int>(0)
    private static let allocationsAudited = Atomic<Int>(0)

    /// C allocations made by `decode` and never freed, over the whole process: 0 unless the codec
    /// leaks. (protobuf-c frees what a failed parse allocated; the codec frees the rest.)
    public static var leakedAllocations: Int { leaked.load(ordering: .relaxed) }

    /// C allocations `decode` made and accounted for so far (shows the audit above is live).
    public static var auditedAllocations: Int { allocationsAudited.load(ordering: .relaxed) }

    private func readEnvelope(_ root: Distill__V1__Envelope) throws(DecodingError) -> Envelope {
        // Checkpoints are also files: version 2 did not change `Checkpoint`, so a run checkpointed
        // by a version-1 build still resumes.
        let readableCheckpoint = root.protocol_version == 1 && root.body_case == DISTILL__V1__ENVELOPE__BODY_CHECKPOINT
        guard root.protocol_version == currentProtocolVersion || readableCheckpoint else {
            if root.protocol_version == 0 {
                throw DecodingError(.unsupportedVersion, "Envelope.protocol_version is missing")
            }
            throw DecodingError(
                .unsupportedVersion,
                "protocol version \(root.protocol_version) is not supported (this build speaks "
                    + "\(currentProtocolVersion)): run the same distill release on every host")
        }
        guard let senderPointer = root.sender else { throw DecodingError(.invalidField, "Envelope.sender is missing") }
        let sender = try readSender(senderPointer.pointee)
        let message: Message
        switch root.body_case {
        case DISTILL__V1__ENVELOPE__BODY_TEACHER_QUERY:
            message = .teacherQuery(try readTeacherQuery(root.teacher_query.pointee))
        case DISTILL__V1__ENVELOPE__BODY_TEACHER_REPLY:
            message = .teacherReply(try readTeacherReply(root.teacher_reply.pointee))
        case DISTILL__V1__ENVELOPE__BODY_UNROLL:
            message = .unroll(try readUnroll(root.unroll.pointee))
        case DISTILL__V1__ENVELOPE__BODY_PARAMETERS:
            message = .parameters(try readParameters(root.parameters.pointee))
        case DISTILL__V1__ENVELOPE__BODY_HELLO:
            message = .hello(try readHello(root.hello.pointee))
        case DISTILL__V1__ENVELOPE__BODY_HEARTBEAT:
            let m = root.heartbeat.pointee
            message = .heartbeat(
                Heartbeat(
                    sequence: m.sequence, envSteps: m.env_steps, parameterVersion: m.parameter_version,
                    unrollsWithheld: m.unrolls_withheld, messagesRejected: m.messages_rejected,
                    observationMicroseconds: m.observation_micros, inferenceMicroseconds: m.inference_micros))
        case DISTILL__V1__ENVELOPE__BODY_GET_PARAMS:
            message = .getParams(GetParams(haveVersion: root.get_params.pointee.have_version))
        case DISTILL__V1__ENVELOPE__BODY_CONTROL:
            message = .control(try readControl(root.control.pointee))
        case DISTILL__V1__ENVELOPE__BODY_ERROR:
            message = .error(try readError(root.error.pointee))
        case DISTILL__V1__ENVELOPE__BODY_CHECKPOINT:
            message = .checkpoint(try readCheckpoint(root.checkpoint.pointee))
        case DISTILL__V1__ENVELOPE__BODY_UNROLL_ACK:
            let m = root.unroll_ack.pointee
            message = .unrollAck(UnrollAck(sequence: m.sequence, parameterVersion: m.parameter_version))
        case DISTILL__V1__ENVELOPE__BODY_WELCOME:
            message = .welcome(try readWelcome(root.welcome.pointee))
        case DISTILL__V1__ENVELOPE__BODY_ENVIRONMENT_REQUEST:
            message = .environmentRequest(try readEnvironmentRequest(root.environment_request.pointee))
        case DISTILL__V1__ENVELOPE__BODY_ENVIRONMENT_REPLY:
            message = .environmentReply(try readEnvironmentReply(root.environment_reply.pointee))
        default:
            throw DecodingError(.invalidField, "Envelope has no message body (or one this build does not know)")
        }
        return Envelope(sender: sender, message: message)
    }

    private func readSender(_ m: Distill__V1__Sender) throws(DecodingError) -> Sender {
        guard let role = Role(rawValue: Int32(truncatingIfNeeded: m.role.rawValue)) else {
            throw DecodingError(.invalidField, "Sender.role \(m.role.rawValue) is not a known role")
        }
        let id = try readString(m.id, field: "Sender.id", maxBytes: 128)
        guard !id.isEmpty else { throw DecodingError(.invalidField, "Sender.id is empty") }
        guard m.run_nonce != 0 else { throw DecodingError(.invalidField, "Sender.run_nonce is 0 (missing)") }
        return Sender(role: role, id: id, runNonce: m.run_nonce)
    }

    private func readTeacherQuery(_ m: Distill__V1__TeacherQuery) throws(DecodingError) -> TeacherQuery {
        let stateIDs = Self.array(m.state_ids, m.n_state_ids)
        let features = try readTensor(m.features, field: "TeacherQuery.features")
        let observations = try readObservations(m.observations, field: "TeacherQuery.observations")
        if !observations.isEmpty {
            guard stateIDs.isEmpty && features.isEmpty else {
                throw DecodingError(
                    .invalidField,
                    "TeacherQuery needs exactly one of state_ids, features and observations (query \(m.query_id))")
            }
            return TeacherQuery(queryID: m.query_id, observations: observations)
        }
        switch (stateIDs.isEmpty, features.isEmpty) {
        case (false, true):
            if let bad = stateIDs.firstIndex(where: { $0 < 0 }) {
                throw DecodingError(.invalidField, "TeacherQuery.state_ids[\(bad)] is \(stateIDs[bad]), must be >= 0")
            }
            return TeacherQuery(queryID: m.query_id, stateIDs: stateIDs)
        case (true, false):
            guard features.shape.count >= 2 else {
                throw DecodingError(
                    .invalidField, "TeacherQuery.features has shape \(features.shape), need [batch, feature...]")
            }
            return TeacherQuery(queryID: m.query_id, features: features)
        default:
            throw DecodingError(
                .invalidField, "TeacherQuery needs exactly one of state_ids and features (query \(m.query_id))")
        }
    }

    private func readTeacherReply(_ m: Distill__V1__TeacherReply) throws(DecodingError) -> TeacherReply {
        let teacherID = try readString(m.teacher_id, field: "TeacherReply.teacher_id", maxBytes: 256)
        guard !teacherID.isEmpty else { throw DecodingError(.invalidField, "TeacherReply.teacher_id is empty") }
        let probabilities = try readTensor(m.probabilities, field: "TeacherReply.probabilities")
        let values = try readFloats(m.values, m.n_values, field: "TeacherReply.values")
        let batch = values.count
        let actions = try Self.validateDistributions(
            probabilities, rows: batch, field: "TeacherReply.probabilities")
        let q = try readTensor(m.q_values, field: "TeacherReply.q_values")
        try Self.validateOptionalTable(q, rows: batch, columns: actions, field: "TeacherReply.q_values")
        let environment = try readString(m.environment, field: "TeacherReply.environment", maxBytes: 1024)
        return TeacherReply(
            queryID: m.query_id, teacherID: teacherID, teacherVersion: m.teacher_version,
            probabilities: probabilities, values: values, qValues: q, cacheable: m.cacheable != 0,
            environment: environment,
            environmentSpec: try readSpec(m.environment_spec, field: "TeacherReply.environment_spec"))
    }

    private func readUnroll(_ m: Distill__V1__Unroll) throws(DecodingError) -> Unroll {
        let actionCount = Int(m.action_count)
        guard actionCount >= 1 else { throw DecodingError(.invalidField, "Unroll.action_count is 0") }
        let teacherID = try readString(m.teacher_id, field: "Unroll.teacher_id", maxBytes: 256)
        guard !teacherID.isEmpty else { throw DecodingError(.invalidField, "Unroll.teacher_id is empty") }
        let lengths = Self.array(m.episode_lengths, m.n_episode_lengths)
        let terminated = Self.array(m.episode_terminated, m.n_episode_terminated).map { $0 != 0 }
        guard !lengths.isEmpty else { throw DecodingError(.invalidField, "Unroll has no episodes") }
        guard terminated.count == lengths.count else {
            throw DecodingError(
                .invalidField,
                "Unroll has \(lengths.count) episode_lengths but \(terminated.count) episode_terminated flags")
        }
        if let bad = lengths.firstIndex(of: 0) {
            throw DecodingError(.invalidField, "Unroll.episode_lengths[\(bad)] is 0: every episode has a step")
        }
        let steps = lengths.reduce(0) { $0 + Int($1) }
        let states = steps + lengths.count
        let observations = Self.array(m.observations, m.n_observations)
        let observationTensor = try readObservations(m.observation_tensor, field: "Unroll.observation_tensor")
        let teacherObservationTensor = try readObservations(
            m.teacher_observation_tensor, field: "Unroll.teacher_observation_tensor")
        if observationTensor.isEmpty {
            guard teacherObservationTensor.isEmpty else {
                throw DecodingError(
                    .invalidField, "Unroll.teacher_observation_tensor needs an observation_tensor for the student")
            }
            try Self.expectCount(
                observations.count, states, "Unroll.observations", "T + E = \(steps) + \(lengths.count)")
        } else {
            guard observations.isEmpty else {
                throw DecodingError(
                    .invalidField, "Unroll has both observations (state ids) and an observation_tensor: send one")
            }
            for (tensor, field) in [
                (observationTensor, "Unroll.observation_tensor"),
                (teacherObservationTensor, "Unroll.teacher_observation_tensor"),
            ] where !tensor.isEmpty && tensor.rowCount != states {
                throw DecodingError(
                    .invalidField, "\(field) has \(tensor.rowCount) rows, expected T + E = \(steps) + \(lengths.count)")
            }
        }
        if let bad = observations.firstIndex(where: { $0 < 0 }) {
            throw DecodingError(.invalidField, "Unroll.observations[\(bad)] is \(observations[bad]), must be >= 0")
        }
        let actions = Self.array(m.actions, m.n_actions)
        try Self.expectCount(actions.count, steps, "Unroll.actions", "T = \(steps)")
        if let bad = actions.firstIndex(where: { $0 < 0 || Int($0) >= actionCount }) {
            throw DecodingError(
                .invalidField, "Unroll.actions[\(bad)] is \(actions[bad]), outside [0, \(actionCount))")
        }
        let rewards = try readFloats(m.rewards, m.n_rewards, field: "Unroll.rewards")
        try Self.expectCount(rewards.count, steps, "Unroll.rewards", "T = \(steps)")
        let behaviour = try readFloats(
            m.behaviour_probabilities, m.n_behaviour_probabilities, field: "Unroll.behaviour_probabilities")
        try Self.expectCount(behaviour.count, steps, "Unroll.behaviour_probabilities", "T = \(steps)")
        if let bad = behaviour.firstIndex(where: { !($0 > 0 && $0 <= 1) }) {
            throw DecodingError(
                .invalidField,
                "Unroll.behaviour_probabilities[\(bad)] is \(behaviour[bad]), must be in (0, 1]: "
                    + "an action the actor took had probability > 0")
        }
        let teacherProbabilities = try readTensor(m.teacher_probabilities, field: "Unroll.teacher_probabilities")
        let width = try Self.validateDistributions(
            teacherProbabilities, rows: states, field: "Unroll.teacher_probabilities")
        guard width == actionCount else {
            throw DecodingError(
                .invalidField,
                "Unroll.teacher_probabilities has \(width) actions per row, action_count is \(actionCount)")
        }
        let teacherValues = try readFloats(m.teacher_values, m.n_teacher_values, field: "Unroll.teacher_values")
        try Self.expectCount(teacherValues.count, states, "Unroll.teacher_values", "T + E = \(states)")
        let q = try readTensor(m.teacher_q_values, field: "Unroll.teacher_q_values")
        try Self.validateOptionalTable(q, rows: states, columns: actionCount, field: "Unroll.teacher_q_values")
        var unroll = Unroll(
            sequence: m.sequence, parameterVersion: m.parameter_version, teacherID: teacherID,
            teacherVersion: m.teacher_version, actionCount: actionCount, episodeLengths: lengths,
            episodeTerminated: terminated, observations: observations, actions: actions, rewards: rewards,
            behaviourProbabilities: behaviour, teacherProbabilities: teacherProbabilities,
            teacherValues: teacherValues, teacherQValues: q)
        unroll.observationTensor = observationTensor
        unroll.teacherObservationTensor = teacherObservationTensor
        return unroll
    }

    private func readParameters(_ m: Distill__V1__Parameters) throws(DecodingError) -> Parameters {
        let values = try readTensor(m.values, field: "Parameters.values")
        let architecture = try readString(m.architecture, field: "Parameters.architecture", maxBytes: 1024)
        let parameters = Parameters(
            version: m.version, values: values, checksum: m.checksum, envSteps: m.env_steps, architecture: architecture)
        guard parameters.hasValidChecksum else {
            throw DecodingError(
                .invalidField,
                "Parameters.checksum of version \(m.version) does not match its values: the parameters "
                    + "were corrupted; ask for them again with GetParams")
        }
        return parameters
    }

    private func readWelcome(_ m: Distill__V1__Welcome) throws(DecodingError) -> Welcome {
        guard (1...65535).contains(m.unroll_port), (1...65535).contains(m.parameters_port) else {
            throw DecodingError(
                .invalidField,
                "Welcome ports must be 1 to 65535, got unroll_port \(m.unroll_port), "
                    + "parameters_port \(m.parameters_port)")
        }
        guard let parameters = m.parameters else {
            throw DecodingError(.invalidField, "Welcome.parameters is missing")
        }
        return Welcome(
            unrollPort: Int(m.unroll_port), parametersPort: Int(m.parameters_port),
            teacherEndpoint: try readString(m.teacher_endpoint, field: "Welcome.teacher_endpoint", maxBytes: 1024),
            parameters: try readParameters(parameters.pointee),
            actorSettingsJSON: try readString(
                m.actor_settings_json, field: "Welcome.actor_settings_json", maxBytes: 1 << 20),
            environmentSpec: try readSpec(m.environment_spec, field: "Welcome.environment_spec"),
            architecture: try readString(m.architecture, field: "Welcome.architecture", maxBytes: 1024))
    }

    private func readHello(_ m: Distill__V1__Hello) throws(DecodingError) -> Hello {
        let environment = try readString(m.environment, field: "Hello.environment", maxBytes: 1024)
        guard !environment.isEmpty else { throw DecodingError(.invalidField, "Hello.environment is empty") }
        let spec = try readSpec(m.environment_spec, field: "Hello.environment_spec")
        guard m.state_count >= 1 || spec != nil, m.action_count >= 1 else {
            throw DecodingError(
                .invalidField,
                "Hello needs state_count (or an environment_spec) and action_count >= 1, got \(m.state_count) "
                    + "and \(m.action_count)")
        }
        let endpoint = try readString(m.teacher_endpoint, field: "Hello.teacher_endpoint", maxBytes: 1024)
        return Hello(
            environment: environment, stateCount: Int(m.state_count), actionCount: Int(m.action_count),
            teacherEndpoint: endpoint, environmentSpec: spec,
            architecture: try readString(m.architecture, field: "Hello.architecture", maxBytes: 1024))
    }

    private func readControl(_ m: Distill__V1__Control) throws(DecodingError) -> Control {
        guard let command = Control.Command(rawValue: Int32(truncatingIfNeeded: m.command.rawValue)) else {
            throw DecodingError(.invalidField, "Control.command \(m.command.rawValue) is not a known command")
        }
        let endpoint = try readString(m.teacher_endpoint, field: "Control.teacher_endpoint", maxBytes: 1024)
        let lambdas = try readFloats(m.lambdas, m.n_lambdas, field: "Control.lambdas")
        if command == .swapTeacher && endpoint.isEmpty {
            throw DecodingError(.invalidField, "Control swap-teacher needs a teacher_endpoint")
        }
        if command == .setLambda {
            guard !lambdas.isEmpty, lambdas.allSatisfy({ $0 >= 0 }) else {
                throw DecodingError(.invalidField, "Control set-lambda needs one or more lambdas, each >= 0")
            }
        }
        let status = try readString(m.status_json, field: "Control.status_json", maxBytes: 1 << 20)
        let token = try readString(m.token, field: "Control.token", maxBytes: 256)
        return Control(
            command: command, teacherEndpoint: endpoint, lambdas: lambdas, accepted: m.accepted != 0,
            statusJSON: status, requestID: m.request_id, token: token)
    }

    private func readError(_ m: Distill__V1__Error) throws(DecodingError) -> ErrorReply {
        guard let code = ErrorReply.Code(rawValue: Int32(truncatingIfNeeded: m.code.rawValue)) else {
            throw DecodingError(.invalidField, "Error.code \(m.code.rawValue) is not a known code")
        }
        let message = try readString(m.message, field: "Error.message", maxBytes: 64 << 10)
        return ErrorReply(code: code, message: message, inReplyTo: m.in_reply_to)
    }

    private func readCheckpoint(_ m: Distill__V1__Checkpoint) throws(DecodingError) -> Checkpoint {
        let shape = Self.array(m.shape, m.n_shape).map { Int($0) }
        let parameters = try readDoubles(m.parameters, m.n_parameters, field: "Checkpoint.parameters")
        guard let count = Self.elementCount(shape), count == parameters.count else {
            throw DecodingError(
                .invalidField,
                "Checkpoint.shape \(shape) does not describe its \(parameters.count) parameters")
        }
        let configuration = try readString(
            m.configuration_json, field: "Checkpoint.configuration_json", maxBytes: 1 << 20)
        guard !configuration.isEmpty else {
            throw DecodingError(.invalidField, "Checkpoint.configuration_json is empty")
        }
        // The learner keeps these counters as Int: larger ones cannot have been written by it.
        guard m.optimiser_steps <= UInt64(Int.max), m.updates <= UInt64(Int.max) else {
            throw DecodingError(
                .invalidField,
                "Checkpoint counters beyond \(Int.max) (optimiser_steps \(m.optimiser_steps), updates "
                    + "\(m.updates)): the file is corrupt")
        }
        return Checkpoint(
            version: m.version, shape: shape, parameters: parameters,
            optimiserState: try readDoubles(
                m.optimiser_state, m.n_optimiser_state, field: "Checkpoint.optimiser_state"),
            optimiserSteps: m.optimiser_steps,
            critic: try readDoubles(m.critic, m.n_critic, field: "Checkpoint.critic"), envSteps: m.env_steps,
            updates: m.updates, rngState: Self.array(m.rng_state, m.n_rng_state),
            configurationJSON: configuration, createdUnixMilliseconds: m.created_unix_ms,
            replay: try m.replay.map { pointer throws(DecodingError) in try readReplayRows(pointer.pointee) })
    }

    private func readReplayRows(_ m: Distill__V1__ReplayRows) throws(DecodingError) -> ReplayRows {
        guard m.capacity <= UInt64(Int32.max) else {
            throw DecodingError(.invalidField, "Checkpoint.replay.capacity \(m.capacity) is beyond any replay memory")
        }
        let rows = ReplayRows(
            capacity: Int(m.capacity), appended: m.appended, observationSize: Int(m.observation_size),
            actionCount: Int(m.action_count),
            observations: try readFloats(m.observations, m.n_observations, field: "Checkpoint.replay.observations"),
            probabilities: try readDoubles(
                m.probabilities, m.n_probabilities, field: "Checkpoint.replay.probabilities"),
            logProbabilities: try readDoubles(
                m.log_probabilities, m.n_log_probabilities, field: "Checkpoint.replay.log_probabilities"),
            values: try readDoubles(m.values, m.n_values, field: "Checkpoint.replay.values"),
            actionValues: try readDoubles(m.action_values, m.n_action_values, field: "Checkpoint.replay.action_values"),
            credit: m.credit)
        if let problem = rows.inconsistency { throw DecodingError(.invalidField, "Checkpoint.replay: \(problem)") }
        return rows
    }

    /// The most environments one request or reply names (a server hosts far fewer).
    public static let maxEnvironmentsPerMessage = 65_536

    private func readEnvironmentRequest(
        _ m: Distill__V1__EnvironmentRequest
    ) throws(DecodingError) -> EnvironmentRequest {
        guard m.request_id != 0 else { throw DecodingError(.invalidField, "EnvironmentRequest.request_id is 0") }
        guard let command = EnvironmentRequest.Command(rawValue: Int32(truncatingIfNeeded: m.command.rawValue)) else {
            throw DecodingError(
                .invalidField, "EnvironmentRequest.command \(m.command.rawValue) is not a known command")
        }
        let environments = Self.array(m.environments, m.n_environments).map { Int($0) }
        let actions = Self.array(m.actions, m.n_actions).map { Int($0) }
        let seeds = Self.array(m.seeds, m.n_seeds)
        let request = EnvironmentRequest(
            requestID: m.request_id, command: command, count: Int(m.count), environments: environments,
            actions: actions, seeds: seeds)
        let limit = Self.maxEnvironmentsPerMessage
        switch command {
        case .describe:
            break
        case .open:
            guard (1...limit).contains(request.count) else {
                throw DecodingError(
                    .invalidField, "EnvironmentRequest.count is \(request.count), expected 1...\(limit)")
            }
        case .reset, .step, .close:
            guard (1...limit).contains(environments.count) else {
                throw DecodingError(
                    .invalidField,
                    "EnvironmentRequest.environments names \(environments.count) environments, expected 1...\(limit)")
            }
            guard Set(environments).count == environments.count else {
                throw DecodingError(.invalidField, "EnvironmentRequest.environments names an environment twice")
            }
        }
        if command == .step {
            guard actions.count == environments.count else {
                throw DecodingError(
                    .invalidField,
                    "EnvironmentRequest has \(actions.count) actions for \(environments.count) environments")
            }
            if let bad = actions.firstIndex(where: { $0 < 0 }) {
                throw DecodingError(.invalidField, "EnvironmentRequest.actions[\(bad)] is negative")
            }
        }
        if command == .reset && !seeds.isEmpty && seeds.count != environments.count {
            throw DecodingError(
                .invalidField,
                "EnvironmentRequest has \(seeds.count) seeds for \(environments.count) environments (one each, or none)"
            )
        }
        return request
    }

    private func readEnvironmentReply(_ m: Distill__V1__EnvironmentReply) throws(DecodingError) -> EnvironmentReply {
        var description: RemoteEnvironmentDescription?
        if let d = m.description {
            description = try readRemoteDescription(d.pointee)
        }
        let environments = Self.array(m.environments, m.n_environments).map { Int($0) }
        guard environments.count <= Self.maxEnvironmentsPerMessage else {
            throw DecodingError(.invalidField, "EnvironmentReply.environments names \(environments.count) environments")
        }
        let observations = try readObservations(m.observations, field: "EnvironmentReply.observations")
        if !observations.isEmpty {
            guard observations.rowCount == environments.count else {
                throw DecodingError(
                    .invalidField,
                    "EnvironmentReply has \(observations.rowCount) observations for \(environments.count) environments")
            }
            guard observations.dtype != .boolPacked else {
                throw DecodingError(.invalidField, "EnvironmentReply.observations must be float32 or uint8")
            }
        }
        let rewards = try readDoubles(m.rewards, m.n_rewards, field: "EnvironmentReply.rewards")
        let terminated = Self.array(m.terminated, m.n_terminated).map { $0 != 0 }
        let truncated = Self.array(m.truncated, m.n_truncated).map { $0 != 0 }
        for (name, count) in [
            ("rewards", rewards.count), ("terminated", terminated.count), ("truncated", truncated.count),
        ]
        where count != 0 && count != environments.count {
            throw DecodingError(
                .invalidField, "EnvironmentReply has \(count) \(name) for \(environments.count) environments")
        }
        let states = try readDoubles(m.states, m.n_states, field: "EnvironmentReply.states")
        if !states.isEmpty && (environments.isEmpty || states.count % environments.count != 0) {
            throw DecodingError(
                .invalidField,
                "EnvironmentReply has \(states.count) state values for \(environments.count) environments")
        }
        return EnvironmentReply(
            requestID: m.request_id, description: description, environments: environments,
            observations: observations, rewards: rewards, terminated: terminated, truncated: truncated,
            states: states)
    }

    private func readRemoteDescription(
        _ m: Distill__V1__RemoteEnvironmentDescription
    ) throws(DecodingError) -> RemoteEnvironmentDescription {
        guard let spec = try readSpec(m.spec, field: "RemoteEnvironmentDescription.spec") else {
            throw DecodingError(.invalidField, "RemoteEnvironmentDescription.spec is missing")
        }
        guard spec.observationDType != .boolPacked else {
            throw DecodingError(
                .invalidField, "RemoteEnvironmentDescription.spec.observation_dtype must be float32 or uint8")
        }
        var range: ClosedRange<Double>?
        if m.has_reward_range != 0 {
            guard m.reward_min.isFinite, m.reward_max.isFinite, m.reward_min <= m.reward_max else {
                throw DecodingError(
                    .invalidField,
                    "RemoteEnvironmentDescription reward range [\(m.reward_min), \(m.reward_max)] is not finite and ordered"
                )
            }
            range = m.reward_min...m.reward_max
        }
        guard m.capacity >= 1 else { throw DecodingError(.invalidField, "RemoteEnvironmentDescription.capacity is 0") }
        guard m.state_size <= 4096 else {
            throw DecodingError(.invalidField, "RemoteEnvironmentDescription.state_size \(m.state_size) is over 4096")
        }
        return RemoteEnvironmentDescription(
            spec: spec, maxEpisodeSteps: m.max_episode_steps == 0 ? nil : Int(m.max_episode_steps),
            rewardRange: range, stateSize: Int(m.state_size), capacity: Int(m.capacity),
            source: try readString(m.source, field: "RemoteEnvironmentDescription.source", maxBytes: 1024))
    }

    // MARK: Field readers

    private func readString(
        _ pointer: UnsafeMutablePointer<CChar>?, field: String, maxBytes: Int
    ) throws(DecodingError) -> String {
        guard let pointer else { return "" }
        let length = strlen(pointer)
        guard length <= maxBytes else {
            throw DecodingError(.invalidField, "\(field) is \(length) bytes long, the limit is \(maxBytes)")
        }
        guard let string = String(validatingCString: pointer) else {
            throw DecodingError(.invalidField, "\(field) is not valid UTF-8")
        }
        return string
    }

    private func readTensor(
        _ pointer: UnsafeMutablePointer<Distill__V1__Tensor>?, field: String
    ) throws(DecodingError) -> Tensor {
        guard let pointer else { return .empty }
        let shape = Self.array(pointer.pointee.shape, pointer.pointee.n_shape).map { Int($0) }
        let values = try readFloats(pointer.pointee.values, pointer.pointee.n_values, field: "\(field).values")
        if shape.isEmpty && values.isEmpty { return .empty }
        guard let count = Self.elementCount(shape), count == values.count else {
            throw DecodingError(
                .invalidField,
                "\(field) has shape \(shape) but \(values.count) values: the shape must describe the data")
        }
        // A tensor of no values (shape [0, 3], say) is an absent one: `encode` writes every empty
        // tensor as absent, so decoding it with its own shape would not survive a round trip.
        if values.isEmpty { return .empty }
        return Tensor(shape: shape, values: values)
    }

    /// A typed observation tensor: known dtype, at least [rows, feature], data exactly as long
    /// as the shape needs, at most `maxObservationElements`, float32 values finite.
    private func readObservations(
        _ pointer: UnsafeMutablePointer<Distill__V1__ObservationTensor>?, field: String
    ) throws(DecodingError) -> ObservationTensor {
        guard let pointer else { return .empty }
        let m = pointer.pointee
        let shape = Self.array(m.shape, m.n_shape).map { Int($0) }
        let data = Self.array(m.data.data, m.data.len)
        if shape.isEmpty && data.isEmpty { return .empty }
        guard let dtype = DType(rawValue: Int32(truncatingIfNeeded: m.dtype.rawValue)) else {
            throw DecodingError(.invalidField, "\(field).dtype \(m.dtype.rawValue) is not a known element type")
        }
        guard shape.count >= 2, shape.count <= 8, shape.allSatisfy({ $0 >= 1 }) else {
            throw DecodingError(
                .invalidField, "\(field) has shape \(shape): need [rows, feature...] with 2 to 8 extents, each >= 1")
        }
        guard let count = Self.elementCount(shape), count <= maxObservationElements else {
            throw DecodingError(
                .invalidField,
                "\(field) of shape \(shape) has more than \(maxObservationElements) elements: refused as oversized")
        }
        let expected = dtype.byteCount(elements: count)
        guard data.count == expected else {
            throw DecodingError(
                .invalidField,
                "\(field) has \(data.count) bytes, its shape \(shape) of \(dtype) needs \(expected): the shape must "
                    + "describe the data")
        }
        let tensor = ObservationTensor(dtype: dtype, shape: shape, data: data)
        switch dtype {
        case .float32:
            if let bad = tensor.floats().firstIndex(where: { !$0.isFinite }) {
                throw DecodingError(.invalidField, "\(field)[\(bad)] is not finite: every float must be finite")
            }
        case .boolPacked:
            let used = count % 8
            if used != 0, data[data.count - 1] >> UInt8(used) != 0 {
                throw DecodingError(.invalidField, "\(field) sets bits beyond its last element")
            }
        case .uint8:
            break
        }
        return tensor
    }

    /// An environment spec, or nil when absent.
    private func readSpec(
        _ pointer: UnsafeMutablePointer<Distill__V1__EnvironmentSpec>?, field: String
    ) throws(DecodingError) -> WireEnvironmentSpec? {
        guard let pointer else { return nil }
        let m = pointer.pointee
        let name = try readString(m.name, field: "\(field).name", maxBytes: 256)
        let shape = Self.array(m.observation_shape, m.n_observation_shape).map { Int($0) }
        guard let dtype = DType(rawValue: Int32(truncatingIfNeeded: m.observation_dtype.rawValue)) else {
            throw DecodingError(
                .invalidField, "\(field).observation_dtype \(m.observation_dtype.rawValue) is not a known element type")
        }
        guard !name.isEmpty, !shape.isEmpty, shape.count <= 8, shape.allSatisfy({ $0 >= 1 }),
            let size = Self.elementCount(shape), size <= maxObservationElements, m.action_count >= 1
        else {
            throw DecodingError(
                .invalidField,
                "\(field) needs a name, an observation shape of 1 to 8 extents >= 1 and action_count >= 1, got "
                    + "'\(name)', \(shape), \(m.action_count)")
        }
        return WireEnvironmentSpec(
            name: name, observationShape: shape, observationDType: dtype, actionCount: Int(m.action_count))
    }

    private func readFloats(
        _ pointer: UnsafeMutablePointer<Float>?, _ count: Int, field: String
    ) throws(DecodingError) -> [Float] {
        let values = Self.array(pointer, count)
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw DecodingError(.invalidField, "\(field)[\(bad)] is \(values[bad]): every float must be finite")
        }
        return values
    }

    private func readDoubles(
        _ pointer: UnsafeMutablePointer<Double>?, _ count: Int, field: String
    ) throws(DecodingError) -> [Double] {
        let values = Self.array(pointer, count)
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw DecodingError(.invalidField, "\(field)[\(bad)] is \(values[bad]): every float must be finite")
        }
        return values
    }

    private static func array<T>(_ pointer: UnsafeMutablePointer<T>?, _ count: Int) -> [T] {
        guard let pointer, count > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: pointer, count: count))
    }

    /// The product of the extents, or nil when it overflows.
    private static func elementCount(_ shape: [Int]) -> Int? {
        var product = 1
        for extent in shape {
            let (result, overflow) = product.multipliedReportingOverflow(by: extent)
            if overflow { return nil }
            product = result
        }
        return product
    }

    private static func expectCount(
        _ actual: Int, _ expected: Int, _ field: String, _ why: String
    ) throws(DecodingError) {
        guard actual == expected else {
            throw DecodingError(.invalidField, "\(field) has \(actual) entries, expected \(why)")
        }
    }

    /// Checks `tensor` is [rows, actions] with each row a distribution; returns `actions`.
    private static func validateDistributions(_ tensor: Tensor, rows: Int, field: String) throws(DecodingError) -> Int {
        guard tensor.shape.count == 2, tensor.shape[0] == rows, tensor.shape[1] >= 1 else {
            throw DecodingError(.invalidField, "\(field) has shape \(tensor.shape), expected [\(rows), actions]")
        }
        let width = tensor.shape[1]
        try tensor.values.withUnsafeBufferPointer { (values) throws(DecodingError) in
            for row in 0..<rows {
                var sum: Float = 0
                for column in 0..<width {
                    let p = values[row * width + column]
                    guard p >= 0 else {
                        throw DecodingError(
                            .invalidField, "\(field)[\(row)][\(column)] is \(p): probabilities are >= 0")
                    }
                    sum += p
                }
                guard abs(sum - 1) <= probabilityTolerance else {
                    throw DecodingError(.invalidField, "\(field) row \(row) sums to \(sum), not 1")
                }
            }
        }
        return width
    }

    private static func validateOptionalTable(
        _ tensor: Tensor, rows: Int, columns: Int, field: String
    ) throws(DecodingError) {
        guard !tensor.isEmpty else { return }
        guard tensor.shape == [rows, columns] else {
            throw DecodingError(
                .invalidField, "\(field) has shape \(tensor.shape), expected [\(rows), \(columns)] or none")
        }
    }
}

/// Owns the C memory of one message being packed: every pointer handed to protobuf-c comes
/// from here and is freed at once when the arena goes away.
private final class CArena {
    private var blocks: [UnsafeMutableRawPointer] = []

    deinit {
        for block in blocks { free(block) }
    }

    private func allocate(_ bytes: Int) -> UnsafeMutableRawPointer {
        let block = malloc(max(bytes, 1))!
        blocks.append(block)
        return block
    }

    func store<T>(_ value: T) -> UnsafeMutablePointer<T> {
        let pointer = allocate(MemoryLayout<T>.stride).bindMemory(to: T.self, capacity: 1)
        pointer.initialize(to: value)
        return pointer
    }

    func array<T>(_ values: [T]) -> (Int, UnsafeMutablePointer<T>?) {
        guard !values.isEmpty else { return (0, nil) }
        let pointer = allocate(MemoryLayout<T>.stride * values.count).bindMemory(to: T.self, capacity: values.count)
        _ = UnsafeMutableBufferPointer(start: pointer, count: values.count).initialize(from: values)
        return (values.count, pointer)
    }

    func string(_ value: String) -> UnsafeMutablePointer<CChar> {
        let utf8 = Array(value.utf8)
        let pointer = allocate(utf8.count + 1).bindMemory(to: CChar.self, capacity: utf8.count + 1)
        for (index, byte) in utf8.enumerated() { pointer[index] = CChar(bitPattern: byte) }
        pointer[utf8.count] = 0
        return pointer
    }

    func parameters(_ parameters: Parameters) -> UnsafeMutablePointer<Distill__V1__Parameters> {
        var m = Distill__V1__Parameters()
        distill__v1__parameters__init(&m)
        m.version = parameters.version
        m.values = tensor(parameters.values)
        m.checksum = parameters.checksum
        m.env_steps = parameters.envSteps
        m.architecture = string(parameters.architecture)
        return store(m)
    }

    func observations(_ tensor: ObservationTensor) -> UnsafeMutablePointer<Distill__V1__ObservationTensor>? {
        guard !tensor.isEmpty else { return nil }
        var m = Distill__V1__ObservationTensor()
        distill__v1__observation_tensor__init(&m)
        m.dtype = .init(rawValue: numericCast(tensor.dtype.rawValue))
        (m.n_shape, m.shape) = array(tensor.shape.map { UInt32(clamping: $0) })
        let (count, bytes) = array(tensor.data)
        m.data = ProtobufCBinaryData(len: count, data: bytes)
        return store(m)
    }

    func spec(_ spec: WireEnvironmentSpec?) -> UnsafeMutablePointer<Distill__V1__EnvironmentSpec>? {
        guard let spec else { return nil }
        var m = Distill__V1__EnvironmentSpec()
        distill__v1__environment_spec__init(&m)
        m.name = string(spec.name)
        (m.n_observation_shape, m.observation_shape) = array(spec.observationShape.map { UInt32(clamping: $0) })
        m.observation_dtype = .init(rawValue: numericCast(spec.observationDType.rawValue))
        m.action_count = UInt32(clamping: spec.actionCount)
        return store(m)
    }

    func remoteDescription(
        _ description: RemoteEnvironmentDescription?
    ) -> UnsafeMutablePointer<Distill__V1__RemoteEnvironmentDescription>? {
        guard let description else { return nil }
        var m = Distill__V1__RemoteEnvironmentDescription()
        distill__v1__remote_environment_description__init(&m)
        m.spec = spec(description.spec)
        m.max_episode_steps = UInt32(clamping: description.maxEpisodeSteps ?? 0)
        if let range = description.rewardRange {
            m.has_reward_range = 1
            m.reward_min = range.lowerBound
            m.reward_max = range.upperBound
        }
        m.state_size = UInt32(clamping: description.stateSize)
        m.capacity = UInt32(clamping: description.capacity)
        m.source = string(description.source)
        return store(m)
    }

    func tensor(_ tensor: Tensor) -> UnsafeMutablePointer<Distill__V1__Tensor>? {
        guard !tensor.isEmpty else { return nil }
        var m = Distill__V1__Tensor()
        distill__v1__tensor__init(&m)
        (m.n_shape, m.shape) = array(tensor.shape.map { UInt32(clamping: $0) })
        (m.n_values, m.values) = array(tensor.values)
        return store(m)
    }
}
