/// A ZeroMQ TCP endpoint, `tcp://HOST:PORT`, as the roles pass them around.
public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
    /// The host part: a name, an IPv4 address, `*` (all interfaces) or a bracketed IPv6 address.
    public var host: String
    /// The port; 0 stands for `*` (chosen by the system at bind).
    public var port: Int

    /// Parses `tcp://HOST:PORT` (PORT may be `*` for a bind), with a message that shows the form.
    public init(parsing text: String) throws {
        let form = "a TCP endpoint looks like tcp://HOST:PORT, e.g. tcp://10.0.0.5:5557 or tcp://*:5557"
        guard text.hasPrefix("tcp://") else {
            throw RuntimeError("'\(text)' is not a TCP endpoint: \(form)", code: .invalidInput)
        }
        let rest = text.dropFirst("tcp://".count)
        guard let colon = rest.lastIndex(of: ":") else {
            throw RuntimeError("'\(text)' has no port: \(form)", code: .invalidInput)
        }
        let host = String(rest[..<colon])
        let portText = rest[rest.index(after: colon)...]
        guard !host.isEmpty else { throw RuntimeError("'\(text)' has no host: \(form)", code: .invalidInput) }
        if portText == "*" {
            self.port = 0
        } else if let port = Int(portText), (1...65535).contains(port) {
            self.port = port
        } else {
            throw RuntimeError(
                "'\(text)' has an invalid port '\(portText)': a port is 1 to 65535 (or * for any free port); \(form)",
                code: .invalidInput)
        }
        self.host = host
    }

    /// Creates an endpoint from parts.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// The same endpoint with another port (a learner's other sockets live on its host).
    public func with(port: Int) -> Endpoint { Endpoint(host: host, port: port) }

    /// `tcp://HOST:PORT`, with `*` for port 0.
    public var description: String { "tcp://\(host):\(port == 0 ? "*" : String(port))" }
}
