import OxydraCore

/// The agent configuration as a container-tier guest receives it: the host resolves every layer
/// (files, `OXYDRA__…` variables, `--set`), writes the effective values with every secret emptied
/// into one directory the runtime container mounts read-only at ``mountPoint``, and hands the secrets
/// over as environment variables only — never in a file, a label or a command line.
///
/// The directory mirrors the guest's own search paths so it loads exactly what the host resolved:
/// `agent.toml` (the whole effective config) and the system-level `model_catalog.json`/`SYSTEM.md`
/// at the top, the user's under ``homeDirectory``/.config/oxydra (the container's `HOME`) and the
/// project's under ``projectDirectory``/.oxydra (its working directory).
public struct GuestConfigExport: Sendable, Hashable {
    /// Where the directory appears inside the runtime container (`/etc/oxydra`, the system layer).
    public static let mountPoint = "/etc/oxydra"
    /// The container's `HOME`, inside the directory.
    public static let homeDirectory = mountPoint + "/home"
    /// The container's working directory, inside the directory.
    public static let projectDirectory = mountPoint + "/project"

    /// Path relative to the directory → contents.
    public var files: [String: String]
    /// Variables the runtime needs: the credentials the configuration names and secret values
    /// (`api_key`, sensitive `extra_headers`) as `OXYDRA__…` overrides.
    public var environment: [String: String]

    /// Builds the export of `loaded` (already validated by the caller). `paths` are the host's
    /// search paths; `environment` the runner's.
    public static func make(
        _ loaded: LoadedAgentConfig, paths: ConfigSearchPaths, environment: [String: String]
    ) -> GuestConfigExport {
        var config = loaded.config
        // The guest's loopback is its own: a provider on the host's loopback is reached through
        // the host's bridge address instead (the server must listen there, e.g. on 0.0.0.0).
        for (name, entry) in config.providers.registry {
            guard let base = entry.baseURL, let rewritten = hostReachable(base) else { continue }
            config.providers.registry[name]?.baseURL = rewritten
        }
        let typed = config.encode() ?? .table(source: .builtInDefault)
        var variables: [String: String] = [:]
        for (path, leaf) in typed.leaves() where leaf.isSecret {
            guard case .string(let value) = leaf.value, !value.isEmpty else { continue }
            variables[EnvironmentOverrides.prefix + path.map { $0.uppercased() }.joined(separator: "__")] = value
        }
        // Keys the configuration reads from named variables: pass the one each entry resolves to.
        for (_, entry) in config.providers.registry {
            guard entry.apiKey == nil, let type = entry.providerType else { continue }
            for name in CredentialResolver.variables(for: entry, type: type) {
                if let value = environment[name]?.trimmed, !value.isEmpty {
                    variables[name] = value
                    break
                }
            }
        }
        var named: [String] = []
        if let token = config.gateway.authTokenEnv { named.append(token) }
        if config.tools.webSearch.provider == .google {
            named += [config.tools.webSearch.apiKeyEnv, config.tools.webSearch.engineIDEnv]
        }
        for name in named {
            if let value = environment[name] { variables[name] = value }
        }
        if let level = environment["OXYDRA_LOG_LEVEL"] { variables["OXYDRA_LOG_LEVEL"] = level }

        var files = ["agent.toml": ConfigRendering.toml(typed, sources: false, secrets: .emptied)]
        let layers = [
            (paths.systemDirectory, ""), (paths.userDirectory, "home/.config/oxydra/"),
            (paths.projectDirectory, "project/.oxydra/"),
        ]
        for (directory, prefix) in layers {
            guard let directory else { continue }
            for name in [CatalogLoader.fileName, "SYSTEM.md"] {
                if let data = FileManager.default.contents(atPath: directory + "/" + name) {
                    files[prefix + name] = String(decoding: data, as: UTF8.self)
                }
            }
        }
        return GuestConfigExport(files: files, environment: variables)
    }

    /// `http://127.0.0.1:11434/v1` → `http://host.docker.internal:11434/v1`; nil when `url` is not
    /// on loopback.
    public static func hostReachable(_ url: String) -> String? {
        guard let schemeEnd = url.firstRange(of: "://") else { return nil }
        let rest = url[schemeEnd.upperBound...]
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        let host: Substring
        let port: Substring
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            host = authority[authority.index(after: authority.startIndex)..<close]
            port = authority[authority.index(after: close)...]
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            port = authority[colon...]
        } else {
            host = authority
            port = ""
        }
        let lowered = host.lowercased()
        guard lowered == "localhost" || lowered.hasPrefix("127.") || lowered == "::1" else { return nil }
        return url[..<schemeEnd.upperBound] + CredentialResolver.containerHostName + port + rest[authorityEnd...]
    }
}
