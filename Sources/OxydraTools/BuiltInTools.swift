import OxydraConfig
import OxydraCore

/// The registry of built-in tools for one user's workspace, from configuration.
public enum BuiltInTools {
    /// File tools, `vault_copyto`, `web_fetch` and `web_search` (unless `web` is false). Memory and shell tools are added by
    /// their own modules through `extra`. Tool output is scrubbed of every secret in `config` and
    /// `environment` (``KnownSecrets``) and of `secrets` (e.g. the gateway's tokens).
    public static func registry(
        workspace: Workspace, config: AgentConfig, environment: [String: String], extra: [any Tool] = [],
        secrets: [String] = [], resolver: @escaping SSRFGuard.Resolver = SystemResolver.resolve,
        approval: ApprovalPolicy? = nil, web: Bool = true
    ) -> ToolRegistry {
        let confinement = PathConfinement(workspace: workspace)
        let audit = AuditLog(path: workspace.internalDirectory + "/audit.log")
        let client = WebClient(
            guardrail: SSRFGuard(allowlist: config.tools.web.egressAllowlist, resolver: resolver),
            maxBytes: config.tools.web.maxResponseBytes, timeout: .seconds(config.runtime.turnTimeoutSecs))
        // With approvals on, a person decides privileged calls before they reach the registry.
        let policy =
            approval
            ?? (config.tools.privileged == .allow || config.tools.approval.mode != .off ? .allowAll : .denyPrivileged)
        return ToolRegistry(
            FileTools.all(confinement: confinement, audit: audit)
                + (web ? WebTools.all(client: client, search: config.tools.webSearch, environment: environment) : [])
                + extra,
            scrubber: OutputScrubber(
                workspace: workspace, secrets: KnownSecrets.values(in: config, environment: environment) + secrets),
            approval: policy)
    }
}
