import DistillCore
import DistillNN
import Foundation
import Testing

/// K gridworlds as one environment (the multitask experiment): the union's dynamics, start
/// distribution and teacher, and the two ways of telling the student its task — K one-hot planes
/// after the image, or a head selector after the observation — with their exact layouts.
@Suite struct MultitaskGridworldsTests {
    static func gridworlds(_ seeds: [UInt64], size: Int = 5) throws -> [Environment] {
        var c = GridworldConfiguration()
        c.size = size
        return try seeds.map { try Environments.gridworld(c, seed: $0) }
    }

    static func message(_ body: () throws -> Void) -> String {
        do {
            try body()
        } catch let error as DistillError {
            return error.message
        } catch {
            return "\(error)"
        }
        return "no error"
    }

    @Test func taskInputIsOneAllOnesPlanePerTaskAfterTheImagePlanes() throws {
        let worlds = try Self.gridworlds([1, 2, 3])
        let union = try MultitaskGridworlds(worlds)
        let mlp = try NetworkArchitecture(parsing: "mlp:8")
        let (rows, shape) = try union.observationTable(.image, label: .input, architecture: mlp)
        let c = ObservationKind.imageChannels
        #expect(shape == [c + 3, 5, 5])
        let size = (c + 3) * 25
        #expect(rows.count == union.environment.mdp.stateCount * size)
        for (k, world) in worlds.enumerated() {
            let image = try TabularObservedEnvironment(world, observation: .image).observationTable()
            for s in 0..<world.mdp.stateCount {
                let row = Array(rows[((union.stateOffsets[k] + s) * size)..<((union.stateOffsets[k] + s + 1) * size)])
                // The image's planes first, unchanged; then plane c + j is all (j == k ? 1 : 0).
                #expect(Array(row[0..<(c * 25)]) == Array(image[(s * c * 25)..<((s + 1) * c * 25)]))
                for j in 0..<3 {
                    #expect(row[((c + j) * 25)..<((c + j + 1) * 25)].allSatisfy { $0 == (j == k ? 1 : 0) })
                }
            }
        }
        // A convolution reads the same planes channels-last: pixel (y, x) ends in the task's one-hot.
        let conv = try NetworkArchitecture(parsing: "conv:2x3")
        let (nhwc, convShape) = try union.observationTable(.image, label: .input, architecture: conv)
        #expect(convShape == [5, 5, c + 3])
        let s = union.stateOffsets[2] + 4
        for pixel in 0..<25 {
            let base = s * size + pixel * (c + 3) + c
            #expect(Array(nhwc[base..<(base + 3)]) == [0, 0, 1])
        }
    }

    @Test func headSelectorFollowsTheObservationAndAHeldOutWorldReadsNoTask() throws {
        let worlds = try Self.gridworlds([4, 5])
        let union = try MultitaskGridworlds(worlds)
        let mlp = try NetworkArchitecture(parsing: "mlp:8/heads:2")
        let (rows, shape) = try union.observationTable(.image, label: .headSelector, architecture: mlp)
        let size = ObservationKind.imageChannels * 25
        #expect(shape == [ObservationKind.imageChannels, 5, 5])
        let image = try TabularObservedEnvironment(worlds[1], observation: .image).observationTable()
        let s = 7
        let row = Array(
            rows[((union.stateOffsets[1] + s) * (size + 2))..<((union.stateOffsets[1] + s + 1) * (size + 2))])
        #expect(Array(row[0..<size]) == Array(image[(s * size)..<((s + 1) * size)]))
        #expect(Array(row[size...]) == [0, 1])
        // The network reads exactly these rows: one head per task.
        let network = try PolicyValueNetwork(architecture: mlp, inputShape: shape, actionCount: 4, seed: 0)
        #expect(rows.count == union.environment.mdp.stateCount * network.inputSize)
        // Held out: the task planes are all zero; a head selector has no head to choose.
        let heldOut = try Self.gridworlds([9])[0]
        let zero = try MultitaskGridworlds.observationTable(
            heldOut, .image, label: .input, task: nil, of: 2, architecture: NetworkArchitecture(parsing: "mlp:8"))
        #expect(zero.inputShape == [ObservationKind.imageChannels + 2, 5, 5])
        for st in 0..<heldOut.mdp.stateCount {
            let planes = zero.rows[(st * (size + 50) + size)..<((st + 1) * (size + 50))]
            #expect(planes.allSatisfy { $0 == 0 })
        }
        let refused = Self.message {
            _ = try MultitaskGridworlds.observationTable(
                heldOut, .image, label: .headSelector, task: nil, of: 2, architecture: mlp)
        }
        #expect(refused.contains("needs a task to choose its head"), "\(refused)")
    }

    @Test func unionPlaysEachTaskWithItsOwnTeacherAndAveragesTheirReturns() throws {
        let worlds = try Self.gridworlds([11, 12, 13], size: 6)
        let union = try MultitaskGridworlds(worlds)
        let mdp = union.environment.mdp
        #expect(mdp.stateCount == worlds.reduce(0) { $0 + $1.mdp.stateCount })
        for (k, world) in worlds.enumerated() {
            let block = union.rows(mdp.startDistribution, task: k, width: 1)
            #expect(zip(block, world.mdp.startDistribution).allSatisfy { abs($0 - $1 / 3) < 1e-15 })
            // Transitions stay inside the task's block, shifted by its offset.
            for s in 0..<world.mdp.stateCount where !world.mdp.isTerminal[s] {
                let a = s % 4
                let inUnion = mdp.outcomes(state: union.stateOffsets[k] + s, action: a)
                let own = world.mdp.outcomes(state: s, action: a)
                #expect(inUnion.map(\.next) == own.map { $0.next + union.stateOffsets[k] })
                #expect(inUnion.map(\.reward) == own.map(\.reward))
            }
        }
        let teachers = try zip(worlds, [11, 12, 13] as [UInt64]).map { world, seed in
            try Teachers.qLearning(world.mdp, QLearningConfiguration(), seed: seed)
        }
        let teacher = union.teacher(teachers)
        for k in 0..<3 {
            #expect(union.rows(teacher.probabilities, task: k, width: 4) == teachers[k].probabilities)
        }
        // The union's return is the mean of the tasks' returns (each task's start has mass 1/K).
        let each = try (0..<3).map { try union.taskReturn(teacher.probabilities, task: $0) }
        for k in 0..<3 {
            #expect(
                abs(each[k] - (try PolicyEvaluation.expectedReturn(worlds[k].mdp, policy: teachers[k].probabilities)))
                    < 1e-9)
        }
        let whole = try PolicyEvaluation.expectedReturn(mdp, policy: teacher.probabilities)
        #expect(abs(whole - each.reduce(0, +) / 3) < 1e-9)
    }

    @Test func tasksThatDisagreeOrNoTasksAreRefused() throws {
        var c = GridworldConfiguration()
        c.size = 5
        let four = try Environments.gridworld(c, seed: 1)
        c.actionCount = 5
        let five = try Environments.gridworld(c, seed: 1)
        let mixed = Self.message { _ = try MultitaskGridworlds([four, five]) }
        #expect(mixed.contains("task 1") && mixed.contains("5 actions"), "\(mixed)")
        let none = Self.message { _ = try MultitaskGridworlds([]) }
        #expect(none.contains("at least one task"), "\(none)")
    }

    @Test func aOneTaskStudentWithSeveralHeadsIsRefused() throws {
        let refused = Self.message { try StudentSpec(architecture: "mlp:8/heads:3", observation: "image").validate() }
        #expect(refused.contains("one head per task") && refused.contains("heads:3"), "\(refused)")
        let world = try Self.gridworlds([1])[0]
        let built = Self.message {
            _ = try StudentSpec(architecture: "mlp:8/heads:2").buildNetwork(for: world, method: MethodSpec())
        }
        #expect(built.contains("one head per task"), "\(built)")
    }
}
