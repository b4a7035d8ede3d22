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
            pair with --curve-key and admit only the clients listed with --curve-allow (a file of \
            public keys, one per line; without it any client that knows the server's key may \
            connect). Clients take their own pair with --curve-key and the servers' public keys \
            with --learner-key and --teacher-key.

            Examples:
              distill keys generate --out keys --name learner
              distill keys generate --out keys --name actor-1
              cat keys/actor-*.pub > keys/allowed
              distill learner --curve-key keys/learner.key --curve-allow keys/allowed ...
              distill actor --curve-key keys/actor-1.key --learner-key keys/learner.pub --teacher-key keys/teacher.pub ...
            """,
        subcommands: [Generate.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write DIR/NAME.key and DIR/NAME.pub.")

        @Option(help: ArgumentHelp("Directory for the key files (created if needed).", valueName: "dir"))
        var out: String = "."

        @Option(help: "Base name of the key files.")
        var name: String

        @Flag(help: "Overwrite existing key files.")
        var force = false

        func validate() throws {
            guard !name.isEmpty, !name.contains("/") else { throw ValidationError("--name must be a file name") }
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
            try Data((pair.publicKey + "\n").utf8).write(to: publicFile)
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

    /// A public key from a NAME.pub file (or the "public KEY" line of a NAME.key file).
    static func publicKey(_ path: String, flag: String) throws -> String {
        let text = try read(path, flag: flag)
        for line in text.split(separator: "\n") {
            let key = String(line.hasPrefix("public ") ? line.dropFirst("public ".count) : line[...])
                .trimmingCharacters(in: .whitespaces)
            if CurveKeyPair.isKey(key) { return key }
        }
        throw ValidationError("\(flag): \(path) holds no CURVE public key (40 characters of Z85)")
    }

    /// An allow-list: one public key per line; blank lines and lines starting with # are ignored.
    static func allowList(_ path: String, flag: String) throws -> Set<String> {
        var keys = Set<String>()
        for (number, line) in try read(path, flag: flag).split(separator: "\n", omittingEmptySubsequences: false)
            .enumerated()
        {
            let key = line.trimmingCharacters(in: .whitespaces)
            if key.isEmpty || key.hasPrefix("#") { continue }
            guard CurveKeyPair.isKey(key) else {
                throw ValidationError(
                    "\(flag): line \(number + 1) of \(path) is not a CURVE public key (40 characters of Z85)")
            }
            keys.insert(key)
        }
        return keys
    }

    private static func read(_ path: String, flag: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("\(flag): cannot read '\(path)'")
        }
        return String(decoding: data, as: UTF8.self)
    }
}
