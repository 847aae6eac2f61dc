/// A kind of input a model can read besides text.
public enum InputModality: String, Sendable, Hashable, Codable, CaseIterable {
    case text, image, audio, video, pdf, document

    /// `image/*` → image, `audio/*` → audio, `video/*` → video, `application/pdf` → pdf,
    /// `text/*` → text, anything else → document.
    public init(mimeType: String) {
        let lower = mimeType.lowercased()
        if lower.hasPrefix("image/") {
            self = .image
        } else if lower.hasPrefix("audio/") {
            self = .audio
        } else if lower.hasPrefix("video/") {
            self = .video
        } else if lower == "application/pdf" {
            self = .pdf
        } else if lower.hasPrefix("text/") {
            self = .text
        } else {
            self = .document
        }
    }
}

/// Prices in US dollars per million tokens, from the provider's public price list.
public struct ModelPricing: Sendable, Hashable, Codable {
    public var inputPerMillion: Double
    public var outputPerMillion: Double
    /// Price of prompt tokens served from the provider's cache, when it differs.
    public var cachedInputPerMillion: Double?

    public init(inputPerMillion: Double, outputPerMillion: Double, cachedInputPerMillion: Double? = nil) {
        self.inputPerMillion = inputPerMillion
        self.outputPerMillion = outputPerMillion
        self.cachedInputPerMillion = cachedInputPerMillion
    }

    enum CodingKeys: String, CodingKey {
        case inputPerMillion = "input"
        case outputPerMillion = "output"
        case cachedInputPerMillion = "cached_input"
    }

    /// Cost in US dollars of one response. Missing counts are treated as zero.
    public func cost(of usage: Usage) -> Double {
        let input = Double(usage.promptTokens ?? 0) * inputPerMillion
        let output = Double(usage.completionTokens ?? 0) * outputPerMillion
        return (input + output) / 1_000_000
    }
}

/// What a model can do and how much it can take.
public struct ModelCapabilities: Sendable, Hashable, Codable {
    public var streaming: Bool
    public var tools: Bool
    public var jsonMode: Bool
    public var reasoning: Bool
    /// Accepted inputs; always contains `.text`.
    public var inputModalities: Set<InputModality>
    /// Total context window in tokens (prompt + output).
    public var contextTokens: Int
    /// Maximum tokens of one response.
    public var outputTokens: Int

    public init(
        streaming: Bool = true, tools: Bool = true, jsonMode: Bool = false, reasoning: Bool = false,
        inputModalities: Set<InputModality> = [.text], contextTokens: Int, outputTokens: Int
    ) {
        self.streaming = streaming
        self.tools = tools
        self.jsonMode = jsonMode
        self.reasoning = reasoning
        self.inputModalities = inputModalities.union([.text])
        self.contextTokens = contextTokens
        self.outputTokens = outputTokens
    }

    public func accepts(_ modality: InputModality) -> Bool { inputModalities.contains(modality) }
}

/// One model of the catalog.
public struct ModelDescriptor: Sendable, Hashable {
    /// The catalog provider (`openai`, `anthropic`, `google`, or a user catalog's own name).
    public var provider: String
    public var id: ModelID
    public var displayName: String
    /// Other ids the provider accepts for the same model (`claude-sonnet-4-5` for a dated id).
    public var aliases: [ModelID]
    public var capabilities: ModelCapabilities
    /// Unknown for synthetic descriptors (models admitted by `skip_catalog_validation`).
    public var pricing: ModelPricing?
    public var deprecated: Bool
    /// True when the model is not in any catalog and was admitted with default limits.
    public var isSynthetic: Bool

    public init(
        provider: String, id: ModelID, displayName: String, aliases: [ModelID] = [],
        capabilities: ModelCapabilities, pricing: ModelPricing?, deprecated: Bool = false, isSynthetic: Bool = false
    ) {
        self.provider = provider
        self.id = id
        self.displayName = displayName
        self.aliases = aliases
        self.capabilities = capabilities
        self.pricing = pricing
        self.deprecated = deprecated
        self.isSynthetic = isSynthetic
    }
}
