// Who may do what to a learner (docs/security.md): the decisions, without I/O, so that tests
// can make them in-process. The learner's poll loop asks these and sends what they say.

import DistillWire
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The allow-list file of `--curve-allow`: one key per line, "ROLE KEY" with ROLE one of actor,
/// teacher, operator, or a bare "KEY" (an actor: the format of old, where every listed key was
/// an actor's). Blank lines and lines starting with # are ignored (a 40-character key that
/// happens to start with # is still a key).
public enum AllowList {
    /// The keys of `text` with their roles.
    ///
    /// - Throws: `RuntimeError` naming the line that is not a key, or a key listed twice with
    ///   different roles.
    public static func parse(_ text: String) throws -> [String: KeyRole] {
        var roles: [String: KeyRole] = [:]
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || (line.hasPrefix("#") && !CurveKeyPair.isKey(line)) { continue }
            let words = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            let role: KeyRole
            let key: String
            switch words.count {
            case 1:
                (role, key) = (.actor, words[0])
            case 2:
                guard let named = KeyRole(rawValue: words[0]) else {
                    throw RuntimeError(
                        "line \(number + 1): '\(words[0])' is not a role: write actor, teacher or operator before the key",
                        code: .invalidInput)
                }
                (role, key) = (named, words[1])
            default:
                throw RuntimeError(
                    "line \(number + 1): expected \"ROLE KEY\" or \"KEY\", got \(words.count) words",
                    code: .invalidInput)
            }
            guard CurveKeyPair.isKey(key) else {
                throw RuntimeError(
                    "line \(number + 1) is not a CURVE public key (40 characters of Z85)", code: .invalidInput)
            }
            if let other = roles[key], other != role {
                throw RuntimeError(
                    "line \(number + 1): this key is listed as \(other) already; give it one role", code: .invalidInput)
            }
            roles[key] = role
        }
        return roles
    }
}

/// The run token: the secret that control commands other than `status` carry when the learner
/// cannot tell operators by their keys (no CURVE allow-list).
public enum RunToken {
    /// The token file's name, in the learner's output directory (or its checkpoint directory).
    public static let fileName = "run-token"

    /// A fresh token: 32 bytes from the system's cryptographic generator, in hex.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in
            let word = generator.next() as UInt64
            let hex = String(word, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }

    /// Writes `token` to DIRECTORY/run-token, readable by its owner only (mode 0600, also when
    /// the file existed with another mode), creating the directory if needed.
    @discardableResult
    public static func write(_ token: String, in directory: URL) throws -> URL {
        let file = directory.appendingPathComponent(fileName)
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw RuntimeError(
                "cannot create \(directory.path) for the run token: \(error.localizedDescription)", code: .fileAccess)
        }
        let descriptor = open(file.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard descriptor >= 0 else {
            throw RuntimeError(
                "cannot write the run token \(file.path): \(String(cString: strerror(errno)))", code: .fileAccess)
        }
        defer { close(descriptor) }
        guard fchmod(descriptor, 0o600) == 0 else {
            throw RuntimeError(
                "cannot make \(file.path) private (chmod 600): \(String(cString: strerror(errno)))", code: .fileAccess)
        }
        let bytes = Array((token + "\n").utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(descriptor) == 0 else {
            throw RuntimeError(
                "cannot write the run token \(file.path): \(String(cString: strerror(errno)))", code: .fileAccess)
        }
        return file
    }

    /// The token in `file` (its first line).
    public static func read(_ file: URL) throws -> String {
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw RuntimeError(
                "cannot read the run token \(file.path): the learner writes it at start into its --out "
                    + "directory (or --checkpoint-dir), readable only by the user who started it", code: .fileAccess)
        }
        let token = String(decoding: data, as: UTF8.self).split(separator: "\n").first.map(String.init) ?? ""
        guard !token.isEmpty else { throw RuntimeError("the run token file \(file.path) is empty", code: .fileAccess) }
        return token.trimmingCharacters(in: .whitespaces)
    }

    /// Compares in time independent of where the strings differ.
    static func matches(_ given: String, _ expected: String) -> Bool {
        let a = Array(given.utf8)
        let b = Array(expected.utf8)
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<b.count { difference |= (index < a.count ? a[index] : 0) ^ b[index] }
        return difference == 0 && !b.isEmpty
    }
}

/// How a learner tells who may send control commands other than `status`.
public enum ControlAccess: Sendable, Equatable {
    /// CURVE with an allow-list: the key's role (operator), read from the ZAP user id.
    case keys
    /// Without authenticated keys: the run token in `Control.token`.
    case token(String)
    /// Without authenticated keys and without a run token (no directory to write it in):
    /// only `status`; stop the learner with a signal.
    case statusOnly
}

/// A learner's authorization decisions: control commands, Hello and unrolls, identity binding.
/// Pure bookkeeping: the learner feeds it what arrived (with the peer the ZAP handler
/// authenticated, when there is one) and sends the refusal it returns, if any.
public struct LearnerAuthorization: Sendable {
    /// How control commands are authorized.
    public var access: ControlAccess
    /// Actor id → the CURVE key that speaks for it (only with `.keys`).
    public private(set) var owners: [String: String] = [:]
    /// Bindings made by an unroll (not a Hello) at most.
    public let maxUnrollBindings: Int
    /// Actor ids bound at most (by Hellos and unrolls): a key inventing ids cannot grow the table
    /// without bound.
    public let maxOwners: Int
    private var unrollBindings = 0

    /// Creates the decisions for a learner with the given access.
    public init(access: ControlAccess = .statusOnly, maxUnrollBindings: Int = 4096, maxOwners: Int = 65_536) {
        self.access = access
        self.maxUnrollBindings = maxUnrollBindings
        self.maxOwners = maxOwners
    }

    /// Why `command` from `peer` (nil without a ZAP handler) is refused, or nil when allowed.
    public func refusal(of command: Control, from peer: AuthenticatedPeer?) -> String? {
        guard command.command != .status else { return nil }
        let name = Self.name(of: command.command)
        switch access {
        case .keys:
            guard let peer else { return "\(name) needs an operator key; this client has no authenticated key" }
            guard peer.role == .operator else {
                return "\(name) needs an operator key; this client's key is listed as \(peer.role) "
                    + "(list an operator key as \"operator KEY\" in the learner's --curve-allow file: docs/security.md)"
            }
            return nil
        case .token(let token):
            guard RunToken.matches(command.token, token) else {
                return command.token.isEmpty
                    ? "\(name) needs the run token: give `distill control` --token-file RUN/run-token "
                        + "(or --run-dir RUN), the file the learner wrote at start"
                    : "\(name) carries a wrong run token: this learner wrote its token at start to its run "
                        + "directory's run-token file; a restarted learner writes a new one"
            }
            return nil
        case .statusOnly:
            return "\(name) is disabled: this learner has neither CURVE operator keys nor a run token "
                + "(start it with --out or --checkpoint-dir, where it writes one); stop it with SIGTERM"
        }
    }

    /// Why a message of `kind` from `peer` is refused for its key's role, or nil. Only `.keys`
    /// checks roles: actors' messages (Hello, Heartbeat, Unroll) need an actor key.
    public func refusal(of kind: MessageKind, from peer: AuthenticatedPeer?) -> String? {
        guard access == .keys, [.hello, .heartbeat, .unroll].contains(kind) else { return nil }
        guard let peer else { return "\(kind.rawValue) needs an actor key; this client has no authenticated key" }
        guard peer.role == .actor else {
            return "\(kind.rawValue) needs an actor key; this client's key is listed as \(peer.role)"
        }
        return nil
    }

    /// Decides a Hello of actor `id` from `peer`: refused (with the reason) when another key
    /// speaks for that id and its actor is alive (`liveOwner`: the key of the live actor with
    /// this id, if there is one); otherwise the id is bound to the peer's key.
    public mutating func admitHello(id: String, from peer: AuthenticatedPeer?, liveOwner: String?) -> String? {
        guard access == .keys, let peer else { return nil }
        if let liveOwner, liveOwner != peer.key {
            return "actor id '\(id)' belongs to another key, whose actor is alive: give this actor another --id"
        }
        guard owners[id] != nil || owners.count < maxOwners else {
            return "this learner has bound \(maxOwners) actor ids already: no new ones"
        }
        owners[id] = peer.key
        return nil
    }

    /// Decides an unroll that says it comes from actor `id`: refused when the id is bound to
    /// another key. An id no Hello has bound yet (unrolls still in flight to a restarted
    /// learner) is bound to the key that first uses it, up to `maxUnrollBindings` ids; a Hello
    /// from another key takes it over unless its actor is alive.
    public mutating func admitUnroll(id: String, from peer: AuthenticatedPeer?) -> String? {
        guard access == .keys, let peer else { return nil }
        if let owner = owners[id] {
            return owner == peer.key
                ? nil : "the unroll says it comes from actor '\(id)', whose id belongs to another key"
        }
        guard unrollBindings < maxUnrollBindings, owners.count < maxOwners else {
            return "too many actor ids without a Hello (\(maxUnrollBindings)): say Hello before pushing unrolls"
        }
        unrollBindings += 1
        owners[id] = peer.key
        return nil
    }

    /// True when a message of actor `id` from `peer` may update the record of an actor whose
    /// key is `recordKey` (heartbeats: a key cannot keep another key's actor alive).
    public func mayUpdate(recordKey: String?, from peer: AuthenticatedPeer?) -> Bool {
        guard access == .keys else { return true }
        return recordKey != nil && recordKey == peer?.key
    }

    /// The command's name as `distill control` spells it.
    static func name(of command: Control.Command) -> String {
        switch command {
        case .stop: "stop"
        case .swapTeacher: "swap-teacher"
        case .setLambda: "set-lambda"
        case .status: "status"
        }
    }
}

/// The teachers a learner has announced, and which one its targets come from now.
///
/// Announced are: the configured teacher (its identity, when the learner built it); the teacher
/// the first unroll names (trust on first use: a learner's configured teacher only serves its
/// teacher-return metric, and its actors may have been started with another teacher server);
/// and each teacher a checked swap moved the actors to. An unroll naming any other teacher is
/// refused. Switches are kept for the summary, the first `maxSwitches` of them, and counted.
public struct TeacherRegistry: Sendable {
    /// Teacher ids unrolls may name.
    public private(set) var announced: Set<String> = []
    /// The teacher the targets come from now ("" before the first unroll).
    public private(set) var current = ""
    /// The teacher before `current` (its unrolls still in flight are not a switch back).
    public private(set) var previous = ""
    /// True between a swap and the first unroll of the new teacher.
    public private(set) var swapPending = false
    /// The first `maxSwitches` switches: from which environment step, which teacher.
    public private(set) var switches: [(envSteps: UInt64, teacher: String)] = []
    /// Switches in all (also those not kept).
    public private(set) var switchCount = 0
    /// How many switches are kept.
    public let maxSwitches: Int
    /// The teacher the first unroll named when it was not the configured one (trusted on first
    /// use), else nil.
    public private(set) var trustedOnFirstUse: String?
    private var firstUse = true

    /// A registry that knows the configured teacher `initial` (nil: none configured).
    public init(initial: String?, maxSwitches: Int = 100) {
        self.maxSwitches = maxSwitches
        if let initial { announced.insert(initial) }
    }

    /// Announces `teacherID` (a swap to it was checked): unrolls may name it from now on.
    public mutating func announce(_ teacherID: String) {
        announced.insert(teacherID)
        swapPending = true
    }

    /// Forgets a pending swap (the learner went back to the previous teacher).
    public mutating func revert() {
        swapPending = false
    }

    /// Notes the teacher an unroll names at `envSteps`: returns why it is refused, or nil.
    /// `switchedFrom` is set when the targets now come from another teacher than before.
    public mutating func observe(_ teacherID: String, envSteps: UInt64) -> (refusal: String?, switchedFrom: String?) {
        if firstUse {
            firstUse = false
            if !announced.contains(teacherID) {
                announced.insert(teacherID)
                trustedOnFirstUse = teacherID
            }
        }
        guard announced.contains(teacherID) else {
            return ("teacher id '\(teacherID)' is not one this learner announced (\(announced.count) known)", nil)
        }
        guard teacherID != current else { return (nil, nil) }
        // Unrolls still in flight from the teacher just replaced are stragglers, not a switch
        // back; a commanded swap to it again is a switch.
        if teacherID == previous && !swapPending { return (nil, nil) }
        let from = current
        previous = current
        current = teacherID
        swapPending = false
        switchCount += 1
        if switches.count < maxSwitches { switches.append((envSteps, teacherID)) }
        return (nil, from.isEmpty ? nil : from)
    }
}
