import ArgumentParser
import DistillRuntime
import DistillWire
import Foundation

/// `distill bench cluster`: the distributed system's figures, each next to a baseline measured
/// in the same run on the same machine.
struct BenchCluster: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "Throughput, latency and policy lag of the local cluster, against raw ZeroMQ.",
        discussion: """
            1. Runs `distill cluster` (20x20 gridworld, q-learning teacher, n-distill+R, tabular \
            student) for --steps environment steps with each actor count of --actors, and reads \
            its summary: end-to-end env steps/s, updates/s, unroll messages/s and their mean size, \
            policy lag, all over the learning span (from the first unroll on, without start-up).
            2. Raw ZeroMQ PUSH/PULL between two threads over TCP loopback with messages of the \
            same mean size: the ceiling the transport alone would allow; the ratio compares bytes/s.
            3. A teacher server process answering TeacherQuery batches (1 and 401 states), one \
            query at a time: queries/s and p50/p99 round-trip latency.
            4. Parameter broadcast latency: a 401x4 Parameters message encoded, published, \
            received by a subscriber over TCP loopback, decoded and checksummed, against the same \
            bytes sent raw.

            With --env cartpole the same questions are asked of networks (2x64 MLP teacher and \
            student, on-policy-distill, adam 0.001, 8 episodes per iteration): the teacher is \
            --teacher-file or made first by `distill train --method actor-critic` (15-40 s); each \
            actor count runs `distill cluster`; one `distill train` process learns the same \
            network with the same method for about as many steps (the cost of distribution is the \
            ratio of the two); where the time went (actors' environments and inference from their \
            heartbeats, the teacher's batch fill and latency from its log, the learner's unroll \
            and publish timers from summary.json) with a one-line verdict; and a 1 MiB Parameters \
            broadcast (262144 float32) against the same bytes sent raw.

            With --student ARCH on the gridworld (e.g. conv:8x3/mlp:64): a network student on the \
            gridworld's image, on-policy-distill, adam 0.003, each actor count against one `distill \
            train` process of the same network and method, with the learner's update and publish \
            shares (the actors play the published table; they run no network).

            Examples:
              distill bench cluster
              distill bench cluster --steps 2000000 --actors 1,2,4
              distill bench cluster --student conv:8x3/mlp:64 --actors 1,2
              distill bench cluster --env cartpole
              distill bench cluster --env cartpole --teacher-file teacher.safetensors --steps 2000000 --actors 2
            """)

    @Option(help: ArgumentHelp("gridworld (tabular) or cartpole (networks).", valueName: "env"))
    var env: String = "gridworld"

    @Option(
        help: ArgumentHelp(
            "Environment steps per cluster run (default: 10000000 on gridworld, 1000000 with --student, 5000000 on "
                + "cartpole).",
            valueName: "steps"))
    var steps: UInt64?

    @Option(
        help: ArgumentHelp(
            "cartpole: the teacher network (a mlp:64,64 safetensors file); made by distill train when not given.",
            valueName: "file"))
    var teacherFile: String?

    @Option(
        help: ArgumentHelp(
            "gridworld: a network student (e.g. conv:8x3/mlp:64) on the gridworld's image, against one distill "
                + "train process; without it the tabular student.", valueName: "architecture"))
    var student: String?

    @Option(help: "Actor counts to run, comma-separated.")
    var actors: String = "1,2,4"

    @Option(help: "Seed of the gridworld.")
    var seed: UInt64 = 1

    func validate() throws {
        guard !actorCounts.isEmpty, actorCounts.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("--actors takes a comma-separated list of counts >= 1, e.g. 1,2,4")
        }
        guard ["gridworld", "cartpole"].contains(env) else {
            throw ValidationError("--env \(env): the cluster bench runs gridworld (tabular) or cartpole (networks)")
        }
        if student != nil && env != "gridworld" {
            throw ValidationError("--student is for --env gridworld; the cartpole bench's student is mlp:64,64")
        }
        if let steps { guard steps >= 10_000 else { throw ValidationError("--steps must be at least 10000") } }
        if let teacherFile {
            guard env == "cartpole" else {
                throw ValidationError(
                    "--teacher-file is for --env cartpole; the gridworld bench trains its own teacher")
            }
            guard FileManager.default.isReadableFile(atPath: teacherFile) else {
                throw ValidationError(
                    "--teacher-file \(teacherFile): no such readable file (leave it out and the bench makes one)")
            }
        }
    }

    /// The environment steps of one cluster run.
    var stepsPerRun: UInt64 { steps ?? (env == "cartpole" ? 5_000_000 : student != nil ? 1_000_000 : 10_000_000) }

    var actorCounts: [Int] { actors.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

    func run() throws {
        let binary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("distill-bench-\(getpid())")
        defer { try? FileManager.default.removeItem(at: scratch) }
        if env == "cartpole" {
            try runNetworks(binary: binary, scratch: scratch)
            return
        }
        if let student {
            try runGridworldNetworks(binary: binary, scratch: scratch, student: student)
            return
        }
        let steps = stepsPerRun
        emit(
            "distill bench cluster: gridworld(seed=\(seed)) 20x20, q-learning teacher, n-distill+R, \(steps) steps per run, \(ProcessInfo.processInfo.activeProcessorCount) cores"
        )

        emit("\n1. end to end (distill cluster) vs raw ZeroMQ PUSH/PULL of the same message size")
        emit("actors   env steps/s   updates/s   unrolls/s   bytes/unroll   MB/s   raw MB/s   ratio   lag mean (max)")
        for count in actorCounts {
            let out = scratch.appendingPathComponent("actors-\(count)")
            let status = try runChild(
                binary,
                [
                    "cluster", "--env", "gridworld", "--seed", String(seed), "--teacher", "q-learning", "--method",
                    "n-distill+R", "--actors", String(count), "--steps", String(steps), "--out", out.path, "--no-plot",
                ])
            guard status == 0, let summary = try? RunSummary.read(out.appendingPathComponent("summary.json")) else {
                emit("\(count): the cluster run failed (status \(status)); logs were in \(out.path)/logs")
                continue
            }
            // Rates over the learning span (first unroll to the end), without start-up.
            let seconds = summary.learningSeconds
            let unrollsPerSecond = Double(summary.unrollMessages) / seconds
            let bytes = summary.unrollBytesMean
            let raw = try RawTransport.pushPull(messageBytes: Int(bytes.rounded()), messages: 20_000)
            let megabytes = unrollsPerSecond * bytes / 1e6
            emit(
                String(
                    format: "%6d %13.0f %11.0f %11.0f %14.0f %6.1f %10.1f %6.1f%% %7.1f (%.0f)", count,
                    summary.envStepsPerSecondLearning, Double(summary.updates) / seconds, unrollsPerSecond, bytes,
                    megabytes, raw.bytesPerSecond / 1e6, 100 * megabytes * 1e6 / raw.bytesPerSecond,
                    summary.meanPolicyLag, summary.maxPolicyLag))
        }

        emit("\n2. teacher server (one query in flight, tabular teacher, 20x20 gridworld)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let teacher = ManagedProcess(
            name: "teacher", binary: binary,
            arguments: [
                "teacher", "--env", "gridworld", "--seed", String(seed), "--teacher", "optimal", "--bind",
                "tcp://127.0.0.1:*",
            ], logDirectory: scratch)
        try teacher.start()
        defer {
            teacher.signal(SIGTERM)
            teacher.waitForExit(seconds: 10)
        }
        let endpoint = try teacher.waitForEndpoint("teacher", timeoutSeconds: 60)
        for batch in [1, 401] {
            let result = try RawTransport.teacherQueries(endpoint: endpoint, batch: batch, seconds: 1.5)
            emit(
                String(
                    format: "batch %3d states: %7.0f queries/s (%9.0f states/s), latency p50 %6.1f us, p99 %6.1f us",
                    batch, result.queriesPerSecond, result.queriesPerSecond * Double(batch), result.p50 * 1e6,
                    result.p99 * 1e6))
        }

        emit("\n3. parameter broadcast (401x4 floats: encode, PUB -> SUB over TCP loopback, decode + checksum)")
        let broadcast = try RawTransport.broadcastLatency(floats: 401 * 4, messages: 2000, codec: true)
        let rawBroadcast = try RawTransport.broadcastLatency(floats: 401 * 4, messages: 2000, codec: false)
        emit(
            String(
                format: "distill Parameters: p50 %6.1f us, p99 %6.1f us; raw bytes: p50 %6.1f us, p99 %6.1f us",
                broadcast.p50 * 1e6, broadcast.p99 * 1e6, rawBroadcast.p50 * 1e6, rawBroadcast.p99 * 1e6))
    }

    func runChild(_ binary: URL, _ arguments: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
}

/// Transport measurements on their own threads (never the cooperative pool).
enum RawTransport {
    struct Rate {
        var messagesPerSecond: Double
        var bytesPerSecond: Double
    }

    struct Latency {
        var queriesPerSecond: Double
        var p50: Double
        var p99: Double
    }

    @Sendable static func clock() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    static func percentile(_ samples: [Double], _ p: Double) -> Double {
        let sorted = samples.sorted()
        return sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
    }

    /// PUSH in one thread, PULL in this one, TCP loopback, separate contexts (as two processes).
    static func pushPull(messageBytes: Int, messages: Int) throws -> Rate {
        let pullContext = try ZMQContext()
        let pull = try ZMQSocket(context: pullContext, type: .pull)
        defer { pull.close() }
        let endpoint = try pull.bind("tcp://127.0.0.1:*")
        let payload = [UInt8](repeating: 7, count: max(1, messageBytes))
        let sender = Thread {
            guard let context = try? ZMQContext(), let push = try? ZMQSocket(context: context, type: .push) else {
                return
            }
            try? push.connect(endpoint)
            for _ in 0..<messages { _ = try? push.send(payload) }
            push.close()
        }
        sender.start()
        var received = 0
        var start = 0.0
        var poller = ZMQPoller()
        poller.add(pull)
        while received < messages {
            guard try !poller.poll(timeoutMilliseconds: 5000)[0].isEmpty else { break }
            while received < messages, try pull.receive(dontWait: true) != nil {
                if received == 0 { start = Date().timeIntervalSince1970 }
                received += 1
            }
        }
        let seconds = max(Date().timeIntervalSince1970 - start, 1e-9)
        return Rate(
            messagesPerSecond: Double(received - 1) / seconds,
            bytesPerSecond: Double((received - 1) * payload.count) / seconds)
    }

    /// Closed-loop TeacherQuery round trips to a running teacher server.
    static func teacherQueries(endpoint: String, batch: Int, seconds: Double) throws -> Latency {
        let context = try ZMQContext()
        let dealer = try ZMQSocket(context: context, type: .dealer)
        defer { dealer.close() }
        try dealer.connect(endpoint)
        let codec = WireCodec()
        let me = Sender.starting(role: .tool, id: "bench")
        var poller = ZMQPoller()
        poller.add(dealer)
        var samples: [Double] = []
        let start = Date()
        var id: UInt64 = 0
        while Date().timeIntervalSince(start) < seconds {
            id += 1
            let states = (0..<batch).map { Int32(($0 * 7 + Int(id)) % 401) }
            let sent = Date()
            try dealer.send(
                codec.encode(Envelope(sender: me, message: .teacherQuery(TeacherQuery(queryID: id, stateIDs: states)))))
            guard try !poller.poll(timeoutMilliseconds: 5000)[0].isEmpty,
                let reply = try dealer.receive(dontWait: true),
                case .teacherReply(let answer)? = (try? codec.decode(reply.last ?? []))?.message, answer.queryID == id
            else { throw RuntimeError("the teacher server did not answer query \(id)", code: .noAnswer) }
            samples.append(Date().timeIntervalSince(sent))
        }
        let total = Date().timeIntervalSince(start)
        return Latency(
            queriesPerSecond: Double(samples.count) / total, p50: percentile(samples, 0.5),
            p99: percentile(samples, 0.99))
    }

    /// One-way PUB -> SUB latency between two threads on one monotonic clock.
    /// `gap`: seconds between publications, long enough that a message never queues behind the last.
    static func broadcastLatency(
        floats: Int, messages: Int, codec useCodec: Bool, gap: Double = 0.0005
    ) throws
        -> Latency
    {
        let subContext = try ZMQContext()
        let sub = try ZMQSocket(context: subContext, type: .sub)
        defer { sub.close() }
        try sub.set(.subscribe(prefix: []))
        let pubContext = try ZMQContext()
        let pub = try ZMQSocket(context: pubContext, type: .pub)
        defer { pub.close() }
        let endpoint = try pub.bind("tcp://127.0.0.1:*")
        try sub.connect(endpoint)
        Thread.sleep(forTimeInterval: 0.3)  // let the subscription reach the publisher
        let codec = WireCodec()
        let me = Sender.starting(role: .learner, id: "bench")
        let values = (0..<floats).map { Float($0 % 13) / 13 }
        let sentAt = UnsafeMutableBufferPointer<Double>.allocate(capacity: messages)
        defer { sentAt.deallocate() }
        sentAt.initialize(repeating: 0)
        nonisolated(unsafe) let stamps = sentAt
        // The publisher thread is the only user of the PUB socket until it ends.
        nonisolated(unsafe) let publisherSocket = pub
        let publisher = Thread {
            for index in 0..<messages {
                stamps[index] = clock()
                let bytes: [UInt8]
                if useCodec {
                    let parameters = Parameters(
                        version: UInt64(index), values: Tensor(shape: [floats / 4, 4], values: values), envSteps: 0)
                    bytes = codec.encode(Envelope(sender: me, message: .parameters(parameters)))
                } else {
                    var raw = [UInt8](repeating: 0, count: floats * 4 + 8)
                    withUnsafeBytes(of: UInt64(index).littleEndian) { raw.replaceSubrange(0..<8, with: $0) }
                    bytes = raw
                }
                _ = try? publisherSocket.send(bytes, dontWait: true)
                Thread.sleep(forTimeInterval: gap)
            }
        }
        publisher.start()
        var samples: [Double] = []
        var poller = ZMQPoller()
        poller.add(sub)
        while samples.count < messages, try !poller.poll(timeoutMilliseconds: 1000)[0].isEmpty {
            while let frames = try sub.receive(dontWait: true), let payload = frames.last {
                let index: Int
                if useCodec {
                    guard case .parameters(let parameters)? = (try? codec.decode(payload))?.message else { continue }
                    index = Int(parameters.version)
                } else {
                    index = Int(
                        payload.prefix(8).enumerated().reduce(UInt64(0)) {
                            $0 | UInt64($1.element) << (8 * UInt64($1.offset))
                        })
                }
                samples.append(clock() - stamps[index])
            }
        }
        return Latency(queriesPerSecond: .nan, p50: percentile(samples, 0.5), p99: percentile(samples, 0.99))
    }
}
