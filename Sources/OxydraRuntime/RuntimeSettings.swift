import OxydraCore
import Synchronization

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
    /// `approval` is how it was let run (`not_asked`, `granted_session`, `allowed_once`, … or, for a
    /// call that does not run, `denied`, `timed_out`), `approvedBy` the client that answered.
    case toolStarted(
        callID: String, name: String, summary: String, arguments: String, approval: String, approvedBy: String?)
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
        /// The provider failed before any output; the call continues on the next fallback.
        case providerFailover(from: String, to: String)
        /// A spending limit passed 80 %.
        case budgetWarning
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
    /// Who gave the answer (a fallback when the primary failed): registry name and model id.
    public var provider: String?
    public var model: String?
}

/// A provider and model a turn can continue on (`selection.fallbacks`).
public struct FallbackModel: Sendable {
    public var provider: any ModelProvider
    public var model: ModelDescriptor

    public init(provider: any ModelProvider, model: ModelDescriptor) {
        self.provider = provider
        self.model = model
    }

    /// `openai/gpt-4o-mini`.
    public var name: String { provider.id.rawValue + "/" + model.id.rawValue }
}

/// Providers that failed over recently: skipped for `cooldown` while another one is available.
public final class FailoverState: Sendable {
    let cooldown: Duration
    private let failedAt = Mutex<[String: ContinuousClock.Instant]>([:])

    public init(cooldown: Duration) { self.cooldown = cooldown }

    func failed(_ candidate: FallbackModel) {
        failedAt.withLock { $0[candidate.name] = .now }
    }

    /// The candidates in order, those cooling down after the others (so a turn still gets one).
    func order(_ candidates: [FallbackModel]) -> [FallbackModel] {
        let now = ContinuousClock.now
        let cooling = failedAt.withLock { table in
            Set(candidates.map(\.name).filter { name in table[name].map { now - $0 < cooldown } ?? false })
        }
        return candidates.filter { !cooling.contains($0.name) } + candidates.filter { cooling.contains($0.name) }
    }
}

extension ProviderError {
    /// Worth trying another provider for: the failures retries are for (refused or lost
    /// connection, timeout, 429, 5xx) — which the provider's own retries did not fix — but not a
    /// prompt too long for the model.
    var failsOver: Bool { isRetryable && !mentionsContextLimit }
}
