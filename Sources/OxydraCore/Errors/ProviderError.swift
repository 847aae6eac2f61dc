/// Errors from talking to a model provider. Messages name the provider and say what to do.
public enum ProviderError: Error, Sendable, Hashable, CustomStringConvertible {
    /// No credential was found; `variables` are the environment variables that were tried, in order.
    case missingAPIKey(provider: ProviderID, variables: [String])
    /// The model is not in the catalog for this provider.
    case unknownModel(provider: ProviderID, CatalogError)
    /// The connection failed or dropped before any response.
    case transport(provider: ProviderID, message: String)
    /// The server answered with a non-success status; `message` is the provider's own text, trimmed.
    /// `retryAfter` is the server's `Retry-After`, in seconds, when it sent one.
    case httpStatus(provider: ProviderID, status: Int, message: String, retryAfter: Double? = nil)
    /// The response could not be understood.
    case responseParse(provider: ProviderID, message: String)
    /// The request cannot be made as asked (e.g. images for a text-only model).
    case requestFailed(provider: ProviderID, message: String)
    /// The stream dropped after output was already delivered, so it cannot be retried transparently.
    case streamInterrupted(provider: ProviderID, message: String)
    /// No answer within the configured time.
    case timedOut(provider: ProviderID, seconds: Int)

    public var description: String {
        switch self {
        case .missingAPIKey(let provider, let variables):
            "no API key for provider `\(provider)`: set `api_key` in [providers.registry.\(provider)], "
                + "or export one of \(variables.joined(separator: ", "))"
        case .unknownModel(_, let error):
            error.description
        case .transport(let provider, let message):
            "provider transport failed for `\(provider)`: \(message)"
        case .httpStatus(let provider, let status, let message, _):
            "provider `\(provider)` returned HTTP \(status): \(message)"
        case .responseParse(let provider, let message):
            "provider `\(provider)` sent a response that could not be parsed: \(message)"
        case .requestFailed(let provider, let message):
            "provider request failed for `\(provider)`: \(message)"
        case .streamInterrupted(let provider, let message):
            "provider `\(provider)` stream was interrupted after output had started: \(message)"
        case .timedOut(let provider, let seconds):
            "provider `\(provider)` did not respond within \(seconds)s (runtime.turn_timeout_secs)"
        }
    }

    /// What went wrong, briefly, for a "retrying" progress line (`HTTP 503`, `connection refused`).
    public var shortReason: String {
        switch self {
        case .httpStatus(_, let status, _, _): "HTTP \(status)"
        case .transport(_, let message): String(message.prefix(80))
        case .timedOut(_, let seconds): "no answer within \(seconds)s"
        default: description
        }
    }

    /// Whether the error says the request was too long for the model (any status or transport).
    public var mentionsContextLimit: Bool {
        let text = description.lowercased()
        return [
            "context length", "context size", "context window", "n_ctx", "too many tokens", "maximum context",
            "exceeds the available context", "prompt is too long", "input is too long",
        ]
        .contains { text.contains($0) }
    }

    /// Whether a fresh attempt may succeed (transport errors, 408, 409, 429 and 5xx).
    public var isRetryable: Bool {
        switch self {
        case .transport, .timedOut: true
        case .httpStatus(_, let status, _, _): status == 408 || status == 409 || status == 429 || status >= 500
        default: false
        }
    }
}

/// Errors from running a tool. They never end a turn: the runtime hands the text to the model as the
/// tool result so it can correct itself.
public enum ToolError: Error, Sendable, Hashable, CustomStringConvertible {
    case invalidArguments(tool: String, message: String)
    case executionFailed(tool: String, message: String)
    case unknownTool(name: String, available: [String])
    case timedOut(tool: String, seconds: Int)
    /// A security check refused the call; `reason` is a stable code (`PathOutsideAllowedRoots`, ...).
    case blocked(tool: String, reason: String, detail: String)

    public var description: String {
        switch self {
        case .invalidArguments(let tool, let message):
            "invalid arguments for tool \(tool): \(message)"
        case .executionFailed(let tool, let message):
            "tool execution failed for \(tool): \(message)"
        case .unknownTool(let name, let available):
            "unknown tool `\(name)`\(Suggestions.phrase(Suggestions.closest(to: name, in: available))); "
                + "available tools: \(available.joined(separator: ", "))"
        case .timedOut(let tool, let seconds):
            "tool \(tool) timed out after \(seconds)s"
        case .blocked(_, let reason, let detail):
            "blocked by security policy (\(reason)): \(detail)"
        }
    }
}

/// Errors from the memory store.
public enum MemoryError: Error, Sendable, Hashable, CustomStringConvertible {
    case connection(String)
    case migration(String)
    case query(String)
    case serialization(String)
    case notFound(String)
    case conflict(String)
    case unsupported(String)

    public var description: String {
        switch self {
        case .connection(let message): "memory database connection failed: \(message)"
        case .migration(let message): "memory database migration failed: \(message)"
        case .query(let message): "memory query failed: \(message)"
        case .serialization(let message): "memory record could not be encoded or decoded: \(message)"
        case .notFound(let message): "not found in memory: \(message)"
        case .conflict(let message): "memory write conflict: \(message)"
        case .unsupported(let message): "not supported by this memory store: \(message)"
        }
    }
}

/// Errors that end a turn.
public enum RuntimeError: Error, Sendable, Hashable, CustomStringConvertible {
    case provider(ProviderError)
    case memory(MemoryError)
    case cancelled
    /// A turn limit was reached; `detail` names which (`runtime.max_turns`, `runtime.max_cost`, ...).
    case budgetExceeded(detail: String)
    /// The same tool call repeated too often; stopped to save tokens.
    case loopDetected(detail: String)
    /// The provider failed in a way a too-long prompt explains (an error about the context, or a
    /// stream that ended with nothing after a long prompt): the error plus how to fix it.
    case contextOverflow(ProviderError, promptTokens: Int, window: Int, provider: String)
    /// The guest stopped while the turn waited for an approval: the request and the unanswered
    /// call stay stored, and the turn resumes when the guest starts again.
    case suspended
    /// `resume` found nothing unfinished: the history ends with an answer.
    case nothingToResume

    public var description: String {
        switch self {
        case .provider(let error): error.description
        case .memory(let error): error.description
        case .cancelled: "turn cancelled"
        case .suspended: "turn suspended while it waits for an approval; it resumes when the guest starts again"
        case .nothingToResume:
            "nothing to resume: the session's last message is an answer, and no tool call waits for a result"
        case .budgetExceeded(let detail): "turn budget exceeded: \(detail)"
        case .loopDetected(let detail): "turn stopped: \(detail)"
        case .contextOverflow(let error, let prompt, let window, let provider):
            "\(error.description) — the prompt was about \(prompt) tokens and the model's context window is "
                + "assumed to be \(window); if the server runs with a smaller one (llama.cpp -c, Ollama num_ctx, "
                + "vLLM --max-model-len), set providers.registry.\(provider).max_context_tokens to it"
        }
    }
}
