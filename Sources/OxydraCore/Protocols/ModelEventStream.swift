/// A source of model events, pulled one at a time. Implementations are classes so a stream's
/// state lives in one place however the iterator is copied.
public protocol ModelEventSource: AnyObject, Sendable {
    /// The next event, or nil at the end. Cancellation of the calling task ends the underlying
    /// request (the connection is closed).
    func next() async throws -> ModelEvent?

    /// True when the next event already arrived from the network (in the same read as the last
    /// one), so `next()` returns it without waiting. Consumers use it to hand on several small
    /// deltas as one without delaying any of them.
    var hasBufferedEvent: Bool { get }

    /// The next event when it has already arrived, taken without suspending; nil when the next one
    /// has to be waited for with `next()` (or the stream is over). What it returns is what `next()`
    /// would have returned, so a consumer takes buffered events this way and calls `next()` only
    /// when it gets nil: an `await` per event costs a chain of executor checks and async frames.
    func nextBuffered() throws -> ModelEvent?
}

extension ModelEventSource {
    public var hasBufferedEvent: Bool { false }
    public func nextBuffered() throws -> ModelEvent? { nil }
}

/// A provider's response stream.
///
/// It is *pull-based*: nothing is read from the network until the consumer asks for the next
/// event, so a slow consumer applies backpressure all the way to the TCP connection, and no task
/// runs behind the consumer's back. Iterate it once.
public struct ModelEventStream: AsyncSequence, Sendable {
    public typealias Element = ModelEvent

    private let makeSource: @Sendable () -> any ModelEventSource

    public init(_ makeSource: @escaping @Sendable () -> any ModelEventSource) {
        self.makeSource = makeSource
    }

    /// A stream of fixed events (tests, cached answers), optionally ending with `error`.
    public init(events: [ModelEvent], error: (any Error & Sendable)? = nil) {
        self.init { ArraySource(events: events, error: error) }
    }

    /// A stream that fails with `error` on the first pull.
    public static func failing(_ error: any Error & Sendable) -> ModelEventStream {
        ModelEventStream(events: [], error: error)
    }

    public func makeAsyncIterator() -> Iterator { Iterator(source: makeSource()) }

    public struct Iterator: AsyncIteratorProtocol {
        let source: any ModelEventSource
        public mutating func next() async throws -> ModelEvent? { try await source.next() }
        /// See ``ModelEventSource/nextBuffered()``.
        public func nextBuffered() throws -> ModelEvent? { try source.nextBuffered() }
        /// See ``ModelEventSource/hasBufferedEvent``.
        public var hasBufferedEvent: Bool { source.hasBufferedEvent }
    }

    /// Drains the stream into a response: text, reasoning, assembled tool calls, usage and finish.
    /// A `connectionLost` event becomes ``ProviderError/streamInterrupted(provider:message:)``.
    public func collect(provider: ProviderID) async throws -> ModelResponse {
        var builder = ModelResponseBuilder()
        for try await event in self { try builder.add(event, provider: provider) }
        return try builder.build(provider: provider)
    }
}

/// Folds model events into a ``ModelResponse``.
public struct ModelResponseBuilder: Sendable {
    public private(set) var text = ""
    public private(set) var reasoning = ""
    public private(set) var toolCalls = ToolCallAccumulator()
    public private(set) var usage: Usage?
    public private(set) var finishReason: FinishReason?

    public init() {}

    /// Adds one event; `connectionLost` throws ``ProviderError/streamInterrupted(provider:message:)``.
    public mutating func add(_ event: ModelEvent, provider: ProviderID) throws(ProviderError) {
        switch event {
        case .textDelta(let delta): text += delta
        case .reasoningDelta(let delta): reasoning += delta
        case .toolCallDelta(let delta): toolCalls.add(delta)
        case .usage(let update): usage = usage.map { $0.merged(with: update) } ?? update
        case .finish(let reason): finishReason = reason
        case .connectionLost(let reason): throw .streamInterrupted(provider: provider, message: reason)
        case .retrying: break
        }
    }

    /// The response; tool calls that cannot be assembled are a ``ProviderError/responseParse(provider:message:)``.
    public func build(provider: ProviderID) throws(ProviderError) -> ModelResponse {
        let calls: [ToolCall]
        do {
            calls = try toolCalls.build()
        } catch {
            throw .responseParse(provider: provider, message: error.description)
        }
        return ModelResponse(
            message: .assistant(text.isEmpty ? nil : text, toolCalls: calls), finishReason: finishReason, usage: usage,
            reasoning: reasoning.isEmpty ? nil : reasoning)
    }
}

/// Serves a fixed list of events.
final class ArraySource: ModelEventSource, @unchecked Sendable {
    // Mutated only from `next()`, which a single consumer calls sequentially.
    private var events: [ModelEvent]
    private var position = 0
    private let error: (any Error & Sendable)?

    init(events: [ModelEvent], error: (any Error & Sendable)?) {
        self.events = events
        self.error = error
    }

    func next() async throws -> ModelEvent? {
        if let event = nextBuffered() { return event }
        if let error { throw error }
        return nil
    }

    func nextBuffered() -> ModelEvent? {
        guard position < events.count else { return nil }
        position += 1
        return events[position - 1]
    }
}
