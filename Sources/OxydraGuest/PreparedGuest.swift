import OxydraConfig
import OxydraCore
import OxydraRuntime
import OxydraSandbox

#if canImport(Glibc)
    import Glibc
#endif

/// Everything the guest reads from the host before it confines itself.
public struct PreparedGuest: Sendable {
    public enum BootstrapSource: Sendable {
        case standardInput
        case file(String)
        /// Started by hand: a process-tier envelope is synthesised from the flags.
        case none
    }

    var envelope: BootstrapEnvelope
    var workspace: WorkspacePaths
    var config: AgentConfig
    var keySource: ConfigSource
    var catalog: ModelCatalog
    var operatorPrompt: String?
    var bind: GatewayBind
    /// The `host:port` clients use when it differs from `bind` (the container tier publishes the
    /// gateway's port on the host's loopback).
    var advertise: GatewayBind?
    /// Tokens the gateway accepts: the one created for this start (written to `ipc/gateway-token`)
    /// and the operator's `gateway.auth_token_env` for remote clients.
    var gatewayTokens: [String]
    var environment: [String: String]
    /// Reasons added by the guest itself (e.g. Landlock unavailable).
    var degradedReasons: [DegradedReason] = []
    var landlockABI: Int?
    /// The shell daemon's socket, when its sandbox was started.
    var shellSocket: String?
    /// The shell sandbox's supervisor, when this guest started it.
    var shellSupervisor: pid_t?

    var startupStatus: StartupStatus {
        var status = envelope.startupStatus
        status.degradedReasons += degradedReasons
        if shellSocket == nil {
            status.shellAvailable = false
            status.sidecarAvailable = false
        }
        return status
    }

    public static func load(
        user: UserID, workspaceRoot: String, bootstrap: BootstrapSource, gatewayBind: String?,
        gatewayAdvertise: String? = nil, overrides: [String]
    ) throws(GuestStartError) -> PreparedGuest {
        let envelope = try readEnvelope(bootstrap, user: user, workspaceRoot: workspaceRoot)
        guard envelope.userID == user else {
            throw GuestStartError("the bootstrap envelope is for user `\(envelope.userID)`, but --user-id is `\(user)`")
        }
        var workspace = WorkspacePaths(root: workspaceRoot, mounts: envelope.runtimePolicy?.mounts ?? [:])
        // In a micro VM the workspace is a 9p share, where Unix sockets cannot be bound: the
        // control socket lives in the VM's own memory.
        if envelope.sandboxTier == .microVM { workspace.controlSocketOverride = "/run/oxydra-control.sock" }
        try workspace.create()

        let environment = ProcessInfo.processInfo.environment
        let loader = AgentConfigLoader.standard(environment: environment, commandLineOverrides: overrides)
        let loaded = loader.load()
        let config: AgentConfig
        do {
            config = try loaded.validated()
        } catch {
            throw GuestStartError("invalid agent configuration:\n\(error)")
        }
        let catalog: ModelCatalog
        do {
            catalog = try CatalogLoader.load(paths: loader.paths, display: loader.display).0
        } catch {
            throw GuestStartError("\(error)")
        }
        let bindText = gatewayBind ?? config.gateway.bind
        let parsed = GatewayBind.parse(bindText)
        guard let bind = parsed.bind else {
            throw GuestStartError("gateway bind address `\(bindText)` \(parsed.problem ?? "is invalid")")
        }
        var advertise: GatewayBind?
        if let gatewayAdvertise {
            let parsed = GatewayBind.parse(gatewayAdvertise)
            guard let value = parsed.bind, value.port != 0 else {
                throw GuestStartError(
                    "--gateway-advertise `\(gatewayAdvertise)` \(parsed.problem ?? "needs a fixed port")")
            }
            advertise = value
        }
        let localToken = GatewayProtocol.newToken()
        var tokens = [localToken]
        if let variable = config.gateway.authTokenEnv {
            guard let value = environment[variable]?.trimmed, value.count >= 16 else {
                throw GuestStartError(
                    "gateway.auth_token_env names \(variable), but that variable is unset or shorter than 16 characters"
                )
            }
            tokens.append(value)
        } else if !bind.isLoopback && !(envelope.sandboxTier != .process && (advertise?.isLoopback ?? false)) {
            // In the container and micro_vm tiers the gateway listens on the guest's own interface
            // and the runner publishes it on the host's loopback only (it still requires the token).
            throw GuestStartError(
                "the gateway would listen on \(bindText), which is not loopback, without a token; set gateway.auth_token_env"
            )
        }
        let home = environment["HOME"].map { [$0 + "/.config/oxydra"] } ?? []
        let operatorPrompt = SystemPrompt.operatorText(
            searching: [workspace.internalDirectory, loader.paths.projectDirectory] + home + [
                loader.paths.systemDirectory
            ])

        var prepared = PreparedGuest(
            envelope: envelope, workspace: workspace, config: config,
            keySource: loaded.source(of: ["providers", "registry", config.selection.provider, "api_key"]),
            catalog: catalog, operatorPrompt: operatorPrompt, bind: bind, advertise: advertise, gatewayTokens: tokens,
            environment: environment)
        try workspace.writePrivateFile(localToken + "\n", to: workspace.tokenFile)
        if envelope.sandboxTier == .process && config.tools.shell.network == .egress {
            throw GuestStartError(
                "tools.shell.network = \"egress\" needs the container tier; the process tier's shell has no network")
        }
        if envelope.sandboxTier == .process {
            // Children inherit Landlock, and a confined process cannot set up bubblewrap's mounts:
            // the sandbox starts first.
            prepared.startShellSandbox()
            prepared.confine()
        } else if envelope.sandboxTier == .microVM && envelope.shellSandbox != nil {
            // The micro VM is the boundary around the guest; inside it the shell still gets its own
            // bubblewrap sandbox (no network, only shared and tmp), started by the guest.
            prepared.startShellSandbox()
        } else if let endpoint = envelope.sidecarEndpoint, endpoint.transport == "unix", config.tools.shell.enabled {
            // Container and micro_vm tiers: the runner started the shell sidecar; the guest only connects.
            prepared.shellSocket = endpoint.address
        }
        return prepared
    }

    /// Starts the shell sandbox's supervisor (`shell-daemon --sandbox`), which dies with this process.
    private mutating func startShellSandbox() {
        guard let launch = envelope.shellSandbox, let endpoint = envelope.sidecarEndpoint,
            endpoint.transport == "unix", config.tools.shell.enabled
        else { return }
        var arguments = [
            "--sandbox", "--socket", endpoint.address, "--bwrap", launch.bubblewrap, "--shared", workspace.shared,
            "--tmp", workspace.tmp, "--etc", workspace.ipc + "/shell-sandbox", "--parent", String(getpid()),
        ]
        // In a micro VM the guest is root and the shares show the host account as their owner: the
        // sandbox runs as that owner, or it could not enter them.
        var owner = stat()
        if getuid() == 0, envelope.sandboxTier == .microVM, stat(workspace.shared, &owner) == 0, owner.st_uid != 0 {
            arguments += ["--run-as", "\(owner.st_uid):\(owner.st_gid)"]
        }
        // Values travel in the supervisor's environment, not its arguments (which `ps` shows).
        var childEnvironment = ["PATH=\(ShellSandbox.path)"]
        for key in config.tools.shell.envKeys {
            if let value = environment[key] {
                arguments += ["--env", key]
                childEnvironment.append("\(key)=\(value)")
            }
        }
        var resources = envelope.runtimePolicy?.resources ?? [:]
        // A fork bomb must stop somewhere even when the operator set no limit (and as root, where
        // RLIMIT_NPROC does not apply, the sandbox's cgroup is what stops it).
        resources["max_processes"] = resources["max_processes"] ?? ShellSandbox.defaultMaxProcesses
        for (key, flag) in [
            ("max_vcpus", "--max-vcpus"), ("max_memory_mib", "--max-memory-mib"), ("max_processes", "--max-processes"),
        ] {
            if let value = resources[key] { arguments += [flag, String(value)] }
        }
        // Second layer behind the runner's refusal of overlapping mounts: the guest's own internal
        // directories and whatever the runner protects are masked inside the sandbox.
        let protected =
            [workspace.internalDirectory, workspace.ipc, workspace.logs]
            + (envelope.runtimePolicy?.protectedPaths ?? [])
        for path in protected { arguments += ["--mask", path] }
        let log = open(workspace.logs + "/shell-daemon.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer {
            if log >= 0 { close(log) }
            if devNull >= 0 { close(devNull) }
        }
        var options = ProcessSpawner.Options(
            standardInput: devNull, standardOutput: log >= 0 ? log : 2, standardError: log >= 0 ? log : 2)
        options.deathSignal = SIGKILL
        do {
            shellSupervisor = try ProcessSpawner.spawn(
                launch.executable, arguments: arguments, environment: childEnvironment, options: options)
            shellSocket = endpoint.address
        } catch {
            degradedReasons.append(
                DegradedReason(
                    code: DegradedReason.sidecarUnavailable,
                    detail: "cannot start \(launch.executable): \(error); shell tools are disabled"))
        }
    }

    /// Process tier: the kernel confines this process to the workspace and the system files it needs.
    private mutating func confine() {
        var extra: [String] = []
        if let model = config.memory.model2vecPath {
            extra.append(model.hasPrefix("/") ? model : workspace.root + "/" + model)
        }
        switch Landlock.restrictSelf(
            GuestConfinement.rules(workspace: workspace.root, extraReadOnly: extra + workspace.mountRules))
        {
        case .success(let abi):
            landlockABI = abi
        case .failure(let reason):
            degradedReasons.append(
                DegradedReason(
                    code: DegradedReason.processHardeningLimited,
                    detail: "Landlock could not confine the guest: \(reason.reason)"))
        }
    }

    private static func readEnvelope(_ source: BootstrapSource, user: UserID, workspaceRoot: String)
        throws(GuestStartError)
        -> BootstrapEnvelope
    {
        do {
            switch source {
            case .standardInput:
                let header = try RawInput.read(count: 4, from: 0)
                let length = header.reduce(0) { $0 << 8 | Int($1) }
                guard length <= LengthPrefixedFrame.maxLength else {
                    throw GuestStartError("bootstrap envelope of \(length) bytes exceeds the limit")
                }
                return try BootstrapEnvelope(json: try RawInput.read(count: length, from: 0))
            case .file(let path):
                guard let data = FileManager.default.contents(atPath: path) else {
                    throw GuestStartError("cannot read the bootstrap file \(path)")
                }
                let bytes = [UInt8](data)
                // The file holds either the raw JSON or a framed envelope.
                if bytes.first == UInt8(ascii: "{") { return try BootstrapEnvelope(json: bytes) }
                return try BootstrapEnvelope(framed: bytes)
            case .none:
                return BootstrapEnvelope(
                    userID: user, sandboxTier: .process, workspaceRoot: workspaceRoot,
                    startupStatus: StartupStatus(sandboxTier: .process))
            }
        } catch let error as WireError {
            throw GuestStartError("invalid bootstrap envelope: \(error.message)")
        } catch let error as GuestStartError {
            throw error
        } catch {
            throw GuestStartError("\(error)")
        }
    }
}

/// The user's workspace on the host and where its agent-visible directories live.
struct WorkspacePaths: Sendable {
    var root: String
    var shared: String
    var tmp: String
    var vault: String

    init(root: String, mounts: [String: String]) {
        self.root = root
        shared = mounts["shared"] ?? root + "/shared"
        tmp = mounts["tmp"] ?? root + "/tmp"
        vault = mounts["vault"] ?? root + "/vault"
    }

    var ipc: String { root + "/ipc" }
    var logs: String { root + "/logs" }
    var internalDirectory: String { root + "/.oxydra" }
    var marker: String { ipc + "/" + GatewayProtocol.endpointMarkerFile }
    var tokenFile: String { ipc + "/" + GatewayProtocol.tokenFile }
    /// Where the control socket is bound when not in `ipc/` (a micro VM's `ipc/` is a 9p share).
    var controlSocketOverride: String?
    var controlSocket: String { controlSocketOverride ?? ipc + "/runner-control.sock" }

    /// Mounts outside the workspace root need their own Landlock rules.
    var mountRules: [String] { [shared, tmp, vault].filter { !$0.hasPrefix(root + "/") } }

    /// Creates the directories; the workspace's own are private (0700). Directories the operator
    /// mounted in their place keep their mode.
    func create() throws(GuestStartError) {
        for directory in [root, shared, tmp, vault, ipc, logs, internalDirectory] {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw GuestStartError("cannot create \(directory): \(error)")
            }
            if directory == root || directory.hasPrefix(root + "/") { _ = chmod(directory, 0o700) }
        }
    }

    /// Writes a file only this user can read (0600), replacing any earlier one atomically.
    func writePrivateFile(_ text: String, to path: String) throws(GuestStartError) {
        let temporary = path + ".tmp"
        unlink(temporary)
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw GuestStartError("cannot create \(temporary): \(String(cString: strerror(errno)))")
        }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        close(descriptor)
        guard written == bytes.count, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw GuestStartError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}

/// Reads exactly `count` bytes from a file descriptor.
enum RawInput {
    static func read(count: Int, from descriptor: Int32) throws(GuestStartError) -> [UInt8] {
        if count == 0 { return [] }
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let got = bytes.withUnsafeMutableBytes { buffer in
                Glibc.read(descriptor, buffer.baseAddress! + filled, count - filled)
            }
            if got < 0 && errno == EINTR { continue }
            if got < 0 {
                throw GuestStartError("reading the bootstrap envelope failed: \(String(cString: strerror(errno)))")
            }
            if got == 0 {
                throw GuestStartError(
                    "standard input ended after \(filled) of \(count) bytes of the bootstrap envelope")
            }
            filled += got
        }
        return bytes
    }
}

public struct GuestStartError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
