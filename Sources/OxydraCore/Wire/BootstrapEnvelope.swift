/// What the runner tells a guest at start (ARCHITECTURE.md §4): sent framed on the guest's stdin in
/// the process tier, or as a read-only file in the container and micro_vm tiers.
public struct BootstrapEnvelope: Sendable, Hashable {
    public var userID: UserID
    public var sandboxTier: SandboxTier
    public var workspaceRoot: String
    public var sidecarEndpoint: SidecarEndpoint?
    public var runtimePolicy: RuntimePolicy?
    public var startupStatus: StartupStatus
    /// Process tier: how the guest starts its shell sandbox (the runner found both programs and
    /// checked that bubblewrap works here). Absent when the shell is off or unavailable.
    public var shellSandbox: ShellSandboxLaunch?
    /// The user's enabled `[channels.telegram]` (the token's variable name only; its value reaches
    /// the guest as that environment variable).
    public var telegram: TelegramConfig?
    /// micro_vm tier: also serve the control protocol on this TCP port of the VM, for requests that
    /// carry `token` (QEMU publishes the port on the host's loopback only).
    public var controlListen: ControlListen?

    public struct ControlListen: Sendable, Hashable {
        public var port: Int
        public var token: String

        public init(port: Int, token: String) {
            self.port = port
            self.token = token
        }
    }

    public init(
        userID: UserID, sandboxTier: SandboxTier, workspaceRoot: String, sidecarEndpoint: SidecarEndpoint? = nil,
        runtimePolicy: RuntimePolicy? = nil, startupStatus: StartupStatus, shellSandbox: ShellSandboxLaunch? = nil
    ) {
        self.shellSandbox = shellSandbox
        self.userID = userID
        self.sandboxTier = sandboxTier
        self.workspaceRoot = workspaceRoot
        self.sidecarEndpoint = sidecarEndpoint
        self.runtimePolicy = runtimePolicy
        self.startupStatus = startupStatus
    }

    public struct SidecarEndpoint: Sendable, Hashable {
        /// `unix` or `vsock`.
        public var transport: String
        public var address: String

        public init(transport: String, address: String) {
            self.transport = transport
            self.address = address
        }
    }

    /// The programs that make up the process tier's shell sandbox.
    public struct ShellSandboxLaunch: Sendable, Hashable {
        /// Absolute path of `bwrap`.
        public var bubblewrap: String
        /// Absolute path of `shell-daemon`.
        public var executable: String

        public init(bubblewrap: String, executable: String) {
            self.bubblewrap = bubblewrap
            self.executable = executable
        }
    }

    /// Resolved mounts and limits for the guest.
    public struct RuntimePolicy: Sendable, Hashable {
        public var mounts: [String: String]
        public var resources: [String: Int]
        /// Names of credentials the guest may use (never their values).
        public var credentialRefs: [String: String]
        /// Host paths the agent must never reach, even through a mount: the runner's and the agent
        /// configuration directories, every workspace's `.oxydra/`, `ipc/` and `logs/`. The shell
        /// sandbox masks those that lie inside `shared` or `tmp`.
        public var protectedPaths: [String]
        /// The user file's `[budget]` (the guest applies the stricter of it and its own).
        public var budget = BudgetConfig()

        public init(
            mounts: [String: String] = [:], resources: [String: Int] = [:], credentialRefs: [String: String] = [:],
            protectedPaths: [String] = []
        ) {
            self.protectedPaths = protectedPaths
            self.mounts = mounts
            self.resources = resources
            self.credentialRefs = credentialRefs
        }
    }

    public var json: JSONValue {
        .compactObject([
            "user_id": .string(userID.rawValue), "sandbox_tier": .string(sandboxTier.rawValue),
            "workspace_root": .string(workspaceRoot),
            "sidecar_endpoint": sidecarEndpoint.map {
                ["transport": .string($0.transport), "address": .string($0.address)]
            },
            "runtime_policy": runtimePolicy.map { policy in
                [
                    "mounts": .object(policy.mounts.mapValues(JSONValue.string)),
                    "resources": .object(policy.resources.mapValues(JSONValue.integer)),
                    "credential_refs": .object(policy.credentialRefs.mapValues(JSONValue.string)),
                    "protected_paths": .array(policy.protectedPaths.map(JSONValue.string)),
                    "budget_daily_usd": policy.budget.dailyUSD.map(JSONValue.number) ?? .null,
                    "budget_monthly_usd": policy.budget.monthlyUSD.map(JSONValue.number) ?? .null,
                ]
            },
            "startup_status": startupStatus.json,
            "shell_sandbox": shellSandbox.map {
                ["bubblewrap": .string($0.bubblewrap), "executable": .string($0.executable)]
            },
            "channels": telegram.map { ["telegram": Self.json($0)] },
            "control_listen": controlListen.map { ["port": .integer($0.port), "token": .string($0.token)] },
        ])
    }

    static func json(_ telegram: TelegramConfig) -> JSONValue {
        .compactObject([
            "enabled": .bool(telegram.enabled), "bot_token_env": telegram.botTokenEnv.map(JSONValue.string),
            "allowed_user_ids": .array(telegram.allowedUserIDs.map(JSONValue.integer)),
            "session_mode": .string(telegram.sessionMode.rawValue), "api_base_url": .string(telegram.apiBaseURL),
            "polling_timeout_secs": .integer(telegram.pollingTimeoutSecs),
        ])
    }

    static func telegram(_ reader: FieldReader) throws(WireError) -> TelegramConfig {
        var telegram = TelegramConfig()
        telegram.enabled = try reader.bool("enabled", default: false)
        telegram.botTokenEnv = try reader.optionalString("bot_token_env")
        guard case .array(let ids)? = reader.members["allowed_user_ids"] else {
            throw WireError("\(reader.path).allowed_user_ids: expected an array of integers")
        }
        telegram.allowedUserIDs = try ids.enumerated().map { (index, value) throws(WireError) in
            guard let id = value.intValue else {
                throw WireError("\(reader.path).allowed_user_ids[\(index)]: expected an integer")
            }
            return id
        }
        let mode = try reader.string("session_mode")
        guard let parsed = TelegramSessionMode(rawValue: mode) else {
            throw WireError("\(reader.path).session_mode: unknown mode `\(mode)` (per_chat or shared)")
        }
        telegram.sessionMode = parsed
        telegram.apiBaseURL = try reader.nonBlankString("api_base_url")
        telegram.pollingTimeoutSecs = try reader.optionalInt("polling_timeout_secs") ?? 30
        return telegram
    }

    /// The framed form (4-byte big-endian length + compact JSON).
    public var framed: [UInt8] { LengthPrefixedFrame.encode(json) }

    /// Parses and validates an envelope body (the JSON, without the length prefix).
    public init(json bytes: [UInt8]) throws(WireError) {
        let value: JSONValue
        do {
            value = try bytes.withUnsafeBufferPointer { buffer throws(JSONSyntaxError) in try JSONParser.parse(buffer) }
        } catch {
            throw WireError("bootstrap envelope is not valid JSON: \(error)")
        }
        let reader = try FieldReader(value, path: "bootstrap")
        let rawUser = try reader.nonBlankString("user_id")
        switch Result(catching: { () throws(IdentifierError) in try UserID.validated(rawUser) }) {
        case .success(let user): userID = user
        case .failure(let error): throw WireError("bootstrap.user_id: \(error)")
        }
        let tier = try reader.string("sandbox_tier")
        guard let sandboxTier = SandboxTier(rawValue: tier) else {
            throw WireError("bootstrap.sandbox_tier: unknown tier `\(tier)` (process, container or micro_vm)")
        }
        self.sandboxTier = sandboxTier
        workspaceRoot = try reader.nonBlankString("workspace_root")
        if let endpoint = try reader.optionalObject("sidecar_endpoint") {
            sidecarEndpoint = SidecarEndpoint(
                transport: try endpoint.nonBlankString("transport"), address: try endpoint.nonBlankString("address"))
        }
        if let policy = try reader.optionalObject("runtime_policy") {
            var mounts: [String: String] = [:]
            var resources: [String: Int] = [:]
            var refs: [String: String] = [:]
            if let object = try policy.optionalObject("mounts") {
                for key in object.members.keys { mounts[key] = try object.nonBlankString(key) }
            }
            if let object = try policy.optionalObject("resources") {
                for key in object.members.keys {
                    let value = try object.int(key)
                    if value <= 0 {
                        throw WireError("bootstrap.runtime_policy.resources.\(key): must be greater than 0")
                    }
                    resources[key] = value
                }
            }
            if let object = try policy.optionalObject("credential_refs") {
                for key in object.members.keys { refs[key] = try object.nonBlankString(key) }
            }
            let protected = try policy.stringArray("protected_paths")
            if let relative = protected.firstIndex(where: { !$0.hasPrefix("/") }) {
                throw WireError("bootstrap.runtime_policy.protected_paths[\(relative)]: expected an absolute path")
            }
            var parsed = RuntimePolicy(
                mounts: mounts, resources: resources, credentialRefs: refs, protectedPaths: protected)
            parsed.budget = BudgetConfig(
                dailyUSD: try policy.optionalDouble("budget_daily_usd"),
                monthlyUSD: try policy.optionalDouble("budget_monthly_usd"))
            for (key, value) in [("daily", parsed.budget.dailyUSD), ("monthly", parsed.budget.monthlyUSD)] {
                if let value, !(value.isFinite && value > 0) {
                    throw WireError("bootstrap.runtime_policy.budget_\(key)_usd: must be a positive number")
                }
            }
            runtimePolicy = parsed
        }
        startupStatus = try StartupStatus(reader.object("startup_status"))
        if let launch = try reader.optionalObject("shell_sandbox") {
            let bubblewrap = try launch.nonBlankString("bubblewrap")
            let executable = try launch.nonBlankString("executable")
            guard bubblewrap.hasPrefix("/"), executable.hasPrefix("/") else {
                throw WireError("bootstrap.shell_sandbox: bubblewrap and executable must be absolute paths")
            }
            shellSandbox = ShellSandboxLaunch(bubblewrap: bubblewrap, executable: executable)
        }
        if let channels = try reader.optionalObject("channels"),
            let telegram = try channels.optionalObject("telegram")
        {
            self.telegram = try Self.telegram(telegram)
        }
        if let listen = try reader.optionalObject("control_listen") {
            let port = try listen.int("port")
            let token = try listen.string("token")
            guard sandboxTier == .microVM else {
                throw WireError("bootstrap.control_listen: only the micro_vm tier serves control over TCP")
            }
            guard (1...65535).contains(port) else { throw WireError("bootstrap.control_listen.port: must be 1–65535") }
            guard token.count >= 16 else {
                throw WireError("bootstrap.control_listen.token: must be at least 16 characters")
            }
            controlListen = ControlListen(port: port, token: token)
        }
        guard startupStatus.sandboxTier == sandboxTier else {
            throw WireError(
                "bootstrap.startup_status.sandbox_tier (\(startupStatus.sandboxTier.rawValue)) does not match "
                    + "bootstrap.sandbox_tier (\(sandboxTier.rawValue))")
        }
        if sidecarEndpoint == nil, startupStatus.sidecarAvailable || startupStatus.shellAvailable {
            throw WireError("bootstrap.startup_status claims a sidecar or shell but there is no sidecar_endpoint")
        }
        if startupStatus.shellAvailable || startupStatus.browserAvailable, !startupStatus.sidecarAvailable {
            throw WireError("bootstrap.startup_status: shell or browser available needs sidecar_available")
        }
    }

    /// Parses a framed envelope (header + body, nothing after it).
    public init(framed bytes: [UInt8]) throws(WireError) {
        try self.init(json: LengthPrefixedFrame.decodeSingle(bytes))
    }
}
