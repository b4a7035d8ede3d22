import DistillCore
import Foundation
import Testing

/// Malformed MDP and teacher files give errors that name the field and the state.
@Suite struct InputTests {
    static let goodMDP = """
        {"stateCount": 3, "actionCount": 2, "discount": 1.0, "start": [1, 0, 0], "terminal": [false, false, true],
         "transitions": [[[{"next": 1, "probability": 1, "reward": 0}], [{"next": 2, "probability": 1, "reward": 1}]],
                         [[{"next": 2, "probability": 1, "reward": -1}], [{"next": 0, "probability": 0.5, "reward": 0}, {"next": 2, "probability": 0.5, "reward": 2}]],
                         [[], []]]}
        """

    static func mdpError(_ text: String) -> String {
        do {
            _ = try JSONInput.mdp(from: Data(text.utf8))
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test func wellFormedMDPFileLoadsAndRoundTrips() throws {
        let mdp = try JSONInput.mdp(from: Data(Self.goodMDP.utf8))
        #expect(mdp.stateCount == 3 && mdp.actionCount == 2)
        #expect(abs(mdp.expectedReward(state: 1, action: 1) - 1) < 1e-12)
        let again = try JSONEncoder().encode(mdp.jsonDescription)
        #expect(try JSONInput.mdp(from: again).jsonDescription == mdp.jsonDescription)
    }

    @Test func missingFieldIsNamedWithItsState() {
        let text = Self.goodMDP.replacingOccurrences(
            of: #"{"next": 2, "probability": 1, "reward": -1}"#, with: #"{"next": 2, "reward": -1}"#)
        let message = Self.mdpError(text)
        #expect(
            message.contains("probability") && message.contains("state 1") && message.contains("action 0"), "\(message)"
        )
        let noDiscount = Self.mdpError(Self.goodMDP.replacingOccurrences(of: #""discount": 1.0,"#, with: ""))
        #expect(noDiscount.contains("missing field 'discount'"), "\(noDiscount)")
    }

    @Test func probabilitiesNotSummingToOneAreRejected() {
        let text = Self.goodMDP.replacingOccurrences(
            of: #"{"next": 0, "probability": 0.5"#, with: #"{"next": 0, "probability": 0.4"#)
        let message = Self.mdpError(text)
        #expect(message.contains("state 1") && message.contains("action 1") && message.contains("sum"), "\(message)")
    }

    @Test func negativeProbabilityIsRejected() {
        let text = Self.goodMDP.replacingOccurrences(of: #""start": [1, 0, 0]"#, with: #""start": [1.5, -0.5, 0]"#)
        let message = Self.mdpError(text)
        #expect(message.contains("start") && message.contains("state 1") && message.contains("negative"), "\(message)")
    }

    @Test func notANumberIsRejected() {
        let text = Self.goodMDP.replacingOccurrences(of: #""reward": -1"#, with: #""reward": "NaN""#)
        let message = Self.mdpError(text)
        #expect(message.contains("reward") && message.contains("state 1") && message.contains("nan"), "\(message)")
    }

    @Test func wrongSizesAreRejected() {
        let message = Self.mdpError(
            Self.goodMDP.replacingOccurrences(
                of: #""terminal": [false, false, true]"#, with: #""terminal": [false, true]"#))
        #expect(message.contains("terminal") && message.contains("stateCount"), "\(message)")
        let actions = Self.mdpError(
            Self.goodMDP.replacingOccurrences(
                of: #"[[{"next": 1, "probability": 1, "reward": 0}], [{"next": 2, "probability": 1, "reward": 1}]]"#,
                with: #"[[{"next": 1, "probability": 1, "reward": 0}]]"#))
        #expect(actions.contains("state 0") && actions.contains("actions"), "\(actions)")
        let badNext = Self.mdpError(
            Self.goodMDP.replacingOccurrences(
                of: #"{"next": 1, "probability": 1, "reward": 0}"#, with: #"{"next": 7, "probability": 1, "reward": 0}"#
            ))
        #expect(badNext.contains("state 0") && badNext.contains("next"), "\(badNext)")
    }

    @Test func teacherFileErrorsNameFieldAndState() throws {
        let mdp = try JSONInput.mdp(from: Data(Self.goodMDP.utf8))
        func teacherError(_ text: String) -> String {
            do {
                _ = try JSONInput.teacher(from: Data(text.utf8), for: mdp)
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        let good =
            #"{"stateCount": 3, "actionCount": 2, "policy": [[0.9, 0.1], [0.5, 0.5], [0.5, 0.5]], "values": [0.4, -0.2, 0]}"#
        #expect(teacherError(good) == "no error")
        let sum = teacherError(good.replacingOccurrences(of: "[0.9, 0.1]", with: "[0.9, 0.2]"))
        #expect(sum.contains("policy[state 0]") && sum.contains("sums"), "\(sum)")
        let negative = teacherError(good.replacingOccurrences(of: "[0.5, 0.5], [0.5", with: "[1.5, -0.5], [0.5"))
        #expect(negative.contains("policy[state 1][action 1]") && negative.contains("negative"), "\(negative)")
        let nan = teacherError(good.replacingOccurrences(of: "-0.2", with: "\"NaN\""))
        #expect(nan.contains("values[state 1]"), "\(nan)")
        let missing = teacherError(good.replacingOccurrences(of: #", "values": [0.4, -0.2, 0]"#, with: ""))
        #expect(missing.contains("missing field 'values'"), "\(missing)")
        let size = teacherError(good.replacingOccurrences(of: "[0.5, 0.5]]", with: "[0.5, 0.25, 0.25]]"))
        #expect(size.contains("policy[state 2]") && size.contains("actionCount"), "\(size)")
        let notJSON = teacherError("{ not json")
        #expect(notJSON.contains("teacher file"), "\(notJSON)")
    }
}
