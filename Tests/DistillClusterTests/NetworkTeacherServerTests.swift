import DistillCore
import DistillRuntime
import DistillTestSupport
import DistillWire
import Foundation
import Testing

/// `distill teacher --teacher-file CARTPOLE.safetensors` as a real process (issue 12, item 2):
/// it states the environment spec it serves, answers batches of observation tensors from several
/// clients with `NetworkTeacher.outputs`, refuses observations of another environment with the
/// reason, rejects garbage and oversized tensors without crashing, and reports batch fill, queue
/// depth and latency in its status.
@Suite("network teacher server", .serialized)
struct NetworkTeacherServerTests {
    static let cartPole = WireEnvironmentSpec(name: "CartPole-v1", observationShape: [4], actionCount: 2)

    /// A small CartPole network teacher (a few actor-critic updates: its outputs, not its
    /// return, are what this test compares).
    static func teacherFile(in directory: URL) throws -> URL {
        var method = MethodSpec()
        method.method = .actorCritic
        method.optimiser = .adam
        method.learningRate = 0.001
        method.criticLearningRate = 1
        method.episodesPerIteration = 8
        let cartPole = CartPole(maxEpisodeSteps: CartPole.timeLimit)
        let student = try StudentSpec(architecture: "mlp:64,64", seed: 2).buildNetwork(
            for: cartPole.description, method: method)
        var trainer = try ObservedTrainer(
            method: method, environments: [CartPole](repeating: cartPole, count: 8), student: student, teacher: nil,
            seed: 2)
        for _ in 0..<20 { _ = trainer.runIteration() }
        let file = directory.appendingPathComponent("cartpole-teacher.safetensors")
        try NetworkTeacher.save(
            network: trainer.state.student.network, kind: .policy, temperature: 1,
            observation: trainer.description.name, environment: .init(trainer.description), to: file, metadata: [:])
        return file
    }

    struct Answer: Sendable {
        var reply: TeacherReply?
        var error: ErrorReply?
    }

    @Test func servesObservationBatchesAndRefusesMismatchedAndGarbageTensors() async throws {
        try await onOwnThread {
            let directory = Roles.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let file = try Self.teacherFile(in: directory)
            let teacher = try NetworkTeacher.load(from: file)
            let server = try ChildProcess([
                "teacher", "--teacher-file", file.path, "--bind", "tcp://127.0.0.1:*", "--batch-deadline-ms", "50",
                "--max-batch", "64", "--id", "cartpole-teacher",
            ])
            defer { server.stop() }
            let endpoint = try server.endpoint("teacher")
            let context = try ZMQContext()
            let codec = WireCodec()
            let clients = try (0..<2).map { _ in
                let socket = try ZMQSocket(context: context, type: .dealer, lingerMilliseconds: 0)
                try socket.connect(endpoint)
                return socket
            }
            defer { for socket in clients { socket.close() } }
            let me = Sender.starting(role: .tool, id: "network-teacher-test")
            func send(_ query: TeacherQuery, on client: Int = 0) throws {
                _ = try clients[client].send(codec.encode(Envelope(sender: me, message: .teacherQuery(query))))
            }
            func sendRaw(_ bytes: [UInt8]) throws { _ = try clients[0].send(bytes) }
            func answer(on client: Int = 0) throws -> Answer {
                let deadline = Date().addingTimeInterval(10)
                while Date() < deadline {
                    if let frames = try clients[client].receive(dontWait: true), let payload = frames.last {
                        switch try codec.decode(payload).message {
                        case .teacherReply(let reply): return Answer(reply: reply)
                        case .error(let error): return Answer(error: error)
                        default: continue
                        }
                    }
                    usleep(2000)
                }
                throw ChildProcessError("no answer from the teacher within 10 s:\n\(server.standardError)")
            }

            // Two clients' queries inside one deadline: one batch, each answered with its own rows.
            var rng = Xoshiro256StarStar(seed: 5)
            let rows = [8, 5]
            let observations = rows.map { count in
                (0..<(count * 4)).map { _ in Float(rng.unitInterval() - 0.5) * 0.2 }
            }
            for client in 0..<2 {
                try send(
                    TeacherQuery(
                        queryID: UInt64(10 + client),
                        observations: ObservationTensor(
                            rows: rows[client], rowShape: [4], float32: observations[client])),
                    on: client)
            }
            for client in 0..<2 {
                let reply = try #require(try answer(on: client).reply)
                #expect(reply.queryID == UInt64(10 + client))
                #expect(reply.environmentSpec == Self.cartPole)
                #expect(reply.probabilities.shape == [rows[client], 2])
                let expected = teacher.outputs(observations: observations[client], batch: rows[client])
                let gap = zip(reply.probabilities.values, expected.probabilities).map { abs(Double($0) - $1) }.max()
                #expect((gap ?? 1) < 1e-5, "probabilities differ from NetworkTeacher.outputs by \(gap ?? -1)")
                let valueGap = zip(reply.values, expected.values).map { abs(Double($0) - $1) }.max()
                #expect((valueGap ?? 1) < 1e-3, "values differ by \(valueGap ?? -1)")
            }

            // Observations of another environment (Acrobot's 6 numbers): refused with the reason.
            try send(
                TeacherQuery(
                    queryID: 20,
                    observations: ObservationTensor(rows: 2, rowShape: [6], float32: [Float](repeating: 0, count: 12))))
            let mismatch = try answer()
            #expect(mismatch.error?.code == .incompatible)
            #expect(mismatch.error?.message.contains("CartPole-v1(obs=[4] float32, actions=2)") == true, "\(mismatch)")
            // A tabular query to a network teacher: refused.
            try send(TeacherQuery(queryID: 21, stateIDs: [0, 1]))
            #expect(try answer().error?.message.contains("send observations") == true)
            // Garbage (the data does not fit the shape) and oversized tensors: rejected, no crash.
            for (id, bad) in [
                (22, ObservationTensor(dtype: .float32, shape: [3, 4], data: [UInt8](repeating: 7, count: 13))),
                (23, ObservationTensor(dtype: .float32, shape: [1 << 30, 1 << 30], data: [0, 0, 0, 0])),
            ] {
                try sendRaw(
                    codec.encode(
                        Envelope(
                            sender: me, message: .teacherQuery(TeacherQuery(queryID: UInt64(id), observations: bad)))))
                let rejected = try answer()
                #expect(rejected.error?.code == .malformed, "query \(id): \(rejected)")
                #expect(rejected.error?.message.contains("TeacherQuery.observations") == true, "\(rejected)")
            }
            // Still serving.
            try send(
                TeacherQuery(
                    queryID: 30, observations: ObservationTensor(rows: 1, rowShape: [4], float32: [0, 0, 0, 0])))
            #expect(try answer().reply?.queryID == 30)
            #expect(server.isRunning)

            // Throughput (printed for docs/networks.md): both clients keep one 256-row query in
            // flight each, 200 queries apiece.
            let batch = ObservationTensor(
                rows: 256, rowShape: [4], float32: (0..<1024).map { Float($0 % 17) / 170 })
            let started = ContinuousClock.now
            for round in 0..<200 {
                for client in 0..<2 {
                    try send(TeacherQuery(queryID: UInt64(1000 + round), observations: batch), on: client)
                }
                for client in 0..<2 { #expect(try answer(on: client).reply?.queryID == UInt64(1000 + round)) }
            }
            let seconds = (ContinuousClock.now - started) / .seconds(1)
            print(
                "network teacher server: \(Int(Double(2 * 200 * 256) / seconds)) observations/s, "
                    + "\(String(format: "%.2f", seconds / 200 * 1000)) ms per round of 2 × 256 rows")

            server.stop()
            let log = server.standardError
            if let status = log.split(separator: "\n").last(where: { $0.contains("teacher server status") }) {
                print(status)
            }
            for field in [
                "batch_fill", "max_queue_depth", "mean_latency_ms", "CartPole-v1(obs=[4] float32, actions=2)",
            ] {
                #expect(log.contains(field), "the status has no \(field):\n\(log)")
            }
        }
    }
}
