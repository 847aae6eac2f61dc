import OxydraCore

/// Every secret value a guest holds, so tool output can be scrubbed of them by exact match — a
/// short or oddly shaped key that no pattern recognises is still never shown to the model.
public enum KnownSecrets {
    /// Values shorter than this are not matched (they would redact ordinary words).
    public static let minimumLength = 6

    /// Provider keys (every registry entry's `api_key` and the variables it may read), credential
    /// headers, `memory.auth_token`, the gateway and web-search variables, and every environment
    /// variable whose name says it holds a secret (`*KEY*`, `*TOKEN*`, `*SECRET*`, `*PASSWORD*`…).
    public static func values(in config: AgentConfig, environment: [String: String]) -> [String] {
        var values: [String?] = []
        for entry in config.providers.registry.values {
            values.append(entry.apiKey)
            if let type = entry.providerType {
                values += CredentialResolver.variables(for: entry, type: type).map { environment[$0] }
            }
            for (name, value) in entry.extraHeaders.headers where HeaderMap.isSensitive(name) {
                values.append(value)
                // `Authorization: Bearer x` leaks as `x` just as well.
                if let space = value.lastIndex(of: " ") { values.append(String(value[value.index(after: space)...])) }
            }
        }
        values.append(config.memory.authToken)
        values += [config.gateway.authTokenEnv, config.tools.webSearch.apiKeyEnv, config.tools.webSearch.engineIDEnv]
            .compactMap { $0 }.map { environment[$0] }
        for (name, value) in environment where looksLikeSecretName(name) { values.append(value) }
        var seen: Set<String> = []
        return values.compactMap { $0?.trimmed }.filter { $0.count >= minimumLength && seen.insert($0).inserted }
    }

    static func looksLikeSecretName(_ name: String) -> Bool {
        let upper = name.uppercased()
        return ["KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL"].contains { upper.contains($0) }
    }
}
