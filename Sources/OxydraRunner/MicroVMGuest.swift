import OxydraConfig
import OxydraContainer
import OxydraCore
import OxydraMicroVM
import OxydraSandbox

#if canImport(Glibc)
    import Glibc
#endif

/// The micro_vm tier from the host's side: one QEMU `microvm` per user, run by the user's
/// supervisor (`runner supervise`), which also serves the user's control socket for it (see
/// ``ControlRelay``). What the VM boots is built by `runner images build` (``MicroVMImageSet``);
/// how it is started is a ``MicroVMPlan``.
///
/// - The workspace's parts are 9p shares (the vault read-only); the agent configuration, the
///   envelope and the providers' names are a read-only share; the provider keys are in that share
///   only while the VM boots.
/// - The network is QEMU's user mode with `restrict=on`: the VM reaches neither the host (its
///   loopback services, other users' guests) nor the internet. Each configured provider endpoint
///   gets a forward address in the VM whose connections `runner vm-connect` carries to the
///   provider; the gateway and the control port are published on the host's 127.0.0.1 only.
/// - The shell runs inside the VM in its bubblewrap sandbox (no network, only `shared` and `tmp`).
enum MicroVMGuest {
    /// Where the guest's shell daemon listens, in the VM's memory (9p cannot hold sockets).
    static let shellSocket = "/run/oxydra-shell.sock"
    /// What `runner status` reads about the VM (written at start).
    static func stateFile(_ target: UserTarget) -> String { target.ipc + "/micro-vm.json" }
    static func consoleLog(_ target: UserTarget) -> String { target.logs + "/console.log" }

    /// The facts of one start, kept for `runner status`.
    struct Facts: Codable, Sendable {
        var accelerator: String
        var memoryMiB: Int
        var vcpus: Int
        var kernel: String
    }

    static func readFacts(_ target: UserTarget) -> Facts? {
        guard let data = FileManager.default.contents(atPath: stateFile(target)) else { return nil }
        return try? JSONDecoder().decode(Facts.self, from: data)
    }

    // MARK: the host

    /// QEMU, from `[micro_vm] qemu` or PATH.
    static func qemu(_ target: UserTarget, context: RunnerContext) throws(CommandOutput) -> String {
        if let configured = target.runner.config.microVM.qemu {
            let path = FilePaths.absolute(configured, relativeTo: target.runner.baseDirectory)
            guard access(path, X_OK) == 0 else {
                throw .error("[micro_vm] qemu = \"\(configured)\" in \(target.runner.displayPath) is not an executable")
            }
            return path
        }
        guard let found = ExecutableLocator.onPath("qemu-system-x86_64", environment: context.environment) else {
            throw .error(
                "the micro_vm tier needs QEMU, which is not installed: `sudo apt-get install qemu-system-x86` (or set "
                    + "[micro_vm] qemu in \(target.runner.displayPath)); or pass --insecure to use the process tier")
        }
        return found
    }

    static func kernel(_ runner: LoadedRunnerConfig) throws(CommandOutput) -> HostKernel {
        do {
            if let configured = runner.config.guestImages.kernel {
                return try HostKernel.at(FilePaths.absolute(configured, relativeTo: runner.baseDirectory))
            }
            return try HostKernel.find()
        } catch {
            throw .error(error.description)
        }
    }

    /// busybox for the initramfs: a static one (Debian's busybox-static).
    static func busybox() throws(CommandOutput) -> String {
        let path = "/bin/busybox"
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw .error("the micro_vm tier needs a static busybox: `sudo apt-get install busybox-static`")
        }
        var head = [UInt8](repeating: 0, count: 4096)
        let count = read(fd, &head, head.count)
        close(fd)
        head = Array(head.prefix(max(count, 0)))
        // A dynamic busybox names its loader; the initramfs has no libraries to load.
        if String(decoding: head, as: UTF8.self).contains("ld-linux") {
            throw .error(
                "\(path) is linked dynamically; the micro VM's initramfs needs busybox-static "
                    + "(`sudo apt-get install busybox-static`)")
        }
        return path
    }

    /// KVM when it can run a guest here (probed: `/dev/kvm` existing proves nothing); else TCG when
    /// `[micro_vm] allow_tcg` allows it, with the reason as a degraded reason.
    static func accelerator(
        _ target: UserTarget, qemu: String, kernel: HostKernel, busybox: String
    ) async throws(CommandOutput) -> (MicroVMPlan.Accelerator, DegradedReason?) {
        // The verdict holds until the host reboots or something about KVM changes: it is kept.
        let cache = target.ipc + "/kvm-probe.json"
        let key = "\(ProbeCache.bootID) \(qemu) \(kernel.image) \(access("/dev/kvm", R_OK | W_OK) == 0)"
        var problem: String?
        if let cached = ProbeCache.verdict(at: cache, key: key) {
            problem = cached
        } else {
            let work = target.ipc + "/probe"
            try? FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: work) }
            problem = await AcceleratorProbe.problem(
                .kvm, qemu: qemu, kernel: kernel.image, busybox: busybox, workDirectory: work, timeout: .seconds(10))
            // A probe that ran out of time on a busy host says nothing lasting.
            if !(problem?.contains("did not boot within") ?? false) {
                ProbeCache.store(at: cache, key: key, problem: problem)
            }
        }
        guard let problem else { return (.kvm, nil) }
        guard target.runner.config.microVM.allowTCG else {
            throw .error(
                "KVM cannot run guests on this machine (\(problem)); set [micro_vm] allow_tcg = true in "
                    + "\(target.runner.displayPath) to run the micro VM under QEMU's CPU emulation (isolated, but "
                    + "several times slower), use default_tier = \"container\", or pass --insecure for the process tier"
            )
        }
        return (
            .tcg,
            DegradedReason(
                code: DegradedReason.emulatedMicroVM,
                detail: "KVM cannot run guests here (\(problem)); the micro VM runs under QEMU's CPU emulation (TCG, "
                    + "[micro_vm] allow_tcg): isolated, but several times slower")
        )
    }

    // MARK: start

    static func start(
        _ context: RunnerContext, target: UserTarget, agent: LoadedAgentConfig
    ) async throws(CommandOutput) -> CommandOutput {
        #if !arch(x86_64)
            throw .error("the micro_vm tier needs an x86_64 host (QEMU's microvm machine); use the container tier")
        #endif
        guard getuid() != 0 else {
            throw .error(
                "the micro_vm tier never runs QEMU as root (a guest that escaped QEMU would be root on the host): run "
                    + "runner as the unprivileged user who owns the workspace")
        }
        if case .health(let health)? = try? ControlClient.request(
            .healthCheck, socket: target.controlSocket, timeout: .seconds(3))
        {
            let lines =
                ["user_id=\(target.user)", "already_running=true"]
                + statusLines(health, target: target, context: context)
            return CommandOutput(
                standardOutput: lines.joined(separator: "\n") + "\n",
                standardError:
                    "user `\(target.user)` is already running; `runner stop` or `runner restart` to replace it\n")
        }
        if Supervisor.isActive(ipc: target.ipc) {
            throw .error(
                "user `\(target.user)`'s micro VM is starting or being restarted by its supervisor; `runner status` "
                    + "shows it, `runner stop` ends it")
        }
        let qemu = try qemu(target, context: context)
        let kernel = try kernel(target.runner)
        let busybox = try busybox()
        let images = target.runner.microVMImageDirectory
        if let problem = MicroVMImageSet.problem(in: images, kernel: kernel) {
            throw .error(
                "\(problem); build them with `runner --config \(context.configPath) images build --tier micro_vm` (from "
                    + "a release build: `swift build -c release`), or pass --insecure to use the process tier")
        }
        let imageSet = MicroVMImageSet.read(images)
        guard let runner = ExecutableLocator.selfPath() else {
            throw .error("cannot find the runner executable to supervise the micro VM")
        }
        do {
            try target.provision()
        } catch {
            throw .error(error.description)
        }
        let (accelerator, emulated) = try await accelerator(target, qemu: qemu, kernel: kernel, busybox: busybox)

        // The configuration share: the agent configuration, the envelope, the providers' names.
        let config = agent.config
        let configDirectory = target.ipc + "/guest-config"
        let export = GuestConfigExport.make(agent, paths: context.agentLoader.paths, environment: context.environment)
        let egress = Egress(config: config, runner: runner)
        do {
            try ContainerGuest.writeConfigDirectory(export, at: configDirectory)
            try ContainerGuest.writePrivate(egress.hosts, to: configDirectory + "/hosts")
        } catch {
            throw .error(error.description)
        }

        var status = StartupStatus(sandboxTier: .microVM)
        if let emulated { status.degradedReasons.append(emulated) }
        let shellWanted = config.tools.shell.enabled && target.userConfig.behavior.shellEnabled != false
        if shellWanted {
            if imageSet?.shell == true {
                status.sidecarAvailable = true
                status.shellAvailable = true
            } else {
                status.degradedReasons.append(
                    DegradedReason(
                        code: DegradedReason.sidecarUnavailable,
                        detail: "the micro VM images were built without the shell (shell-daemon was not found then); "
                            + "rebuild them with `runner images build --tier micro_vm` — shell tools are disabled"))
            }
        }
        let gatewayPort = try ContainerGuest.publishedGatewayPort(config)
        var controlPort = ContainerGuest.freeLoopbackPort() ?? 0
        while controlPort == gatewayPort { controlPort = ContainerGuest.freeLoopbackPort() ?? 0 }
        guard controlPort != 0 else { throw .error("cannot find a free TCP port on 127.0.0.1 for the control port") }
        let token = GatewayProtocol.newToken()

        let hostPolicy = GuestLifecycle.runtimePolicy(target, protected: [])
        var policy = hostPolicy
        policy.mounts = [:]
        var envelope = BootstrapEnvelope(
            userID: target.user, sandboxTier: .microVM, workspaceRoot: "/workspace",
            sidecarEndpoint: status.shellAvailable ? .init(transport: "unix", address: shellSocket) : nil,
            runtimePolicy: policy, startupStatus: status,
            shellSandbox: status.shellAvailable
                ? .init(bubblewrap: "/usr/bin/bwrap", executable: "/usr/local/bin/shell-daemon") : nil)
        envelope.controlListen = .init(port: MicroVMImage.controlPort, token: token)
        let telegram = target.userConfig.channels.telegram
        envelope.telegram = telegram.enabled ? telegram : nil
        do {
            try ContainerGuest.writePrivate(envelope.json.prettyText + "\n", to: configDirectory + "/bootstrap.json")
        } catch {
            throw .error(error.description)
        }
        // What the guest's environment needs: provider keys, the bot token, the shell's variables.
        var secrets = export.environment
        if telegram.enabled, let variable = telegram.botTokenEnv, let value = context.environment[variable] {
            secrets[variable] = value
        }
        for key in config.tools.shell.envKeys {
            if let value = context.environment[key] { secrets[key] = value }
        }

        let mounts = hostPolicy.mounts
        var plan = MicroVMPlan(
            qemu: qemu, kernel: kernel.image, initramfs: images + "/" + MicroVMImageSet.initramfsFile,
            consoleLog: consoleLog(target))
        plan.rootDisk = images + "/" + MicroVMImageSet.rootDiskFile
        let hostPaths = [
            "shared": mounts["shared"] ?? target.workspace + "/shared",
            "tmp": mounts["tmp"] ?? target.workspace + "/tmp",
            "vault": mounts["vault"] ?? target.workspace + "/vault", "ipc": target.ipc, "logs": target.logs,
            "state": target.workspace + "/.oxydra", MicroVMImage.configTag: configDirectory,
        ]
        plan.shares = MicroVMImage.mounts.map {
            .init(tag: $0.tag, hostPath: hostPaths[$0.tag] ?? "", readOnly: $0.readOnly)
        }
        plan.forwards = [
            .init(host: gatewayPort, guest: MicroVMImage.gatewayPort),
            .init(host: controlPort, guest: MicroVMImage.controlPort),
        ]
        plan.guestForwards = egress.forwards
        plan.accelerator = accelerator
        plan.memoryMiB = target.userConfig.resources.maxMemoryMiB ?? 512
        plan.vcpus = target.userConfig.resources.maxVCPUs ?? 1
        plan.kernelArguments = ["OXYDRA_USER=\(target.user)", "OXYDRA_GATEWAY_ADVERTISE=127.0.0.1:\(gatewayPort)"]
        if let problem = plan.problem { throw .error(problem) }

        let facts = Facts(
            accelerator: accelerator.rawValue, memoryMiB: plan.memoryMiB, vcpus: plan.vcpus, kernel: kernel.release)
        if let data = try? JSONEncoder().encode(facts) {
            try? ContainerGuest.writePrivate(String(decoding: data, as: UTF8.self), to: stateFile(target))
        }
        let supervision = target.runner.config.runner
        let timeout = accelerator == .kvm ? GuestLifecycle.startTimeout : .seconds(120)
        // One malloc arena: QEMU's own heap stays a few MiB smaller per VM.
        var spec = Supervisor.Spec(
            executable: qemu, arguments: plan.arguments,
            environment: ["PATH": "/usr/bin:/bin", "MALLOC_ARENA_MAX": "1"],
            workingDirectory: target.ipc, input: "",
            standardOutput: target.logs + "/qemu.log", standardError: target.logs + "/qemu.log",
            runtimeLog: target.logs + "/oxydra-vm.log", marker: target.marker, controlSocket: target.controlSocket,
            ipc: target.ipc, maxRestarts: supervision.restart == .onFailure ? supervision.maxRestarts : 0,
            windowSeconds: supervision.restartWindowSecs, readySeconds: Int(timeout.components.seconds) + 5)
        spec.microVM = .init(
            relay: ControlRelay(socket: target.controlSocket, port: controlPort, token: token),
            secretsFile: configDirectory + "/environment", secrets: shellAssignments(secrets),
            exitStatusFile: target.ipc + "/" + MicroVMImage.exitStatusFile)
        unlink(Supervisor.statePath(ipc: target.ipc))
        unlink(target.marker)
        let consoleStart = ContinuousClock.now
        let stderrStart = GuestLifecycle.fileSize(target.logs + "/oxydra-vm.stderr.log")
        let pid: Int32
        do {
            let input = (try? JSONEncoder().encode(spec)).map { Array($0) } ?? []
            pid = try DetachedProcess.launch(
                runner, arguments: ["supervise"], environment: context.environment,
                workingDirectory: target.ipc, input: input,
                standardOutput: target.logs + "/supervisor.log", standardError: target.logs + "/supervisor.log")
        } catch {
            throw .error(error.description)
        }

        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if DetachedProcess.hasExited(pid).exited {
                throw .error(
                    "the micro VM exited during boot"
                        + (Supervisor.readState(ipc: target.ipc)?.lastCrash.map { " (\($0.status))" } ?? "")
                        + bootOutput(target, stderrStart: stderrStart)
                        + "\nlogs: \(context.display.render(target.logs))")
            }
            if access(target.marker, F_OK) == 0,
                case .health(let health)? = try? ControlClient.request(
                    .healthCheck, socket: target.controlSocket, timeout: .seconds(5)), health.healthy
            {
                let lines =
                    ["user_id=\(target.user)"] + statusLines(health, target: target, context: context)
                    + ["boot_ms=\(Int((ContinuousClock.now - consoleStart) / .milliseconds(1)))"]
                return CommandOutput(standardOutput: lines.joined(separator: "\n") + "\n")
            }
            usleep(50_000)
        }
        kill(pid, SIGTERM)
        if let qemuPID = Supervisor.readState(ipc: target.ipc)?.guestPID { kill(qemuPID, SIGKILL) }
        let end = ContinuousClock.now + .seconds(5)
        while !DetachedProcess.hasExited(pid).exited && ContinuousClock.now < end { usleep(20_000) }
        throw .error(
            "the micro VM did not report a healthy gateway within \(timeout) and was stopped"
                + bootOutput(target, stderrStart: stderrStart)
                + "\nlogs: \(context.display.render(target.logs))")
    }

    /// The last console lines and QEMU's own errors, for a VM that did not come up.
    static func bootOutput(_ target: UserTarget, stderrStart: Int) -> String {
        let console = (try? String(contentsOfFile: consoleLog(target), encoding: .utf8)) ?? ""
        let lastLines = console.split(separator: "\n", omittingEmptySubsequences: true).suffix(15)
        let qemuErrors = (try? String(contentsOfFile: target.logs + "/qemu.log", encoding: .utf8))?.trimmed ?? ""
        let guestErrors = GuestLifecycle.tail(of: target.logs + "/oxydra-vm.stderr.log", from: stderrStart).trimmed
        var text = ""
        if !lastLines.isEmpty { text += "\nlast console lines:\n" + lastLines.joined(separator: "\n") }
        if !guestErrors.isEmpty { text += "\noxydra-vm:\n" + String(guestErrors.suffix(2000)) }
        if !qemuErrors.isEmpty { text += "\nQEMU: " + String(qemuErrors.suffix(1500)) }
        return text
    }

    /// `KEY='value'` lines the guest's init sources (`'` escaped as `'\''`).
    static func shellAssignments(_ variables: [String: String]) -> String {
        variables.sorted { $0.key < $1.key }.map { key, value in
            "\(key)='" + value.replacing("'", with: "'\\''") + "'\n"
        }.joined()
    }

    // MARK: status

    /// The guest's health as the host sees it: QEMU's pid (the guest's own is inside the VM) and
    /// the host's log directory.
    static func hostView(_ health: GuestHealth, target: UserTarget) -> GuestHealth {
        var health = health
        health.logDirectory = target.logs
        if let qemuPID = Supervisor.readState(ipc: target.ipc)?.guestPID { health.pid = Int(qemuPID) }
        return health
    }

    /// The guest's status lines with the host's view (``hostView(_:target:)``) and the VM's
    /// accelerator and size.
    static func statusLines(_ health: GuestHealth, target: UserTarget, context: RunnerContext) -> [String] {
        var lines = GuestLifecycle.statusLines(hostView(health, target: target), target: target, context: context)
        if let facts = readFacts(target) {
            lines += [
                "vm_accelerator=\(facts.accelerator)", "vm_memory_mib=\(facts.memoryMiB)", "vm_vcpus=\(facts.vcpus)",
                "vm_kernel=\(facts.kernel)",
            ]
        }
        return lines
    }

    // MARK: egress

    /// The VM's only ways out: one forward address per provider host, named in the VM's
    /// `/etc/hosts`, whose connections `runner vm-connect` carries to the provider.
    struct Egress {
        var forwards: [MicroVMPlan.GuestForward] = []
        var hosts = ""

        init(config: AgentConfig, runner: String) {
            var addresses: [String: String] = [:]
            var seen: Set<String> = []
            for (_, entry) in config.providers.registry.sorted(by: { $0.key < $1.key }) {
                guard let type = entry.providerType, let url = URL(string: entry.normalizedBaseURL(for: type)),
                    let host = url.host, !host.isEmpty
                else { continue }
                let port = url.port ?? (url.scheme?.lowercased() == "https" ? 443 : 80)
                // A provider on the host's loopback keeps its port; the guest's configuration
                // names it host.docker.internal (as in the container tier).
                let name =
                    GuestConfigExport.hostReachable(entry.baseURL ?? "") != nil
                    ? CredentialResolver.containerHostName : host
                let address: String
                if let known = addresses[name] {
                    address = known
                } else {
                    address = "10.0.2.\(100 + addresses.count)"
                    addresses[name] = address
                    hosts += "\(address) \(name)\n"
                }
                guard seen.insert("\(address):\(port)").inserted else { continue }
                forwards.append(
                    .init(address: address, port: port, command: [runner, "vm-connect", host, "\(port)"]))
            }
        }
    }
}
