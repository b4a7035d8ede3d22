import ArgumentParser
import DistillWire
import Foundation

/// `distill probe`: one end of a ZeroMQ link speaking the real protocol, to check that two hosts
/// can reach each other (and, in the tests, to put each socket pattern between two processes).
struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a ZeroMQ link between two hosts with real protocol messages.",
        discussion: """
            Opens one socket of the given pattern, binds or connects it, and exchanges Heartbeat \
            messages of the distill protocol. Sending patterns (push, pub, dealer) send --count \
            messages; receiving patterns (pull, sub, router) run until --count valid messages \
            arrived. A router answers each valid message with a Heartbeat of the same sequence and \
            each invalid one with an Error; a dealer waits for those answers and prints round-trip \
            times. Invalid messages are counted, logged without flooding, and do not stop the probe.

            Output (stdout, one line each): "bound ENDPOINT" after a bind, "received seq=N" per \
            valid message (unless --quiet), and a final "summary valid=N rejected=M (codes)".
            Exit status: 0 when --count messages were exchanged, 1 on timeout.

            Examples:
              # on the learner host: wait for 10 messages
              distill probe --socket pull --bind 'tcp://*:5555' --count 10
              # on an actor host: send them
              distill probe --socket push --connect tcp://learner-host:5555 --count 10
              # round-trip latency to a router
              distill probe --socket router --bind 'tcp://*:5557' --count 100 --quiet
              distill probe --socket dealer --connect tcp://learner-host:5557 --count 100
            """
    )

    @Option(help: "ZeroMQ socket pattern.")
    var socket: SocketType

    @Option(help: "Endpoint to bind, e.g. 'tcp://*:5555' or 'tcp://127.0.0.1:*' (port chosen by the system).")
    var bind: String?

    @Option(help: "Endpoint to connect to, e.g. tcp://learner-host:5555.")
    var connect: String?

    @Option(help: "Messages to send, or valid messages to wait for.")
    var count: Int = 10

    @Option(name: .customLong("timeout-ms"), help: "Give up after this many milliseconds without finishing.")
    var timeoutMilliseconds: Int = 10_000

    @Option(name: .customLong("interval-ms"), help: "Pause between sent messages (pub, push), in milliseconds.")
    var intervalMilliseconds: Int = 0

    @Option(help: "Largest message accepted, in bytes (ZMQ_MAXMSGSIZE and the codec's limit).")
    var maxMessageBytes: Int = WireCodec.defaultMaxMessageBytes

    @Option(help: "The id this probe puts in its messages' sender field.")
    var id: String = "probe"

    @Flag(help: "Print only the summary, not a line per message.")
    var quiet = false

    func validate() throws {
        guard (bind == nil) != (connect == nil) else {
            throw ValidationError("give exactly one of --bind ENDPOINT and --connect ENDPOINT")
        }
        guard count >= 1 else { throw ValidationError("--count must be at least 1, got \(count)") }
        guard timeoutMilliseconds >= 1 else { throw ValidationError("--timeout-ms must be positive") }
        guard intervalMilliseconds >= 0 else { throw ValidationError("--interval-ms must be >= 0") }
        guard maxMessageBytes >= 64 else { throw ValidationError("--max-message-bytes must be at least 64") }
        guard !id.isEmpty, id.utf8.count <= 128 else { throw ValidationError("--id must be 1 to 128 bytes") }
    }

    func run() throws {
        let context = try ZMQContext()
        let socket = try ZMQSocket(context: context, type: self.socket)
        defer { socket.close() }
        try socket.set(.maxMessageSize(maxMessageBytes))
        try socket.set(.reconnectInterval(milliseconds: 100))
        if self.socket == .sub { try socket.set(.subscribe(prefix: [])) }
        if let bind {
            let bound = try attach("bind", bind) { () throws(ZMQError) -> String in try socket.bind(bind) }
            emit("bound \(bound)")
        } else if let connect {
            _ = try attach("connect to", connect) { () throws(ZMQError) -> String in
                try socket.connect(connect)
                return connect
            }
        }
        var session = ProbeSession(
            socket: socket, codec: WireCodec(maxMessageBytes: maxMessageBytes),
            sender: .starting(role: .tool, id: id), quiet: quiet,
            deadline: .now + .milliseconds(timeoutMilliseconds))
        let finished: Bool
        switch self.socket {
        case .push, .pub: finished = try session.send(count: count, interval: .milliseconds(intervalMilliseconds))
        case .dealer: finished = try session.request(count: count)
        case .pull, .sub, .router, .rep, .pair:
            finished = try session.receive(count: count, reply: self.socket == .router)
        }
        emit(session.summary)
        if !finished {
            FileHandle.standardError.write(
                Data(
                    "distill probe: timed out after \(timeoutMilliseconds) ms: is the peer running and reachable?\n"
                        .utf8))
            throw ExitCode(1)
        }
    }

    private func attach(_ verb: String, _ endpoint: String, _ body: () throws(ZMQError) -> String) throws -> String {
        do {
            return try body()
        } catch {
            throw ValidationError(
                "cannot \(verb) \(endpoint): \(error.message). An endpoint looks like tcp://HOST:PORT, "
                    + "tcp://*:PORT or tcp://127.0.0.1:* (any free port).")
        }
    }
}

extension SocketType: ExpressibleByArgument {
    public init?(argument: String) {
        guard let type = Self.allCases.first(where: { $0.description == argument.lowercased() }), type != .rep,
            type != .pair
        else {
            return nil
        }
        self = type
    }

    public static var allValueStrings: [String] { allCases.filter { $0 != .rep }.map(\.description) }
}

/// Prints one line to stdout at once (the tests read it through a pipe).
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// The state of one probe run: counts, the rejection log, the deadline.
private struct ProbeSession {
    let socket: ZMQSocket
    let codec: WireCodec
    let sender: Sender
    let quiet: Bool
    let deadline: ContinuousClock.Instant
    var valid = 0
    var rejections = RejectionLog()
    var roundTrips: [Duration] = []

    var summary: String {
        var line = "summary valid=\(valid) rejected=\(rejections.total) (\(rejections.summary))"
        if !roundTrips.isEmpty {
            let sorted = roundTrips.sorted()
            line += " rtt_p50_us=\(microseconds(sorted[sorted.count / 2]))"
            line += " rtt_p99_us=\(microseconds(sorted[min(sorted.count - 1, sorted.count * 99 / 100)]))"
        }
        return line
    }

    private func microseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000)
    }

    private func heartbeat(_ sequence: Int) -> [UInt8] {
        codec.encode(Envelope(sender: sender, message: .heartbeat(Heartbeat(sequence: UInt64(sequence)))))
    }

    private var remainingMilliseconds: Int {
        let left = deadline - .now
        return max(0, Int(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))
    }

    /// Waits until the socket has `events` or the deadline passes.
    private func wait(for events: PollEvents) throws -> Bool {
        var poller = ZMQPoller()
        poller.add(socket, events: events)
        while remainingMilliseconds > 0 {
            if try !poller.poll(timeoutMilliseconds: min(remainingMilliseconds, 100))[0].isEmpty { return true }
        }
        return false
    }

    mutating func send(count: Int, interval: Duration) throws -> Bool {
        for sequence in 0..<count {
            // PUSH waits for a peer (or a free slot); PUB never blocks and drops without subscribers.
            while try !socket.send(heartbeat(sequence), dontWait: true) {
                guard try wait(for: .writable) else { return false }
            }
            valid += 1
            if !quiet { emit("sent seq=\(sequence)") }
            if interval > .zero {
                Thread.sleep(
                    forTimeInterval: Double(interval.components.seconds) + Double(interval.components.attoseconds)
                        / 1e18)
            }
        }
        return true
    }

    mutating func request(count: Int) throws -> Bool {
        for sequence in 0..<count {
            let start = ContinuousClock.now
            while try !socket.send(heartbeat(sequence), dontWait: true) {
                guard try wait(for: .writable) else { return false }
            }
            var answered = false
            while !answered {
                guard try wait(for: .readable), let frames = try socket.receive(dontWait: true) else { return false }
                guard let frame = frames.last else { continue }
                let envelope: Envelope
                do {
                    envelope = try codec.decode(frame, expecting: [.heartbeat, .error])
                } catch {
                    if let line = rejections.record(error, from: "dealer peer") {
                        FileHandle.standardError.write(Data((line + "\n").utf8))
                    }
                    continue
                }
                if case .heartbeat(let reply) = envelope.message, reply.sequence == UInt64(sequence) {
                    roundTrips.append(.now - start)
                    valid += 1
                    answered = true
                    if !quiet { emit("received seq=\(sequence)") }
                } else if case .error(let error) = envelope.message {
                    emit("error reply: \(error.message)")
                    answered = true
                }
            }
        }
        return true
    }

    mutating func receive(count: Int, reply: Bool) throws -> Bool {
        while valid < count {
            guard try wait(for: .readable) else { return false }
            while let frames = try socket.receive(dontWait: true) {
                // A router prefixes the peer's routing id; the protocol payload is the last frame.
                let routing = reply ? Array(frames.dropLast()) : []
                guard let payload = frames.last else { continue }
                let envelope: Envelope
                do {
                    envelope = try codec.decode(payload, expecting: [.heartbeat])
                } catch {
                    if let line = rejections.record(error, from: "\(socket.type) peer") {
                        FileHandle.standardError.write(Data((line + "\n").utf8))
                    }
                    if reply {
                        let answer = ErrorReply(code: error.code.replyCode, message: error.message)
                        try socket.send(
                            routing + [codec.encode(Envelope(sender: sender, message: .error(answer)))], dontWait: true)
                    }
                    continue
                }
                guard case .heartbeat(let beat) = envelope.message else { continue }
                valid += 1
                if !quiet { emit("received seq=\(beat.sequence) from \(envelope.sender.role) '\(envelope.sender.id)'") }
                if reply {
                    let echo = Envelope(sender: sender, message: .heartbeat(Heartbeat(sequence: beat.sequence)))
                    try socket.send(routing + [codec.encode(echo)], dontWait: true)
                }
                if valid >= count { break }
            }
        }
        return true
    }
}
