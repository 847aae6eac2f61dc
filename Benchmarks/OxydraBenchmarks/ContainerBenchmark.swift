import OxydraClient
import OxydraConfig
import OxydraContainer
import OxydraCore
import OxydraSandbox
import OxydraTesting

#if canImport(Glibc)
    import Glibc
#endif

/// The container tier with the real engine (run as root: the guests run as an unprivileged account
/// in the `docker` group that this benchmark creates):
/// - cold start `runner start` → healthy gateway, against the engine's own create + start + wait +
///   remove of the same image (what `docker run --rm <image>` costs) plus the process tier's start;
/// - a turn through the container's published gateway against the same turn through a process-tier
///   guest, on the same scripted reply;
/// - the images' sizes.
func benchmarkContainer() async throws {
    guard geteuid() == 0 else { throw TestSupportError("the container benchmark needs root (to create its account)") }
    let binaries = FilePaths.parent(ExecutableLocator.selfPath() ?? "")
    let runner = binaries + "/runner"
    let engine = DockerEngine(socketPath: DockerEngine.socketPath(environment: ProcessInfo.processInfo.environment))
    _ = try await engine.ping()

    let account = try await BenchAccount.create("oxybench", groups: ["docker"])
    defer { account.remove() }
    let (uid, gid) = (account.uid, account.gid)

    let server = try await ScriptedModelServer.start(host: "0.0.0.0")
    let directory = try TemporaryDirectory(prefix: "oxydra-bench-container")
    defer { directory.remove() }
    // Every measured turn opens a session of its own.
    try directory.write(
        server.agentConfig("[gateway]\nmax_sessions_per_user = 5000\n"), to: ".oxydra/agent.toml")
    try directory.write(
        """
        workspace_root = ".oxydra/workspaces"
        default_tier = "container"
        [guest_images]
        oxydra_vm = "oxydra-vm:latest"
        shell_vm = "shell-vm:latest"
        [users.alice]
        config_path = ".oxydra/users/alice.toml"
        [users.bob]
        config_path = ".oxydra/users/bob.toml"
        """, to: ".oxydra/runner.toml")
    try directory.write("[behavior]\nshell_enabled = true\n", to: ".oxydra/users/alice.toml")
    try directory.write("[behavior]\nsandbox_tier = \"process\"\nshell_enabled = true\n", to: ".oxydra/users/bob.toml")
    _ = try directory.createDirectory("home")
    _ = try directory.createDirectory("etc")
    _ = ChildProcess.runToolSynchronously("/bin/chown", ["-R", "\(uid):\(gid)", directory.path])
    let environment = [
        "HOME": directory.path + "/home", "OXYDRA_SYSTEM_CONFIG_DIR": directory.path + "/etc", "PATH": "/usr/bin:/bin",
    ]
    func runAs(_ arguments: [String]) async throws -> ProcessResult {
        try await account.run(runner, arguments, environment: environment, directory: directory.path)
    }
    func timed(_ arguments: [String]) async throws -> Double {
        let start = clock.now
        let result = try await runAs(arguments)
        guard result.exitCode == 0 else {
            throw TestSupportError("runner \(arguments.joined(separator: " ")) failed: \(result.standardError)")
        }
        return seconds(clock.now - start)
    }

    let built = try await ChildProcess.runTool(
        runner, ["images", "build"], environment: environment, workingDirectory: directory.path)
    guard built.exitCode == 0 else { throw TestSupportError("runner images build failed: \(built.standardError)") }
    var sizes: [String] = []
    for reference in ["oxydra-vm:latest", "shell-vm:latest"] {
        let size = try await engine.inspectImage(reference)?["Size"]?.intValue ?? 0
        sizes.append("\(reference) \(String(format2: Double(size) / 1_000_000)) MB")
    }
    print("container: image sizes (uncompressed) \(sizes.joined(separator: ", ")) (target oxydra-vm ≤ 60 MB)")

    // Floor: what `docker run --rm oxydra-vm:latest --help` costs (the CLI's default network, the
    // default bridge; create, start, wait, remove), through the same API.
    func engineRun() async throws -> Double {
        let start = clock.now
        let id = try await engine.createContainer(
            name: "oxydra-bench-floor-\(UInt32.random(in: 0...UInt32.max))",
            spec: [
                "Image": "oxydra-vm:latest", "Cmd": ["--help"], "User": .string("\(uid):\(gid)"),
            ])
        try await engine.startContainer(id)
        _ = try await engine.waitContainer(id)
        try await engine.removeContainer(id, force: true)
        return seconds(clock.now - start)
    }
    var floors: [Double] = []
    var processStarts: [Double] = []
    var containerStarts: [Double] = []
    var containerStops: [Double] = []
    for _ in 0..<7 {
        floors.append(try await engineRun())
        processStarts.append(try await timed(["start", "--user", "bob", "--insecure"]))
        _ = try await timed(["stop", "--user", "bob"])
        containerStarts.append(try await timed(["start", "--user", "alice"]))
        containerStops.append(try await timed(["stop", "--user", "alice"]))
    }
    let budget = 1.5 * median(floors) + median(processStarts)
    print(
        "container: cold start `runner start` to a healthy gateway min/median/max \(spread(containerStarts, scale: 1000)) "
            + "ms; engine create+start+wait+remove of the same image \(spread(floors, scale: 1000)) ms; process-tier "
            + "start \(spread(processStarts, scale: 1000)) ms; ratio to (floor + process start) "
            + "\(String(format2: median(containerStarts) / (median(floors) + median(processStarts))))x (target ≤ "
            + "\(String(format2: budget / (median(floors) + median(processStarts))))x, i.e. ≤ 1.5 × floor + process "
            + "start = \(String(format2: budget * 1000)) ms); `runner stop` \(spread(containerStops, scale: 1000)) ms")

    // Turns: the same scripted reply through the container's gateway and the process tier's.
    _ = try await timed(["start", "--user", "alice"])
    _ = try await timed(["start", "--user", "bob", "--insecure"])
    defer { account.stop(runner, config: directory.path + "/.oxydra/runner.toml", users: ["alice", "bob"]) }
    let inContainer = try GatewayAccess.discover(ipcDirectory: directory.path + "/.oxydra/workspaces/alice/ipc")
    let inProcess = try GatewayAccess.discover(ipcDirectory: directory.path + "/.oxydra/workspaces/bob/ipc")
    let (container, process) = try await interleavedTurns(
        server, (inContainer, "alice"), (inProcess, "bob"), count: 150)
    print(
        "container: a turn through the container's gateway min/median/max \(spread(container, scale: 1000)) ms vs the "
            + "process tier's \(spread(process, scale: 1000)) ms (150 interleaved turns each); ratio of medians "
            + "\(String(format2: median(container) / median(process)))x (target ≤ 1.1x)")
    try await server.shutdown()
}
