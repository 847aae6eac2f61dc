/// `[tools]`: tool policy.
public struct ToolsConfig: ConfigSection, Hashable {
    /// What happens to privileged tool calls when no human is asked: "deny" (default) or "allow".
    public var privileged = PrivilegedPolicy.deny
    public var web = WebToolsConfig()
    public var webSearch = WebSearchConfig()
    public var shell = ShellToolsConfig()
    public var approval = ApprovalConfig()

    public init() {}

    public static var fields: [ConfigField<ToolsConfig>] {
        [
            .field("privileged", \.privileged),
            .field("web", \.web),
            .field("web_search", \.webSearch),
            .field("shell", \.shell),
            .field("approval", \.approval),
        ]
    }
}

/// `[tools.approval]`: which tool calls wait for a person to allow them.
public struct ApprovalConfig: ConfigSection, Hashable {
    /// "risky" (default): calls the tool judges risky ask; "all": every call asks; "off": none does.
    public var mode = ApprovalMode.risky
    /// How long a request waits for an answer; no answer is a denial.
    public var timeoutSecs = 300
    /// Tools whose every call asks (in any mode but "off").
    public var require: [String] = []
    /// Tools that never ask (wins over `require` and the mode).
    public var skip: [String] = []

    public init() {}

    public static var fields: [ConfigField<ApprovalConfig>] {
        [
            .field("mode", \.mode),
            .field("timeout_secs", \.timeoutSecs, check: .positive),
            .field("require", \.require, check: .noBlankEntries),
            .field("skip", \.skip, check: .noBlankEntries),
        ]
    }

    /// Whether a call of `tool` with `risk` must be approved (before grants are considered).
    @inlinable
    public func asks(tool: String, risk: ToolRisk.Level) -> Bool {
        if skip.contains(tool) { return false }
        switch mode {
        case .off: return false
        case .all: return true
        case .risky: return risk != .none || require.contains(tool)
        }
    }
}

/// `tools.approval.mode`.
public enum ApprovalMode: String, ConfigEnum, Hashable {
    case off, risky, all
}

/// `[tools.shell]`: the `shell_exec` tool and its command policy.
public struct ShellToolsConfig: ConfigSection, Hashable {
    /// The programs the agent runs without asking when nothing else is configured.
    public static let defaultAllow = [
        "awk", "cat", "cargo", "cp", "curl", "cut", "echo", "env", "find", "git", "go", "grep", "head", "jq", "ls",
        "mkdir", "mv", "node", "printf", "pwd", "python", "python3", "rustc", "sed", "sleep", "sort", "stat", "tail",
        "touch", "tr", "uniq", "wc", "which",
    ]

    /// Set to false to turn `shell_exec` off.
    public var enabled = true
    /// Programs (by name, or `*`-globs such as `py*`) added to the defaults, or replacing them.
    public var allow: [String] = []
    /// Programs never run, even when `allow` matches them (including `*`).
    public var deny: [String] = []
    /// When true, `allow` replaces the default list instead of adding to it.
    public var replaceDefaults = false
    /// Whether `&&`, `||`, `;`, `|`, `&`, redirections and substitutions may be used. Every program
    /// in the line is checked either way.
    public var allowOperators = true
    /// Host environment variables passed into shell commands (nothing else is).
    public var envKeys: [String] = []
    /// Default and largest timeout of one command.
    public var commandTimeoutSecs = 60
    /// Output kept per command (stdout and stderr together): its first and last halves; the middle
    /// is counted and dropped.
    public var maxOutputBytes = 64 << 10
    /// The shell's network: "none" (default: its own empty network namespace) or "egress"
    /// (the container tier's shell-vm joins the user's own bridge network; the process tier
    /// refuses it, since bubblewrap could only share the host's network, loopback included).
    public var network = ShellNetwork.none

    public init() {}

    /// The effective allow list.
    public var allowed: [String] { replaceDefaults ? allow : Self.defaultAllow + allow }

    public static var fields: [ConfigField<ShellToolsConfig>] {
        [
            .field("enabled", \.enabled),
            .field("allow", \.allow, check: .noBlankEntries),
            .field("deny", \.deny, check: .noBlankEntries),
            .field("replace_defaults", \.replaceDefaults),
            .field("allow_operators", \.allowOperators),
            .field(
                "env_keys", \.envKeys,
                check: ConfigCheck { keys in
                    keys.lazy.compactMap { ConfigCheck<String?>.environmentVariableNameWhenSet.problem($0) }.first
                }),
            .field("command_timeout_secs", \.commandTimeoutSecs, check: .positive),
            .field("max_output_bytes", \.maxOutputBytes, check: .positive),
            .field("network", \.network),
        ]
    }
}

/// `tools.shell.network`.
public enum ShellNetwork: String, ConfigEnum, Hashable {
    case none, egress
}

extension ConfigCheck where Value == [String] {
    public static var noBlankEntries: Self {
        Self { $0.contains { $0.trimmed.isEmpty } ? "must not contain empty entries" : nil }
    }
}

public enum PrivilegedPolicy: String, ConfigEnum, Hashable {
    case deny, allow
}

/// `[tools.web]`: egress for `web_fetch` and `web_search`.
public struct WebToolsConfig: ConfigSection, Hashable {
    /// Hosts (`host` or `host:port`) reachable even when they resolve to private, loopback or
    /// link-local addresses — for a LAN SearXNG or an intranet wiki. Everything else private is blocked.
    public var egressAllowlist: [String] = []
    /// Largest response body read, in bytes.
    public var maxResponseBytes = 5 << 20

    public init() {}

    public static var fields: [ConfigField<WebToolsConfig>] {
        [
            .field("egress_allowlist", \.egressAllowlist),
            .field("max_response_bytes", \.maxResponseBytes, check: .positive),
        ]
    }
}

public enum WebSearchProvider: String, ConfigEnum, Hashable {
    case duckduckgo, searxng, google
}

/// `[tools.web_search]`.
public struct WebSearchConfig: ConfigSection, Hashable {
    public var provider = WebSearchProvider.duckduckgo
    /// Required for SearXNG (`https://searx.example`); optional override for the others.
    public var baseURL: String?
    /// Google: the variable holding the API key.
    public var apiKeyEnv = "GOOGLE_API_KEY"
    /// Google: the variable holding the Programmable Search Engine id.
    public var engineIDEnv = "GOOGLE_CSE_ID"

    public init() {}

    public static var fields: [ConfigField<WebSearchConfig>] {
        [
            .field("provider", \.provider),
            .field("base_url", \.baseURL, check: .httpURLWhenSet),
            .field(
                "api_key_env", \.apiKeyEnv,
                check: ConfigCheck { ConfigCheck<String?>.environmentVariableNameWhenSet.problem($0) }),
            .field(
                "engine_id_env", \.engineIDEnv,
                check: ConfigCheck { ConfigCheck<String?>.environmentVariableNameWhenSet.problem($0) }),
        ]
    }
}
