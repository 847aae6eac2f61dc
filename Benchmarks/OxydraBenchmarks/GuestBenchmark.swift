import OxydraClient
import OxydraConfig
import OxydraCore
import OxydraMemory
import OxydraProviders
import OxydraRunner
import OxydraRuntime
import OxydraSandbox
import OxydraTesting
import OxydraTools

#if canImport(Glibc)
    import Glibc
#endif

/// The real guest (`oxydra-vm`, release build) as a user runs it: cold start, idle memory, memory per
/// open session, memory growth over many turns, per-turn gateway overhead against the provider
/// alone, and 50 concurrent sessions.
func benchmarkGuest() async throws {
    let server = try await ScriptedModelServer.start()
    let directory = try TemporaryDirectory(prefix: "oxydra-bench-guest")
    defer { directory.remove() }
    try directory.write(
        server.agentConfig(
            """
            [gateway]
            max_sessions_per_user = 5000
            max_concurrent_turns_per_user = 50
            max_queued_turns_per_user = 100
            """), to: ".oxydra/agent.toml")
    _ = try directory.createDirectory("home")
    _ = try directory.createDirectory("etc")
    // The guest gets a clean environment plus any OXYDRA_* setting the benchmark was run with.
    let environment = [
        "HOME": directory.path + "/home", "OXYDRA_SYSTEM_CONFIG_DIR": directory.path + "/etc", "PATH": "/usr/bin:/bin",
    ].merging(
        ProcessInfo.processInfo.environment.filter { $0.key.hasPrefix("OXYDRA_") && !$0.key.hasPrefix("OXYDRA_BENCH") }
    ) {
        $1
    }
    let executable = FilePaths.parent(ExecutableLocator.selfPath() ?? "") + "/oxydra-vm"
    let workspace = directory.path + "/ws/alice"

    // Cold start: spawn to a healthy gateway, against spawning the same binary for --help.
    var starts: [Double] = []
    var helps: [Double] = []
    for _ in 0..<7 {
        let begin = clock.now
        let help = try DetachedProcess.launch(
            executable, arguments: ["--help"], environment: environment, workingDirectory: directory.path, input: [],
            standardOutput: "/dev/null", standardError: "/dev/null")
        while !DetachedProcess.hasExited(help).exited { usleep(200) }
        helps.append(seconds(clock.now - begin))
        let guest = try GuestProcess.start(
            executable, workspace: workspace, directory: directory.path, environment: environment)
        starts.append(guest.startup)
        guest.stop()
    }
    print(
        "guest: cold start to healthy gateway min/median/max \(spread(starts, scale: 1000)) ms; spawn of "
            + "`oxydra-vm --help` \(spread(helps, scale: 1000)) ms; ratio of medians "
            + "\(String(format2: median(starts) / median(helps)))x (target ≤ 150 ms)")

    // Memory as the machine pays it: USS (pages only this guest has), PSS (shared pages split
    // between the processes that map them) and RSS, from smaps_rollup, for 1 and for 10 users.
    let guest = try GuestProcess.start(
        executable, workspace: workspace, directory: directory.path, environment: environment)
    defer { guest.stop() }
    var idleSamples: [MemoryFigures] = []
    for _ in 0..<5 {
        try await Task.sleep(for: .milliseconds(200))
        idleSamples.append(MemoryFigures(pid: guest.pid))
    }
    print("guest: idle, one guest: \(MemoryFigures.describe(idleSamples)) (targets USS ≤ 12 MB, PSS ≤ 20 MB)")
    var others: [GuestProcess] = []
    for index in 1..<10 {
        others.append(
            try GuestProcess.start(
                executable, workspace: directory.path + "/ws/user\(index)", directory: directory.path,
                environment: environment, user: UserID("user\(index)")))
    }
    try await Task.sleep(for: .milliseconds(500))
    let all = [guest] + others
    var totals: [MemoryFigures] = []
    for _ in 0..<5 {
        try await Task.sleep(for: .milliseconds(100))
        totals.append(all.map { MemoryFigures(pid: $0.pid) }.reduce(MemoryFigures(), +))
    }
    let each = all.map { MemoryFigures(pid: $0.pid) }
    print(
        "guest: 10 idle guests of 10 users, total \(MemoryFigures.describe(totals)) (target PSS ≤ 150 MB); "
            + "per guest PSS \(spread(each.map { Double($0.pssKiB) / 1024 })) MiB")
    for other in others { other.stop() }
    do {
        try await measure(guest, server: server)
    } catch {
        for log in ["oxydra-vm.stderr.log", "oxydra-vm.log"] {
            let text = FileManager.default.contents(atPath: workspace + "/logs/" + log) ?? Data()
            print("--- \(log):\n" + String(decoding: text.suffix(3000), as: UTF8.self))
        }
        throw error
    }
    try await server.shutdown()
}

private func measure(_ guest: GuestProcess, server: ScriptedModelServer) async throws {
    // Sessions: 1,000 created and held open in memory.
    // Five batches of 200, each measured by the growth of the guest's USS.
    let control = try await GatewaySession.connect(guest.endpoint)
    var perSession: [Double] = []
    for batch in 0..<5 {
        let before = MemoryFigures(pid: guest.pid).ussKiB
        for index in 0..<200 {
            control.client.send(.createSession(requestID: "c\(batch)-\(index)", displayName: nil, agentName: nil))
            _ = try await control.next { if case .sessionCreated = $0 { true } else { false } }
        }
        perSession.append(Double(MemoryFigures(pid: guest.pid).ussKiB - before) / 200)
    }
    print(
        "guest: USS per open session \(spread(perSession)) KiB (min/median/max of 5 batches of 200; target ≤ 50 KB)")
    control.client.close()

    // Gateway overhead: a turn through gateway → runtime (SQLite commits) → scripted server against
    // the provider alone streaming the same reply.
    let reply = ScriptedReply.text(String(repeating: "token ", count: 20))
    var config = AgentConfig()
    config.providers.registry["openai"]?.baseURL = server.baseURL
    let provider = try ProviderFactory.selected(config, catalog: .builtIn, environment: ["OPENAI_API_KEY": "k"])
    func providerAlone() async throws -> Double {
        server.enqueue(reply)
        let start = clock.now
        _ = try await provider.stream(ModelRequest(model: "gpt-4o-mini", messages: [.system("x"), .user("Hi")]))
            .collect(provider: provider.id)
        return seconds(clock.now - start)
    }
    let turns = try await GatewaySession.connect(guest.endpoint, newSession: true)
    var counter = 0
    func gatewayTurn(_ session: GatewaySession) async throws -> Double {
        server.enqueue(reply)
        counter += 1
        return try await session.timedTurn("b\(counter)")
    }
    for _ in 0..<20 {
        _ = try await providerAlone()
        _ = try await gatewayTurn(turns)
    }
    try await Task.sleep(for: .milliseconds(500))
    print("guest: after 20 turns \(guest.memory())")
    // OXYDRA_BENCH_PROFILE_TURNS=N: only run N turns through the guest (to attach a profiler to it).
    if let text = ProcessInfo.processInfo.environment["OXYDRA_BENCH_PROFILE_TURNS"], let count = Int(text) {
        StandardStreams.write("profile: guest pid \(guest.pid); starting in 2 s\n", to: 2)
        try await Task.sleep(for: .seconds(2))
        let start = clock.now
        for _ in 0..<count {
            let fresh = try await GatewaySession.connect(guest.endpoint, newSession: true)
            _ = try await gatewayTurn(fresh)
            fresh.client.close()
        }
        StandardStreams.write("profile: \(count) turns in \(clock.now - start)\n", to: 2)
        guest.stop()
        return
    }
    // The same turn through an in-process runtime configured like the guest (tools, system prompt,
    // SQLite store with durable commits): what is left is the gateway's own share.
    let storeDirectory = try TemporaryDirectory(prefix: "oxydra-bench-runtime")
    defer { storeDirectory.remove() }
    let root = try storeDirectory.createDirectory("ws")
    for name in ["shared", "tmp", "vault", ".oxydra"] { _ = try storeDirectory.createDirectory("ws/\(name)") }
    let store = try SQLiteMemoryStore(path: root + "/.oxydra/memory.db", user: "alice", indexing: false)
    let runtime = try builtInRuntime(provider: provider, config: config, root: root, store: store)
    func inProcessTurn(_ index: Int) async throws -> Double {
        server.enqueue(reply)
        let start = clock.now
        _ = try await runtime.run(session: SessionID("p\(index)"), history: [], input: .user("Hi"))
        return seconds(clock.now - start)
    }
    for index in 0..<20 { _ = try await inProcessTurn(-1 - index) }
    // Interleaved, so all three see the same machine (absolute times drift on this shared VM).
    var alone: [Double] = []
    var through: [Double] = []
    var inProcess: [Double] = []
    // A short pause before each measurement lets the previous one's background work (closing the
    // connection, detaching the session) finish, so no measurement pays for another's.
    func quiet() async throws { try await Task.sleep(for: .milliseconds(3)) }
    for index in 0..<150 {
        try await quiet()
        alone.append(try await providerAlone())
        // Fresh sessions keep the history (and so the request) the same size as the provider's.
        let fresh = try await GatewaySession.connect(guest.endpoint, newSession: true)
        try await quiet()
        through.append(try await gatewayTurn(fresh))
        fresh.client.close()
        try await quiet()
        inProcess.append(try await inProcessTurn(index))
    }
    let probe = try await GatewaySession.connect(guest.endpoint, newSession: true)
    let framesBefore = probe.received
    _ = try await gatewayTurn(probe)
    let framesPerTurn = probe.received - framesBefore
    // The process boundary alone: a request the gateway answers from memory.
    var roundTrips: [Double] = []
    for index in 0..<200 {
        let start = clock.now
        probe.client.send(.healthCheck(requestID: "hc\(index)"))
        _ = try await probe.next { if case .healthStatus = $0 { true } else { false } }
        roundTrips.append(seconds(clock.now - start))
    }
    probe.client.close()
    let overhead = median(through) - median(alone)
    let gatewayShare = median(through) - median(inProcess)
    // Each gateway turn against the in-process turn measured right after it: drift of this shared
    // machine's speed between the two series cancels out.
    let paired = median(zip(through, inProcess).map { $0 - $1 })
    print(
        "guest: min/median/max of 150 — through the gateway \(spread(through, scale: 1000)) ms, provider alone "
            + "\(spread(alone, scale: 1000)) ms, in-process \(spread(inProcess, scale: 1000)) ms")
    print(
        "guest: turn through the gateway median \(String(format2: median(through) * 1000)) ms vs provider alone "
            + "\(String(format2: median(alone) * 1000)) ms (ratio \(String(format2: median(through) / median(alone)))x, "
            + "+\(String(format2: overhead * 1000)) ms); the same turn in-process (runtime + durable SQLite commits) "
            + "\(String(format2: median(inProcess) * 1000)) ms, so the gateway and the process boundary add "
            + "\(String(format2: gatewayShare * 1000)) ms (target ≤ 1 ms; median of paired differences "
            + "\(String(format2: paired * 1000)) ms); \(framesPerTurn) frames per turn; "
            + "a health_check round trip takes \(String(format2: median(roundTrips) * 1000)) ms")

    // Leak check: 2,000 turns over 10 sessions; RSS after the first 200 against after all.
    var sessions: [GatewaySession] = []
    for _ in 0..<10 { sessions.append(try await GatewaySession.connect(guest.endpoint, newSession: true)) }
    var warm = 0
    for index in 0..<2000 {
        _ = try await gatewayTurn(sessions[index % 10])
        if index == 199 { warm = guest.residentKiB() }
    }
    let end = guest.residentKiB()
    print(
        "guest: RSS after 200 turns \(String(format2: Double(warm) / 1024)) MiB, after 2,000 \(String(format2: Double(end) / 1024)) MiB; "
            + "growth \(String(format2: Double(end - warm) / 1024)) MiB over 1,800 turns (target ≤ 5 MB over 2,000)")
    for session in sessions { session.client.close() }

    // 50 concurrent sessions × 5 turns, against the same 250 turns one after another on the same
    // 50 sessions, measured in this run. Any turn that does not complete fails the benchmark.
    let clients = try await withThrowingTaskGroup(of: GatewaySession.self) { group in
        for _ in 0..<50 { group.addTask { try await GatewaySession.connect(guest.endpoint, newSession: true) } }
        var all: [GatewaySession] = []
        for try await client in group { all.append(client) }
        return all
    }
    @Sendable func completeTurn(_ client: GatewaySession, _ id: TurnID) async throws {
        client.client.send(.sendTurn(.init(requestID: "x", turnID: id, prompt: "Hi")))
        let frame = try await client.next { frame in
            if case .turnCompleted(let header, _) = frame { return header.turn.turnID == id }
            if case .error(let info) = frame { return info.turn?.turnID == id || info.turn == nil }
            return false
        }
        guard case .turnCompleted = frame else { throw TestSupportError("turn \(id) did not complete: \(frame)") }
    }
    var sequential: [Double] = []
    var concurrent: [Double] = []
    for round in 0..<5 {
        for _ in 0..<250 { server.enqueue(reply) }
        let sequentialStart = clock.now
        for (index, client) in clients.enumerated() {
            for turn in 0..<5 { try await completeTurn(client, TurnID("s\(round)-\(index)-\(turn)")) }
        }
        sequential.append(seconds(clock.now - sequentialStart))
        for _ in 0..<250 { server.enqueue(reply) }
        let wallStart = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, client) in clients.enumerated() {
                group.addTask {
                    for turn in 0..<5 { try await completeTurn(client, TurnID("c\(round)-\(index)-\(turn)")) }
                }
            }
            try await group.waitForAll()
        }
        concurrent.append(seconds(clock.now - wallStart))
    }
    print(
        "guest: 250 turns (50 sessions × 5) concurrently \(spread(concurrent, scale: 1000)) ms, one after another "
            + "\(spread(sequential, scale: 1000)) ms (min/median/max of 5 rounds); speed-up of medians "
            + "\(String(format2: median(sequential) / median(concurrent)))x on \(System.cores) cores")
    for client in clients { client.client.close() }
}

enum System {
    static var cores: Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
}

/// A guest started the way `runner` starts it.
struct GuestProcess {
    let pid: Int32
    let endpoint: GatewayAccess
    let startup: Double
    let workspace: String

    static func start(
        _ executable: String, workspace: String, directory: String, environment: [String: String],
        user: UserID = "alice"
    ) throws -> GuestProcess {
        for name in ["", "/ipc", "/logs"] {
            try FileManager.default.createDirectory(atPath: workspace + name, withIntermediateDirectories: true)
        }
        let marker = workspace + "/ipc/gateway-endpoint"
        unlink(marker)
        let envelope = BootstrapEnvelope(
            userID: user, sandboxTier: .process, workspaceRoot: workspace,
            startupStatus: StartupStatus(sandboxTier: .process))
        let begin = clock.now
        let pid = try DetachedProcess.launch(
            executable, arguments: ["--user-id", user.rawValue, "--workspace-root", workspace, "--bootstrap-stdin"],
            environment: environment, workingDirectory: directory, input: envelope.framed,
            standardOutput: workspace + "/logs/oxydra-vm.stdout.log",
            standardError: workspace + "/logs/oxydra-vm.stderr.log")
        while true {
            let state = DetachedProcess.hasExited(pid)
            if state.exited {
                print("guest \(pid) exited with status \(state.status)")
                let log = FileManager.default.contents(atPath: workspace + "/logs/oxydra-vm.stderr.log") ?? Data()
                throw TestSupportError("the guest exited: " + String(decoding: log.suffix(2000), as: UTF8.self))
            }
            if let data = FileManager.default.contents(atPath: marker), !data.isEmpty {
                let startup = seconds(clock.now - begin)
                return GuestProcess(
                    pid: pid, endpoint: try GatewayAccess.discover(ipcDirectory: workspace + "/ipc"), startup: startup,
                    workspace: workspace)
            }
            usleep(200)
        }
    }

    func residentKiB(_ field: String = "VmRSS") -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") })
        else { return 0 }
        return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }

    /// RSS, PSS and USS in MiB.
    func memory() -> String { MemoryFigures.describe([MemoryFigures(pid: pid)]) }

    func stop() {
        kill(pid, SIGTERM)
        while !DetachedProcess.hasExited(pid).exited { usleep(1000) }
    }
}

/// A gateway connection that has said hello, with a buffer of received frames.
final class GatewaySession: Sendable {
    let client: GatewayClient
    private let frames: AsyncStream<ServerFrame>.Iterator.Box

    private init(client: GatewayClient) {
        self.client = client
        frames = .init(client.frames.makeAsyncIterator())
    }

    static func connect(_ access: GatewayAccess, user: UserID = "alice", newSession: Bool = false) async throws
        -> GatewaySession
    {
        let session = GatewaySession(client: GatewayClient(endpoint: access.endpoint, token: access.token))
        session.client.send(.hello(.init(requestID: "h", userID: user.rawValue, createNewSession: newSession)))
        _ = try await session.next { if case .helloAck = $0 { true } else { false } }
        return session
    }

    /// Sends the turn `id` ("Hi") and waits until it completes or fails; the wall time in seconds.
    func timedTurn(_ id: String) async throws -> Double {
        let turn = TurnID(id)
        let start = clock.now
        client.send(.sendTurn(.init(requestID: "r-" + id, turnID: turn, prompt: "Hi")))
        _ = try await next { frame in
            if case .turnCompleted(let header, _) = frame { return header.turn.turnID == turn }
            if case .error(let info) = frame { return info.turn?.turnID == turn }
            return false
        }
        return seconds(clock.now - start)
    }

    /// Frames received so far (one consumer at a time).
    nonisolated(unsafe) var received = 0

    func next(_ predicate: (ServerFrame) -> Bool) async throws -> ServerFrame {
        while let frame = await frames.next() {
            received += 1
            if predicate(frame) { return frame }
        }
        throw TestSupportError("the gateway closed the connection: \(client.failure?.message ?? "")")
    }
}

extension AsyncStream.Iterator {
    /// One consumer's iterator, shareable by reference (used by one task at a time).
    final class Box: @unchecked Sendable {
        private var iterator: AsyncStream<Element>.Iterator
        init(_ iterator: AsyncStream<Element>.Iterator) { self.iterator = iterator }
        func next() async -> Element? { await iterator.next() }
    }
}

/// One process's memory from `/proc/<pid>/smaps_rollup`, in KiB.
struct MemoryFigures: Sendable {
    var rssKiB = 0
    var pssKiB = 0
    /// Private_Clean + Private_Dirty: what the machine would get back if the process exited.
    var ussKiB = 0

    init() {}

    init(pid: Int32) {
        let text = ProcFiles.read("/proc/\(pid)/smaps_rollup") ?? ""
        func field(_ name: String) -> Int {
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return 0 }
            return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        }
        rssKiB = field("Rss")
        pssKiB = field("Pss")
        ussKiB = field("Private_Clean") + field("Private_Dirty")
    }

    static func + (lhs: MemoryFigures, rhs: MemoryFigures) -> MemoryFigures {
        var sum = MemoryFigures()
        sum.rssKiB = lhs.rssKiB + rhs.rssKiB
        sum.pssKiB = lhs.pssKiB + rhs.pssKiB
        sum.ussKiB = lhs.ussKiB + rhs.ussKiB
        return sum
    }

    /// `USS a/b/c MiB, PSS …, RSS …` (min/median/max over the samples).
    static func describe(_ samples: [MemoryFigures]) -> String {
        func mib(_ values: [Int]) -> String {
            let scaled = values.map { Double($0) / 1024 }
            return samples.count >= 5 ? spread(scaled) : String(format2: median(scaled))
        }
        return "USS \(mib(samples.map(\.ussKiB))) MiB, PSS \(mib(samples.map(\.pssKiB))) MiB, "
            + "RSS \(mib(samples.map(\.rssKiB))) MiB"
    }
}
