import DistillCore
import Foundation
import FuzzSupport

/// The input is read both as an MDP file (`JSONInput.mdp`) and as a teacher file for the 5×5
/// gridworld of ``FuzzProblem`` (`JSONInput.teacher`). Properties: reading never crashes or
/// hangs; an MDP that validates can be evaluated (the uniform policy's expected return, for
/// MDPs up to 4,096 state-actions) and written back as JSON that reads again to the same
/// description; a teacher that validates writes back as JSON that reads again to the same table.
enum JSONInputTarget {
    static let name = "fuzz-json-input"

    static func test(_ bytes: [UInt8]) -> CInt {
        let data = Data(bytes)
        if let mdp = try? JSONInput.mdp(from: data) {
            let (ns, na) = (mdp.stateCount, mdp.actionCount)
            if ns.multipliedReportingOverflow(by: na).partialValue <= 4096 && ns <= 4096 && na <= 4096 {
                let uniform = [Double](repeating: 1 / Double(na), count: ns * na)
                _ = try? PolicyEvaluation.expectedReturn(mdp, policy: uniform)
            }
            let description = mdp.jsonDescription
            do {
                let again = try JSONInput.mdp(from: try encode(description))
                guard same(again.jsonDescription, description) else {
                    FuzzDriver.violated(name, "an MDP read back from its own JSON differs")
                }
            } catch {
                FuzzDriver.violated(name, "an MDP that validated does not read back from its own JSON: \(error)")
            }
        }
        let mdp = FuzzProblem.shared.environment.mdp
        if let teacher = try? JSONInput.teacher(from: data, for: mdp) {
            let description = teacher.jsonDescription
            do {
                let again = try JSONInput.teacher(from: try encode(description), for: mdp)
                guard same(again.jsonDescription, description) else {
                    FuzzDriver.violated(name, "a teacher read back from its own JSON differs")
                }
            } catch {
                FuzzDriver.violated(name, "a teacher that validated does not read back from its own JSON: \(error)")
            }
        }
        return 0
    }

    /// Equal up to the rounding of the readers' normalisation (probabilities are divided by their
    /// sum, which is only within 1e-6 of 1, so a second reading may move the last bits).
    static func same(_ a: MDPDescription, _ b: MDPDescription) -> Bool {
        guard a.stateCount == b.stateCount, a.actionCount == b.actionCount, a.terminal == b.terminal,
            close(a.discount, b.discount), zip(a.start, b.start).allSatisfy(close),
            a.transitions.map({ $0.map(\.count) }) == b.transitions.map({ $0.map(\.count) })
        else { return false }
        return zip(a.transitions.joined().joined(), b.transitions.joined().joined()).allSatisfy {
            $0.next == $1.next && close($0.probability, $1.probability) && close($0.reward, $1.reward)
        }
    }

    static func same(_ a: TeacherDescription, _ b: TeacherDescription) -> Bool {
        a.identity == b.identity && a.stateCount == b.stateCount && a.actionCount == b.actionCount
            && a.policy.map(\.count) == b.policy.map(\.count)
            && zip(a.policy.joined(), b.policy.joined()).allSatisfy(close) && zip(a.values, b.values).allSatisfy(close)
            && a.values.count == b.values.count && (a.q == nil) == (b.q == nil)
            && zip((a.q ?? []).joined(), (b.q ?? []).joined()).allSatisfy(close)
    }

    static func close(_ x: Double, _ y: Double) -> Bool { abs(x - y) <= 1e-9 * max(1, abs(x), abs(y)) }

    static func encode<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return try encoder.encode(value)
    }

    /// The files of a chain and the Fig. 2 MDP, the fuzzing gridworld's optimal teacher (with and
    /// without Q-values), plus JSON edge cases. (The gridworld's own MDP file, 35 KB, would make
    /// every mutation slow.)
    static func seeds() throws -> [Seed] {
        let problem = FuzzProblem.shared
        var seeds = [
            Seed("mdp-chain", Array(try encode(try Environments.chain(halfLength: 2).mdp.jsonDescription))),
            Seed("mdp-fig2", Array(try encode(Environments.fig2().mdp.jsonDescription))),
            Seed("teacher-optimal", Array(try encode(problem.teacher.jsonDescription))),
        ]
        var noQ = problem.teacher.jsonDescription
        noQ.q = nil
        noQ.identity = nil
        seeds.append(Seed("teacher-no-q", Array(try encode(noQ))))
        let edges: [(String, String)] = [
            ("empty-object", "{}"),
            ("null", "null"),
            (
                "non-finite",
                #"{"stateCount":1,"actionCount":1,"discount":"NaN","start":["Infinity"],"terminal":[false],"transitions":[[[]]]}"#
            ),
            (
                "huge-numbers",
                #"{"stateCount":9223372036854775807,"actionCount":1e400,"discount":-0.0,"start":[],"terminal":[],"transitions":[]}"#
            ),
            ("nested", String(repeating: "[", count: 64) + String(repeating: "]", count: 64)),
        ]
        seeds += edges.map { Seed($0.0, Array($0.1.utf8)) }
        return seeds
    }
}
