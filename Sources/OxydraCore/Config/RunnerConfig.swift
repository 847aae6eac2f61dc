/// How strongly a user's guest is isolated from the host.
public enum SandboxTier: String, ConfigEnum, Hashable, Codable {
    /// A host process confined with Landlock; shell tools only inside bubblewrap. Not production-safe.
    case process
    /// A container through the Docker Engine API.
    case container
    /// A lightweight VM (Firecracker, or QEMU microvm).
    case microVM = "micro_vm"
}

/// `runner.toml`: the operator's file — where workspaces live, the default tier and the users.
public struct RunnerConfig: ConfigSection, Hashable {
    public var configVersion: ConfigVersion?
    /// Relative paths resolve against the runner config's base directory (see ``RunnerPaths``).
    public var workspaceRoot = ".oxydra/workspaces"
    public var defaultTier = SandboxTier.microVM
    public var guestImages = GuestImages()
    public var microVM = MicroVMConfig()
    public var users: [String: UserRegistration] = [:]
    public var runner = Supervision()
    public var web = WebConfig()

    public init() {}

    public static var fields: [ConfigField<RunnerConfig>] {
        [
            .field("config_version", \.configVersion),
            .field("workspace_root", \.workspaceRoot, check: .nonBlank),
            .field("default_tier", \.defaultTier),
            .field("guest_images", \.guestImages),
            .field("micro_vm", \.microVM),
            .field("runner", \.runner),
            .field("web", \.web),
            .field("users", \.users),
        ]
    }

    /// Checks every user id (they become directory names).
    public func validate(_ diagnostics: ConfigDiagnostics) {
        for id in users.keys.sorted() {
            do {
                _ = try UserID.validated(id)
            } catch {
                diagnostics.report(
                    ["users", id], "[users.\(ConfigPath.renderKey(id))]: \(error)",
                    source: diagnostics.source(of: ["users", id]))
            }
        }
    }
}

/// `web.auth_mode`.
public enum WebAuthMode: String, ConfigEnum, Hashable, Codable {
    /// Every request needs the token (a bearer header, or the session cookie the login gives).
    case token
    /// No token: only for a loopback bind on a single-user machine.
    case disabled
}

/// `[web]`: `runner web`, the browser app.
public struct WebConfig: ConfigSection, Hashable {
    /// `false` makes `runner web` refuse to start.
    public var enabled = true
    public var bind = "127.0.0.1:9400"
    public var authMode = WebAuthMode.token
    /// The variable holding the token; unset: a new token is made at each start and printed once.
    public var authTokenEnv: String?

    public init() {}

    public static var fields: [ConfigField<WebConfig>] {
        [
            .field("enabled", \.enabled),
            .field("bind", \.bind, check: ConfigCheck { GatewayBind.parse($0).problem }),
            .field("auth_mode", \.authMode),
            .field("auth_token_env", \.authTokenEnv, check: .environmentVariableNameWhenSet),
        ]
    }
}

/// What happens when a guest crashes.
public enum RestartPolicy: String, ConfigEnum, Hashable, Codable {
    /// Restarted with backoff (1 s, doubling to 30 s) until it crashes too often.
    case onFailure = "on-failure"
    /// Left stopped.
    case no
}

/// `[runner]`: how the runner looks after the guests it started.
public struct Supervision: ConfigSection, Hashable {
    public var restart = RestartPolicy.onFailure
    /// A guest that crashes more often than this within `restart_window_secs` is left stopped
    /// (`runner status` says it is in a crash loop).
    public var maxRestarts = 5
    public var restartWindowSecs = 600

    public init() {}

    public static var fields: [ConfigField<Supervision>] {
        [
            .field("restart", \.restart),
            .field("max_restarts", \.maxRestarts, check: .positive),
            .field("restart_window_secs", \.restartWindowSecs, check: .positive),
        ]
    }
}

/// `[guest_images]`: images for the container and micro_vm tiers.
public struct GuestImages: ConfigSection, Hashable {
    public var oxydraVM = "oxydra-vm:latest"
    public var shellVM = "shell-vm:latest"
    /// The micro_vm tier's kernel (a bzImage/vmlinuz with its modules under
    /// `/lib/modules/<version>`); unset: the newest `/boot/vmlinuz-*` (Debian's `linux-image-amd64`).
    public var kernel: String?
    /// Where `runner images build` writes the micro VM form (root disk, initramfs); relative paths
    /// resolve against the runner config's base directory.
    public var microVMDirectory = ".oxydra/vm-images"

    public init() {}

    public static var fields: [ConfigField<GuestImages>] {
        [
            .field("oxydra_vm", \.oxydraVM, check: .nonBlank),
            .field("shell_vm", \.shellVM, check: .nonBlank),
            .field("kernel", \.kernel, check: .nonBlankWhenSet),
            .field("micro_vm_dir", \.microVMDirectory, check: .nonBlank),
        ]
    }
}

/// `[micro_vm]`: how micro VMs are run.
public struct MicroVMConfig: ConfigSection, Hashable {
    /// Without a working KVM, run guests under QEMU's CPU emulation (TCG: real isolation, slow)
    /// instead of refusing to start.
    public var allowTCG = false
    /// The QEMU executable; unset: `qemu-system-x86_64` on PATH.
    public var qemu: String?

    public init() {}

    public static var fields: [ConfigField<MicroVMConfig>] {
        [
            .field("allow_tcg", \.allowTCG),
            .field("qemu", \.qemu, check: .nonBlankWhenSet),
        ]
    }
}

/// `[users.<id>]`: a registered user and their own config file.
public struct UserRegistration: ConfigSection, Hashable {
    /// Absolute, or relative to the runner config's base directory.
    public var configPath = ""

    public init() {}

    public static var fields: [ConfigField<UserRegistration>] {
        [.field("config_path", \.configPath, required: true, check: .nonBlank)]
    }
}

/// A user's own file (`users/<id>.toml`): mounts, resource limits, credential references, behaviour.
public struct RunnerUserConfig: ConfigSection, Hashable {
    public var configVersion: ConfigVersion?
    public var mounts = MountOverrides()
    public var resources = ResourceLimits()
    public var credentialRefs: [String: String] = [:]
    public var behavior = UserBehavior()
    public var budget = BudgetConfig()
    public var channels = ChannelsConfig()

    public init() {}

    public static var fields: [ConfigField<RunnerUserConfig>] {
        [
            .field("config_version", \.configVersion),
            .field("mounts", \.mounts),
            .field("resources", \.resources),
            .field("credential_refs", \.credentialRefs),
            .field("behavior", \.behavior),
            .field("budget", \.budget),
            .field("channels", \.channels),
        ]
    }

    /// Keys that do nothing yet are refused rather than silently accepted: `credential_refs`
    /// (nothing delivers referenced secrets to a guest yet) and `behavior.browser_enabled = true`
    /// (there is no browser tool yet).
    public func validate(_ diagnostics: ConfigDiagnostics) {
        if !credentialRefs.isEmpty {
            diagnostics.report(
                ["credential_refs"],
                "credential_refs is not supported yet: nothing delivers referenced secrets to a guest in this build; "
                    + "remove the [credential_refs] table (provider keys come from agent.toml or environment variables)",
                source: diagnostics.source(of: ["credential_refs"]))
        }
        channels.telegram.validate(diagnostics, at: ["channels", "telegram"])
        if behavior.browserEnabled == true {
            diagnostics.report(
                ["behavior", "browser_enabled"],
                "behavior.browser_enabled = true is not supported yet: this build has no browser tool; remove it or set it to false",
                source: diagnostics.source(of: ["behavior", "browser_enabled"]))
        }
    }
}

/// `[mounts]`: host directories backing `/shared`, `/tmp`, `/vault` instead of the workspace's own.
public struct MountOverrides: ConfigSection, Hashable {
    public var shared: String?
    public var tmp: String?
    public var vault: String?

    public init() {}

    public static var fields: [ConfigField<MountOverrides>] {
        [
            .field("shared", \.shared, check: .nonBlankWhenSet),
            .field("tmp", \.tmp, check: .nonBlankWhenSet),
            .field("vault", \.vault, check: .nonBlankWhenSet),
        ]
    }
}

/// `[resources]`: limits applied to the guest (and its shell sandbox).
public struct ResourceLimits: ConfigSection, Hashable, Codable {
    public var maxVCPUs: Int?
    public var maxMemoryMiB: Int?
    public var maxProcesses: Int?

    public init() {}

    public static var fields: [ConfigField<ResourceLimits>] {
        [
            .field("max_vcpus", \.maxVCPUs, check: .positiveWhenSet),
            .field("max_memory_mib", \.maxMemoryMiB, check: .positiveWhenSet),
            .field("max_processes", \.maxProcesses, check: .positiveWhenSet),
        ]
    }

    enum CodingKeys: String, CodingKey {
        case maxVCPUs = "max_vcpus"
        case maxMemoryMiB = "max_memory_mib"
        case maxProcesses = "max_processes"
    }
}

/// `[behavior]`: per-user choices that can only narrow what the runner allows.
public struct UserBehavior: ConfigSection, Hashable {
    /// Overrides `runner.toml`'s `default_tier` for this user.
    public var sandboxTier: SandboxTier?
    /// Set to false to disable shell tools for this user even where the tier allows them.
    public var shellEnabled: Bool?
    public var browserEnabled: Bool?

    public init() {}

    public static var fields: [ConfigField<UserBehavior>] {
        [
            .field("sandbox_tier", \.sandboxTier),
            .field("shell_enabled", \.shellEnabled),
            .field("browser_enabled", \.browserEnabled),
        ]
    }
}

/// `[channels]` in a user's file: chat channels the user's guest runs.
public struct ChannelsConfig: ConfigSection, Hashable {
    public var telegram = TelegramConfig()

    public init() {}

    public static var fields: [ConfigField<ChannelsConfig>] { [.field("telegram", \.telegram)] }
}

/// `channels.telegram.session_mode`.
public enum TelegramSessionMode: String, ConfigEnum, Hashable {
    /// Each Telegram chat has its own session (`/new` starts another).
    case perChat = "per_chat"
    /// Every chat talks in the user's default session, the one the terminal UI opens.
    case shared
}

/// `[channels.telegram]`: a Telegram bot for this user, polled from the user's guest.
public struct TelegramConfig: ConfigSection, Hashable {
    public var enabled = false
    /// The variable holding the bot token (from @BotFather). The token itself is never in a file,
    /// the bootstrap envelope, a frame or a log.
    public var botTokenEnv: String?
    /// Telegram user ids allowed to talk to the agent; everyone else gets one refusal a day.
    public var allowedUserIDs: [Int] = []
    public var sessionMode = TelegramSessionMode.perChat
    /// The Bot API's address (tests point it at a scripted server).
    public var apiBaseURL = "https://api.telegram.org"
    /// How long one `getUpdates` long poll waits.
    public var pollingTimeoutSecs = 30

    public init() {}

    public static var fields: [ConfigField<TelegramConfig>] {
        [
            .field("enabled", \.enabled),
            .field("bot_token_env", \.botTokenEnv, check: .environmentVariableNameWhenSet),
            .field("allowed_user_ids", \.allowedUserIDs),
            .field("session_mode", \.sessionMode),
            .field(
                "api_base_url", \.apiBaseURL,
                check: ConfigCheck { ConfigCheck<String?>.httpURLWhenSet.problem($0) }),
            .field(
                "polling_timeout_secs", \.pollingTimeoutSecs,
                check: ConfigCheck { (1...50).contains($0) ? nil : "must be between 1 and 50" }),
        ]
    }

    /// An enabled bot needs its token variable and at least one allowed sender.
    public func validate(_ diagnostics: ConfigDiagnostics, at path: [String]) {
        guard enabled else { return }
        // An invalid name was reported already (and dropped).
        if botTokenEnv == nil
            && !diagnostics.issues.contains(where: { $0.path == ConfigPath.render(path + ["bot_token_env"]) })
        {
            diagnostics.report(
                path + ["bot_token_env"],
                "\(ConfigPath.render(path + ["bot_token_env"])) is required when the bot is enabled: name the "
                    + "environment variable that holds the token from @BotFather",
                source: diagnostics.source(of: path + ["enabled"]))
        }
        if allowedUserIDs.isEmpty {
            diagnostics.report(
                path + ["allowed_user_ids"],
                "\(ConfigPath.render(path + ["allowed_user_ids"])) is empty: nobody could talk to the bot; add your "
                    + "Telegram user id (a number; @userinfobot tells you yours)",
                source: diagnostics.source(of: path + ["enabled"]))
        }
    }
}
