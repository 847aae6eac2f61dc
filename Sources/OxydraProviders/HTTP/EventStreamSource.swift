import NIOCore
import OxydraCore
import Synchronization

/// Turns one provider's event-stream payloads into ``ModelEvent``s.
protocol StreamTranslator: Sendable {
    /// Events for one SSE event. Throwing ends the stream with that error.
    mutating func translate(_ event: SSEEvent) throws -> [ModelEvent]
    /// The same, appended to `events` (no array per event); what it appended before throwing is
    /// taken back by the caller.
    mutating func translate(_ event: SSEEvent, into events: inout [ModelEvent]) throws
    /// True once the provider's end marker was seen (`[DONE]`, `message_stop`, ...): stop reading.
    var isComplete: Bool { get }
    /// True when the body may end here without the connection counting as lost (for servers that
    /// finish a response but omit the end marker).
    var acceptsEndOfInput: Bool { get }
    /// Events for a server that answered a streaming request with one JSON document.
    mutating func translateCompleteBody(_ body: Data) throws -> [ModelEvent]
    /// Why an end of input before the end marker is a lost connection.
    var incompleteReason: String { get }
}

extension StreamTranslator {
    mutating func translate(_ event: SSEEvent, into events: inout [ModelEvent]) throws {
        events += try translate(event)
    }
}

/// A pull-based model event stream over an HTTP event-stream response.
///
/// The request is sent on the first `next()`; after that every `next()` returns a buffered event or
/// reads the next body chunk. The stream ends with `connectionLost` when the body ends or breaks
/// before the translator saw the provider's end marker.
///
/// With a `fallbackBody`, a stream that ends cleanly without a single event is asked again without
/// streaming: llama-cpp-python's server answers 200 with an empty event stream whenever the model
/// chooses a tool under `tool_choice: "auto"` ("Automatic streaming tool choice is not supported"),
/// while the same request without streaming returns the tool call. Nothing was delivered, so
/// nothing is repeated.
final class EventStreamSource<Translator: StreamTranslator>: ModelEventSource, @unchecked Sendable {
    // All state is touched only from `next()`, which one consumer calls sequentially, so no two
    // accesses can overlap: the runtime's exclusivity checks (about ten per streamed token, each a
    // thread-local lookup) are left out with `@exclusivity(unchecked)`; the compiler still checks
    // what it can see.
    private enum State {
        case notStarted
        case streaming(ProviderResponse)
        case finished
    }

    private let transport: ProviderTransport
    private let path: String
    private let body: Data
    private let fallbackBody: (@Sendable () throws(ProviderError) -> Data)?
    @exclusivity(unchecked) private var sawEvent = false
    @exclusivity(unchecked) private var translator: Translator
    @exclusivity(unchecked) private var state = State.notStarted
    @exclusivity(unchecked) private var parser = SSEParser()
    @exclusivity(unchecked) private var pending: [ModelEvent] = []
    @exclusivity(unchecked) private var cursor = 0
    /// Why a part of the body ended the stream (it could not be read, or its events not
    /// translated); thrown by `next()` after the events that came before it.
    @exclusivity(unchecked) private var failure: (any Error)?

    init(
        transport: ProviderTransport, path: String, body: Data, translator: Translator,
        fallbackBody: (@Sendable () throws(ProviderError) -> Data)? = nil
    ) {
        self.transport = transport
        self.path = path
        self.body = body
        self.fallbackBody = fallbackBody
        self.translator = translator
    }

    /// Counts the parts that already arrived (the rest of the socket read that brought the last
    /// one: a server sends each event as its own chunk), so deltas of one read are passed on as one.
    var hasBufferedEvent: Bool { cursor < pending.count || fill() }

    // The methods a streamed token goes through run specialized for the OpenAI-compatible
    // translator (most servers speak it): generic, every event went through witness calls and a
    // copy of the translator and of the event (about 1.5 % of a steady turn).
    @_specialize(exported:false,where Translator == OpenAIChatTranslator)
    func nextBuffered() -> ModelEvent? {
        guard cursor < pending.count || fill() else { return nil }
        cursor += 1
        return pending[cursor - 1]
    }

    /// Reads parts that already arrived until one yields an event; false when none did.
    @_specialize(exported:false,where Translator == OpenAIChatTranslator)
    private func fill() -> Bool {
        guard failure == nil, case .streaming(let response) = state else { return false }
        pending.removeAll(keepingCapacity: true)
        cursor = 0
        while pending.isEmpty, case .streaming = state, let part = response.arrivedPart() {
            do {
                try read(part)
            } catch {
                failure = error
                break
            }
        }
        return !pending.isEmpty
    }

    func next() async throws -> ModelEvent? {
        while true {
            if let event = nextBuffered() { return event }
            if let failure {
                self.failure = nil
                throw failure
            }
            pending.removeAll(keepingCapacity: true)
            cursor = 0
            switch state {
            case .finished:
                return nil
            case .notStarted:
                try await start()
            case .streaming(let response):
                let chunk: ByteBuffer?
                do {
                    chunk = try await response.nextPart()
                } catch {
                    state = .finished
                    if error is CancellationError { throw error }
                    try Task.checkCancellation()
                    let mapped = transport.mapTransportError(error)
                    if case .timedOut = mapped { throw mapped }
                    pending = [
                        .connectionLost("\(transport.provider) stream transport dropped: \(transport.describe(error))")
                    ]
                    continue
                }
                guard let chunk else {
                    state = .finished
                    try await endOfInput()
                    continue
                }
                do {
                    try read(chunk)
                } catch {
                    failure = error
                }
            }
        }
    }

    /// The events of one part of the body, into `pending`.
    @_specialize(exported:false,where Translator == OpenAIChatTranslator)
    private func read(_ chunk: ByteBuffer) throws {
        let events: [SSEEvent]
        do {
            events = try chunk.withUnsafeReadableBytes { bytes throws(SSEError) in try parser.feed(bytes) }
        } catch {
            state = .finished
            throw ProviderError.responseParse(provider: transport.provider, message: error.description)
        }
        try translate(events)
    }

    private func start() async throws {
        state = .finished
        let response = try await transport.post(path, json: body, accept: "text/event-stream")
        switch try await transport.requireEventStream(response) {
        case .eventStream:
            state = .streaming(response)
        case .json:
            let data = try await transport.readBody(response)
            pending = try translator.translateCompleteBody(data)
        }
    }

    @_specialize(exported:false,where Translator == OpenAIChatTranslator)
    private func translate(_ events: [SSEEvent]) throws {
        if !events.isEmpty { sawEvent = true }
        for event in events {
            let count = pending.count
            do {
                try translator.translate(event, into: &pending)
            } catch {
                pending.removeSubrange(count...)
                state = .finished
                throw error as? ProviderError
                    ?? ProviderError.responseParse(provider: transport.provider, message: "\(error)")
            }
            if translator.isComplete {
                state = .finished
                return
            }
        }
    }

    private func endOfInput() async throws {
        let events: [SSEEvent]
        do {
            events = try parser.finish()
        } catch {
            throw ProviderError.responseParse(provider: transport.provider, message: error.description)
        }
        try translate(events)
        if !sawEvent, let fallbackBody {
            let response = try await transport.post(path, json: try fallbackBody(), accept: "application/json")
            pending = try translator.translateCompleteBody(try await transport.readBody(response))
            return
        }
        if !translator.acceptsEndOfInput { pending.append(.connectionLost(translator.incompleteReason)) }
    }
}

/// Decoding helpers shared by the translators.
enum WireJSON {
    static let decoder = JSONDecoder()

    static func decode<T: Decodable>(_ type: T.Type, _ text: String, provider: ProviderID) throws -> T {
        try decode(type, Data(text.utf8), provider: provider)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ data: Data, provider: ProviderID) throws -> T {
        do {
            return try decoder.decode(type, from: data)
        } catch {
            let preview = String(decoding: data.prefix(200), as: UTF8.self)
            throw ProviderError.responseParse(
                provider: provider, message: "\(DecodingErrorDescription.describe(error)) in `\(preview)`")
        }
    }

    /// Parses a stream payload with the fast parser.
    static func parse(_ text: String, provider: ProviderID) throws(ProviderError) -> JSONValue {
        do {
            return try JSONParser.parse(text)
        } catch {
            throw .responseParse(provider: provider, message: "not valid JSON (\(error)) in `\(text.prefix(200))`")
        }
    }

    /// Request bodies: the project's writer (sorted keys, so bodies are stable).
    static func encode(_ value: JSONValue) -> Data { Data(JSONWriter.text(value, sortedKeys: true).utf8) }

    /// `members` plus members whose values are already encoded (`encoded`: key → JSON as UTF-8),
    /// exactly as ``encode(_:)`` would write them all, in one sorted object.
    static func encode(_ members: [String: JSONValue], encoded: [String: [UInt8]]) -> Data {
        precondition(Set(members.keys).isDisjoint(with: encoded.keys))
        let keys = (Array(members.keys) + Array(encoded.keys)).sorted(by: JSONWriter.utf8Precedes)
        var body = JSONBytes(capacity: encoded.values.reduce(256) { $0 + $1.count })
        body.raw("{")
        for (position, key) in keys.enumerated() {
            if position > 0 { body.raw(",") }
            body.string(key)
            body.raw(":")
            if let value = members[key] {
                body.value(value, sortedKeys: true)
            } else if let value = encoded[key] {
                body.raw(value)
            }
        }
        body.raw("}")
        return Data(body.bytes)
    }
}

/// A system prompt as a JSON string, kept while the prompt stays the same: every request starts
/// with it, and it is the longest text a request carries (tool rules, one line each).
final class EncodedTextCache: Sendable {
    private let storage = Mutex<(text: String, bytes: [UInt8])?>(nil)

    init() {}

    func bytes(for text: String) -> [UInt8] {
        if let cached = storage.withLock({ $0 }), cached.text == text { return cached.bytes }
        var encoded = JSONBytes(capacity: text.utf8.count + 16)
        encoded.string(text)
        storage.withLock { $0 = (text, encoded.bytes) }
        return encoded.bytes
    }
}

/// A request's tool declarations, encoded once: a guest sends the same tools on every call.
final class EncodedToolsCache: Sendable {
    private let storage = Mutex<(tools: [ToolDeclaration], bytes: [UInt8])?>(nil)

    init() {}

    /// The encoding of `encode(tools)`, reused while `tools` stays the same.
    func bytes(for tools: [ToolDeclaration], encode: ([ToolDeclaration]) -> JSONValue) -> [UInt8] {
        if let cached = storage.withLock({ $0 }), Self.same(cached.tools, tools) { return cached.bytes }
        let bytes = Array(JSONWriter.text(encode(tools), sortedKeys: true).utf8)
        storage.withLock { $0 = (tools, bytes) }
        return bytes
    }

    /// The same array storage (the registry hands out one array while its tools stay the same),
    /// or equal contents.
    private static func same(_ a: [ToolDeclaration], _ b: [ToolDeclaration]) -> Bool {
        let shared = a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { a.baseAddress == $0.baseAddress } }
        return (shared && a.count == b.count) || a == b
    }
}

/// The `messages` array of each of a few sessions' last request, with where each message ends in
/// it. A session's next request repeats those messages and adds the newest, so its array starts
/// with those bytes and only the new messages are written (a request carries the whole history,
/// and writing it again was a tenth of a turn's instructions by the fiftieth turn). Messages are
/// compared before their bytes are reused, so an edited or shortened history is written anew.
final class EncodedHistoryCache: Sendable {
    struct Entry {
        var messages: [Message]
        /// `bytes[..<ends[i]]` is `[` and messages `0...i` with the commas between them.
        var ends: [Int]
        var bytes: [UInt8]
    }

    /// Sessions kept, the most recently used last (each holds its history's encoding once).
    static let sessions = 8
    /// A longer array is not kept (an image is in it as base64, say): writing it again costs
    /// little next to sending it, and 8 of them would be a lot of memory to hold.
    static let maxBytes = 512 << 10
    private let entries = Mutex<[(session: SessionID, entry: Entry)]>([])

    init() {}

    /// `messages` as a JSON array, each written by `write` unless the session's last request began
    /// with the same messages.
    func encode(
        _ messages: [Message], session: SessionID?, capacity: Int, write: (Int, Message, inout JSONBytes) -> Void
    ) -> [UInt8] {
        var out = JSONBytes(capacity: capacity)
        var ends: [Int] = []
        ends.reserveCapacity(messages.count)
        var reused = 0
        if let session, let (count, entry) = prefix(of: messages, session: session), count > 0 {
            reused = count
            ends.append(contentsOf: entry.ends[..<count])
            out.raw(entry.bytes[..<entry.ends[count - 1]])
        } else {
            out.raw("[")
        }
        for position in reused..<messages.count {
            if position > 0 { out.raw(",") }
            write(position, messages[position], &out)
            ends.append(out.bytes.count)
        }
        out.raw("]")
        if let session {
            keep(
                out.bytes.count <= Self.maxBytes ? Entry(messages: messages, ends: ends, bytes: out.bytes) : nil,
                for: session)
        }
        return out.bytes
    }

    /// How many of `messages` the session's last request began with, and that request.
    private func prefix(of messages: [Message], session: SessionID) -> (Int, Entry)? {
        guard let entry = entries.withLock({ $0.last { $0.session == session }?.entry }) else { return nil }
        var count = 0
        while count < min(messages.count, entry.messages.count), messages[count] == entry.messages[count] { count += 1 }
        return (count, entry)
    }

    /// Keeps `entry` as the session's (nil: forgets the session's).
    private func keep(_ entry: Entry?, for session: SessionID) {
        entries.withLock { entries in
            entries.removeAll { $0.session == session }
            guard let entry else { return }
            if entries.count >= Self.sessions { entries.removeFirst() }
            entries.append((session, entry))
        }
    }

    /// The sessions kept (tests).
    var keptSessions: [SessionID] { entries.withLock { $0.map(\.session) } }
}
