import OxydraCore

/// An API key and where it was found (never the key itself in messages).
public struct ResolvedCredential: Sendable, Hashable, CustomStringConvertible {
    public var value: String
    /// `api_key in ./.oxydra/providers.toml`, `env OPENAI_API_KEY`.
    public var origin: String

    /// Deliberately omits the value so a credential printed by accident reveals nothing.
    public var description: String { "credential from \(origin)" }
}

/// Finds the API key of a provider registry entry.
///
/// Order (first non-blank wins; values are trimmed): the entry's `api_key` → the variable named by
/// `api_key_env` → the type's standard variable (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`,
/// `GEMINI_API_KEY`) → `API_KEY`.
///
/// The standard variable is only used for the provider's own endpoint: an entry pointing at a
/// proxy, OpenRouter or a local server never receives `OPENAI_API_KEY` by accident; give it
/// `api_key_env` (or `api_key`) instead.
public enum CredentialResolver {
    public static let fallbackVariable = "API_KEY"

    /// The environment variables consulted for `entry`, in order, without duplicates.
    public static func variables(for entry: ProviderEntry, type: ProviderType) -> [String] {
        var names: [String] = []
        let standard = entry.isOfficialEndpoint(for: type) ? type.standardKeyVariable : nil
        for name in [entry.apiKeyEnv, standard, fallbackVariable].compactMap({ $0 })
        where !names.contains(name) {
            names.append(name)
        }
        return names
    }

    /// The credential, or nil when none is configured. `keySource` is where `api_key` was set.
    public static func resolve(
        _ entry: ProviderEntry, type: ProviderType, environment: [String: String], keySource: ConfigSource
    ) -> ResolvedCredential? {
        if let key = entry.apiKey?.trimmed, !key.isEmpty {
            return ResolvedCredential(value: key, origin: "api_key in \(keySource)")
        }
        for name in variables(for: entry, type: type) {
            if let value = environment[name]?.trimmed, !value.isEmpty {
                return ResolvedCredential(value: value, origin: "env \(name)")
            }
        }
        return nil
    }

    /// The name a container-tier guest reaches the host by (the runner maps it to the host's bridge
    /// address); a server there is as local as one on loopback.
    public static let containerHostName = "host.docker.internal"

    /// Local servers (loopback `base_url`, or the host as a container sees it) usually take no key;
    /// every other endpoint needs one.
    public static func requiresKey(_ entry: ProviderEntry, type: ProviderType) -> Bool {
        guard let host = URL(string: entry.normalizedBaseURL(for: type))?.host?.lowercased() else { return true }
        let trimmed = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return
            !(trimmed == "localhost" || trimmed.hasSuffix(".localhost") || trimmed == "::1"
            || trimmed.hasPrefix("127.") || trimmed == containerHostName)
    }

    /// The credential for the provider named `name`; throws ``ProviderError/missingAPIKey`` (naming
    /// the variables to set) when a key is needed and none is configured. Returns nil for keyless
    /// local servers.
    public static func require(
        _ name: String, entry: ProviderEntry, type: ProviderType, environment: [String: String],
        keySource: ConfigSource
    ) throws(ProviderError) -> ResolvedCredential? {
        if let credential = resolve(entry, type: type, environment: environment, keySource: keySource) {
            return credential
        }
        guard requiresKey(entry, type: type) else { return nil }
        throw .missingAPIKey(provider: ProviderID(name), variables: variables(for: entry, type: type))
    }
}
