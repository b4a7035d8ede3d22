// How an actor acts, apart from how it talks (issue 12, item 3). `ActorCore` owns the protocol
// (Hello and its backoff, Welcome, credit, heartbeats, teacher queries with retries, stop, swap,
// refusal, give-up) once; an `ActorActing` value owns the student, the environments and the
// episodes: `TabularActing` plays a table on state ids, `NetworkActing` steps N observed
// environments with one batched forward of a network student per step.

import DistillWire

/// What an acting value needs next, as the core's phase sees it.
public enum ActingNeed: Sendable, Equatable {
    /// Keep playing (call `play(settings:)` again).
    case play
    /// Ask the teacher server this query (the core gives it its id, sends and retries it).
    case teacher(TeacherQuery)
    /// An unroll is complete: push `unroll(sequence:)`.
    case push
}

/// A teacher reply that does not fit the query it answers (logged; the query is retried).
public struct ActingProblem: Error, Sendable, CustomStringConvertible {
    /// What was wrong, for the log.
    public var description: String

    /// Creates a problem.
    public init(_ description: String) { self.description = description }
}

/// An actor's student, environments and episodes, driven by `ActorCore`:
///
/// ```
/// core: Welcome         → incompatibility(with:), receive(parameters)
///       Parameters      → receive(parameters)
///       work, playing   → play(settings:)                 → .play / .teacher(q) / .push
///       TeacherReply    → store(reply, for: q)            → .play / .teacher(next) / .push
///       push            → unroll(sequence:), unrollPushed()
///       teacher swapped → forgetTeacher(pending:)         → what to ask the new teacher
/// ```
public protocol ActorActing {
    /// The Hello this actor presents, with the core's identity of its environment.
    func hello(environment: String, teacherEndpoint: String) -> Hello

    /// Why this actor cannot act for the learner that sent `welcome` (another environment spec,
    /// another student architecture), or nil when it can.
    func incompatibility(with welcome: Welcome) -> String?

    /// Takes the learner's newest `parameters` (used from the next unroll on); a message saying
    /// why they do not fit this student, or nil.
    mutating func receive(_ parameters: Parameters) -> String?

    /// Plays a slice of work with `settings` and says what is needed next.
    mutating func play(settings: ActorSettings) -> ActingNeed

    /// Stores the teacher's `reply` to `query` and says what is needed next; throws (changing
    /// nothing) when the reply does not fit the query.
    mutating func store(_ reply: TeacherReply, for query: TeacherQuery) throws(ActingProblem) -> ActingNeed

    /// Forgets every teacher output held (the actor moved to another teacher server) and returns
    /// what the new one must be asked: `pending` again, or the targets of the episodes already
    /// played; nil when nothing is owed.
    mutating func forgetTeacher(pending: TeacherQuery?) -> TeacherQuery?

    /// A one-row query whose answer is ignored: tells the teacher server this actor is alive.
    func keepaliveQuery(id: UInt64) -> TeacherQuery

    /// True while finished episodes wait to be pushed.
    var holdsEpisodes: Bool { get }

    /// The unroll of the finished episodes (after `.push`).
    func unroll(sequence: UInt64) -> Unroll

    /// The unroll went out: start the next one (and apply parameters received meanwhile).
    mutating func unrollPushed()

    /// Environment steps taken (every environment's).
    var environmentSteps: UInt64 { get }

    /// Microseconds spent stepping environments, in total.
    var observationMicroseconds: UInt64 { get }

    /// Microseconds spent in the student's forward passes, in total (the core adds the time
    /// spent waiting for the teacher).
    var inferenceMicroseconds: UInt64 { get }
}
