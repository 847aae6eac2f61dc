import OxydraConfig
import OxydraCore

/// Builds providers from configuration, checking the model and the credential before any
/// network I/O.
public enum ProviderFactory {
    /// The provider selected by `selection.provider`, wrapped in a ``ReliableProvider``.
    /// `keySource` is where the entry's `api_key` was set (for messages); `environment` supplies
    /// keys from variables.
    public static func selected(
        _ config: AgentConfig, catalog: ModelCatalog, environment: [String: String],
        keySource: ConfigSource = .builtInDefault, chains: ResponseChains = ResponseChains()
    ) throws(ProviderError) -> ReliableProvider {
        let name = config.selection.provider
        guard let entry = config.providers.registry[name] else {
            throw .requestFailed(provider: ProviderID(name), message: "provider `\(name)` is not configured")
        }
        let provider = try make(
            name: name, entry: entry, config: config, catalog: catalog, environment: environment, keySource: keySource,
            chains: chains)
        // Unknown models fail here, before any request.
        _ = try provider.capabilities(for: ModelID(config.selection.model))
        return ReliableProvider(
            provider, policy: RetryPolicy(config.reliability, turnTimeoutSecs: config.runtime.turnTimeoutSecs))
    }

    /// `provider` (a registry name) with `model` — a fallback, or a session's `/model` choice — as
    /// ``selected(_:catalog:environment:keySource:chains:)`` builds the configured one, with its
    /// model's descriptor.
    public static func reach(
        _ config: AgentConfig, provider: String, model: String, catalog: ModelCatalog, environment: [String: String],
        keySource: ConfigSource = .builtInDefault
    ) throws(ProviderError) -> (ReliableProvider, ModelDescriptor) {
        var copy = config
        copy.selection.provider = provider
        copy.selection.model = model
        let reached = try selected(copy, catalog: catalog, environment: environment, keySource: keySource)
        return (reached, try ModelSelection.resolve(copy, catalog: catalog))
    }

    /// One registry entry as a provider (without retries).
    public static func make(
        name: String, entry: ProviderEntry, config: AgentConfig, catalog: ModelCatalog, environment: [String: String],
        keySource: ConfigSource = .builtInDefault, chains: ResponseChains = ResponseChains()
    ) throws(ProviderError) -> any ModelProvider {
        let id = ProviderID(name)
        guard let type = entry.providerType else {
            throw .requestFailed(provider: id, message: "providers.registry.\(name).provider_type is not set")
        }
        let credential = try CredentialResolver.require(
            name, entry: entry, type: type, environment: environment, keySource: keySource)
        var headers: [(String, String)] = []
        if let key = credential?.value {
            switch type {
            case .openai, .openaiResponses: headers.append(("Authorization", "Bearer \(key)"))
            case .anthropic: headers.append(("x-api-key", key))
            case .gemini: headers.append(("x-goog-api-key", key))
            }
        }
        if type == .anthropic { headers.append(("anthropic-version", AnthropicProvider.apiVersion)) }
        for (header, value) in entry.extraHeaders.headers.sorted(by: { $0.key < $1.key }) {
            headers.removeAll { $0.0.lowercased() == header.lowercased() }
            headers.append((header, value))
        }
        let secrets =
            [credential?.value].compactMap { $0 }
            + entry.extraHeaders.headers.filter { HeaderMap.isSensitive($0.key) }.map(\.value)
        let setup = ProviderSetup(
            id: id,
            transport: ProviderTransport(
                provider: id, baseURL: entry.normalizedBaseURL(for: type), headers: headers, secrets: secrets,
                timeout: .seconds(config.runtime.turnTimeoutSecs)),
            models: ModelResolver(
                catalog: catalog, catalogProvider: entry.catalogProvider ?? type.defaultCatalogProvider,
                skipValidation: config.catalog.skipCatalogValidation || (entry.skipCatalogValidation ?? false),
                overrides: entry.modelOverrides))
        switch type {
        case .openai: return OpenAIChatProvider(setup: setup)
        case .openaiResponses: return OpenAIResponsesProvider(setup: setup, chains: chains)
        case .anthropic: return AnthropicProvider(setup: setup)
        case .gemini: return GeminiProvider(setup: setup)
        }
    }
}
