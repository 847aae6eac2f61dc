/// The models Oxydra knows, by catalog provider (`openai`, `anthropic`, `google`, ...).
///
/// The built-in catalog ships inside the binary (``ModelCatalog/builtIn``). Users extend or override
/// it with catalog files of the same format (see `docs/configuration.md`); ``merging(_:)`` applies
/// such a file: a model with the same id (or alias) replaces the built-in entry as a whole.
public struct ModelCatalog: Sendable, Hashable {
    /// Models by catalog provider, in file order.
    public private(set) var providers: [String: [ModelDescriptor]]
    /// Where each provider's facts come from (URLs), for `runner catalog show` and docs.
    public private(set) var sources: [String: String]

    public init(providers: [String: [ModelDescriptor]] = [:], sources: [String: String] = [:]) {
        self.providers = providers
        self.sources = sources
    }

    /// Limits used for a model that is in no catalog when validation is skipped.
    public static let defaultContextTokens = 128_000
    public static let defaultOutputTokens = 16_384

    /// The catalog compiled into the binary (`Sources/OxydraCore/Catalog/model_catalog.json`).
    public static let builtIn: ModelCatalog = {
        do {
            return try ModelCatalog(jsonData: Data(PackageResources.model_catalog_json), origin: "built-in catalog")
        } catch {
            // The file is part of the source tree and covered by tests; failing here is a build defect.
            fatalError("the built-in model catalog is invalid: \(error)")
        }
    }()

    /// Parses a catalog file. `origin` names the file in error messages.
    public init(jsonData: Data, origin: String) throws(CatalogError) {
        let file: CatalogFile
        do {
            file = try JSONDecoder().decode(CatalogFile.self, from: jsonData)
        } catch {
            throw .invalidFile(origin: origin, reason: CatalogError.describe(error))
        }
        guard file.formatVersion == 1 else {
            throw .invalidFile(
                origin: origin, reason: "format_version \(file.formatVersion) is not supported; this Oxydra reads 1")
        }
        var providers: [String: [ModelDescriptor]] = [:]
        var sources: [String: String] = [:]
        for (provider, entry) in file.providers {
            var seen: Set<String> = []
            var models: [ModelDescriptor] = []
            for model in entry.models {
                let problems = model.problems()
                if let problem = problems.first {
                    throw .invalidFile(origin: origin, reason: "model `\(provider)/\(model.id)`: \(problem)")
                }
                for id in [model.id] + (model.aliases ?? []) where !seen.insert(id).inserted {
                    throw .invalidFile(origin: origin, reason: "model id `\(provider)/\(id)` appears twice")
                }
                models.append(model.descriptor(provider: provider))
            }
            providers[provider] = models
            if let source = entry.source { sources[provider] = source }
        }
        self.init(providers: providers, sources: sources)
    }

    /// This catalog with `overlay`'s providers and models added; an overlay model replaces any model
    /// sharing its id or one of its aliases.
    public func merging(_ overlay: ModelCatalog) -> ModelCatalog {
        var result = self
        for (provider, models) in overlay.providers {
            var merged = result.providers[provider] ?? []
            for model in models {
                let names = Set([model.id] + model.aliases)
                merged.removeAll { existing in !names.isDisjoint(with: [existing.id] + existing.aliases) }
                merged.append(model)
            }
            result.providers[provider] = merged
            if let source = overlay.sources[provider] { result.sources[provider] = source }
        }
        return result
    }

    /// The model with this id or alias, or an error naming the provider and the closest known ids.
    public func model(_ id: ModelID, provider: String) throws(CatalogError) -> ModelDescriptor {
        if let match = lookup(id, provider: provider) { return match }
        guard let models = providers[provider] else {
            throw .unknownProvider(
                provider: provider, known: providers.keys.sorted(),
                suggestions: Suggestions.closest(to: provider, in: providers.keys))
        }
        let known = models.flatMap { [$0.id.rawValue] + $0.aliases.map(\.rawValue) }
        throw .unknownModel(
            provider: provider, model: id.rawValue,
            suggestions: Suggestions.closest(to: id.rawValue, in: known))
    }

    /// The model by id or alias, nil when the catalog does not list it.
    public func lookup(_ id: ModelID, provider: String) -> ModelDescriptor? {
        providers[provider]?.first { $0.id == id || $0.aliases.contains(id) }
    }

    /// Looks a model up, or — when `skipValidation` is set — admits an unknown model with default
    /// limits (`overrides` replaces any of them), as local servers (Ollama, llama.cpp, vLLM) need.
    public func resolve(
        _ id: ModelID, provider: String, skipValidation: Bool, overrides: ModelOverrides = ModelOverrides()
    ) throws(CatalogError) -> ModelDescriptor {
        if let known = lookup(id, provider: provider) { return overrides.applied(to: known) }
        // Runs on every request to a local model: suggestions are only computed for a real error.
        guard skipValidation else { return overrides.applied(to: try model(id, provider: provider)) }
        let synthetic = ModelDescriptor(
            provider: provider, id: id, displayName: id.rawValue,
            capabilities: ModelCapabilities(
                contextTokens: ModelCatalog.defaultContextTokens, outputTokens: ModelCatalog.defaultOutputTokens),
            pricing: nil, isSynthetic: true)
        return overrides.applied(to: synthetic)
    }

    /// Every model, sorted by provider then catalog order.
    public var allModels: [ModelDescriptor] {
        providers.keys.sorted().flatMap { providers[$0] ?? [] }
    }
}

/// Per-provider adjustments from config (`[providers.registry.<name>]`), applied on top of the
/// catalog entry or the synthetic one.
public struct ModelOverrides: Sendable, Hashable {
    public var contextTokens: Int?
    public var outputTokens: Int?
    public var inputModalities: Set<InputModality>?
    public var reasoning: Bool?

    public init(
        contextTokens: Int? = nil, outputTokens: Int? = nil, inputModalities: Set<InputModality>? = nil,
        reasoning: Bool? = nil
    ) {
        self.contextTokens = contextTokens
        self.outputTokens = outputTokens
        self.inputModalities = inputModalities
        self.reasoning = reasoning
    }

    func applied(to descriptor: ModelDescriptor) -> ModelDescriptor {
        var result = descriptor
        if let contextTokens { result.capabilities.contextTokens = contextTokens }
        if let outputTokens { result.capabilities.outputTokens = outputTokens }
        if let inputModalities { result.capabilities.inputModalities = inputModalities.union([.text]) }
        if let reasoning { result.capabilities.reasoning = reasoning }
        return result
    }
}

/// The on-disk catalog format (`model_catalog.json`).
struct CatalogFile: Decodable {
    var formatVersion: Int
    var providers: [String: ProviderEntry]

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version"
        case providers
    }

    struct ProviderEntry: Decodable {
        var name: String?
        var source: String?
        var models: [ModelEntry]
    }

    /// One model. Capability fields default to what most chat models offer, so a user catalog entry
    /// for a local model can be as short as `{"id": "llama3.1:8b", "context_tokens": 131072}`.
    struct ModelEntry: Decodable {
        var id: String
        var name: String?
        var aliases: [String]?
        var contextTokens: Int?
        var outputTokens: Int?
        var streaming: Bool?
        var tools: Bool?
        var jsonMode: Bool?
        var reasoning: Bool?
        var input: [InputModality]?
        var price: ModelPricing?
        var deprecated: Bool?

        enum CodingKeys: String, CodingKey {
            case id, name, aliases, streaming, tools, reasoning, input, price, deprecated
            case contextTokens = "context_tokens"
            case outputTokens = "output_tokens"
            case jsonMode = "json_mode"
        }

        func problems() -> [String] {
            var problems: [String] = []
            if id.trimmed.isEmpty { problems.append("id must not be empty") }
            if let contextTokens, contextTokens <= 0 { problems.append("context_tokens must be greater than 0") }
            if let outputTokens, outputTokens <= 0 { problems.append("output_tokens must be greater than 0") }
            if let price, price.inputPerMillion < 0 || price.outputPerMillion < 0 {
                problems.append("prices must not be negative")
            }
            return problems
        }

        func descriptor(provider: String) -> ModelDescriptor {
            ModelDescriptor(
                provider: provider, id: ModelID(id), displayName: name ?? id,
                aliases: (aliases ?? []).map(ModelID.init(rawValue:)),
                capabilities: ModelCapabilities(
                    streaming: streaming ?? true, tools: tools ?? true, jsonMode: jsonMode ?? false,
                    reasoning: reasoning ?? false, inputModalities: Set(input ?? [.text]),
                    contextTokens: contextTokens ?? ModelCatalog.defaultContextTokens,
                    outputTokens: outputTokens ?? ModelCatalog.defaultOutputTokens),
                pricing: price, deprecated: deprecated ?? false)
        }
    }
}
