import ArgumentParser
import DistillRuntime
import DistillWire
import Foundation

/// `distill keys`: CURVE key pairs for encrypted, authenticated clusters.
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Generate CURVE key pairs for encrypted, authenticated sockets.",
        discussion: """
            `generate` writes NAME.key (public and secret key; mode 0600, keep it on its host) and \
            NAME.pub (the public key alone, to hand out). Servers (learner, teacher) take their \
            pair with --curve-key and admit only the clients listed with --curve-allow: a file \
            with one key per line, written "ROLE KEY" where ROLE is actor, teacher or operator \
            (a bare KEY is an actor). Without --curve-allow any client that knows the server's \
            key may connect, and nobody has a role. Only operator keys may stop the learner, \
            swap its teacher or set λ. `generate --role operator` writes NAME.pub as \
            "operator KEY", ready to append to an allow-list. Clients take their own pair with \
            --curve-key and the servers' public keys with --learner-key and --teacher-key. See \
            docs/security.md.

            Examples:
              distill keys generate --out keys --name learner
              distill keys generate --out keys --name actor-1
              distill keys generate --out keys --name ops --role operator
              cat keys/actor-*.pub keys/ops.pub > keys/allowed
              distill learner --curve-key keys/learner.key --curve-allow keys/allowed ...
              distill actor --curve-key keys/actor-1.key --learner-key keys/learner.pub --teacher-key keys/teacher.pub ...
              distill control stop --learner tcp://HOST:5559 --curve-key keys/ops.key --learner-key keys/learner.pub
            """,
        subcommands: [Generate.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write DIR/NAME.key and DIR/NAME.pub.")

        @Option(help: ArgumentHelp("Directory for the key files (created if needed).", valueName: "dir"))
        var out: String = "."

        @Option(help: "Base name of the key files.")
        var name: String

        @Option(
            help: ArgumentHelp(
                "The role NAME.pub names for allow-lists: actor (a bare key), teacher or operator.",
                valueName: "role"))
        var role: String = "actor"

        @Flag(help: "Overwrite existing key files.")
        var force = false

        func validate() throws {
            guard !name.isEmpty, !name.contains("/") else { throw ValidationError("--name must be a file name") }
            guard KeyRole(rawValue: role) != nil else {
                throw ValidationError("--role must be actor, teacher or operator, got '\(role)'")
            }
        }

        func run() throws {
            let directory = URL(fileURLWithPath: out)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let secretFile = directory.appendingPathComponent("\(name).key")
            let publicFile = directory.appendingPathComponent("\(name).pub")
            if !force && FileManager.default.fileExists(atPath: secretFile.path) {
                throw ValidationError(
                    "\(secretFile.path) exists: give --force to replace it (its peers will need the new .pub)")
            }
            let pair = try CurveKeyPair.generate()
            let secret = "public \(pair.publicKey)\nsecret \(pair.secretKey)\n"
            guard
                FileManager.default.createFile(
                    atPath: secretFile.path, contents: Data(secret.utf8), attributes: [.posixPermissions: 0o600])
            else { throw ValidationError("cannot write \(secretFile.path)") }
            // An actor's .pub is the bare key (the allow-list format of old); other roles say theirs.
            let listed = role == KeyRole.actor.rawValue ? pair.publicKey : "\(role) \(pair.publicKey)"
            try Data((listed + "\n").utf8).write(to: publicFile)
            emit("wrote \(secretFile.path) (keep it secret) and \(publicFile.path) (hand it out)")
        }
    }
}

/// Reading CURVE key files with errors that say what is wrong.
enum KeyFiles {
    /// A key pair from a NAME.key file (lines "public KEY" and "secret KEY"; only the secret is needed).
    static func keyPair(_ path: String, flag: String) throws -> CurveKeyPair {
        let text = try read(path, flag: flag)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("secret ") }) else {
            throw ValidationError("\(flag): \(path) has no 'secret KEY' line; make one with `distill keys generate`")
        }
        let secret = String(line.dropFirst("secret ".count)).trimmingCharacters(in: .whitespaces)
        do {
            return try CurveKeyPair(secretKey: secret)
        } catch {
            throw ValidationError("\(flag): \(path) holds no valid CURVE secret key: \(error.message)")
        }
    }

    /// A public key from a NAME.pub file (a bare key or "ROLE KEY"), or the "public KEY" line of
    /// a NAME.key file.
    static func publicKey(_ path: String, flag: String) throws -> String {
        let text = try read(path, flag: flag)
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            if let key = words.last.map(String.init), CurveKeyPair.isKey(key) { return key }
        }
        throw ValidationError("\(flag): \(path) holds no CURVE public key (40 characters of Z85)")
    }

    /// An allow-list (see `AllowList`), with errors naming the flag and the file.
    static func allowList(_ path: String, flag: String) throws -> [String: KeyRole] {
        do {
            return try AllowList.parse(try read(path, flag: flag))
        } catch let error as RuntimeError {
            throw ValidationError("\(flag): \(path): \(error.description)")
        }
    }

    private static func read(_ path: String, flag: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("\(flag): cannot read '\(path)'")
        }
        return String(decoding: data, as: UTF8.self)
    }
}
