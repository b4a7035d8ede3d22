import ArgumentParser
import DistillCore
import DistillNN
import DistillRuntime
import DistillWire
import Foundation

/// `distill teacher`: a teacher server.
struct TeacherCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "teacher",
        abstract: "Serve a teacher's policy, value and Q-values to actors (ZeroMQ ROUTER).",
        discussion: """
            Builds the teacher (training it first for q-learning), binds, prints \
            "endpoint teacher ENDPOINT" on stdout, and answers batched TeacherQuery messages until \
            SIGINT or SIGTERM. Queries from all actors are batched: a batch is answered when it \
            holds --max-batch rows or its oldest query waited --batch-deadline-ms. \
            With --give-up-after S it exits with status 75 after S seconds without a query (live actors \
            query at least every 2 s). Every flag can \
            also come from the environment: --bind is DISTILL_BIND, and so on.

            Examples:
              distill teacher --env gridworld --seed 1 --teacher q-learning --bind 'tcp://*:5556'
              distill teacher --config run/config.json --bind 'tcp://*:5556'
              distill teacher --env chain --teacher adversarial --bind 'tcp://*:6556'
              distill teacher --env gridworld --seed 1 --teacher optimal --export-table optimal.json
              distill teacher --config run/config.json --task 1 --bind 'tcp://*:5566'   # a multi-task run's task 1
              distill teacher --teacher-file cartpole-teacher.safetensors --bind 'tcp://*:5556'

            A --teacher-file holding a network teacher of an observed environment (cartpole, \
            acrobot, mountaincar) is served over observation tensors: the file names the \
            environment spec it serves, and queries of other shapes are refused with the reason.

            --export-table FILE writes the teacher's table in the teacher-file format (README, \
            "File formats") and exits without serving: for --teacher-file, or for a teacher server \
            in another language (examples/python-teacher).
            """)

    @OptionGroup(title: "Problem (or --config)") var environment: EnvironmentOptions
    @OptionGroup(title: "Problem (or --config)") var teacher: TeacherOptions
    @OptionGroup(title: "Problem (or --config)") var tasks: TasksOptions
    @OptionGroup var role: RoleOptions

    @Option(help: "With --tasks (or a multi-task --config): the task whose teacher this server serves, 0 to K−1.")
    var task: Int?

    @Option(help: "Endpoint to bind the ROUTER socket to.")
    var bind = "tcp://*:5556"

    @Option(help: "Answer a batch once it holds this many rows.")
    var maxBatch = TeacherServerConfiguration(bind: "").maxBatchRows

    @Option(help: "Answer a batch once its oldest query waited this many milliseconds.")
    var batchDeadlineMs = TeacherServerConfiguration(bind: "").batchDeadlineMilliseconds

    @Option(help: "This server's id in its messages.")
    var id = "teacher"

    @Option(
        help: ArgumentHelp(
            "Write the teacher's table (teacher-file JSON) to this file and exit instead of serving.",
            valueName: "file"))
    var exportTable: String?

    func validate() throws {
        try OperatorInput.atLeast(maxBatch, 1, "--max-batch")
        try OperatorInput.atLeast(batchDeadlineMs, 0, "--batch-deadline-ms")
        try OperatorInput.endpoint(bind, flag: "--bind")
        guard !id.isEmpty, id.utf8.count <= 128 else { throw ValidationError("--id must be 1 to 128 bytes") }
    }

    func run() throws {
        let (logger, stop) = role.start(role: "teacher")
        if let network = try observedNetworkTeacher() {
            guard exportTable == nil else {
                throw ValidationError(
                    "--export-table: \(network.environment.name) has no states to tabulate; the network file is the teacher"
                )
            }
            var settings = TeacherServerConfiguration(bind: bind)
            settings.maxBatchRows = maxBatch
            settings.batchDeadlineMilliseconds = batchDeadlineMs
            settings.maxMessageBytes = role.maxMessageBytes
            settings.giveUpAfterSeconds = role.giveUpAfter
            settings.curve = try role.curve()
            settings.environmentIdentity = network.environment.name
            var server = TeacherServer(
                network: network, configuration: settings, sender: .starting(role: .teacher, id: id), logger: logger,
                stop: stop)
            try runRole(logger) {
                try server.run()
                return server.gaveUp
            }
            return
        }
        var configuration = try role.resolve(environment: environment, teacher: teacher, method: nil)
        try tasks.apply(to: &configuration, observation: nil)
        let table: Teacher
        let environmentIdentity: String
        if let k = try TasksOptions.task(task, configuration) {
            // Task k's teacher, on task k's own state ids (its actors translate theirs).
            let problem = try TasksOptions.problem(configuration)
            table = try validating { try problem.teacher(task: k, configuration.teacher) }
            environmentIdentity = problem.taskEnvironmentIdentity(k)
        } else {
            let env = try buildEnvironment(configuration)
            table = try buildTeacher(configuration, for: env)
            environmentIdentity = RunConfiguration.environmentIdentity(configuration.environment, env)
        }
        if let exportTable {
            try export(table, to: exportTable)
            return
        }
        var settings = TeacherServerConfiguration(bind: bind)
        settings.maxBatchRows = maxBatch
        settings.batchDeadlineMilliseconds = batchDeadlineMs
        settings.maxMessageBytes = role.maxMessageBytes
        settings.giveUpAfterSeconds = role.giveUpAfter
        settings.curve = try role.curve()
        settings.environmentIdentity = environmentIdentity
        var server = TeacherServer(
            teacher: table, configuration: settings, sender: .starting(role: .teacher, id: id), logger: logger,
            stop: stop)
        try runRole(logger) {
            try server.run()
            return server.gaveUp
        }
    }

    /// The network teacher of `--teacher-file` when the file is a network teacher of an observed
    /// environment (CartPole, Acrobot, MountainCar: no tabular MDP underneath), served over
    /// observations; nil for tables and for networks of tabular environments (served as tables).
    private func observedNetworkTeacher() throws -> NetworkTeacher? {
        var file = teacher.teacherFile
        if file == nil, role.config != nil {
            // A network run's --config names the teacher file (distill cluster writes one).
            let configuration = try role.resolve(environment: environment, teacher: teacher, method: nil)
            if !configuration.environment.kind.isTabular {
                guard configuration.teacher.kind == .file, let path = configuration.teacher.path else {
                    throw ValidationError(
                        "--config: a run on \(configuration.environment.kind.rawValue) needs a network teacher file "
                            + "(teacher.path, from --teacher-file NET.safetensors)")
                }
                file = path
            }
        }
        guard let path = file else { return nil }
        let url = URL(fileURLWithPath: path)
        guard let data = try? Data(contentsOf: url, options: .mappedIfSafe),
            SafetensorsFile.looksLikeSafetensors(data) || path.hasSuffix(".safetensors")
        else { return nil }
        let network: NetworkTeacher
        do {
            network = try NetworkTeacher.load(from: url)
        } catch let error as DistillError {
            throw ValidationError("--teacher-file: \(error.message)")
        }
        return network.environment.identity == nil ? network : nil
    }

    /// Writes `table` in the teacher-file schema, which `--teacher-file` reads back.
    private func export(_ table: Teacher, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(table.jsonDescription)
        do {
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw ValidationError(
                "--export-table: cannot write the teacher table to \(path): \(error.localizedDescription); "
                    + "check that its directory exists and is writable")
        }
        print("wrote teacher '\(table.identity)' (\(table.stateCount) states, \(table.actionCount) actions) to \(path)")
    }
}
