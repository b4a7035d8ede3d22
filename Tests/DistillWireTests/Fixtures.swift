import DistillWire

/// One message of every kind with every field set to a non-default value.
enum Fixtures {
    static let sender = Sender(role: .actor, id: "actor-7", runNonce: 0xDEAD_BEEF_0123_4567)

    static let unroll = Unroll(
        sequence: 41, parameterVersion: 1234, teacherID: "q-learning(T=0.01,seed=3)", teacherVersion: 2,
        actionCount: 3, episodeLengths: [2, 1], episodeTerminated: [true, false],
        observations: [5, 6, 9, 11, 12], actions: [0, 2, 1], rewards: [-1, 0.5, 10],
        behaviourProbabilities: [0.25, 1, 0.125],
        teacherProbabilities: Tensor(
            shape: [5, 3], values: [0.5, 0.25, 0.25, 1, 0, 0, 0, 0, 1, 0.2, 0.3, 0.5, 0.1, 0.1, 0.8]),
        teacherValues: [1.5, -2, 0, 3.25, 7],
        teacherQValues: Tensor(shape: [5, 3], values: (0..<15).map { Float($0) - 7.5 }))

    static let cartPole = WireEnvironmentSpec(name: "cartpole", observationShape: [4], actionCount: 2)

    /// An unroll of an observed environment: float32 observations and a privileged uint8 view.
    static var observedUnroll: Unroll {
        var unroll = Fixtures.unroll
        unroll.observations = []
        unroll.observationTensor = ObservationTensor(rows: 5, rowShape: [4], float32: (0..<20).map { Float($0) / 8 })
        unroll.teacherObservationTensor = ObservationTensor(
            dtype: .uint8, shape: [5, 2, 3], data: (0..<30).map { UInt8($0 * 7) })
        return unroll
    }

    static let messages: [Message] = [
        .teacherQuery(
            TeacherQuery(
                queryID: 101,
                observations: ObservationTensor(rows: 2, rowShape: [4], float32: [1, 2, 3, 4, -1, -2, -3, -4]))),
        .teacherQuery(
            TeacherQuery(
                queryID: 102,
                observations: ObservationTensor(dtype: .boolPacked, shape: [3, 3], data: [0b0110_1101, 0b1]))),
        .unroll(observedUnroll),
        .parameters(
            Parameters(
                version: 78, values: Tensor(shape: [3], values: [1, -2, 3.5]), envSteps: 5, architecture: "mlp:64,64")),
        .hello(
            Hello(
                environment: "cartpole", stateCount: 0, actionCount: 2, teacherEndpoint: "tcp://127.0.0.1:5556",
                environmentSpec: cartPole, architecture: "mlp:64,64")),
        .welcome(
            Welcome(
                unrollPort: 5557, parametersPort: 5558, teacherEndpoint: "",
                parameters: Parameters(version: 9, values: Tensor(shape: [2], values: [0.5, -0.5]), envSteps: 10),
                actorSettingsJSON: "{}", environmentSpec: cartPole, architecture: "mlp:64,64")),
        .heartbeat(Heartbeat(sequence: 4, envSteps: 9, observationMicroseconds: 1234, inferenceMicroseconds: 5678)),
        .teacherReply(
            TeacherReply(
                queryID: 101, teacherID: "cartpole-teacher", teacherVersion: 1,
                probabilities: Tensor(shape: [1, 2], values: [0.5, 0.5]), values: [3], cacheable: false,
                environment: "cartpole", environmentSpec: cartPole)),
        .teacherQuery(TeacherQuery(queryID: 99, stateIDs: [0, 17, 400])),
        .teacherQuery(
            TeacherQuery(queryID: 100, features: Tensor(shape: [2, 2, 3], values: (0..<12).map(Float.init)))),
        .teacherReply(
            TeacherReply(
                queryID: 99, teacherID: "optimal", teacherVersion: 5,
                probabilities: Tensor(shape: [2, 2], values: [0.75, 0.25, 0, 1]), values: [3.5, -1],
                qValues: Tensor(shape: [2, 2], values: [1, 2, 3, 4]), cacheable: true,
                environment: "gridworld(seed=1,20x20)")),
        .unroll(unroll),
        .parameters(
            Parameters(
                version: 77, values: Tensor(shape: [2, 3], values: [1, -2, 3.5, 0, 1e-3, -7]), envSteps: 12_345)),
        .welcome(
            Welcome(
                unrollPort: 5557, parametersPort: 5558, teacherEndpoint: "tcp://10.0.0.9:5556",
                parameters: Parameters(version: 9, values: Tensor(shape: [2], values: [0.5, -0.5]), envSteps: 10),
                actorSettingsJSON: #"{"control":"student"}"#)),
        .unrollAck(UnrollAck(sequence: 17, parameterVersion: 901)),
        .hello(
            Hello(
                environment: "gridworld(seed=1,20x20)", stateCount: 401, actionCount: 4,
                teacherEndpoint: "tcp://127.0.0.1:5556")),
        .heartbeat(
            Heartbeat(sequence: 3, envSteps: 1_000_000, parameterVersion: 12, unrollsWithheld: 2, messagesRejected: 5)),
        .getParams(GetParams(haveVersion: 76)),
        .control(
            Control(
                command: .swapTeacher, teacherEndpoint: "tcp://10.0.0.5:5556", lambdas: [0.5, 0.25], accepted: true,
                statusJSON: #"{"version":3}"#, requestID: 8, token: "0123456789abcdef")),
        .error(ErrorReply(code: .incompatible, message: "environment differs", inReplyTo: 99)),
        .environmentRequest(
            EnvironmentRequest(requestID: 12, command: .step, environments: [3, 0, 7], actions: [1, 0, 1])),
        .environmentRequest(
            EnvironmentRequest(requestID: 13, command: .reset, environments: [2, 5], seeds: [0, .max])),
        .environmentRequest(EnvironmentRequest(requestID: 14, command: .open, count: 16)),
        .environmentReply(
            EnvironmentReply(
                requestID: 12, environments: [3, 0],
                observations: ObservationTensor(rows: 2, rowShape: [4], float32: [0.5, -1, 2, 0, 1, 1, -3.25, 8]),
                rewards: [1, -0.5], terminated: [true, false], truncated: [false, true],
                states: [0.1, 0.2, 0.3, 0.4, 1e-300, -2, 3, 4])),
        .environmentReply(
            EnvironmentReply(
                requestID: 1,
                description: RemoteEnvironmentDescription(
                    spec: WireEnvironmentSpec(
                        name: "MinAtar/Breakout-v1", observationShape: [10, 10, 4], observationDType: .uint8,
                        actionCount: 3),
                    maxEpisodeSteps: 27_000, rewardRange: -1...1, stateSize: 0, capacity: 64,
                    source: "gymnasium 1.2.0: MinAtar/Breakout-v1"), environments: [9])),
        .checkpoint(
            Checkpoint(
                version: 500, shape: [2, 2], parameters: [0.1, -0.2, 1e-300, 3],
                optimiserState: [1, 2, 3, 4, 5, 6, 7, 8],
                optimiserSteps: 499, critic: [0.5, 0.25], envSteps: 9_999_999, updates: 500,
                rngState: [1, 2, 3, .max], configurationJSON: #"{"env":"gridworld"}"#,
                createdUnixMilliseconds: 1_790_000_000_000)),
    ]

    static var envelopes: [Envelope] { messages.map { Envelope(sender: sender, message: $0) } }
}
