import ArgumentParser
import DistillCore
import Foundation

/// A yes/no answer on the command line.
enum YesNo: String, ExpressibleByArgument, CaseIterable {
    case yes, no

    var bool: Bool { self == .yes }
}

/// `distill recommend`: the paper's Fig. 1 decision tree.
struct RecommendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recommend",
        abstract: "Pick a distillation method with the paper's decision tree (Fig. 1), with the reasons.",
        discussion: """
            Answers the tree's questions from flags; in a terminal it asks the ones the flags leave open \
            (only those on the path). Without a terminal every question on the path must be a flag, or \
            --ask reads the answers (y/n, one per line) from standard input.

            Fig. 1 of our copy of the paper is a picture without text: this tree is rebuilt from the \
            questions the paper names for it and from its Sections 3-4, plus one question (the size of \
            the action space) that Fig. 4 shows decides between the two entropy-regularised forms. \
            Every leaf is one of the seven methods Fig. 1's caption names.

            Examples:
              distill recommend                                     # asks, in a terminal
              distill recommend --outside-teacher-states no
              distill recommend --outside-teacher-states yes --need-guarantees yes --teacher-has-value yes
              distill recommend --outside-teacher-states yes --need-guarantees no --teacher-strong no --json
            """)

    @Option(help: "Will the student act in states the teacher rarely visits? (yes|no)")
    var outsideTeacherStates: YesNo?

    @Option(help: "Are convergence guarantees (a gradient-field update) needed? (yes|no)")
    var needGuarantees: YesNo?

    @Option(help: "Does the teacher provide a value function V? (yes|no)")
    var teacherHasValue: YesNo?

    @Option(help: "Is the teacher near-optimal for the student's task? (yes|no)")
    var teacherStrong: YesNo?

    @Option(help: "Is the action space large (hundreds of actions or more)? (yes|no)")
    var largeActionSpace: YesNo?

    @Flag(help: "Read missing answers from standard input even when it is not a terminal.")
    var ask = false

    @Flag(help: "Print the recommendation as JSON.")
    var json = false

    func run() throws {
        var answers: [RecommendationQuestion: Bool] = [:]
        let given: [(RecommendationQuestion, YesNo?)] = [
            (.outsideTeacherStates, outsideTeacherStates), (.needGuarantees, needGuarantees),
            (.teacherHasValue, teacherHasValue), (.teacherStrong, teacherStrong),
            (.largeActionSpace, largeActionSpace),
        ]
        for (question, answer) in given { answers[question] = answer?.bool }
        let interactive = ask || isatty(STDIN_FILENO) == 1

        while true {
            switch MethodRecommender.walk(answers) {
            case .ask(let question):
                guard interactive else {
                    throw RecommendError(
                        "the tree needs --\(question.rawValue) yes|no next (\(question.prompt)); pass it, run "
                            + "in a terminal to be asked, or use --ask to read answers from standard input")
                }
                answers[question] = try Self.prompt(question)
            case .done(let recommendation):
                try Self.report(recommendation, json: json)
                return
            }
        }
    }

    /// Asks one question on stderr and reads y/n from stdin until the answer is one of them.
    static func prompt(_ question: RecommendationQuestion) throws -> Bool {
        for _ in 0..<5 {
            FileHandle.standardError.write(Data("\(question.prompt) [y/n] ".utf8))
            guard let line = readLine() else {
                throw RecommendError(
                    "standard input ended before --\(question.rawValue) was answered; pass it as a flag")
            }
            switch line.trimmingCharacters(in: .whitespaces).lowercased() {
            case "y", "yes": return true
            case "n", "no": return false
            default: FileHandle.standardError.write(Data("please answer y or n\n".utf8))
            }
        }
        throw RecommendError("no y/n answer to --\(question.rawValue) after 5 tries; pass it as a flag")
    }

    static func report(_ recommendation: Recommendation, json: Bool) throws {
        let method = recommendation.method
        let control = method.defaultControl.name
        if json {
            struct Output: Encodable {
                var method: String
                var control: String
                var summary: String
                var steps: [Step]
                var command: String
                struct Step: Encodable {
                    var question: String
                    var answer: String
                    var reason: String
                }
            }
            let output = Output(
                method: method.rawValue, control: control, summary: recommendation.summary,
                steps: recommendation.steps.map {
                    .init(question: $0.question.rawValue, answer: $0.answer ? "yes" : "no", reason: $0.reason)
                },
                command: "distill cluster --method \(method.rawValue)")
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(output), as: UTF8.self))
            return
        }
        print("method: \(method.rawValue)   (control: \(control)-driven)")
        print(recommendation.summary)
        print("")
        print("why:")
        for step in recommendation.steps {
            print("  \(step.question.rawValue) = \(step.answer ? "yes" : "no"): \(step.reason)")
        }
        print("")
        print("run it:")
        print("  distill cluster --method \(method.rawValue)")
        print("  distill train --method \(method.rawValue) --iterations 300")
    }
}

/// A question left unanswered: printed as `Error: …` without the usage text a ValidationError brings.
struct RecommendError: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) { self.description = description }
}
