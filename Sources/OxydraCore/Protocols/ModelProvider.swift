/// Everything a provider needs for one model call.
public struct ModelRequest: Sendable, Hashable {
    public var model: ModelID
    public var messages: [Message]
    public var tools: [ToolDeclaration]
    /// Upper bound for the answer, from config or the catalog's `output_tokens`.
    public var maxOutputTokens: Int?
    /// The conversation this call belongs to; providers that keep server-side state per conversation
    /// (OpenAI Responses `previous_response_id`) key it by session, never share it between sessions.
    public var session: SessionID?

    public init(
        model: ModelID, messages: [Message], tools: [ToolDeclaration] = [], maxOutputTokens: Int? = nil,
        session: SessionID? = nil
    ) {
        self.model = model
        self.messages = messages
        self.tools = tools
        self.maxOutputTokens = maxOutputTokens
        self.session = session
    }
}

/// A language-model backend (OpenAI, Anthropic, Gemini, Responses, any OpenAI-compatible server).
public protocol ModelProvider: Sendable {
    /// The registry name this provider was built from (`openai`, `local-ollama`).
    var id: ProviderID { get }
    /// What `model` can do, from the catalog; throws for models the catalog does not admit.
    func capabilities(for model: ModelID) throws(ProviderError) -> ModelCapabilities
    /// Streams one response. Tool-call argument deltas are *fragments*: consumers append them.
    /// Cancelling the consuming task closes the connection. A stream that drops before the
    /// provider's end marker ends with ``ModelEvent/connectionLost(_:)``.
    func stream(_ request: ModelRequest) -> ModelEventStream
    /// One response through the provider's non-streaming endpoint.
    func complete(_ request: ModelRequest) async throws -> ModelResponse
}

/// A complete (non-streamed) model answer.
public struct ModelResponse: Sendable, Hashable {
    /// The assistant message: text and/or tool calls.
    public var message: Message
    public var finishReason: FinishReason?
    public var usage: Usage?
    /// Reasoning text, when the model exposed it (never part of `message`).
    public var reasoning: String?

    public init(message: Message, finishReason: FinishReason? = nil, usage: Usage? = nil, reasoning: String? = nil) {
        self.message = message
        self.finishReason = finishReason
        self.usage = usage
        self.reasoning = reasoning
    }
}
