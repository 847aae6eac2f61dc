import OxydraCore

/// The limits of one turn, from `[runtime]`.
public struct RuntimeSettings: Sendable, Hashable {
    /// Bound on every provider wait and every tool run.
    public var turnTimeout: Duration
    /// Provider calls per turn.
    public var maxTurns: Int
    /// US dollars per turn (priced from the catalog); nil for no limit.
    public var maxCost: Double?
    /// Identical tool calls in a row that stop the turn.
    public var loopGuardRepeats: Int
    public var triggerRatio: Double
    public var safetyBufferTokens: Int
    public var fallbackMaxContextTokens: Int
    public var summaryTargetRatio: Double
    public var summaryMinTurns: Int
    /// How often long tool runs report progress.
    public var heartbeatInterval: Duration

    public init(_ config: RuntimeConfig, heartbeatInterval: Duration = .seconds(5)) {
        turnTimeout = .seconds(config.turnTimeoutSecs)
        maxTurns = config.maxTurns
        maxCost = config.maxCost
        loopGuardRepeats = config.loopGuardRepeats
        triggerRatio = config.contextBudget.triggerRatio
        safetyBufferTokens = config.contextBudget.safetyBufferTokens
        fallbackMaxContextTokens = config.contextBudget.fallbackMaxContextTokens
        summaryTargetRatio = config.summarization.targetRatio
        summaryMinTurns = config.summarization.minTurns
        self.heartbeatInterval = heartbeatInterval
    }
}

/// What the runtime reports while a turn runs, for UIs.
public enum RuntimeEvent: Sendable, Hashable {
    case textDelta(String)
    case reasoningDelta(String)
    case progress(TurnProgress)
    /// A tool call is about to run; `summary` is short (`file_read(path=/shared/a.txt)`).
    case toolStarted(callID: String, name: String, summary: String, arguments: String)
    /// `output` is the result as the model receives it (scrubbed, cut at the output limit).
    case toolFinished(callID: String, name: String, duration: Duration, isError: Bool, summary: String, output: String)
    /// Usage of the turn so far and its cost in US dollars (nil when the model has no price).
    case usage(Usage, cost: Double?)
}

/// A progress line, e.g. `[2/8] Calling provider`.
public struct TurnProgress: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case providerCall
        /// The provider failed before any output; attempt `attempt` follows after the wait.
        case providerRetry(attempt: Int, maxAttempts: Int, waitMilliseconds: Int)
        case toolExecution(names: [String])
        case toolHeartbeat(names: [String], elapsedSeconds: Int)
        case summarizing
    }

    public var kind: Kind
    public var message: String
    /// Provider call number within the turn and the limit.
    public var turn: Int
    public var maxTurns: Int
}

/// The outcome of a completed turn.
public struct TurnResult: Sendable, Hashable {
    /// Messages this turn added after the user's input: assistant messages and tool results.
    public var messages: [Message]
    /// The last assistant message (the answer).
    public var answer: Message
    public var usage: Usage
    /// US dollars; nil when the model has no price in the catalog.
    public var cost: Double?
    public var providerCalls: Int
    public var finishReason: FinishReason?
    /// Tokens in the context after the turn (the last call's prompt plus its answer; estimated when
    /// the provider reports no usage) and the window they count against.
    public var contextTokens: Int?
    public var contextWindow: Int?
}
