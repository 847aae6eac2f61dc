import OxydraClient
import OxydraConfig
import OxydraCore
import OxydraMicroVM
import OxydraSandbox
import OxydraTesting

#if canImport(Glibc)
    import Glibc
#endif

/// The micro_vm tier (run as root: the guests run as an unprivileged account this benchmark
/// creates; KVM when it can run guests here, else TCG):
/// - `runner start` → healthy gateway, against the floor of the same mechanism: QEMU booting the
///   same kernel with the same accelerator to a trivial init (the accelerator probe's VM);
/// - memory: QEMU's USS/PSS/RSS with an idle guest after some turns, against the same guest run as a
///   process (the process tier: `oxydra-vm` and its shell sandbox), the difference being what the VM
///   costs beyond the guest's own memory;
/// - a turn through the VM's gateway against the same turn through a process-tier guest.
func benchmarkMicroVM() async throws {
    guard geteuid() == 0 else { throw TestSupportError("the micro VM benchmark needs root (to create its account)") }
    let binaries = FilePaths.parent(ExecutableLocator.selfPath() ?? "")
    let runner = binaries + "/runner"
    // In the kvm group where there is one, so KVM is used when it can run guests.
    let account = try await BenchAccount.create("oxybenchvm", groups: ["kvm"])
    defer { account.remove() }
    let (uid, gid) = (account.uid, account.gid)

    let server = try await ScriptedModelServer.start()
    let directory = try TemporaryDirectory(prefix: "oxydra-bench-microvm")
    defer { directory.remove() }
    try directory.write(server.agentConfig("[gateway]\nmax_sessions_per_user = 5000\n"), to: ".oxydra/agent.toml")
    try directory.write(
        """
        workspace_root = ".oxydra/workspaces"
        default_tier = "micro_vm"
        [guest_images]
        micro_vm_dir = "\(directory.path)/vm-images"
        [micro_vm]
        allow_tcg = true
        [users.alice]
        config_path = ".oxydra/users/alice.toml"
        [users.bob]
        config_path = ".oxydra/users/bob.toml"
        """, to: ".oxydra/runner.toml")
    try directory.write(
        "[behavior]\nshell_enabled = true\n[resources]\nmax_vcpus = 2\n", to: ".oxydra/users/alice.toml")
    try directory.write("[behavior]\nsandbox_tier = \"process\"\nshell_enabled = true\n", to: ".oxydra/users/bob.toml")
    _ = try directory.createDirectory("home")
    _ = try directory.createDirectory("etc")
    let environment = [
        "HOME": directory.path + "/home", "OXYDRA_SYSTEM_CONFIG_DIR": directory.path + "/etc", "PATH": "/usr/bin:/bin",
    ]
    let buildStart = clock.now
    let built = try await ChildProcess.runTool(
        runner, ["images", "build", "--tier", "micro_vm"], environment: environment, workingDirectory: directory.path)
    guard built.exitCode == 0 else { throw TestSupportError("runner images build failed: \(built.standardError)") }
    print(
        "micro_vm: images built in \(String(format2: seconds(clock.now - buildStart))) s: \(built.standardOutput.trimmed)"
    )
    _ = ChildProcess.runToolSynchronously("/bin/chown", ["-R", "\(uid):\(gid)", directory.path])

    func runAs(_ arguments: [String]) async throws -> ProcessResult {
        try await account.run(runner, arguments, environment: environment, directory: directory.path)
    }
    func timed(_ arguments: [String]) async throws -> (Double, String) {
        let start = clock.now
        let result = try await runAs(arguments)
        guard result.exitCode == 0 else {
            throw TestSupportError("runner \(arguments.joined(separator: " ")) failed: \(result.standardError)")
        }
        return (seconds(clock.now - start), result.standardOutput)
    }

    // The floor: the same kernel booted by QEMU with the same accelerator to an init that prints a
    // marker (the accelerator probe), timed to the marker, as the same account.
    let (_, first) = try await timed(["start", "--user", "alice"])
    let accelerator = MicroVMPlan.Accelerator(rawValue: value(of: "vm_accelerator", in: first) ?? "tcg") ?? .tcg
    _ = try await timed(["stop", "--user", "alice"])
    let kernel = try HostKernel.find()
    let probeDirectory = directory.path + "/probe"
    _ = try directory.createDirectory("probe")
    _ = ChildProcess.runToolSynchronously("/bin/chown", ["\(uid):\(gid)", probeDirectory])
    func bareBoot() async throws -> Double {
        let start = clock.now
        if let problem = await AcceleratorProbe.problem(
            accelerator, qemu: "/usr/bin/qemu-system-x86_64", kernel: kernel.image, busybox: "/bin/busybox",
            workDirectory: probeDirectory, timeout: .seconds(60))
        {
            throw TestSupportError("the bare VM did not boot: \(problem)")
        }
        return seconds(clock.now - start)
    }
    var floors: [Double] = []
    var starts: [Double] = []
    var stops: [Double] = []
    var processStarts: [Double] = []
    for _ in 0..<5 {
        floors.append(try await bareBoot())
        starts.append(try await timed(["start", "--user", "alice"]).0)
        stops.append(try await timed(["stop", "--user", "alice"]).0)
        processStarts.append(try await timed(["start", "--user", "bob", "--insecure"]).0)
        _ = try await timed(["stop", "--user", "bob"])
    }
    print(
        "micro_vm (\(accelerator.rawValue)): `runner start` to a healthy gateway min/median/max "
            + "\(spread(starts, scale: 1000)) ms; bare VM (same kernel, same accelerator, trivial init, to its marker) "
            + "\(spread(floors, scale: 1000)) ms; ratio of medians \(String(format2: median(starts) / median(floors)))x; "
            + "process-tier start \(spread(processStarts, scale: 1000)) ms; `runner stop` \(spread(stops, scale: 1000)) ms "
            + "(target with KVM ≤ 1 s)")

    // Turns and memory: both guests up, the same scripted reply through each gateway.
    let (_, vmStatus) = try await timed(["start", "--user", "alice"])
    let (_, processStatus) = try await timed(["start", "--user", "bob", "--insecure"])
    defer { account.stop(runner, config: directory.path + "/.oxydra/runner.toml", users: ["alice", "bob"]) }
    let inVM = try GatewayAccess.discover(ipcDirectory: directory.path + "/.oxydra/workspaces/alice/ipc")
    let inProcess = try GatewayAccess.discover(ipcDirectory: directory.path + "/.oxydra/workspaces/bob/ipc")
    let (vm, process) = try await interleavedTurns(server, (inVM, "alice"), (inProcess, "bob"), count: 60)
    print(
        "micro_vm (\(accelerator.rawValue)): a turn through the VM's gateway min/median/max \(spread(vm, scale: 1000)) "
            + "ms vs the process tier's \(spread(process, scale: 1000)) ms (60 interleaved turns each, new session each); "
            + "ratio of medians \(String(format2: median(vm) / median(process)))x")

    // Memory, idle after those turns, sampled 5 times a second apart.
    guard let qemu = Int32(value(of: "runtime_pid", in: vmStatus) ?? ""),
        let guest = Int32(value(of: "runtime_pid", in: processStatus) ?? "")
    else { throw TestSupportError("no runtime_pid in the status lines") }
    var vmMemory: [MemoryFigures] = []
    var guestMemory: [MemoryFigures] = []
    for _ in 0..<5 {
        try await Task.sleep(for: .seconds(1))
        vmMemory.append(MemoryFigures(pid: qemu))
        // The process-tier guest with its shell sandbox (what runs inside the VM too).
        guestMemory.append(
            ProcessTree.descendants(of: guest).reduce(MemoryFigures(pid: guest)) { $0 + MemoryFigures(pid: $1) })
    }
    let overhead = vmMemory.indices.map { Double(vmMemory[$0].pssKiB - guestMemory[$0].pssKiB) / 1024 }
    print(
        "micro_vm (\(accelerator.rawValue)): memory idle after 140 turns: QEMU \(MemoryFigures.describe(vmMemory)); the "
            + "same guest as processes (oxydra-vm + shell sandbox) \(MemoryFigures.describe(guestMemory)); overhead (QEMU "
            + "PSS − guest PSS) \(spread(overhead)) MiB (target ≤ 64 MiB; TCG's translation cache is capped at 64 MiB)")
    try await server.shutdown()
}

/// `key=value` from status lines.
func value(of key: String, in output: String) -> String? {
    output.split(separator: "\n").first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
}

/// Child processes, recursively, from `/proc/<pid>/task/*/children`.
enum ProcessTree {
    static func descendants(of pid: Int32) -> [Int32] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        var children: [Int32] = []
        for task in tasks {
            let text = ProcFiles.read("/proc/\(pid)/task/\(task)/children") ?? ""
            children += text.split(separator: " ").compactMap { Int32($0) }
        }
        return children + children.flatMap { descendants(of: $0) }
    }
}
