import OxydraCore

/// The two containers of one user's container-tier guest, as Engine API `ContainerConfig`
/// documents: everything a start needs, decided in one place so the security properties can be
/// read (and tested) without an engine.
///
/// - Both run as the user's own uid:gid (never root), with every capability dropped,
///   `no-new-privileges`, an init process, a read-only root filesystem, and the process, memory and
///   CPU limits of `[resources]`.
/// - The runtime (`oxydra-vm`) sees the workspace's `shared`, `tmp`, `vault` (read-only), `ipc`,
///   `logs` and `.oxydra` under `/workspace`, and its bootstrap envelope read-only at
///   ``bootstrapPath``; its gateway is published on 127.0.0.1 only.
/// - The sidecar (`shell-vm`) sees only `shared` (`/shared`), `tmp` (`/tmp`) and the socket
///   directory it shares with the runtime — not the gateway token, the control socket, the vault
///   or the memory database — and has no network unless `tools.shell.network = "egress"`.
/// - Provider keys reach the runtime as environment variables only (never labels, command lines,
///   the envelope or an image layer).
public struct ContainerPlan: Sendable {
    /// Where the runtime finds its envelope (`--bootstrap-file`).
    public static let bootstrapPath = "/run/oxydra/bootstrap"
    /// The gateway's port inside the runtime container.
    public static let gatewayPort = 7600
    /// The directory, inside both containers, that holds the shell daemon's socket.
    public static let shellSocketDirectory = "/run/oxydra/shell"
    public static let shellSocket = shellSocketDirectory + "/shell-daemon.sock"

    public struct Resources: Sendable, Hashable {
        public var vcpus: Int?
        public var memoryMiB: Int?
        public var maxProcesses: Int

        public init(vcpus: Int? = nil, memoryMiB: Int? = nil, maxProcesses: Int = 256) {
            self.vcpus = vcpus
            self.memoryMiB = memoryMiB
            self.maxProcesses = maxProcesses
        }
    }

    public var user: UserID
    public var uid: UInt32
    public var gid: UInt32
    /// The user's workspace on the host (`<workspace_root>/<user>`).
    public var workspace: String
    /// The envelope file on the host (mounted read-only).
    public var bootstrapFile: String
    /// The host directory for the shell socket (mounted into both containers).
    public var shellSocketHostDirectory: String
    public var runtimeImage: String
    public var sidecarImage: String
    /// The loopback port the gateway is published on.
    public var gatewayHostPort: Int
    public var resources: Resources
    public var shellNetwork: ShellNetwork
    /// Environment of the runtime: provider keys the configuration names, nothing else secret.
    public var runtimeEnvironment: [String: String]
    /// The host directories behind `shared`, `tmp` and `vault` (the workspace's own unless `[mounts]`
    /// names others).
    public var sharedDirectory: String
    public var tmpDirectory: String
    public var vaultDirectory: String
    /// The host directory of the guest's configuration (``configMountPoint``, read-only), if any.
    public var configDirectory: String?
    /// Where the configuration directory appears and the runtime's `HOME` and working directory.
    public var configMountPoint = "/etc/oxydra"
    public var runtimeHome = "/etc/oxydra/home"
    public var runtimeWorkingDirectory = "/etc/oxydra/project"
    /// The runtime's network: the user's own bridge, so two users' guests cannot reach each other.
    public var runtimeNetwork = "bridge"
    /// Variables the shell's commands see (`tools.shell.env_keys`), given to the sidecar only.
    public var shellEnvironment: [String: String] = [:]
    /// Host files the runtime reads at the same path (e.g. `memory.model2vec_path`), read-only.
    public var readOnlyFiles: [String] = []
    /// `[runner] restart = "on-failure"`: the engine restarts a container that fails, at most this
    /// many times (with its own backoff, 100 ms doubling); nil leaves it stopped.
    public var restartAttempts: Int?

    public init(
        user: UserID, uid: UInt32, gid: UInt32, workspace: String, bootstrapFile: String,
        shellSocketHostDirectory: String, runtimeImage: String, sidecarImage: String, gatewayHostPort: Int,
        resources: Resources, shellNetwork: ShellNetwork, runtimeEnvironment: [String: String]
    ) {
        self.user = user
        self.uid = uid
        self.gid = gid
        self.workspace = workspace
        self.bootstrapFile = bootstrapFile
        self.shellSocketHostDirectory = shellSocketHostDirectory
        self.runtimeImage = runtimeImage
        self.sidecarImage = sidecarImage
        self.gatewayHostPort = gatewayHostPort
        self.resources = resources
        self.shellNetwork = shellNetwork
        self.runtimeEnvironment = runtimeEnvironment
        sharedDirectory = workspace + "/shared"
        tmpDirectory = workspace + "/tmp"
        vaultDirectory = workspace + "/vault"
    }

    /// The user's own network (`oxydra-<user>`), created by the runner before the runtime starts.
    public var userNetworkName: String { "oxydra-\(user.rawValue)" }

    /// `oxydra-container-<user>-oxydra-vm` / `-shell-vm`, as upstream names them.
    public func name(_ role: GuestImageBuilder.Role) -> String {
        "oxydra-container-\(user.rawValue)-" + (role == .runtime ? "oxydra-vm" : "shell-vm")
    }

    /// The labels every container (and the network) of `user` carries: how a later runner finds them.
    public static func userLabels(_ user: UserID) -> [String: String] {
        ["oxydra.user_id": user.rawValue, "oxydra.sandbox_tier": "container"]
    }

    /// ``userLabels(_:)`` plus the container's role.
    public func labels(_ role: GuestImageBuilder.Role) -> [String: String] {
        Self.userLabels(user).merging(["oxydra.guest_role": role.rawValue]) { $1 }
    }

    /// The problem with this plan, if any: a root uid, or a workspace path that is not absolute.
    public var problem: String? {
        if uid == 0 || gid == 0 {
            return "the container tier never runs a guest as root: run runner as the user who owns the workspace"
        }
        let paths =
            [workspace, bootstrapFile, shellSocketHostDirectory, sharedDirectory, tmpDirectory, vaultDirectory]
            + (configDirectory.map { [$0] } ?? []) + readOnlyFiles
        for path in paths where !path.hasPrefix("/") {
            return "container mounts need absolute host paths, got `\(path)`"
        }
        return nil
    }

    /// The runtime container's `ContainerConfig`.
    public var runtime: JSONValue {
        let port = "\(Self.gatewayPort)/tcp"
        var host = hostConfig(network: runtimeNetwork)
        var binds = [
            "\(sharedDirectory):/workspace/shared", "\(tmpDirectory):/workspace/tmp",
            "\(vaultDirectory):/workspace/vault:ro", "\(workspace)/ipc:/workspace/ipc",
            "\(workspace)/logs:/workspace/logs", "\(workspace)/.oxydra:/workspace/.oxydra",
            "\(bootstrapFile):\(Self.bootstrapPath):ro", "\(shellSocketHostDirectory):\(Self.shellSocketDirectory)",
        ]
        if let configDirectory { binds.append("\(configDirectory):\(configMountPoint):ro") }
        binds += readOnlyFiles.map { "\($0):\($0):ro" }
        host["Binds"] = .array(binds.map(JSONValue.string))
        // The root filesystem is read-only; scratch files of the runtime itself go to memory.
        host["Tmpfs"] = ["/tmp": "rw,nosuid,nodev,noexec,size=64m,mode=1777"]
        host["PortBindings"] = [port: [["HostIp": "127.0.0.1", "HostPort": .string(String(gatewayHostPort))]]]
        // Providers on the host's loopback are reached through the host's bridge address.
        host["ExtraHosts"] = ["host.docker.internal:host-gateway"]
        var environment = runtimeEnvironment
        environment["HOME"] = runtimeHome
        return [
            "Image": .string(runtimeImage),
            "Cmd": .array(
                [
                    "--user-id", user.rawValue, "--workspace-root", "/workspace", "--bootstrap-file",
                    Self.bootstrapPath, "--gateway-bind", "0.0.0.0:\(Self.gatewayPort)", "--gateway-advertise",
                    "127.0.0.1:\(gatewayHostPort)",
                ].map(JSONValue.string)),
            "User": .string("\(uid):\(gid)"),
            "WorkingDir": .string(runtimeWorkingDirectory),
            "Env": .array(environment.sorted { $0.key < $1.key }.map { .string("\($0.key)=\($0.value)") }),
            "Labels": .object(labels(.runtime).mapValues(JSONValue.string)),
            "ExposedPorts": [port: [:]],
            "HostConfig": .object(host),
        ]
    }

    /// The shell sidecar's `ContainerConfig`.
    public var sidecar: JSONValue {
        // With egress the shell joins the user's own network (never another user's, never the host's).
        var host = hostConfig(network: shellNetwork == .egress ? runtimeNetwork : "none")
        host["Binds"] = .array(
            [
                "\(sharedDirectory):/shared", "\(tmpDirectory):/tmp",
                "\(shellSocketHostDirectory):\(Self.shellSocketDirectory)",
            ].map(JSONValue.string))
        var environment = shellEnvironment
        environment["PATH"] = "/usr/local/bin:/usr/bin:/bin"
        environment["LANG"] = "C.UTF-8"
        environment["HOME"] = "/shared"
        return [
            "Image": .string(sidecarImage),
            "Cmd": .array(["--socket", .string(Self.shellSocket)]),
            "User": .string("\(uid):\(gid)"),
            "Env": .array(environment.sorted { $0.key < $1.key }.map { .string("\($0.key)=\($0.value)") }),
            "WorkingDir": "/shared",
            "Hostname": "shell-vm",
            "Labels": .object(labels(.sidecar).mapValues(JSONValue.string)),
            "HostConfig": .object(host),
        ]
    }

    private func hostConfig(network: String) -> [String: JSONValue] {
        var host: [String: JSONValue] = [
            "NetworkMode": .string(network), "CapDrop": ["ALL"], "SecurityOpt": ["no-new-privileges"],
            "Init": true, "ReadonlyRootfs": true, "PidsLimit": .integer(resources.maxProcesses),
            "RestartPolicy": restartAttempts.map { ["Name": "on-failure", "MaximumRetryCount": .integer($0)] }
                ?? ["Name": "no"],
            // Bounded output: the engine keeps at most 3 × 10 MB per container.
            "LogConfig": ["Type": "json-file", "Config": ["max-size": "10m", "max-file": "3"]],
        ]
        if let memory = resources.memoryMiB { host["Memory"] = .integer(memory << 20) }
        if let vcpus = resources.vcpus { host["NanoCpus"] = .integer(vcpus * 1_000_000_000) }
        return host
    }
}

extension GuestImages {
    /// The configured image of `role` (`guest_images.oxydra_vm` or `shell_vm`).
    public func reference(_ role: GuestImageBuilder.Role) -> String { role == .runtime ? oxydraVM : shellVM }
}
