import OxydraConfig
import OxydraContainer
import OxydraCore
import OxydraSandbox

#if canImport(Glibc)
    import Glibc
#endif

/// The container tier from the host's side: one user's `shell-vm` and `oxydra-vm` containers,
/// started, found, stopped and read through the Docker Engine API (``DockerEngine``). What the
/// containers may do is decided by ``ContainerPlan``; this type runs the plan.
enum ContainerGuest {
    static func engine(_ context: RunnerContext) -> DockerEngine {
        DockerEngine(socketPath: DockerEngine.socketPath(environment: context.environment))
    }

    /// The user's containers by role (running or not).
    struct Found {
        var runtime: JSONValue?
        var sidecar: JSONValue?
        var all: [JSONValue]

        var isEmpty: Bool { all.isEmpty }

        static func id(_ container: JSONValue?) -> String? { container?["Id"]?.stringValue }

        /// The name without the engine's leading `/`: from a listing (`Names`) or an inspect (`Name`).
        static func name(_ container: JSONValue?) -> String? {
            guard let name = container?["Names"]?.arrayValue?.first?.stringValue ?? container?["Name"]?.stringValue
            else { return nil }
            return name.hasPrefix("/") ? String(name.dropFirst()) : name
        }
    }

    static func find(_ user: UserID, engine: DockerEngine) async throws(DockerError) -> Found {
        let all = try await engine.listContainers(labels: ContainerPlan.userLabels(user))
        func role(_ name: GuestImageBuilder.Role) -> JSONValue? {
            all.first { $0["Labels"]?["oxydra.guest_role"]?.stringValue == name.rawValue }
        }
        return Found(runtime: role(.runtime), sidecar: role(.sidecar), all: all)
    }

    /// The containers, or nothing when no engine answers (a process-tier host without Docker).
    static func findIfEngine(_ user: UserID, context: RunnerContext) async -> Found? {
        try? await find(user, engine: engine(context))
    }

    // MARK: start

    static func start(
        _ context: RunnerContext, target: UserTarget, agent: LoadedAgentConfig
    ) async throws(CommandOutput) -> CommandOutput {
        let engine = engine(context)
        do {
            _ = try await engine.ping()
        } catch {
            throw .error("\(error); or pass --insecure to use the process tier")
        }
        let uid = getuid()
        let gid = getgid()
        guard uid != 0 else {
            throw .error(
                "the container tier never runs a guest as root: run runner as the unprivileged user who owns the "
                    + "workspace and may use the container engine (e.g. a member of the `docker` group)")
        }
        let config = agent.config
        let shellWanted = config.tools.shell.enabled && target.userConfig.behavior.shellEnabled != false
        let images = target.runner.config.guestImages
        var warnings: [String] = []
        for role in GuestImageBuilder.Role.allCases where role == .runtime || shellWanted {
            let reference = images.reference(role)
            let image: JSONValue?
            do {
                image = try await engine.inspectImage(reference)
            } catch {
                throw .error(error.description)
            }
            guard let image else {
                throw .error(
                    "the guest image \(reference) is not installed; build the guest images with "
                        + "`runner --config \(context.configPath) images build` (from a release build: "
                        + "`swift build -c release`), or pass --insecure to use the process tier")
            }
            let version = image["Config"]?["Labels"]?[GuestImageBuilder.versionLabel]?.stringValue
            if version != OxydraVersion.current {
                warnings.append(
                    "warning=image \(reference) was built by Oxydra \(version ?? "(unknown version)"), this runner is "
                        + "\(OxydraVersion.current); rebuild it with `runner images build`")
            }
        }

        let found: Found
        do {
            found = try await find(target.user, engine: engine)
        } catch {
            throw .error(error.description)
        }
        if found.runtime?["State"]?.stringValue == "running",
            case .health(let health)? = try? ControlClient.request(
                .healthCheck, socket: target.controlSocket, timeout: .seconds(3))
        {
            var lines = ["user_id=\(target.user)", "already_running=true"]
            lines += await statusLines(health, target: target, context: context, found: found, engine: engine)
            return CommandOutput(
                standardOutput: lines.joined(separator: "\n") + "\n",
                standardError:
                    "user `\(target.user)` is already running; `runner stop` or `runner restart` to replace it\n")
        }
        // Leftovers of a crashed runner or guest: their output is kept, the containers go.
        await removeAll(found, target: target, engine: engine)

        do {
            try target.provision()
        } catch {
            throw .error(error.description)
        }
        let socketDirectory = target.ipc + "/shell"
        let configDirectory = target.ipc + "/guest-config"
        let bootstrapFile = target.ipc + "/bootstrap.json"
        for path in [
            target.marker, target.controlSocket, socketDirectory + "/shell-daemon.sock", bootstrapFile,
            MicroVMGuest.stateFile(target),
        ] {
            unlink(path)
        }
        let export = GuestConfigExport.make(
            agent, paths: context.agentLoader.paths, environment: context.environment)
        do {
            try writeConfigDirectory(export, at: configDirectory)
            try makePrivateDirectory(socketDirectory)
        } catch {
            throw .error(error.description)
        }

        let port = try publishedGatewayPort(config)
        let resources = target.userConfig.resources
        let mounts = GuestLifecycle.runtimePolicy(target, protected: []).mounts
        var plan = ContainerPlan(
            user: target.user, uid: uid, gid: gid, workspace: target.workspace, bootstrapFile: bootstrapFile,
            shellSocketHostDirectory: socketDirectory, runtimeImage: images.oxydraVM, sidecarImage: images.shellVM,
            gatewayHostPort: port,
            resources: .init(
                vcpus: resources.maxVCPUs, memoryMiB: resources.maxMemoryMiB,
                maxProcesses: resources.maxProcesses ?? ShellSandbox.defaultMaxProcesses),
            shellNetwork: config.tools.shell.network, runtimeEnvironment: export.environment)
        plan.sharedDirectory = mounts["shared"] ?? plan.sharedDirectory
        plan.tmpDirectory = mounts["tmp"] ?? plan.tmpDirectory
        plan.vaultDirectory = mounts["vault"] ?? plan.vaultDirectory
        plan.configDirectory = configDirectory
        plan.runtimeNetwork = plan.userNetworkName
        let supervision = target.runner.config.runner
        plan.restartAttempts = supervision.restart == .onFailure ? supervision.maxRestarts : nil
        for key in config.tools.shell.envKeys {
            if let value = context.environment[key] { plan.shellEnvironment[key] = value }
        }
        // The bot token reaches the runtime container as its variable, never through a file.
        let telegram = target.userConfig.channels.telegram
        if telegram.enabled, let variable = telegram.botTokenEnv, let token = context.environment[variable] {
            plan.runtimeEnvironment[variable] = token
        }
        if let model = config.memory.model2vecPath, model.hasPrefix("/") { plan.readOnlyFiles.append(model) }
        if let problem = plan.problem { throw .error(problem) }

        var status = StartupStatus(sandboxTier: .container)
        var started = Found(runtime: nil, sidecar: nil, all: [])
        do {
            // The user's network outlives a stop (it holds nothing); creating it costs a start ~80 ms.
            _ = try await engine.ensureNetwork(
                name: plan.userNetworkName, labels: ContainerPlan.userLabels(target.user))
        } catch {
            throw .error("cannot create the user's network \(plan.userNetworkName): \(error)")
        }
        var policy = GuestLifecycle.runtimePolicy(target, protected: [])
        policy.mounts = [:]
        func writeEnvelope(_ status: StartupStatus) throws(CommandOutput) {
            var envelope = BootstrapEnvelope(
                userID: target.user, sandboxTier: .container, workspaceRoot: "/workspace",
                sidecarEndpoint: status.sidecarAvailable
                    ? .init(transport: "unix", address: ContainerPlan.shellSocket) : nil,
                runtimePolicy: policy, startupStatus: status)
            envelope.telegram = telegram.enabled ? telegram : nil
            do {
                try writePrivate(envelope.json.prettyText + "\n", to: bootstrapFile)
            } catch {
                throw .error(error.description)
            }
        }
        // Both containers start at once (each start costs the engine 150–300 ms); the guest waits
        // for the sidecar's socket. Should the sidecar fail, the runtime is started again with an
        // envelope that says so.
        if shellWanted {
            status.sidecarAvailable = true
            status.shellAvailable = true
        }
        do {
            try writeEnvelope(status)
        } catch {
            await removeAll(started, target: target, engine: engine)
            throw error
        }
        let (sidecarName, sidecarSpec) = (plan.name(.sidecar), plan.sidecar)
        async let sidecarLaunch = shellWanted ? launch(sidecarName, sidecarSpec, engine: engine) : nil
        var runtimeLaunch = await launch(plan.name(.runtime), plan.runtime, engine: engine)
        if let sidecar = await sidecarLaunch {
            if let id = sidecar.id {
                started.sidecar = ["Id": .string(id)]
                started.all.append(["Id": .string(id)])
            }
            if let error = sidecar.error {
                status.sidecarAvailable = false
                status.shellAvailable = false
                status.degradedReasons.append(
                    DegradedReason(
                        code: DegradedReason.sidecarUnavailable,
                        detail: "the shell-vm container did not start (\(error)); shell tools are disabled"))
                var discard = Found(runtime: nil, sidecar: nil, all: started.all)
                if let id = runtimeLaunch.id { discard.all.append(["Id": .string(id)]) }
                await removeAll(discard, target: target, engine: engine, keepFiles: true)
                started = Found(runtime: nil, sidecar: nil, all: [])
                do {
                    try writeEnvelope(status)
                } catch {
                    throw error
                }
                runtimeLaunch = await launch(plan.name(.runtime), plan.runtime, engine: engine)
            }
        }
        if let id = runtimeLaunch.id {
            started.runtime = ["Id": .string(id)]
            started.all.append(["Id": .string(id)])
        }
        guard var runtimeID = runtimeLaunch.id, runtimeLaunch.error == nil else {
            await removeAll(started, target: target, engine: engine)
            if case .api(_, let message, _)? = runtimeLaunch.error,
                message.contains("already allocated") || message.contains("address already in use")
            {
                throw .error(
                    "port \(port) on 127.0.0.1 is already in use, so the gateway cannot be published; free it or "
                        + "set gateway.bind to another port (\"127.0.0.1:0\" picks a free one)")
            }
            throw .error("the oxydra-vm container did not start: \(runtimeLaunch.error.map { "\($0)" } ?? "no id")")
        }

        let deadline = ContinuousClock.now + GuestLifecycle.startTimeout
        var lastInspect = ContinuousClock.now - .seconds(1)
        while ContinuousClock.now < deadline {
            if access(target.marker, F_OK) == 0,
                case .health(let health)? = try? ControlClient.request(
                    .healthCheck, socket: target.controlSocket, timeout: .seconds(2)), health.healthy
            {
                let current = (try? await find(target.user, engine: engine)) ?? started
                let lines =
                    ["user_id=\(target.user)"]
                    + (await statusLines(health, target: target, context: context, found: current, engine: engine))
                    + warnings
                return CommandOutput(standardOutput: lines.joined(separator: "\n") + "\n")
            }
            if ContinuousClock.now - lastInspect >= .milliseconds(200) {
                lastInspect = ContinuousClock.now
                // A sidecar that ended before the guest connected: start the guest again without it.
                if status.sidecarAvailable, let sidecarID = Found.id(started.sidecar),
                    let sidecarState = try? await engine.inspectContainer(sidecarID)?["State"],
                    sidecarState["Running"]?.boolValue == false
                {
                    let output = (try? await engine.logLines(sidecarID, tail: 3)) ?? []
                    status.sidecarAvailable = false
                    status.shellAvailable = false
                    status.degradedReasons.append(
                        DegradedReason(
                            code: DegradedReason.sidecarUnavailable,
                            detail: "the shell-vm container exited at start (status "
                                + "\(sidecarState["ExitCode"]?.intValue ?? -1))"
                                + (output.isEmpty ? "" : ": " + output.map(\.text).joined(separator: " / "))
                                + "; shell tools are disabled (`runner logs --role sidecar`)"))
                    await removeAll(started, target: target, engine: engine, keepFiles: true)
                    started = Found(runtime: nil, sidecar: nil, all: [])
                    unlink(target.marker)
                    unlink(target.controlSocket)
                    try writeEnvelope(status)
                    let again = await launch(plan.name(.runtime), plan.runtime, engine: engine)
                    if let id = again.id {
                        started.runtime = ["Id": .string(id)]
                        started.all = [["Id": .string(id)]]
                    }
                    guard let id = again.id, again.error == nil else {
                        await removeAll(started, target: target, engine: engine)
                        throw .error("the oxydra-vm container did not start: \(again.error.map { "\($0)" } ?? "no id")")
                    }
                    runtimeID = id
                    continue
                }
                let state = try? await engine.inspectContainer(runtimeID)?["State"]
                if let state, state["Running"]?.boolValue == false {
                    let code = state["ExitCode"]?.intValue ?? -1
                    let output = (try? await engine.logLines(runtimeID, tail: 20)) ?? []
                    await removeAll(started, target: target, engine: engine)
                    throw .error(
                        "the oxydra-vm container exited during start-up (status \(code))"
                            + (output.isEmpty ? "" : ":\n" + output.map(\.text).joined(separator: "\n"))
                            + "\nlogs: \(context.display.render(target.logs))")
                }
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        await removeAll(started, target: target, engine: engine)
        throw .error(
            "the oxydra-vm container did not report a healthy gateway within \(GuestLifecycle.startTimeout) and was "
                + "removed; logs: \(context.display.render(target.logs))")
    }

    /// Creates and starts one container; the id (when created) and the failure (when any).
    static func launch(_ name: String, _ spec: JSONValue, engine: DockerEngine) async -> (
        id: String?, error: DockerError?
    ) {
        var id: String?
        do {
            id = try await engine.createContainer(name: name, spec: spec)
            try await engine.startContainer(id!)
            return (id, nil)
        } catch {
            return (id, error)
        }
    }

    // MARK: stop

    /// Shuts the guest down through its control socket, waits, stops what still runs, keeps the
    /// output in `logs/` and removes the containers.
    static func stop(target: UserTarget, found: Found, engine: DockerEngine) async -> [String] {
        var lines = ["user_id=\(target.user)", "shutdown=true"]
        var cancelled = 0
        if case .shutdownAccepted(let count)? = try? ControlClient.request(
            .shutdownUser, socket: target.controlSocket, timeout: .seconds(3))
        {
            cancelled = count
        }
        lines.append("active_turns_cancelled=\(cancelled)")
        if let id = Found.id(found.runtime) {
            let deadline = ContinuousClock.now + GuestLifecycle.stopTimeout
            while ContinuousClock.now < deadline,
                (try? await engine.inspectContainer(id)?["State"]?["Running"]?.boolValue) == true
            {
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
        var forced = false
        for container in found.all where container["State"]?.stringValue == "running" {
            guard let id = Found.id(container) else { continue }
            if (try? await engine.inspectContainer(id)?["State"]?["Running"]?.boolValue) == true {
                forced = forced || Found.id(container) == Found.id(found.runtime)
                try? await engine.stopContainer(id, graceSeconds: 10)
            }
        }
        if forced { lines.append("forced=true") }
        let removed = await removeAll(found, target: target, engine: engine)
        lines.append("containers_removed=\(removed.joined(separator: ","))")
        return lines
    }

    /// Keeps each container's output in the user's `logs/`, then removes the containers and (unless
    /// `keepFiles`) the files of this start. The user's network stays for the next start. Returns
    /// the names removed.
    @discardableResult
    static func removeAll(_ found: Found, target: UserTarget, engine: DockerEngine, keepFiles: Bool = false)
        async -> [String]
    {
        var removed: [String] = []
        for container in found.all {
            guard let id = Found.id(container) else { continue }
            let inspected = try? await engine.inspectContainer(id)
            let role = inspected?["Config"]?["Labels"]?["oxydra.guest_role"]?.stringValue
            if let lines = try? await engine.logLines(id), !lines.isEmpty {
                // The files `runner logs` reads for these roles once the containers are gone.
                let file = target.logs + (role == "sidecar" ? "/shell-daemon.log" : "/oxydra-vm.stderr.log")
                appendPrivate(
                    lines.map { "\($0.timestamp) \($0.stream) \($0.text)" }.joined(separator: "\n") + "\n", to: file)
            }
            // Gone already (404) or refused: either way it is not listed as removed.
            if (try? await engine.removeContainer(id, force: true)) != nil {
                removed.append(Found.name(inspected) ?? String(id.prefix(12)))
            }
        }
        if !keepFiles {
            for path in [target.marker, target.controlSocket, target.ipc + "/bootstrap.json"] { unlink(path) }
            try? FileManager.default.removeItem(atPath: target.ipc + "/guest-config")
        }
        return removed
    }

    // MARK: status

    /// The status lines of a running container-tier guest: host pid and log directory instead of
    /// the container's own, and the containers.
    static func statusLines(
        _ health: GuestHealth, target: UserTarget, context: RunnerContext, found: Found, engine: DockerEngine
    ) async -> [String] {
        var health = health
        health.logDirectory = target.logs
        var restarts: [String] = []
        if let id = Found.id(found.runtime), let inspected = try? await engine.inspectContainer(id) {
            if let pid = inspected["State"]?["Pid"]?.intValue, pid > 0 { health.pid = pid }
            if inspected["HostConfig"]?["RestartPolicy"]?["Name"]?.stringValue == "on-failure" {
                restarts = ["restart_policy=on-failure", "restarts=\(inspected["RestartCount"]?.intValue ?? 0)"]
            }
        }
        return GuestLifecycle.statusLines(health, target: target, context: context) + restarts + containerLines(found)
    }

    static func containerLines(_ found: Found) -> [String] {
        var lines: [String] = []
        for (role, container) in [("runtime", found.runtime), ("sidecar", found.sidecar)] {
            guard let container, let id = Found.id(container) else { continue }
            let name = Found.name(container) ?? ""
            let state = container["State"]?.stringValue ?? container["State"]?["Status"]?.stringValue ?? "unknown"
            lines.append("container_\(role)=\(name) id=\(id.prefix(12)) state=\(state)")
        }
        return lines
    }

    // MARK: files

    static func writeConfigDirectory(_ export: GuestConfigExport, at directory: String) throws(RunnerError) {
        try? FileManager.default.removeItem(atPath: directory)
        try makePrivateDirectory(directory)
        for sub in ["home", "home/.config", "home/.config/oxydra", "project", "project/.oxydra"] {
            try makePrivateDirectory(directory + "/" + sub)
        }
        for (name, text) in export.files.sorted(by: { $0.key < $1.key }) {
            try writePrivate(text, to: directory + "/" + name)
        }
    }

    static func makePrivateDirectory(_ path: String) throws(RunnerError) {
        if mkdir(path, 0o700) != 0 && errno != EEXIST {
            throw RunnerError("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        _ = chmod(path, 0o700)
    }

    /// Writes a file only this user can read (0600), replacing any earlier one.
    static func writePrivate(_ text: String, to path: String) throws(RunnerError) {
        unlink(path)
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw RunnerError("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written == bytes.count else {
            throw RunnerError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    static func appendPrivate(_ text: String, to path: String) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    }

    /// The host port the gateway is published on: `gateway.bind`'s, or a free one when it is 0.
    static func publishedGatewayPort(_ config: AgentConfig) throws(CommandOutput) -> Int {
        if let fixed = GatewayBind.parse(config.gateway.bind).bind?.port, fixed != 0 { return fixed }
        guard let free = freeLoopbackPort() else {
            throw .error("cannot find a free TCP port on 127.0.0.1 for the gateway")
        }
        return free
    }

    /// A TCP port nobody listens on at 127.0.0.1 right now (the kernel's choice).
    static func freeLoopbackPort() -> Int? {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        guard bound == 0 else { return nil }
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard named == 0 else { return nil }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
