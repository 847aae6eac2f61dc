/// `[tools]`: tool policy.
public struct ToolsConfig: ConfigSection, Hashable {
    /// What happens to privileged tool calls when no human is asked: "deny" (default) or "allow".
    public var privileged = PrivilegedPolicy.deny
    public var web = WebToolsConfig()
    public var webSearch = WebSearchConfig()

    public init() {}

    public static var fields: [ConfigField<ToolsConfig>] {
        [
            .field("privileged", \.privileged),
            .field("web", \.web),
            .field("web_search", \.webSearch),
        ]
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
