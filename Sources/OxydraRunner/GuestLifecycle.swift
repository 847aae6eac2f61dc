import OxydraConfig
import OxydraCore
import OxydraSandbox

#if canImport(Glibc)
    import Glibc
#endif

/// `runner start|stop|restart|status|logs`: a user's guest from the host's side.
public enum GuestLifecycle {
    /// How long `start` waits for the gateway, and `stop` for the guest to exit.
    public static let startTimeout = Duration.seconds(30)
    public static let stopTimeout = Duration.seconds(10)

    // MARK: start

    /// Validates the configuration, provisions the workspace, launches the guest detached, waits
    /// until its gateway is healthy and prints the status lines.
    public static func start(_ context: RunnerContext, insecure: Bool) async -> CommandOutput {
        do {
            return try await startOrThrow(context, insecure: insecure)
        } catch {
            return error
        }
    }

    static func startOrThrow(_ context: RunnerContext, insecure: Bool) async throws(CommandOutput) -> CommandOutput {
        let (agent, target, tier) = try preflight(context, insecure: insecure)
        if tier == .container { return try await ContainerGuest.start(context, target: target, agent: agent) }
        if tier == .microVM { return try await MicroVMGuest.start(context, target: target, agent: agent) }
        return try startProcessTier(context, target: target, agent: agent, tier: tier)
    }

    /// Everything that can be known wrong before anything is touched: the configuration, the
    /// credential, the tier and what the tier allows. `restart` runs it before it stops the guest.
    static func preflight(_ context: RunnerContext, insecure: Bool) throws(CommandOutput) -> (
        LoadedAgentConfig, UserTarget, SandboxTier
    ) {
        let check = ConfigCommands.check(context)
        guard check.exitCode == 0 else { throw check }
        // A guest without a usable credential would only exit again; say how to fix it now.
        let agent = context.agentLoader.load()
        if let (name, entry, type) = agent.config.selectedProvider {
            do {
                _ = try CredentialResolver.require(
                    name, entry: entry, type: type, environment: context.environment,
                    keySource: agent.source(of: ["providers", "registry", name, "api_key"]))
            } catch {
                throw CommandOutput.error(
                    "\(error); or point selection.provider at a local OpenAI-compatible server (Ollama, llama.cpp, "
                        + "vLLM), which needs no key — see docs/configuration.md#providers")
            }
        }
        let target = try UserTarget.resolve(context).get()
        let tier =
            insecure
            ? SandboxTier.process : (target.userConfig.behavior.sandboxTier ?? target.runner.config.defaultTier)
        if tier == .process && agent.config.tools.shell.network == .egress {
            throw CommandOutput.error(
                "tools.shell.network = \"egress\" (\(agent.source(of: ["tools", "shell", "network"]))) needs the "
                    + "container tier: the process tier's shell sandbox has no network of its own to give (bubblewrap "
                    + "would share the host's, loopback included); set default_tier = \"container\" or remove the key")
        }
        if tier == .microVM && agent.config.tools.shell.network == .egress {
            throw CommandOutput.error(
                "tools.shell.network = \"egress\" (\(agent.source(of: ["tools", "shell", "network"]))) is not supported yet "
                    + "in the micro_vm tier: the VM's network leads only to the configured providers; use the container "
                    + "tier for a shell with network, or remove the key")
        }
        if let other = sharedBotToken(target, context: context) {
            throw CommandOutput.error(
                "users `\(target.user)` and `\(other)` use the same Telegram bot token (channels.telegram.bot_token_env): "
                    + "Telegram lets one program poll a bot token (the other would get 409 Conflict); give each user "
                    + "their own bot (@BotFather, /newbot)")
        }
        return (agent, target, tier)
    }

    /// Another user whose enabled bot has the same token as `target`'s.
    static func sharedBotToken(_ target: UserTarget, context: RunnerContext) -> String? {
        let mine = target.userConfig.channels.telegram
        guard mine.enabled, let token = mine.botTokenEnv.flatMap({ context.environment[$0] }), !token.isEmpty else {
            return nil
        }
        for id in target.runner.config.users.keys.sorted() where id != target.user.rawValue {
            let other = RunnerConfigLoader.loadUser(UserID(id), of: target.runner, display: context.display).config
                .channels.telegram
            if other.enabled, other.botTokenEnv.flatMap({ context.environment[$0] }) == token { return id }
        }
        return nil
    }

    static func startProcessTier(
        _ context: RunnerContext, target: UserTarget, agent: LoadedAgentConfig, tier: SandboxTier
    ) throws(CommandOutput) -> CommandOutput {
        do {
            try target.provision()
        } catch {
            throw CommandOutput.error(error.description)
        }

        if case .health(let health)? = try? ControlClient.request(
            .healthCheck, socket: target.controlSocket, timeout: .seconds(3))
        {
            var lines = ["user_id=\(target.user)", "already_running=true"]
            lines += statusLines(health, target: target, context: context)
            return CommandOutput(
                standardOutput: lines.joined(separator: "\n") + "\n",
                standardError:
                    "user `\(target.user)` is already running; `runner stop` or `runner restart` to replace it\n")
        }
        if Supervisor.isActive(ipc: target.ipc) {
            // Its supervisor is starting it again after a crash: wait for that instead.
            let deadline = ContinuousClock.now + startTimeout
            while ContinuousClock.now < deadline && Supervisor.isActive(ipc: target.ipc) {
                if case .health(let health)? = try? ControlClient.request(
                    .healthCheck, socket: target.controlSocket, timeout: .seconds(2)), health.healthy
                {
                    let lines =
                        ["user_id=\(target.user)", "already_running=true"]
                        + statusLines(health, target: target, context: context)
                    return CommandOutput(
                        standardOutput: lines.joined(separator: "\n") + "\n",
                        standardError: "user `\(target.user)`'s guest was being restarted after a crash; it is back\n")
                }
                usleep(100_000)
            }
            if Supervisor.isActive(ipc: target.ipc) {
                throw CommandOutput.error(
                    "user `\(target.user)`'s guest is being restarted by its supervisor and did not come back within "
                        + "\(startTimeout); `runner status` and `runner logs` show why, `runner stop` ends it")
            }
        }
        unlink(target.marker)
        unlink(target.controlSocket)
        unlink(MicroVMGuest.stateFile(target))

        guard
            let executable = ExecutableLocator.find(
                "oxydra-vm", variable: "OXYDRA_VM_PROCESS_EXECUTABLE", environment: context.environment)
        else {
            throw CommandOutput.error(
                "cannot find the oxydra-vm executable (looked at $OXYDRA_VM_PROCESS_EXECUTABLE, beside runner, and on "
                    + "PATH); build it with `swift build` or set OXYDRA_VM_PROCESS_EXECUTABLE")
        }
        let shell = shellPlan(
            tier: tier, target: target, agent: agent.config, environment: context.environment,
            workingDirectory: context.workingDirectory)
        unlink(target.ipc + "/shell-daemon.sock")
        var envelope = BootstrapEnvelope(
            userID: target.user, sandboxTier: tier, workspaceRoot: target.workspace,
            sidecarEndpoint: shell.launch == nil
                ? nil : .init(transport: "unix", address: target.ipc + "/shell-daemon.sock"),
            runtimePolicy: runtimePolicy(
                target, protected: MountSafety.protectedPaths(context: context, runner: target.runner)),
            startupStatus: shell.status, shellSandbox: shell.launch)
        envelope.telegram = target.userConfig.channels.telegram.enabled ? target.userConfig.channels.telegram : nil
        let arguments = ["--user-id", target.user.rawValue, "--workspace-root", target.workspace, "--bootstrap-stdin"]
        let supervision = target.runner.config.runner
        let supervised = supervision.restart == .onFailure
        unlink(Supervisor.statePath(ipc: target.ipc))
        let pid: Int32
        do throws(RunnerError) {
            if supervised {
                // The supervisor (this executable) launches the guest and restarts it after a crash.
                guard let runner = ExecutableLocator.selfPath() else {
                    throw RunnerError("cannot find the runner executable to supervise the guest")
                }
                let spec = Supervisor.Spec(
                    executable: executable, arguments: arguments, environment: context.environment,
                    workingDirectory: context.projectDirectory, input: Data(envelope.framed).base64EncodedString(),
                    standardOutput: target.logs + "/oxydra-vm.stdout.log",
                    standardError: target.logs + "/oxydra-vm.stderr.log", runtimeLog: target.logs + "/oxydra-vm.log",
                    marker: target.marker,
                    controlSocket: target.controlSocket, ipc: target.ipc, maxRestarts: supervision.maxRestarts,
                    windowSeconds: supervision.restartWindowSecs,
                    readySeconds: Int(startTimeout.components.seconds) + 5)
                let input = (try? JSONEncoder().encode(spec)).map { Array($0) } ?? []
                pid = try DetachedProcess.launch(
                    runner, arguments: ["supervise"], environment: context.environment,
                    workingDirectory: context.projectDirectory, input: input,
                    standardOutput: target.logs + "/supervisor.log", standardError: target.logs + "/supervisor.log")
            } else {
                pid = try DetachedProcess.launch(
                    executable, arguments: arguments, environment: context.environment,
                    workingDirectory: context.projectDirectory, input: envelope.framed,
                    standardOutput: target.logs + "/oxydra-vm.stdout.log",
                    standardError: target.logs + "/oxydra-vm.stderr.log")
            }
        } catch {
            throw CommandOutput.error(error.description)
        }
        let stderrStart = fileSize(target.logs + "/oxydra-vm.stderr.log")
        let deadline = ContinuousClock.now + startTimeout
        while ContinuousClock.now < deadline {
            let (exited, code) = DetachedProcess.hasExited(pid)
            if exited {
                let output = tail(of: target.logs + "/oxydra-vm.stderr.log", from: stderrStart)
                throw CommandOutput.error(
                    "the guest exited during start-up (status \(code >> 8))"
                        + (output.isEmpty ? "" : ":\n" + output.trimmed)
                        + "\nlogs: \(context.display.render(target.logs))")
            }
            if access(target.marker, F_OK) == 0,
                case .health(let health)? = try? ControlClient.request(
                    .healthCheck, socket: target.controlSocket, timeout: .seconds(2)), health.healthy
            {
                let lines = ["user_id=\(target.user)"] + statusLines(health, target: target, context: context)
                return CommandOutput(standardOutput: lines.joined(separator: "\n") + "\n")
            }
            // A guest is up in tens of milliseconds: look often (a stat per look until the marker exists).
            usleep(2_000)
        }
        if supervised, let guest = Supervisor.readState(ipc: target.ipc)?.guestPID {
            kill(pid, SIGTERM)
            kill(guest, SIGKILL)
        }
        kill(pid, SIGKILL)
        _ = DetachedProcess.hasExited(pid)
        throw CommandOutput.error(
            "the guest did not report a healthy gateway within \(startTimeout) and was killed; "
                + "logs: \(context.display.render(target.logs))")
    }

    static func tierSource(_ target: UserTarget) -> String {
        target.userConfig.behavior.sandboxTier != nil
            ? "behavior.sandbox_tier in the user's file" : "default_tier in \(target.runner.displayPath)"
    }

    /// Whether the user gets a shell and how: the tier must allow it, the configuration must want
    /// it, bubblewrap must be installed and able to create namespaces here, and `shell-daemon` must
    /// be found. Every "no" is a degraded reason saying how to fix it.
    static func shellPlan(
        tier: SandboxTier, target: UserTarget, agent: AgentConfig, environment: [String: String],
        workingDirectory: String
    ) -> (status: StartupStatus, launch: BootstrapEnvelope.ShellSandboxLaunch?) {
        var status = StartupStatus(sandboxTier: tier)
        guard agent.tools.shell.enabled, target.userConfig.behavior.shellEnabled != false else {
            return (status, nil)
        }
        func unavailable(_ detail: String) -> (StartupStatus, BootstrapEnvelope.ShellSandboxLaunch?) {
            status.degradedReasons.append(DegradedReason(code: DegradedReason.sidecarUnavailable, detail: detail))
            return (status, nil)
        }
        guard let bubblewrap = ShellSandbox.findBubblewrap(environment: environment) else {
            return unavailable(
                "bubblewrap (bwrap) is not installed, so shell tools are disabled; install it "
                    + "(`sudo apt-get install bubblewrap`) and run `runner restart`")
        }
        // A sandbox that worked once this boot is not probed again (a failure always is: it may
        // have been fixed); should it stop working, the guest reports its own launch failure.
        let cache = target.ipc + "/bwrap-probe.json"
        let key = "\(ProbeCache.bootID) \(ProbeCache.identity(of: bubblewrap)) uid=\(getuid())"
        if ProbeCache.verdict(at: cache, key: key) != .some(nil) {
            if let problem = ShellSandbox.probe(bubblewrap: bubblewrap) {
                return unavailable("\(problem); shell tools are disabled")
            }
            ProbeCache.store(at: cache, key: key, problem: nil)
        }
        guard
            let executable = ExecutableLocator.find(
                "shell-daemon", variable: "OXYDRA_SHELL_DAEMON_EXECUTABLE", environment: environment)
        else {
            return unavailable(
                "cannot find the shell-daemon executable (looked at $OXYDRA_SHELL_DAEMON_EXECUTABLE, beside runner, "
                    + "and on PATH); build it with `swift build` — shell tools are disabled")
        }
        status.sidecarAvailable = true
        status.shellAvailable = true
        return (
            status,
            .init(bubblewrap: bubblewrap, executable: FilePaths.absolute(executable, relativeTo: workingDirectory))
        )
    }

    static func runtimePolicy(_ target: UserTarget, protected: [String]) -> BootstrapEnvelope.RuntimePolicy {
        let mounts = target.userConfig.mounts
        var resolved: [String: String] = [:]
        for (name, value) in [("shared", mounts.shared), ("tmp", mounts.tmp), ("vault", mounts.vault)] {
            if let value { resolved[name] = FilePaths.absolute(value, relativeTo: target.workspace) }
        }
        var resources: [String: Int] = [:]
        if let value = target.userConfig.resources.maxVCPUs { resources["max_vcpus"] = value }
        if let value = target.userConfig.resources.maxMemoryMiB { resources["max_memory_mib"] = value }
        if let value = target.userConfig.resources.maxProcesses { resources["max_processes"] = value }
        var policy = BootstrapEnvelope.RuntimePolicy(
            mounts: resolved, resources: resources, credentialRefs: target.userConfig.credentialRefs,
            protectedPaths: protected)
        policy.budget = target.userConfig.budget
        return policy
    }

    static func statusLines(_ health: GuestHealth, target: UserTarget, context: RunnerContext) -> [String] {
        let status = health.startupStatus
        var lines = [
            "sandbox_tier=\(status.sandboxTier.rawValue)", "workspace_root=\(target.workspace)",
            "shell_available=\(status.shellAvailable)", "browser_available=\(status.browserAvailable)",
            "sidecar_available=\(status.sidecarAvailable)", "gateway_endpoint=\(health.gatewayEndpoint)",
            "control_socket=\(target.controlSocket)", "runtime_pid=\(health.pid)", "log_dir=\(health.logDirectory)",
        ]
        lines += status.degradedReasons.map { "degraded_reason=\($0)" }
        for (name, channel) in health.channels.sorted(by: { $0.key < $1.key }) {
            lines.append(
                "channel_\(name)=\(channel.state)" + (channel.lastUpdateAt.map { " last_update_at=\($0)" } ?? "")
                    + (channel.lastError.map { " last_error=\($0)" } ?? ""))
        }
        if status.sandboxTier == .process {
            lines.append(
                "warning=process tier: the guest runs as a host process confined by Landlock only; use the container "
                    + "or micro_vm tier for real isolation")
        }
        return lines
    }

    /// `restart_policy=`, `restarts=`, `last_crash=` of a supervised guest.
    static func supervisionLines(_ target: UserTarget) -> [String] {
        guard let state = Supervisor.readState(ipc: target.ipc), Supervisor.isActive(ipc: target.ipc) else {
            return []
        }
        return ["restart_policy=\(target.runner.config.runner.restart.rawValue)", "restarts=\(state.restarts)"]
            + crashLines(state)
    }

    static func crashLines(_ state: Supervisor.State) -> [String] {
        guard let crash = state.lastCrash else { return [] }
        return ["last_crash=\(crash.at) \(crash.status) after \(crash.uptimeSeconds) s"]
    }

    static func supervisorJSON(_ state: Supervisor.State) -> JSONValue {
        .compactObject([
            "phase": .string(state.phase.rawValue), "restarts": .integer(state.restarts),
            "next_start_at": state.nextStartAt.map(JSONValue.string),
            "last_crash": state.lastCrash.map { crash in
                [
                    "at": .string(crash.at), "status": .string(crash.status),
                    "uptime_secs": .integer(crash.uptimeSeconds),
                ]
            },
        ])
    }

    // MARK: stop / restart

    public static func stop(_ context: RunnerContext) async -> CommandOutput {
        do {
            return try await stopOrThrow(context, quietWhenStopped: false)
        } catch {
            return error
        }
    }

    static func stopOrThrow(_ context: RunnerContext, quietWhenStopped: Bool) async throws(CommandOutput)
        -> CommandOutput
    {
        let target = try UserTarget.resolve(context).get()
        let pid: Int32
        let health = Result(catching: { () throws(ControlClientError) in
            try ControlClient.request(.healthCheck, socket: target.controlSocket, timeout: .seconds(3))
        })
        // The container tier: whatever runs (or was left behind) under the user's labels.
        if case .success(.health(let running)) = health, running.startupStatus.sandboxTier != .container {
        } else if let found = await ContainerGuest.findIfEngine(target.user, context: context), !found.isEmpty {
            let lines = await ContainerGuest.stop(
                target: target, found: found, engine: ContainerGuest.engine(context))
            return CommandOutput(standardOutput: lines.joined(separator: "\n") + "\n")
        }
        switch health {
        case .success(.health(let health)):
            // A micro VM's guest pid is the VM's own: on the host, QEMU is what ends.
            pid =
                health.startupStatus.sandboxTier == .microVM
                ? Supervisor.readState(ipc: target.ipc)?.guestPID ?? 0 : Int32(health.pid)
        case .success(let other): throw CommandOutput.error("unexpected reply from the guest: \(other)")
        case .failure(.notRunning):
            unlink(target.marker)
            // Between a crash and its restart: end the supervision, so nothing comes back.
            if Supervisor.stop(ipc: target.ipc, wait: true) {
                return CommandOutput(standardOutput: "user_id=\(target.user)\nshutdown=true\nrestart_cancelled=true\n")
            }
            if quietWhenStopped { return CommandOutput() }
            // Stopping what is stopped succeeds (as the original): scripts can stop unconditionally.
            return CommandOutput(
                standardOutput: "user_id=\(target.user)\nalready_stopped=true\n",
                standardError: "note: no running guest found for user `\(target.user)`\n")
        case .failure(let error):
            // Hung, or a micro VM stuck while booting: its supervisor knows the process to end.
            guard let forced = forceStop(target, because: error) else {
                throw CommandOutput.error(
                    "\(error.description); no supervisor runs this guest (`restart = \"no\"`), so its process must be "
                        + "ended by hand")
            }
            return forced
        }
        // First tell the supervisor (if any) that this exit is wanted.
        let supervised = Supervisor.stop(ipc: target.ipc, wait: false)
        var cancelled = 0
        do {
            if case .shutdownAccepted(let count) = try ControlClient.request(
                .shutdownUser, socket: target.controlSocket)
            {
                cancelled = count
            }
        } catch {
            throw CommandOutput.error("asking the guest to shut down failed: \(error)")
        }
        var lines = ["user_id=\(target.user)", "shutdown=true", "active_turns_cancelled=\(cancelled)"]
        let deadline = ContinuousClock.now + stopTimeout
        while pid > 0 && DetachedProcess.isAlive(pid) && ContinuousClock.now < deadline { usleep(20_000) }
        if pid > 0 && DetachedProcess.isAlive(pid) {
            kill(pid, SIGKILL)
            lines.append("forced=true")
        }
        if supervised {
            let end = ContinuousClock.now + .seconds(5)
            while Supervisor.isActive(ipc: target.ipc) && ContinuousClock.now < end { usleep(20_000) }
        }
        unlink(target.marker)
        unlink(target.controlSocket)
        return CommandOutput(standardOutput: lines.joined(separator: "\n") + "\n")
    }

    /// Stops a supervised guest that does not answer its control socket: supervision ends first (so
    /// nothing is restarted), then the guest process (QEMU for a micro VM) is killed. A committed
    /// message survives that as it survives any crash. Nil when no supervisor runs the guest.
    static func forceStop(_ target: UserTarget, because error: ControlClientError) -> CommandOutput? {
        guard Supervisor.isActive(ipc: target.ipc), let state = Supervisor.readState(ipc: target.ipc) else {
            return nil
        }
        Supervisor.stop(ipc: target.ipc, wait: false)
        if let guest = state.guestPID, DetachedProcess.parent(of: guest) == state.supervisorPID {
            kill(guest, SIGKILL)
        }
        let end = ContinuousClock.now + .seconds(10)
        while Supervisor.isActive(ipc: target.ipc) && ContinuousClock.now < end { usleep(20_000) }
        if Supervisor.isActive(ipc: target.ipc) { kill(state.supervisorPID, SIGKILL) }
        unlink(target.marker)
        unlink(target.controlSocket)
        return CommandOutput(
            standardOutput: "user_id=\(target.user)\nshutdown=true\nforced=true\n",
            standardError: "note: the guest did not answer (\(error.description)); it was killed\n")
    }

    public static func restart(_ context: RunnerContext, insecure: Bool) async -> CommandOutput {
        do throws(CommandOutput) {
            do {
                _ = try preflight(context, insecure: insecure)
            } catch {
                // The running guest (if any) is left alone: a bad edit must not take the agent down.
                var refused = error
                refused.standardError += "runner error: nothing was stopped; the running guest (if any) keeps running\n"
                throw refused
            }
            let stopped = try await stopOrThrow(context, quietWhenStopped: true)
            let started = try await startOrThrow(context, insecure: insecure)
            return CommandOutput(
                standardOutput: stopped.standardOutput + started.standardOutput,
                standardError: stopped.standardError + started.standardError)
        } catch {
            return error
        }
    }

    // MARK: status

    /// Exit 0 when running, 3 when not, 1 on errors.
    public static func status(_ context: RunnerContext, json: Bool) async -> CommandOutput {
        let target: UserTarget
        switch UserTarget.resolve(context) {
        case .success(let resolved): target = resolved
        case .failure(let output): return output
        }
        switch Result(catching: { () throws(ControlClientError) in
            try ControlClient.request(.healthCheck, socket: target.controlSocket, timeout: .seconds(5))
        }) {
        case .success(.health(let reported)):
            let health =
                reported.startupStatus.sandboxTier == .microVM
                ? MicroVMGuest.hostView(reported, target: target) : reported
            var lines = ["user_id=\(target.user)", "running=true", "healthy=\(health.healthy)"]
            var containers: [String] = []
            if health.startupStatus.sandboxTier == .container {
                let engine = ContainerGuest.engine(context)
                let found =
                    (try? await ContainerGuest.find(target.user, engine: engine))
                    ?? ContainerGuest.Found(runtime: nil, sidecar: nil, all: [])
                lines += await ContainerGuest.statusLines(
                    health, target: target, context: context, found: found, engine: engine)
                containers = ContainerGuest.containerLines(found)
            } else if health.startupStatus.sandboxTier == .microVM {
                lines += MicroVMGuest.statusLines(health, target: target, context: context)
            } else {
                lines += statusLines(health, target: target, context: context)
            }
            let supervision = supervisionLines(target)
            lines += supervision
            if json {
                var object = health.json.objectValue ?? [:]
                object["running"] = true
                if let state = Supervisor.readState(ipc: target.ipc), Supervisor.isActive(ipc: target.ipc) {
                    object["supervisor"] = supervisorJSON(state)
                }
                if !containers.isEmpty { object["containers"] = .array(containers.map(JSONValue.string)) }
                if health.startupStatus.sandboxTier == .microVM {
                    if let facts = MicroVMGuest.readFacts(target) {
                        object["micro_vm"] = [
                            "accelerator": .string(facts.accelerator), "memory_mib": .integer(facts.memoryMiB),
                            "vcpus": .integer(facts.vcpus), "kernel": .string(facts.kernel),
                        ]
                    }
                }
                return CommandOutput(standardOutput: JSONValue.object(object).prettyText + "\n")
            }
            lines += [
                "uptime_secs=\(health.uptimeSeconds)", "open_sessions=\(health.openSessions)",
                "active_turns=\(health.activeTurns)",
            ]
            return CommandOutput(standardOutput: lines.joined(separator: "\n") + "\n")
        case .success(let other):
            return .error("unexpected reply from the guest: \(other)")
        case .failure(.notRunning):
            var message = "user `\(target.user)` has no running guest; \(target.startHint(context))\n"
            var extra: [String] = []
            var supervisorObject: JSONValue?
            if let state = Supervisor.readState(ipc: target.ipc) {
                let active = Supervisor.isActive(ipc: target.ipc)
                if active && state.phase == .restarting {
                    extra = ["restarting=true", "restarts=\(state.restarts)"] + crashLines(state)
                    message =
                        "user `\(target.user)`'s guest crashed and is restarted by its supervisor"
                        + (state.nextStartAt.map { " at \($0)" } ?? "") + "; `runner stop` cancels that\n"
                    supervisorObject = supervisorJSON(state)
                } else if state.phase == .crashLoop {
                    extra = ["crash_loop=true", "restarts=\(state.restarts)"] + crashLines(state)
                    message =
                        "user `\(target.user)`'s guest crashed \(state.restarts + 1) times within "
                        + "\(target.runner.config.runner.restartWindowSecs) s and was left stopped (last: "
                        + "\(state.lastCrash?.status ?? "?") after \(state.lastCrash?.uptimeSeconds ?? 0) s); "
                        + "`runner logs --role runtime` shows why; `runner start` tries again\n"
                    supervisorObject = supervisorJSON(state)
                }
            }
            if let found = await ContainerGuest.findIfEngine(target.user, context: context), !found.isEmpty {
                message =
                    ContainerGuest.containerLines(found).map { "note: \($0)" }.joined(separator: "\n")
                    + "\nnote: the user's containers are left from an earlier start; `runner stop` removes them, "
                    + "`runner logs --role stderr` shows why the guest ended\n" + message
            }
            if json {
                return CommandOutput(
                    standardOutput: JSONValue.compactObject([
                        "user_id": .string(target.user.rawValue), "running": false, "supervisor": supervisorObject,
                    ]).prettyText + "\n", standardError: message, exitCode: 3)
            }
            return CommandOutput(
                standardOutput: (["user_id=\(target.user)", "running=false"] + extra).joined(separator: "\n") + "\n",
                standardError: message, exitCode: 3)
        case .failure(let error):
            return .error(error.description)
        }
    }

    // MARK: helpers

    static func fileSize(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : 0
    }

    /// The end of a file from byte `offset`, at most 4 KiB.
    static func tail(of path: String, from offset: Int) -> String {
        guard let data = FileManager.default.contents(atPath: path), data.count > offset else { return "" }
        let bytes = [UInt8](data)[offset...]
        return String(decoding: bytes.suffix(4096), as: UTF8.self)
    }
}
