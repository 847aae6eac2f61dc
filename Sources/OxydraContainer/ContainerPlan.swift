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
    }

    /// `oxydra-container-<user>-oxydra-vm` / `-shell-vm`, as upstream names them.
    public func name(_ role: GuestImageBuilder.Role) -> String {
        "oxydra-container-\(user.rawValue)-" + (role == .runtime ? "oxydra-vm" : "shell-vm")
    }

    /// The labels every container of the user carries (how a later runner finds them).
    public func labels(_ role: GuestImageBuilder.Role) -> [String: String] {
        ["oxydra.user_id": user.rawValue, "oxydra.sandbox_tier": "container", "oxydra.guest_role": role.rawValue]
    }

    /// The problem with this plan, if any: a root uid, or a workspace path that is not absolute.
    public var problem: String? {
        if uid == 0 || gid == 0 {
            return "the container tier never runs a guest as root: run runner as the user who owns the workspace"
        }
        for path in [workspace, bootstrapFile, shellSocketHostDirectory] where !path.hasPrefix("/") {
            return "container mounts need absolute host paths, got `\(path)`"
        }
        return nil
    }

    /// The runtime container's `ContainerConfig`.
    public var runtime: JSONValue {
        let port = "\(Self.gatewayPort)/tcp"
        var host = hostConfig(network: "bridge")
        host["Binds"] = .array(
            [
                "\(workspace)/shared:/workspace/shared", "\(workspace)/tmp:/workspace/tmp",
                "\(workspace)/vault:/workspace/vault:ro", "\(workspace)/ipc:/workspace/ipc",
                "\(workspace)/logs:/workspace/logs", "\(workspace)/.oxydra:/workspace/.oxydra",
                "\(bootstrapFile):\(Self.bootstrapPath):ro", "\(shellSocketHostDirectory):\(Self.shellSocketDirectory)",
            ].map(JSONValue.string))
        host["PortBindings"] = [port: [["HostIp": "127.0.0.1", "HostPort": .string(String(gatewayHostPort))]]]
        return [
            "Image": .string(runtimeImage),
            "Cmd": .array(
                [
                    "--user-id", user.rawValue, "--workspace-root", "/workspace", "--bootstrap-file",
                    Self.bootstrapPath, "--gateway-bind", "0.0.0.0:\(Self.gatewayPort)",
                ].map(JSONValue.string)),
            "User": .string("\(uid):\(gid)"),
            "Env": .array(runtimeEnvironment.sorted { $0.key < $1.key }.map { .string("\($0.key)=\($0.value)") }),
            "Labels": .object(labels(.runtime).mapValues(JSONValue.string)),
            "ExposedPorts": [port: [:]],
            "HostConfig": .object(host),
        ]
    }

    /// The shell sidecar's `ContainerConfig`.
    public var sidecar: JSONValue {
        var host = hostConfig(network: shellNetwork == .egress ? "bridge" : "none")
        host["Binds"] = .array(
            [
                "\(workspace)/shared:/shared", "\(workspace)/tmp:/tmp",
                "\(shellSocketHostDirectory):\(Self.shellSocketDirectory)",
            ].map(JSONValue.string))
        return [
            "Image": .string(sidecarImage),
            "Cmd": .array(["--socket", .string(Self.shellSocket)]),
            "User": .string("\(uid):\(gid)"),
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/shared"],
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
            "RestartPolicy": ["Name": "no"],
        ]
        if let memory = resources.memoryMiB { host["Memory"] = .integer(memory << 20) }
        if let vcpus = resources.vcpus { host["NanoCpus"] = .integer(vcpus * 1_000_000_000) }
        return host
    }
}
