import DistillCore
import DistillNN
import DistillRuntime
import DistillTestSupport
import DistillWire
import Foundation
import Testing

/// A real `distill actor --env cartpole --student mlp:16 --environments 8` with a real
/// `distill teacher --teacher-file` (issue 12, item 3). The learner's part is played by this test
/// (a ROUTER, a PULL and a PUB sending real Welcome, Parameters and UnrollAck messages and decoding
/// the unrolls): a test harness standing in for the network learner, which is built separately.
/// Checked: the Hello names the spec and architecture; unrolls decode into episodes; their
/// behaviour is the softmax of the parameters the unroll names; their teacher rows equal
/// `distill nn forward --teacher` on the same observations; heartbeats carry the observation and
/// inference time; the actor's step rate is printed.
@Suite("network actor process", .serialized)
struct NetworkActorProcessTests {
    static let spec = WireEnvironmentSpec(CartPole().description)

    @Test func aNetworkActorPlaysForATestLearnerWithARealTeacherServer() async throws {
        try await onOwnThread {
            let directory = Roles.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let file = try NetworkTeacherServerTests.teacherFile(in: directory)
            let server = try ChildProcess([
                "teacher", "--teacher-file", file.path, "--bind", "tcp://127.0.0.1:*", "--batch-deadline-ms", "2",
                "--id", "cartpole-teacher",
            ])
            defer { server.stop() }
            let teacherEndpoint = try server.endpoint("teacher")

            // The learner's sockets.
            let context = try ZMQContext()
            let control = try ZMQSocket(context: context, type: .router, lingerMilliseconds: 0)
            let pull = try ZMQSocket(context: context, type: .pull, lingerMilliseconds: 0)
            let pub = try ZMQSocket(context: context, type: .pub, lingerMilliseconds: 0)
            defer { for socket in [control, pull, pub] { socket.close() } }
            func port(_ endpoint: String) throws -> Int {
                try #require(endpoint.split(separator: ":").last.flatMap { Int($0) }, "no port in \(endpoint)")
            }
            let controlEndpoint = try control.bind("tcp://127.0.0.1:*")
            let unrollPort = try port(pull.bind("tcp://127.0.0.1:*"))
            let parametersPort = try port(pub.bind("tcp://127.0.0.1:*"))
            let codec = WireCodec()
            let me = Sender.starting(role: .learner, id: "test-learner")
            func encode(_ message: Message) -> [UInt8] { codec.encode(Envelope(sender: me, message: message)) }

            // About 2 s at the rate measured here (200k steps/s): several heartbeats (every 500 ms).
            let steps = 400_000
            let actor = try ChildProcess([
                "actor", "--env", "cartpole", "--student", "mlp:16", "--environments", "8", "--learner",
                controlEndpoint, "--teacher-server", teacherEndpoint, "--actor-seed", "3", "--id", "net-actor",
                "--max-env-steps", "\(steps)",
            ])
            defer { actor.stop() }

            let first = try PolicyValueNetwork(
                architecture: NetworkArchitecture(parsing: "mlp:16"), inputShape: [4], actionCount: 2, seed: 21)
            let second = try PolicyValueNetwork(
                architecture: NetworkArchitecture(parsing: "mlp:16"), inputShape: [4], actionCount: 2, seed: 22)
            let settings = ActorSettings(control: .student, maxEpisodeSteps: 500, unrollSteps: 500)
            let json = String(decoding: try JSONEncoder().encode(settings), as: UTF8.self)

            var hello: Hello?
            var heartbeats: [Heartbeat] = []
            var unrolls: [Unroll] = []
            var firstUnrollAt: Date?
            var lastUnrollAt = Date()
            let deadline = Date().addingTimeInterval(120)
            while actor.isRunning && Date() < deadline {
                var idle = true
                while let frames = try control.receive(dontWait: true), frames.count == 2 {
                    idle = false
                    switch try codec.decode(frames[1]).message {
                    case .hello(let said):
                        hello = said
                        let welcome = Welcome(
                            unrollPort: unrollPort, parametersPort: parametersPort, teacherEndpoint: "",
                            parameters: NetworkParameters.parameters(of: first, version: 1, envSteps: 0),
                            actorSettingsJSON: json, environmentSpec: said.environmentSpec,
                            architecture: said.architecture)
                        _ = try control.send([frames[0], encode(.welcome(welcome))])
                    case .heartbeat(let beat): heartbeats.append(beat)
                    default: break
                    }
                }
                while let frames = try pull.receive(dontWait: true), let payload = frames.last {
                    idle = false
                    let envelope = try codec.decode(payload)
                    guard case .unroll(let unroll) = envelope.message else { continue }
                    if firstUnrollAt == nil { firstUnrollAt = Date() }
                    lastUnrollAt = Date()
                    unrolls.append(unroll)
                    let ack = UnrollAck(sequence: unroll.sequence, parameterVersion: 2)
                    _ = try control.send([routingID(of: envelope.sender), encode(.unrollAck(ack))])
                    // Version 2 from the first unroll on (again with each: a late subscriber
                    // misses broadcasts; the actor ignores versions it holds).
                    _ = try pub.send(
                        encode(.parameters(NetworkParameters.parameters(of: second, version: 2, envSteps: 1))))
                }
                if idle { usleep(500) }
            }
            let status = actor.waitForExit(timeout: .seconds(10))
            let log = actor.standardError
            #expect(status == 0, "the actor stops cleanly at --max-env-steps:\n\(log.suffix(3000))")

            let said = try #require(hello, "no Hello from the actor:\n\(log.suffix(3000))")
            #expect(said.environmentSpec == Self.spec && said.architecture == "mlp:16" && said.stateCount == 0)
            #expect(said.environment == "CartPole-v1" && said.actionCount == 2)
            #expect(unrolls.count >= 10, "\(unrolls.count) unrolls:\n\(log.suffix(3000))")

            // Every unroll decodes; the behaviour is the softmax of the parameters it names (an
            // unroll of version 1 may hold episodes that ran into version 2, so check version 1
            // only on the first, played before version 2 was sent).
            var checkedSecond = 0
            for (index, unroll) in unrolls.enumerated() {
                let episodes = try ObservedUnroll.episodes(of: unroll, spec: Self.spec)
                #expect(episodes.reduce(0) { $0 + $1.length } >= 500)
                #expect(!unroll.teacherID.isEmpty && unroll.teacherID == unrolls[0].teacherID)
                let network: PolicyValueNetwork
                if index == 0 {
                    #expect(unroll.parameterVersion == 1)
                    network = first
                } else if unroll.parameterVersion == 2 {
                    network = second
                    checkedSecond += 1
                } else {
                    continue
                }
                var gap = 0.0
                for episode in episodes {
                    let (logits, _) = network.forward(episode.observationRows, batch: episode.length + 1)
                    for t in 0..<episode.length {
                        let l0 = Double(logits[2 * t])
                        let l1 = Double(logits[2 * t + 1])
                        let p1 = 1 / (1 + Foundation.exp(l0 - l1))
                        let p = episode.actions[t] == 1 ? p1 : 1 - p1
                        gap = max(gap, abs(p - episode.behaviour[t]))
                    }
                }
                #expect(gap < 1e-5, "unroll \(index) (version \(unroll.parameterVersion)): behaviour off by \(gap)")
            }
            #expect(checkedSecond > 0, "the parameters sent after the first unroll are applied")
            #expect(unrolls.map(\.sequence) == (0..<UInt64(unrolls.count)).map { $0 })

            // The teacher rows are `distill nn forward --teacher` on the same observations.
            let episodes = try ObservedUnroll.episodes(of: unrolls[0], spec: Self.spec)
            let rows = episodes.flatMap { episode in
                (0...episode.length).map { t in episode.observationRows[(t * 4)..<((t + 1) * 4)].map(Double.init) }
            }
            let observations = directory.appendingPathComponent("observations.json")
            try JSONEncoder().encode(rows).write(to: observations)
            let forward = Process()
            forward.executableURL = ChildProcess.distillBinary
            forward.arguments = ["nn", "forward", "--teacher", file.path, "--observations", observations.path]
            let output = Pipe()
            forward.standardOutput = output
            try forward.run()
            let printed = output.fileHandleForReading.readDataToEndOfFile()
            forward.waitUntilExit()
            #expect(forward.terminationStatus == 0)
            let report = try #require(
                try JSONSerialization.jsonObject(with: printed) as? [String: Any],
                "distill nn forward printed \(String(decoding: printed.prefix(500), as: UTF8.self))")
            let probabilities = try #require(report["probabilities"] as? [[Double]])
            let values = try #require(report["values"] as? [Double])
            let served = episodes.flatMap(\.teacherProbabilities)
            let servedValues = episodes.flatMap(\.teacherValues)
            #expect(probabilities.count == rows.count && served.count == 2 * rows.count)
            let probabilityGap = zip(probabilities.flatMap { $0 }, served).map { abs($0 - $1) }.max() ?? 1
            let valueGap = zip(values, servedValues).map { abs($0 - $1) }.max() ?? 1
            #expect(probabilityGap < 1e-5 && valueGap < 1e-3, "teacher rows off by \(probabilityGap), \(valueGap)")

            // Heartbeats carry the time shares; the step rate comes from the actor's last line.
            let last = try #require(heartbeats.last, "no heartbeat")
            #expect(last.observationMicroseconds > 0 && last.inferenceMicroseconds > 0, "\(last)")
            let stopping = try #require(
                log.split(separator: "\n").last { $0.contains("actor stopping") }, "no stopping line:\n\(log)")
            let stepsPlayed = stopping.split(separator: " ").first { $0.hasPrefix("env_steps=") }.flatMap {
                Int($0.dropFirst("env_steps=".count))
            }
            #expect((stepsPlayed ?? 0) >= steps, "\(stopping)")
            // Between the first and the last unroll's arrival, the steps of all but the first.
            let seconds = max(lastUnrollAt.timeIntervalSince(firstUnrollAt ?? lastUnrollAt), 1e-3)
            let played = unrolls.dropFirst().reduce(0) { $0 + $1.actions.count }
            print(
                "network actor (cartpole, 8 environments, mlp:16, real teacher server): \(unrolls.count) unrolls, "
                    + "\(Int(Double(played) / seconds)) env steps/s pushed; last heartbeat: "
                    + "\(last.envSteps) steps, observation \(last.observationMicroseconds) µs, "
                    + "inference (student + teacher wait) \(last.inferenceMicroseconds) µs")
            print(stopping)
            #expect(Double(played) / seconds > 1000, "a network actor plays at least 1000 CartPole steps/s")
        }
    }

    @Test func aWelcomeForAnotherStudentEndsTheActorWithAnErrorAndBadFlagsAreRefused() async throws {
        try await onOwnThread {
            let context = try ZMQContext()
            let control = try ZMQSocket(context: context, type: .router, lingerMilliseconds: 0)
            defer { control.close() }
            let endpoint = try control.bind("tcp://127.0.0.1:*")
            let actor = try ChildProcess([
                "actor", "--env", "cartpole", "--student", "mlp:16", "--environments", "2", "--learner", endpoint,
                "--teacher-server", "tcp://127.0.0.1:9",
            ])
            defer { actor.stop() }
            let codec = WireCodec()
            let wide = try PolicyValueNetwork(
                architecture: NetworkArchitecture(parsing: "mlp:32"), inputShape: [4], actionCount: 2, seed: 1)
            let settings = String(
                decoding: try JSONEncoder().encode(
                    ActorSettings(control: .student, maxEpisodeSteps: 500, unrollSteps: 500)), as: UTF8.self)
            let deadline = Date().addingTimeInterval(30)
            var welcomed = false
            while !welcomed && Date() < deadline {
                guard let frames = try control.receive(dontWait: true), frames.count == 2 else {
                    usleep(2000)
                    continue
                }
                guard case .hello = try codec.decode(frames[1]).message else { continue }
                let welcome = Welcome(
                    unrollPort: 1, parametersPort: 2, teacherEndpoint: "",
                    parameters: NetworkParameters.parameters(of: wide, version: 1, envSteps: 0),
                    actorSettingsJSON: settings, environmentSpec: Self.spec, architecture: "mlp:32")
                let me = Sender.starting(role: .learner, id: "test-learner")
                _ = try control.send([frames[0], codec.encode(Envelope(sender: me, message: .welcome(welcome)))])
                welcomed = true
            }
            #expect(welcomed)
            let status = actor.waitForExit(timeout: .seconds(20))
            #expect(status == 1, "a refused actor exits non-zero")
            #expect(
                actor.standardError.contains("the learner's student is 'mlp:32', this actor's 'mlp:16'"),
                "\(actor.standardError)")
        }
        for (arguments, message) in [
            (["--env", "cartpole"], "--env cartpole needs --student"),
            (["--env", "cartpole", "--student", "mlp:16", "--environments", "0"], "--environments must be in"),
            (["--env", "gridworld", "--student", "mlp:16"], "apply to cartpole, acrobot and mountaincar"),
            (["--env", "cartpole", "--student", "tabular"], "tabular actors take no --student"),
            (["--env", "cartpole", "--student", "mlp:x"], "width \"x\" is not a positive integer"),
        ] {
            let refused = try await OperatorInputTests.run(
                ["actor"] + arguments + ["--learner", "tcp://127.0.0.1:1", "--teacher-server", "tcp://127.0.0.1:2"])
            #expect(refused.status == 64 && refused.stderr.contains(message), "\(arguments): \(refused.stderr)")
            #expect(!refused.stderr.contains("Fatal error"))
        }
    }
}
