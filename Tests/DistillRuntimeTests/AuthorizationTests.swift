import DistillRuntime
import DistillWire
import Foundation
import Testing

/// The learner's authorization decisions, in-process (docs/security.md): milliseconds each.
@Suite("Authorization decisions")
struct AuthorizationTests {
    static let actorKey = String(repeating: "a", count: 40)
    static let otherActorKey = String(repeating: "b", count: 40)
    static let operatorKey = String(repeating: "c", count: 40)
    static let actor = AuthenticatedPeer(role: .actor, key: actorKey)
    static let otherActor = AuthenticatedPeer(role: .actor, key: otherActorKey)
    static let operatorPeer = AuthenticatedPeer(role: .operator, key: operatorKey)
    static let commands: [Control] = [
        Control(command: .stop), Control(command: .swapTeacher, teacherEndpoint: "tcp://127.0.0.1:1"),
        Control(command: .setLambda, lambdas: [0.5]),
    ]

    @Test func allowListLinesNameRolesAndABareKeyIsAnActor() throws {
        let roles = try AllowList.parse(
            """
            # keys of the run
            \(Self.actorKey)
            operator \(Self.operatorKey)
              teacher   \(Self.otherActorKey)

            """)
        #expect(roles == [Self.actorKey: .actor, Self.operatorKey: .operator, Self.otherActorKey: .teacher])
        #expect(throws: RuntimeError.self) { try AllowList.parse("admin \(Self.actorKey)") }
        #expect(throws: RuntimeError.self) { try AllowList.parse("operator not-a-key") }
        #expect(throws: RuntimeError.self) { try AllowList.parse("\(Self.actorKey)\noperator \(Self.actorKey)") }
        // A Z85 key may start with '#': it is a key, not a comment.
        let hashKey = "#" + String(repeating: "d", count: 39)
        #expect(try AllowList.parse(hashKey) == [hashKey: .actor])
    }

    @Test func theZAPUserIDCarriesTheRoleAndOnlyOurFormIsRead() {
        #expect(AuthenticatedPeer(userID: Self.operatorPeer.userID) == Self.operatorPeer)
        #expect(AuthenticatedPeer(userID: "operator:short") == nil)
        #expect(AuthenticatedPeer(userID: "root:\(Self.actorKey)") == nil)
        #expect(AuthenticatedPeer(userID: nil) == nil)
    }

    @Test func withKeysOnlyAnOperatorKeyMayStopSwapOrSetLambdaAndAnyKeyMayAskStatus() {
        let decisions = LearnerAuthorization(access: .keys)
        for command in Self.commands {
            let refusal = decisions.refusal(of: command, from: Self.actor)
            #expect(refusal?.contains("needs an operator key") == true, "\(command.command)")
            #expect(decisions.refusal(of: command, from: nil) != nil)
            #expect(decisions.refusal(of: command, from: Self.operatorPeer) == nil)
        }
        #expect(decisions.refusal(of: Control(command: .status), from: Self.actor) == nil)
        // Actors' messages need an actor key; an operator key may not push unrolls.
        #expect(decisions.refusal(of: .unroll, from: Self.operatorPeer) != nil)
        #expect(decisions.refusal(of: .hello, from: Self.actor) == nil)
        #expect(decisions.refusal(of: .getParams, from: Self.operatorPeer) == nil)
    }

    @Test func withoutKeysEveryCommandButStatusNeedsTheRunToken() {
        let token = RunToken.generate()
        #expect(token.count == 64 && token != RunToken.generate())
        let decisions = LearnerAuthorization(access: .token(token))
        for var command in Self.commands {
            #expect(decisions.refusal(of: command, from: nil)?.contains("needs the run token") == true)
            command.token = String(token.dropLast()) + (token.hasSuffix("0") ? "1" : "0")
            #expect(decisions.refusal(of: command, from: nil)?.contains("wrong run token") == true)
            command.token = token
            #expect(decisions.refusal(of: command, from: nil) == nil)
        }
        #expect(decisions.refusal(of: Control(command: .status), from: nil) == nil)
        #expect(decisions.refusal(of: .unroll, from: nil) == nil)
        let closed = LearnerAuthorization(access: .statusOnly)
        #expect(closed.refusal(of: Control(command: .stop, token: token), from: nil) != nil)
    }

    @Test func theRunTokenFileIsReadableByItsOwnerOnly() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("distill-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // An existing file with a wider mode is narrowed.
        _ = FileManager.default.createFile(
            atPath: directory.appendingPathComponent(RunToken.fileName).path, contents: Data("old".utf8),
            attributes: [.posixPermissions: 0o644])
        let token = RunToken.generate()
        let file = try RunToken.write(token, in: directory)
        let mode = try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try RunToken.read(file) == token)
    }

    @Test func aKeyCannotSpeakAsAnotherKeysActor() {
        var decisions = LearnerAuthorization(access: .keys)
        #expect(decisions.admitHello(id: "actor-0", from: Self.actor, liveOwner: nil) == nil)
        // A Hello for the live actor-0 from another key is refused; its owner stays.
        let impostor = decisions.admitHello(id: "actor-0", from: Self.otherActor, liveOwner: Self.actorKey)
        #expect(impostor?.contains("belongs to another key") == true)
        #expect(decisions.owners["actor-0"] == Self.actorKey)
        // Unrolls under actor-0's id from another key are refused; from its own key, learned from.
        #expect(decisions.admitUnroll(id: "actor-0", from: Self.otherActor) != nil)
        #expect(decisions.admitUnroll(id: "actor-0", from: Self.actor) == nil)
        #expect(!decisions.mayUpdate(recordKey: Self.actorKey, from: Self.otherActor))
        #expect(decisions.mayUpdate(recordKey: Self.actorKey, from: Self.actor))
        // Once actor-0 is dead, another key may take its id over with a Hello.
        #expect(decisions.admitHello(id: "actor-0", from: Self.otherActor, liveOwner: nil) == nil)
        #expect(decisions.admitUnroll(id: "actor-0", from: Self.actor) != nil)
    }

    @Test func unrollsBeforeAnyHelloBindTheirIdToTheirKeyUpToABound() {
        var decisions = LearnerAuthorization(access: .keys, maxUnrollBindings: 2)
        #expect(decisions.admitUnroll(id: "x", from: Self.actor) == nil)
        #expect(decisions.admitUnroll(id: "x", from: Self.otherActor) != nil)
        #expect(decisions.admitUnroll(id: "y", from: Self.actor) == nil)
        #expect(decisions.admitUnroll(id: "z", from: Self.actor)?.contains("too many actor ids") == true)
        var small = LearnerAuthorization(access: .keys, maxOwners: 2)
        #expect(small.admitHello(id: "a", from: Self.actor, liveOwner: nil) == nil)
        #expect(small.admitHello(id: "b", from: Self.actor, liveOwner: nil) == nil)
        #expect(small.admitHello(id: "c", from: Self.actor, liveOwner: nil) != nil)
        #expect(small.admitHello(id: "a", from: Self.actor, liveOwner: Self.actorKey) == nil, "a known id rebinds")
        // Without keys nothing is bound (nothing to bind to).
        var open = LearnerAuthorization(access: .token("t"))
        #expect(open.admitUnroll(id: "x", from: nil) == nil)
        #expect(open.admitHello(id: "x", from: nil, liveOwner: nil) == nil)
    }

    @Test func unrollsMayNameOnlyAnnouncedTeachersAndTheSwitchListIsBounded() {
        var teachers = TeacherRegistry(initial: "optimal", maxSwitches: 3)
        #expect(teachers.observe("optimal", envSteps: 0).refusal == nil)
        #expect(teachers.trustedOnFirstUse == nil, "the first unroll named the configured teacher")
        #expect(teachers.observe("forged", envSteps: 10).refusal != nil)
        #expect(teachers.current == "optimal")
        teachers.announce("uniform")
        let switched = teachers.observe("uniform", envSteps: 20)
        #expect(switched.refusal == nil && switched.switchedFrom == "optimal")
        // A straggler of the teacher just replaced is not a switch back.
        #expect(teachers.observe("optimal", envSteps: 21) == (nil, nil))
        #expect(teachers.current == "uniform")
        // Swaps back and forth: every switch is counted, the first three are kept.
        for step in 0..<10 {
            let next = step.isMultiple(of: 2) ? "optimal" : "uniform"
            teachers.announce(next)
            _ = teachers.observe(next, envSteps: UInt64(100 + step))
        }
        #expect(teachers.switches.count == 3)
        #expect(teachers.switchCount == 12)
        // Thousands of forged ids change nothing.
        for k in 0..<5000 { _ = teachers.observe("forged-\(k)", envSteps: 1000) }
        #expect(teachers.switchCount == 12 && teachers.announced == ["optimal", "uniform"])
    }

    @Test func theFirstTeacherNamedIsTrustedBesideTheConfiguredOneAndNoOther() {
        var teachers = TeacherRegistry(initial: nil)
        #expect(teachers.observe("first", envSteps: 0).refusal == nil)
        #expect(teachers.observe("second", envSteps: 1).refusal != nil)
        #expect(teachers.switches.map(\.teacher) == ["first"] && teachers.trustedOnFirstUse == "first")
        // The configured teacher is announced; actors started with another server are trusted
        // for it, once (the lab's adversarial server under a run configured with optimal).
        var configured = TeacherRegistry(initial: "optimal")
        #expect(configured.observe("adversarial", envSteps: 0).refusal == nil)
        #expect(configured.trustedOnFirstUse == "adversarial")
        #expect(configured.observe("optimal", envSteps: 1).refusal == nil)
        #expect(configured.observe("forged", envSteps: 2).refusal != nil)
    }
}
