import DistillCore
import DistillRuntime
import DistillTestSupport
import DistillWire
import Foundation
import Testing

/// `RemoteEnvironment` against a scripted server in the test (the real one, gymnasium's, is
/// proved by the lab test scripts/lab/tests/61-env-server.sh): which requests the copies of a
/// prototype send, and how failures surface — refusals, replies of the wrong shape, no server,
/// bad endpoints — always as a `RuntimeError` that says what happened, never a hang or a crash.
@Suite("Remote environments", .serialized)
struct RemoteEnvironmentTests {
    static let spec = WireEnvironmentSpec(name: "Counter-v0", observationShape: [2], actionCount: 2)

    /// A ROUTER on its own thread answering each request with `answer`; records what it received.
    final class ScriptedServer: @unchecked Sendable {
        let endpoint: String
        private let lock = NSLock()
        private var received: [EnvironmentRequest] = []
        private var stopping = false
        private let done = DispatchSemaphore(value: 0)

        init(answer: @escaping @Sendable (EnvironmentRequest) -> Message) throws {
            let context = try ZMQContext()
            let router = try ZMQSocket(context: context, type: .router, lingerMilliseconds: 0)
            endpoint = try router.bind("tcp://127.0.0.1:*")
            let codec = WireCodec()
            let sender = Sender.starting(role: .tool, id: "scripted-server")
            let box = UncheckedBox((context, router))
            Thread { [self] in
                let (context, router) = box.value
                var poller = ZMQPoller()
                poller.add(router)
                while !isStopping {
                    guard (try? poller.poll(timeoutMilliseconds: 20))?.first?.contains(.readable) == true else {
                        continue
                    }
                    while let frames = try? router.receive(dontWait: true), frames.count == 2 {
                        guard case .environmentRequest(let request)? = try? codec.decode(frames[1]).message else {
                            continue
                        }
                        lock.withLock { received.append(request) }
                        let reply = codec.encode(Envelope(sender: sender, message: answer(request)))
                        _ = try? router.send([frames[0], reply], dontWait: true)
                    }
                }
                router.close()
                _ = context
                done.signal()
            }.start()
        }

        private var isStopping: Bool { lock.withLock { stopping } }

        /// The requests received so far.
        var requests: [EnvironmentRequest] { lock.withLock { received } }

        func stop() {
            lock.withLock { stopping = true }
            done.wait()
        }

        /// Waits up to 2 s for `condition` on the received requests.
        func wait(until condition: ([EnvironmentRequest]) -> Bool) -> Bool {
            for _ in 0..<200 {
                if condition(requests) { return true }
                usleep(10_000)
            }
            return condition(requests)
        }
    }

    struct UncheckedBox<T>: @unchecked Sendable {
        let value: T
        init(_ value: T) { self.value = value }
    }

    static func description(stateSize: Int = 0) -> RemoteEnvironmentDescription {
        RemoteEnvironmentDescription(
            spec: spec, maxEpisodeSteps: 3, rewardRange: 0...1, stateSize: stateSize, capacity: 8, source: "scripted")
    }

    /// A counter environment per index: observation [index, steps]; reward 1; terminated at 3 steps.
    static func counterServer() throws -> ScriptedServer {
        let steps = UncheckedBox(NSMutableDictionary())
        let nextIndex = UncheckedBox(NSMutableArray(array: [10]))
        return try ScriptedServer { request in
            func observations(_ environments: [Int]) -> ObservationTensor {
                ObservationTensor(
                    rows: environments.count, rowShape: [2],
                    float32: environments.flatMap { [Float($0), Float(steps.value[$0] as? Int ?? 0)] })
            }
            switch request.command {
            case .describe:
                return .environmentReply(.init(requestID: request.requestID, description: description()))
            case .open:
                let first = nextIndex.value[0] as! Int
                nextIndex.value[0] = first + request.count
                return .environmentReply(
                    .init(
                        requestID: request.requestID, description: description(),
                        environments: Array(first..<(first + request.count))))
            case .reset:
                for e in request.environments { steps.value[e] = 0 }
                return .environmentReply(
                    .init(
                        requestID: request.requestID, environments: request.environments,
                        observations: observations(request.environments)))
            case .step:
                for e in request.environments { steps.value[e] = (steps.value[e] as? Int ?? 0) + 1 }
                let ended = request.environments.map { (steps.value[$0] as! Int) >= 3 }
                return .environmentReply(
                    .init(
                        requestID: request.requestID, environments: request.environments,
                        observations: observations(request.environments), rewards: ended.map { _ in 1 },
                        terminated: ended, truncated: ended.map { _ in false }))
            case .close:
                return .environmentReply(.init(requestID: request.requestID, environments: request.environments))
            }
        }
    }

    @Test func everyCopyReservesItsOwnServerEnvironmentAndReleasesIt() throws {
        let server = try Self.counterServer()
        defer { server.stop() }
        do {
            let prototype = try RemoteEnvironment(endpoint: server.endpoint, timeoutMilliseconds: 3_000)
            #expect(prototype.description.name == "Counter-v0")
            #expect(prototype.description.maxEpisodeSteps == 3)
            #expect(prototype.description.rewardRange == .init(min: 0, max: 1))
            var batch = ObservedBatch([RemoteEnvironment](repeating: prototype, count: 3), seed: 5)
            let indices = batch.environments.compactMap(\.serverIndex)
            #expect(indices == [10, 11, 12])
            #expect(batch.observations == [10, 0, 11, 0, 12, 0])
            for _ in 0..<3 { batch.step([1, 0, 1]) }
            // The third step ended every episode: the final observations are kept, the batch is reset.
            #expect(batch.outcomes.allSatisfy { $0.terminated && $0.reward == 1 })
            #expect(batch.finalObservations == [10, 3, 11, 3, 12, 3])
            #expect(batch.observations == [10, 0, 11, 0, 12, 0])
            #expect(batch.environments.compactMap(\.serverIndex) == indices, "a reset keeps the reserved environment")
            try prototype.client.checkHealthy()
            // One round trip per step of the batch, naming its three environments with their actions.
            let steps = server.requests.filter { $0.command == .step }
            #expect(steps.count == 3)
            #expect(steps.allSatisfy { $0.environments == [10, 11, 12] && $0.actions == [1, 0, 1] })
            // Stepped alone, an environment makes its own round trip.
            var single = batch.environments[1]
            var rng = Xoshiro256StarStar(seed: 1)
            #expect(single.step(0, rng: &rng).observation == [11, 1])
            #expect(
                server.requests.last
                    == EnvironmentRequest(
                        requestID: server.requests.last!.requestID, command: .step, environments: [11], actions: [0]))
        }
        let closed = server.wait { requests in requests.filter { $0.command == .close }.count == 3 }
        #expect(closed, "dropping the batch releases its three environments")
        #expect(Set(server.requests.filter { $0.command == .close }.flatMap(\.environments)) == [10, 11, 12])
    }

    @Test func resetSeedsComeFromTheGenerator() throws {
        let server = try Self.counterServer()
        defer { server.stop() }
        let prototype = try RemoteEnvironment(endpoint: server.endpoint, timeoutMilliseconds: 3_000)
        var a = prototype
        var b = prototype
        var rngA = Xoshiro256StarStar(seed: 42)
        var rngB = Xoshiro256StarStar(seed: 42)
        _ = a.reset(rng: &rngA)
        _ = b.reset(rng: &rngB)
        let seeds = server.requests.filter { $0.command == .reset }.map(\.seeds)
        #expect(seeds.count == 2 && seeds[0] == seeds[1] && seeds[0].count == 1)
        #expect(a.serverIndex != b.serverIndex)
    }

    @Test func aRefusalIsRecordedAndEndsTheEpisode() throws {
        let server = try ScriptedServer { request in
            request.command == .describe
                ? .environmentReply(.init(requestID: request.requestID, description: Self.description()))
                : .error(
                    ErrorReply(
                        code: .unavailable, message: "1 environments asked, 0 of 8 free", inReplyTo: request.requestID))
        }
        defer { server.stop() }
        var env = try RemoteEnvironment(endpoint: server.endpoint, timeoutMilliseconds: 3_000)
        var rng = Xoshiro256StarStar(seed: 1)
        #expect(env.reset(rng: &rng) == [0, 0])
        let (observation, step) = env.step(1, rng: &rng)
        #expect(observation == [0, 0] && step.terminated && step.reward == 0)
        let failure = try #require(env.client.failure)
        #expect(failure.code == .refusedByPeer)
        #expect(failure.description.contains("refused OPEN: 1 environments asked, 0 of 8 free"))
        #expect(throws: RuntimeError.self) { try env.client.checkHealthy() }
        let opens = server.requests.filter { $0.command == .open }.count
        _ = env.reset(rng: &rng)
        #expect(server.requests.filter { $0.command == .open }.count == opens, "after a failure, no more requests")
    }

    @Test func observationsOfAnotherShapeAreRefused() throws {
        let server = try ScriptedServer { request in
            switch request.command {
            case .describe, .open:
                return .environmentReply(
                    .init(requestID: request.requestID, description: Self.description(), environments: [0]))
            default:
                return .environmentReply(
                    .init(
                        requestID: request.requestID, environments: request.environments,
                        observations: ObservationTensor(rows: 1, rowShape: [3], float32: [1, 2, 3])))
            }
        }
        defer { server.stop() }
        var env = try RemoteEnvironment(endpoint: server.endpoint, timeoutMilliseconds: 3_000)
        var rng = Xoshiro256StarStar(seed: 1)
        _ = env.reset(rng: &rng)
        let failure = try #require(env.client.failure)
        #expect(failure.description.contains("observations of shape [1, 3]"))
        #expect(failure.description.contains("described [2]"))
    }

    @Test func aMissingServerIsReportedWithinTheTimeout() throws {
        // A port nothing listens on: bound, noted, released.
        let context = try ZMQContext()
        let probe = try ZMQSocket(context: context, type: .router, lingerMilliseconds: 0)
        let endpoint = try probe.bind("tcp://127.0.0.1:*")
        probe.close()
        let started = Date()
        do {
            _ = try RemoteEnvironmentClient(endpoint: endpoint, timeoutMilliseconds: 300)
            Issue.record("connected to nothing")
        } catch let error as RuntimeError {
            #expect(error.code == .noAnswer)
            #expect(error.description.contains("did not answer DESCRIBE within 300 ms"))
        }
        #expect(Date().timeIntervalSince(started) < 3)
    }

    @Test(arguments: ["localhost:5560", "tcp://*:5560", "tcp://127.0.0.1:*", "tcp://127.0.0.1"])
    func malformedEndpointsAreInvalidInput(endpoint: String) {
        do {
            _ = try RemoteEnvironmentClient(endpoint: endpoint, timeoutMilliseconds: 100)
            Issue.record("accepted \(endpoint)")
        } catch let error as RuntimeError {
            #expect(error.code == .invalidInput, "\(endpoint): \(error)")
        } catch {
            Issue.record("\(endpoint): \(error)")
        }
    }

    @Test func aRemoteEnvironmentCannotBeSetToAState() throws {
        let server = try Self.counterServer()
        defer { server.stop() }
        var env = try RemoteEnvironment(endpoint: server.endpoint, timeoutMilliseconds: 3_000)
        #expect(throws: RuntimeError.self) { try env.setInternalState([0, 0]) }
    }
}
