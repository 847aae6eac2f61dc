import OxydraCore

/// When and how long to wait between attempts (`[reliability]`).
public struct RetryPolicy: Sendable, Hashable {
    public var maxAttempts: Int
    public var backoffBase: Duration
    public var backoffMax: Duration
    public var jitter: Bool
    /// A `Retry-After` longer than this fails at once instead of stalling the turn.
    public var longestWait: Duration

    public init(
        maxAttempts: Int, backoffBase: Duration, backoffMax: Duration, jitter: Bool,
        longestWait: Duration = .seconds(60)
    ) {
        self.maxAttempts = max(1, maxAttempts)
        self.backoffBase = max(backoffBase, .milliseconds(1))
        self.backoffMax = max(backoffMax, self.backoffBase)
        self.jitter = jitter
        self.longestWait = longestWait
    }

    public init(_ config: ReliabilityConfig, turnTimeoutSecs: Int) {
        self.init(
            maxAttempts: config.maxAttempts, backoffBase: .milliseconds(config.backoffBaseMs),
            backoffMax: .milliseconds(config.backoffMaxMs), jitter: config.jitter,
            longestWait: .seconds(turnTimeoutSecs))
    }

    /// The wait before attempt `attempt + 1` (after `attempt` failures): `base · 2^(attempt−1)`
    /// capped at `backoffMax`; with jitter, uniformly between half of that and all of it.
    public func delay(afterAttempt attempt: Int) -> Duration {
        let exponent = min(max(attempt - 1, 0), 30)
        var delay = backoffBase * (1 << exponent)
        if delay > backoffMax { delay = backoffMax }
        if jitter {
            let half = delay / 2
            let spread = Double(half.components.seconds) + Double(half.components.attoseconds) / 1e18
            delay = half + .seconds(Double.random(in: 0...spread))
        }
        return delay
    }
}

/// Retries a provider's failures that a new attempt can fix.
///
/// Retried, up to `maxAttempts` in all: transport errors, timeouts, HTTP 408, 409, 429 and 5xx, and
/// streams that drop **before any output** (text, reasoning or a tool-call fragment). `Retry-After`
/// is honoured (waits at least that long; a longer wait than `longestWait` fails at once). A stream
/// that drops after output ends with ``ProviderError/streamInterrupted(provider:message:)`` instead
/// of replaying text the consumer already has. Other errors fail at once.
public struct ReliableProvider: ModelProvider {
    public let inner: any ModelProvider
    public let policy: RetryPolicy

    public init(_ inner: any ModelProvider, policy: RetryPolicy) {
        self.inner = inner
        self.policy = policy
    }

    public var id: ProviderID { inner.id }

    public func capabilities(for model: ModelID) throws(ProviderError) -> ModelCapabilities {
        try inner.capabilities(for: model)
    }

    public func stream(_ request: ModelRequest) -> ModelEventStream {
        let inner = self.inner
        let policy = self.policy
        return ModelEventStream { RetryingSource(inner: inner, request: request, policy: policy) }
    }

    public func complete(_ request: ModelRequest) async throws -> ModelResponse {
        var attempt = 1
        while true {
            do {
                return try await inner.complete(request)
            } catch let error as ProviderError {
                guard let wait = Self.retryDelay(for: error, attempt: attempt, policy: policy) else { throw error }
                try await Task.sleep(for: wait)
                attempt += 1
            }
        }
    }

    /// How long to wait before retrying `error` after `attempt` attempts, or nil to give up.
    static func retryDelay(for error: ProviderError, attempt: Int, policy: RetryPolicy) -> Duration? {
        // A prompt too long for the model fails the same way every time.
        guard error.isRetryable, !error.mentionsContextLimit, attempt < policy.maxAttempts else { return nil }
        var wait = policy.delay(afterAttempt: attempt)
        if case .httpStatus(_, _, _, let retryAfter?) = error {
            let requested = Duration.milliseconds(Int64((retryAfter * 1000).rounded(.up)))
            if requested > policy.longestWait { return nil }
            wait = max(wait, requested)
        }
        return wait
    }
}

/// The stream side of ``ReliableProvider``.
final class RetryingSource: ModelEventSource, @unchecked Sendable {
    // Touched only from `next()`, called sequentially by one consumer (no runtime exclusivity
    // checks, as in `EventStreamSource`).
    private let inner: any ModelProvider
    private let request: ModelRequest
    private let policy: RetryPolicy
    @exclusivity(unchecked) private var iterator: ModelEventStream.Iterator?
    @exclusivity(unchecked) private var attempt = 0
    @exclusivity(unchecked) private var emittedOutput = false

    init(inner: any ModelProvider, request: ModelRequest, policy: RetryPolicy) {
        self.inner = inner
        self.request = request
        self.policy = policy
    }

    var hasBufferedEvent: Bool { iterator?.hasBufferedEvent ?? false }

    func nextBuffered() throws -> ModelEvent? {
        guard pendingWait == nil, let event = try iterator?.nextBuffered() else { return nil }
        return try checked(event)
    }

    /// The wait announced by the last `.retrying` notice, slept before the next attempt.
    @exclusivity(unchecked) private var pendingWait: Duration?
    /// Everything waited between attempts so far (for the final error).
    @exclusivity(unchecked) private var waited = Duration.zero

    func next() async throws -> ModelEvent? {
        while true {
            if let wait = pendingWait {
                pendingWait = nil
                try await Task.sleep(for: wait)
            }
            if iterator == nil {
                attempt += 1
                iterator = inner.stream(request).makeAsyncIterator()
            }
            let event: ModelEvent?
            do {
                event = try await iterator!.next()
            } catch let error as ProviderError {
                iterator = nil
                if emittedOutput {
                    if case .transport(_, let message) = error {
                        throw ProviderError.streamInterrupted(provider: inner.id, message: message)
                    }
                    throw error
                }
                guard let wait = ReliableProvider.retryDelay(for: error, attempt: attempt, policy: policy) else {
                    if case .transport(let provider, let message) = error, attempt > 1 {
                        throw ProviderError.transport(provider: provider, message: message + gaveUp)
                    }
                    throw error
                }
                return retry(after: wait, because: error.shortReason)
            }
            guard let event else { return nil }
            return try checked(event)
        }
    }

    /// An event of the current attempt as the consumer gets it: a lost connection becomes a retry
    /// notice, or an error once output was passed on or the attempts are used up.
    private func checked(_ event: ModelEvent) throws(ProviderError) -> ModelEvent {
        switch event {
        case .connectionLost(let reason):
            iterator = nil
            if emittedOutput { throw .streamInterrupted(provider: inner.id, message: reason) }
            let error = ProviderError.transport(provider: inner.id, message: reason)
            guard let wait = ReliableProvider.retryDelay(for: error, attempt: attempt, policy: policy) else {
                throw .transport(provider: inner.id, message: reason + gaveUp)
            }
            return retry(after: wait, because: reason)
        case .textDelta, .reasoningDelta, .toolCallDelta:
            emittedOutput = true
            return event
        default:
            return event
        }
    }

    /// The notice that attempt `attempt + 1` follows after `wait`.
    private func retry(after wait: Duration, because reason: String) -> ModelEvent {
        pendingWait = wait
        waited += wait
        let milliseconds = Int(wait.components.seconds * 1000 + wait.components.attoseconds / 1_000_000_000_000_000)
        return .retrying(
            attempt: attempt + 1, maxAttempts: policy.maxAttempts, waitMilliseconds: milliseconds, reason: reason)
    }

    /// ` (gave up after 3 attempts, 1.5 s of waiting between them)`.
    private var gaveUp: String {
        let milliseconds = Int(waited.components.seconds * 1000 + waited.components.attoseconds / 1_000_000_000_000_000)
        let shown = milliseconds < 1000 ? "\(milliseconds) ms" : "\(Double(milliseconds / 100) / 10) s"
        return " (gave up after \(attempt) attempt\(attempt == 1 ? "" : "s")"
            + (waited > .zero ? ", \(shown) of waiting between them)" : ")")
    }
}
