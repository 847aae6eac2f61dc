/// The wire format a provider registry entry speaks.
public enum ProviderType: String, ConfigEnum, Hashable {
    /// OpenAI Chat Completions; also Ollama, llama.cpp, vLLM, LM Studio, OpenRouter.
    case openai
    /// OpenAI Responses API.
    case openaiResponses = "openai_responses"
    case anthropic
    case gemini

    /// Used when `base_url` is not set.
    public var defaultBaseURL: String {
        switch self {
        case .openai, .openaiResponses: "https://api.openai.com"
        case .anthropic: "https://api.anthropic.com"
        case .gemini: "https://generativelanguage.googleapis.com"
        }
    }

    /// The host of the provider's own API; its standard key variable is only ever sent there.
    public var officialHost: String {
        switch self {
        case .openai, .openaiResponses: "api.openai.com"
        case .anthropic: "api.anthropic.com"
        case .gemini: "generativelanguage.googleapis.com"
        }
    }

    /// The catalog whose models this type serves unless `catalog_provider` says otherwise.
    public var defaultCatalogProvider: String {
        switch self {
        case .openai, .openaiResponses: "openai"
        case .anthropic: "anthropic"
        case .gemini: "google"
        }
    }

    /// The conventional environment variable for this type's API key.
    public var standardKeyVariable: String {
        switch self {
        case .openai, .openaiResponses: "OPENAI_API_KEY"
        case .anthropic: "ANTHROPIC_API_KEY"
        case .gemini: "GEMINI_API_KEY"
        }
    }

    /// The API version path segment the provider appends (`/v1`, Gemini's `/v1beta`). A `base_url`
    /// that already ends in it has it removed, so both spellings work.
    public var versionSuffixes: [String] {
        switch self {
        case .openai, .openaiResponses, .anthropic: ["/v1"]
        case .gemini: ["/v1beta", "/v1"]
        }
    }
}

/// Extra HTTP headers for a provider. Values of headers that carry credentials (`Authorization`,
/// `*key*`, `*token*`, `*secret*`, `Cookie`) are treated as secrets.
public struct HeaderMap: ConfigCodable, Hashable {
    public var headers: [String: String]
    public init(_ headers: [String: String] = [:]) { self.headers = headers }

    public static var expectation: String { "a table of header names to string values" }

    public static func isSensitive(_ name: String) -> Bool {
        let lower = name.lowercased()
        return lower == "authorization" || lower == "proxy-authorization" || lower == "cookie"
            || ["key", "token", "secret", "password", "auth"].contains { lower.contains($0) }
    }

    public static func decode(
        _ node: ConfigNode, base: HeaderMap?, at path: [String], in diagnostics: ConfigDiagnostics
    )
        -> HeaderMap?
    {
        guard case .table(let entries) = node.value else {
            diagnostics.typeMismatch(path, expectation: expectation, got: node)
            return nil
        }
        var result = base ?? HeaderMap()
        for name in entries.keys.sorted() {
            let wasRedacting = diagnostics.redacting
            diagnostics.redacting = wasRedacting || isSensitive(name)
            defer { diagnostics.redacting = wasRedacting }
            let valid =
                !name.isEmpty
                && name.unicodeScalars.allSatisfy { $0.isASCII && $0.value > 0x20 && $0 != ":" && $0.value != 0x7F }
            guard valid else {
                diagnostics.report(
                    path + [name], "\(ConfigPath.render(path + [name])) is not a valid HTTP header name",
                    source: entries[name]!.source)
                continue
            }
            guard let value = String.decode(entries[name]!, base: nil, at: path + [name], in: diagnostics) else {
                continue
            }
            if value.contains("\r") || value.contains("\n") {
                diagnostics.report(
                    path + [name], "\(ConfigPath.render(path + [name])) must not contain line breaks",
                    source: entries[name]!.source)
                continue
            }
            result.headers[name] = value
        }
        return result
    }

    public func encode() -> ConfigNode? {
        var entries: [String: ConfigNode] = [:]
        for (name, value) in headers {
            entries[name] = ConfigNode(.string(value), source: .builtInDefault, isSecret: HeaderMap.isSensitive(name))
        }
        return ConfigNode(.table(entries), source: .builtInDefault)
    }
}

/// `[providers.registry.<name>]`: one model endpoint.
public struct ProviderEntry: ConfigSection, Hashable {
    /// Required for entries that do not extend a built-in (`openai`, `anthropic`, `gemini`).
    public var providerType: ProviderType?
    /// Scheme, host and optional path prefix; `/v1` at the end is optional (see ``normalizedBaseURL``).
    public var baseURL: String?
    public var apiKey: String?
    /// The environment variable that holds the key (checked before the type's standard variable).
    public var apiKeyEnv: String?
    public var extraHeaders = HeaderMap()
    /// Which catalog validates model ids (defaults by type: openai, anthropic, google).
    public var catalogProvider: String?
    /// Admit models that are in no catalog, with default limits (per entry; see also
    /// `catalog.skip_catalog_validation`).
    public var skipCatalogValidation: Bool?
    public var maxContextTokens: Int?
    public var maxOutputTokens: Int?
    public var inputModalities: [InputModality]?
    public var reasoning: Bool?

    public init() {}

    public init(type: ProviderType, baseURL: String? = nil, apiKeyEnv: String? = nil) {
        self.providerType = type
        self.baseURL = baseURL
        self.apiKeyEnv = apiKeyEnv
    }

    public static var fields: [ConfigField<ProviderEntry>] {
        [
            .field("provider_type", \.providerType),
            .field("base_url", \.baseURL, check: .httpURLWhenSet),
            .field("api_key", \.apiKey, secret: true, check: .nonBlankWhenSet),
            .field("api_key_env", \.apiKeyEnv, check: .environmentVariableNameWhenSet),
            .field("extra_headers", \.extraHeaders),
            .field("catalog_provider", \.catalogProvider, check: .nonBlankWhenSet),
            .field("skip_catalog_validation", \.skipCatalogValidation),
            .field("max_context_tokens", \.maxContextTokens, check: .positiveWhenSet),
            .field("max_output_tokens", \.maxOutputTokens, check: .positiveWhenSet),
            .field("input_modalities", \.inputModalities),
            .field("reasoning", \.reasoning),
        ]
    }

    /// `base_url` (or the type's default) trimmed, without trailing `/` and without a trailing API
    /// version segment, so `https://openrouter.ai/api/v1` and `https://openrouter.ai/api` both become
    /// `https://openrouter.ai/api` and the provider's `/v1/...` path is never doubled.
    public func normalizedBaseURL(for type: ProviderType) -> String {
        var url = (baseURL ?? type.defaultBaseURL).trimmed
        while url.hasSuffix("/") { url.removeLast() }
        for suffix in type.versionSuffixes where url.lowercased().hasSuffix(suffix) {
            url.removeLast(suffix.count)
            break
        }
        while url.hasSuffix("/") { url.removeLast() }
        return url
    }

    /// Whether the endpoint is the provider's own API (not a proxy, gateway or local server).
    public func isOfficialEndpoint(for type: ProviderType) -> Bool {
        URL(string: normalizedBaseURL(for: type))?.host?.lowercased() == type.officialHost
    }

    /// Limits and capabilities from this entry that override the catalog's.
    public var modelOverrides: ModelOverrides {
        ModelOverrides(
            contextTokens: maxContextTokens, outputTokens: maxOutputTokens,
            inputModalities: inputModalities.map(Set.init), reasoning: reasoning)
    }
}

extension InputModality: ConfigEnum {}

extension ConfigCheck where Value == String? {
    /// An absolute http(s) URL with a host, no query or fragment.
    public static var httpURLWhenSet: Self {
        Self { value in
            guard let value else { return nil }
            let trimmed = value.trimmed
            guard let url = URL(string: trimmed), let scheme = url.scheme?.lowercased(),
                scheme == "http" || scheme == "https", let host = url.host, !host.isEmpty
            else { return "must be an http:// or https:// URL with a host" }
            if url.query != nil || url.fragment != nil { return "must not contain a query string or fragment" }
            return nil
        }
    }

    /// A conventional environment variable name: letters, digits and `_`, not starting with a digit.
    public static var environmentVariableNameWhenSet: Self {
        Self { value in
            guard let value else { return nil }
            let valid =
                !value.isEmpty && !(value.first?.isNumber ?? true)
                && value.unicodeScalars.allSatisfy {
                    $0.isASCII && ($0.properties.isAlphabetic || $0 == "_" || ("0"..."9").contains($0))
                }
            return valid ? nil : "must be an environment variable name (letters, digits and _)"
        }
    }
}
