import OxydraCore
import OxydraMemory
import OxydraTesting

/// `runner sessions list` as a user runs it — the real CLI process, through the running guest's
/// gateway — against a store holding 100,000 sessions (target ≤ 50 ms), and the same command
/// against a store holding one session (the floor: process start, connection, hello, one page).
/// Also the page query itself in the store, with the same two sizes.
func benchmarkSessions() async throws {
    let server = try await ScriptedModelServer.start()
    defer { Task { try? await server.shutdown() } }

    func project(sessions: Int) async throws -> (TemporaryDirectory, [String: String]) {
        let directory = try TemporaryDirectory(prefix: "oxydra-bench-sessions")
        try directory.write(SeedConfig.runnerTOML, to: ".oxydra/runner.toml")
        try directory.write(SeedConfig.aliceTOML, to: ".oxydra/users/alice.toml")
        try directory.write(server.agentConfig(""), to: ".oxydra/agent.toml")
        _ = try directory.createDirectory("home")
        _ = try directory.createDirectory("etc-oxydra")
        let store = try SQLiteMemoryStore(
            path: directory.path + "/.oxydra/workspaces/alice/.oxydra/memory.db", user: "alice", indexing: false)
        try await store.pool.write { db in
            for index in 0..<sessions {
                try db.execute(
                    """
                    INSERT INTO sessions (session_id, user_id, display_name, archived, created_at, last_active_at)
                    VALUES (?, 'alice', ?, ?, ?, ?)
                    """,
                    [
                        "session-\(index)", "Session number \(index)", index % 3 == 0 ? 1 : 0,
                        Int64(1_700_000_000_000 + index), Int64(1_700_000_000_000 + index * 7 % 100_003),
                    ])
            }
        }
        let environment = [
            "HOME": directory.path + "/home", "OXYDRA_SYSTEM_CONFIG_DIR": directory.path + "/etc-oxydra",
            "PATH": "/usr/bin:/bin",
        ]
        return (directory, environment)
    }

    func timeList(_ directory: TemporaryDirectory, _ environment: [String: String]) async throws -> [Double] {
        try await startGuest(in: directory.path, environment)
        var times: [Double] = []
        for _ in 0..<9 {
            let begin = clock.now
            let listed = try await ChildProcess.run(
                "runner", ["sessions", "list"], environment: environment, workingDirectory: directory.path)
            times.append(seconds(clock.now - begin))
            precondition(listed.exitCode == 0, "sessions list failed: \(listed.standardError)")
            precondition(listed.standardOutput.split(separator: "\n").count >= 1)
        }
        await stopGuest(in: directory.path, environment)
        return times
    }

    let (big, bigEnvironment) = try await project(sessions: 100_000)
    defer { big.remove() }
    let (small, smallEnvironment) = try await project(sessions: 1)
    defer { small.remove() }

    // The page query alone.
    for (label, directory) in [("100,000", big), ("1", small)] {
        let store = try SQLiteMemoryStore(
            path: directory.path + "/.oxydra/workspaces/alice/.oxydra/memory.db", user: "alice", indexing: false)
        var first: [Double] = []
        var deep: [Double] = []
        var cursor: String?
        for _ in 0..<9 {
            var begin = clock.now
            let page = try await store.listSessions(limit: 50)
            first.append(seconds(clock.now - begin))
            cursor = cursor ?? page.nextCursor
            begin = clock.now
            _ = try await store.listSessions(limit: 50, cursor: cursor)
            deep.append(seconds(clock.now - begin))
        }
        print(
            "sessions: store page of 50 with \(label) stored: first page min/median/max \(spread(first, scale: 1000)) ms, "
                + "next page \(spread(deep, scale: 1000)) ms")
    }

    let many = try await timeList(big, bigEnvironment)
    let one = try await timeList(small, smallEnvironment)
    print(
        "sessions: `runner sessions list` (process, gateway, first page of 50) with 100,000 sessions stored "
            + "min/median/max \(spread(many, scale: 1000)) ms; with 1 session (floor) \(spread(one, scale: 1000)) ms; "
            + "ratio of medians \(String(format2: median(many) / median(one)))x (target ≤ 50 ms)")
}

/// `runner --insecure start` for the project in `directory` (stop it with ``stopGuest(in:_:)``).
func startGuest(in directory: String, _ environment: [String: String]) async throws {
    let started = try await ChildProcess.run(
        "runner", ["--insecure", "start"], environment: environment, workingDirectory: directory)
    precondition(started.exitCode == 0, "runner start failed: \(started.standardError)")
}

func stopGuest(in directory: String, _ environment: [String: String]) async {
    _ = try? await ChildProcess.run("runner", ["stop"], environment: environment, workingDirectory: directory)
}
