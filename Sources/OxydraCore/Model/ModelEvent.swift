/// Token counts reported by a provider. Every field is optional: some servers (llama.cpp, older
/// Ollama) omit usage entirely, and streams report it piecewise.
public struct Usage: Sendable, Hashable, Codable {
    public var promptTokens: Int?
    public var completionTokens: Int?
    public var totalTokens: Int?

    public init(promptTokens: Int? = nil, completionTokens: Int? = nil, totalTokens: Int? = nil) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.totalTokens = totalTokens
    }

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens"
        case completionTokens = "completion_tokens"
        case totalTokens = "total_tokens"
    }

    /// Field-wise merge where the newer report wins for every field it carries.
    public func merged(with newer: Usage) -> Usage {
        Usage(
            promptTokens: newer.promptTokens ?? promptTokens,
            completionTokens: newer.completionTokens ?? completionTokens,
            totalTokens: newer.totalTokens ?? totalTokens)
    }

    /// `total_tokens`, or prompt + completion when the provider did not send a total.
    public var effectiveTotal: Int? {
        if let totalTokens { return totalTokens }
        if promptTokens == nil && completionTokens == nil { return nil }
        return (promptTokens ?? 0) + (completionTokens ?? 0)
    }
}

/// Why the model stopped producing output.
public enum FinishReason: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The model finished its answer.
    case stop
    /// The output token limit was reached; the answer is cut.
    case length
    /// The model wants tools to run.
    case toolCalls
    /// The provider's safety filter stopped the output.
    case contentFilter
    /// A provider-specific reason, kept verbatim.
    case other(String)

    /// Maps the spellings of OpenAI (`stop`, `tool_calls`), Anthropic (`end_turn`, `tool_use`,
    /// `max_tokens`) and Gemini (`STOP`, `MAX_TOKENS`, `SAFETY`) onto one vocabulary.
    public init(providerValue raw: String) {
        switch raw.lowercased() {
        case "stop", "end_turn", "stop_sequence", "completed": self = .stop
        case "length", "max_tokens", "max_output_tokens", "incomplete": self = .length
        case "tool_calls", "tool_use", "function_call": self = .toolCalls
        case "content_filter", "safety", "refusal", "recitation", "blocklist", "prohibited_content":
            self = .contentFilter
        default: self = .other(raw)
        }
    }

    public var description: String {
        switch self {
        case .stop: "stop"
        case .length: "length"
        case .toolCalls: "tool_calls"
        case .contentFilter: "content_filter"
        case .other(let raw): raw
        }
    }

    public init(from decoder: any Decoder) throws {
        self.init(providerValue: try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// One piece of a streamed tool call. Argument text arrives as *fragments*: a consumer appends
/// `argumentsFragment` to what it has for the same `index`. `id` and `name` usually arrive once,
/// on the first fragment of the call.
public struct ToolCallDelta: Sendable, Hashable, Codable {
    /// Position of the call within the response; stable across the whole stream.
    public var index: Int
    public var id: String?
    public var name: String?
    public var argumentsFragment: String?
    public var metadata: JSONValue?

    public init(
        index: Int, id: String? = nil, name: String? = nil, argumentsFragment: String? = nil,
        metadata: JSONValue? = nil
    ) {
        self.index = index
        self.id = id
        self.name = name
        self.argumentsFragment = argumentsFragment
        self.metadata = metadata
    }

    enum CodingKeys: String, CodingKey {
        case index, id, name, metadata
        case argumentsFragment = "arguments_fragment"
    }
}

/// One item of a provider's response stream.
public enum ModelEvent: Sendable, Hashable, Codable {
    /// Answer text to append.
    case textDelta(String)
    /// Reasoning ("thinking") text; shown to users, never stored as answer text.
    case reasoningDelta(String)
    /// A fragment of a tool call.
    case toolCallDelta(ToolCallDelta)
    /// Token counts so far; later reports override earlier fields.
    case usage(Usage)
    /// The model finished; no more text or tool calls follow.
    case finish(FinishReason)
    /// The stream dropped before the provider's end marker; the text is the transport's reason.
    case connectionLost(String)
    /// A notice, not content: the attempt failed before any output (`reason`) and the request is
    /// sent again after `waitMilliseconds` as attempt `attempt` of `maxAttempts`.
    case retrying(attempt: Int, maxAttempts: Int, waitMilliseconds: Int, reason: String)

    enum CodingKeys: String, CodingKey {
        case type, text, delta, usage, reason, message, attempt
        case maxAttempts = "max_attempts"
        case waitMilliseconds = "wait_ms"
    }
    enum Kind: String, Codable {
        case textDelta = "text_delta"
        case reasoningDelta = "reasoning_delta"
        case toolCallDelta = "tool_call_delta"
        case usage, finish
        case connectionLost = "connection_lost"
        case retrying
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        switch try container.decode(Kind.self, forKey: .type) {
        case .textDelta: self = .textDelta(try container.decode(String.self, forKey: .text))
        case .reasoningDelta: self = .reasoningDelta(try container.decode(String.self, forKey: .text))
        case .toolCallDelta: self = .toolCallDelta(try container.decode(ToolCallDelta.self, forKey: .delta))
        case .usage: self = .usage(try container.decode(Usage.self, forKey: .usage))
        case .finish: self = .finish(try container.decode(FinishReason.self, forKey: .reason))
        case .connectionLost: self = .connectionLost(try container.decode(String.self, forKey: .message))
        case .retrying:
            self = .retrying(
                attempt: try container.decode(Int.self, forKey: .attempt),
                maxAttempts: try container.decode(Int.self, forKey: .maxAttempts),
                waitMilliseconds: try container.decode(Int.self, forKey: .waitMilliseconds),
                reason: try container.decode(String.self, forKey: .reason))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .textDelta(let text):
            try container.encode(Kind.textDelta, forKey: .type)
            try container.encode(text, forKey: .text)
        case .reasoningDelta(let text):
            try container.encode(Kind.reasoningDelta, forKey: .type)
            try container.encode(text, forKey: .text)
        case .toolCallDelta(let delta):
            try container.encode(Kind.toolCallDelta, forKey: .type)
            try container.encode(delta, forKey: .delta)
        case .usage(let usage):
            try container.encode(Kind.usage, forKey: .type)
            try container.encode(usage, forKey: .usage)
        case .finish(let reason):
            try container.encode(Kind.finish, forKey: .type)
            try container.encode(reason, forKey: .reason)
        case .connectionLost(let message):
            try container.encode(Kind.connectionLost, forKey: .type)
            try container.encode(message, forKey: .message)
        case .retrying(let attempt, let maxAttempts, let wait, let reason):
            try container.encode(Kind.retrying, forKey: .type)
            try container.encode(attempt, forKey: .attempt)
            try container.encode(maxAttempts, forKey: .maxAttempts)
            try container.encode(wait, forKey: .waitMilliseconds)
            try container.encode(reason, forKey: .reason)
        }
    }
}
