import OxydraCore
import Synchronization

/// OpenAI Responses (`provider_type = "openai_responses"`): `POST {base}/v1/responses`.
///
/// Conversations are chained with `previous_response_id` **per session**: after a response, the
/// next request of the same session sends only the messages added since (the server keeps the
/// rest). The chain is dropped, and the full history sent, whenever the history no longer extends
/// what was sent (trimmed or summarised context), for requests without a session, and when the
/// server rejects the chained request (an expired or unknown response id).
public struct OpenAIResponsesProvider: WireProvider {
    let setup: ProviderSetup
    let chains: ResponseChains

    init(setup: ProviderSetup, chains: ResponseChains = ResponseChains()) {
        self.setup = setup
        self.chains = chains
    }

    static let transportModalities: Set<InputModality> = [.text, .image]

    public func stream(_ request: ModelRequest) -> ModelEventStream {
        let chained: Data?
        let full: Data
        let fingerprint: ResponseChains.Fingerprint
        do {
            (chained, full, fingerprint) = try bodies(request, streaming: true)
        } catch {
            return .failing(error)
        }
        let setup = self.setup
        let chains = self.chains
        let session = request.session
        @Sendable func source(_ body: Data) -> EventStreamSource<ResponsesTranslator> {
            EventStreamSource(
                transport: setup.transport, path: "/v1/responses", body: body,
                translator: ResponsesTranslator(
                    provider: setup.id, chains: chains, session: session, fingerprint: fingerprint))
        }
        return ModelEventStream {
            guard let chained else { return source(full) }
            return ChainFallbackSource(first: source(chained), fallback: { source(full) }) {
                if let session { chains.reset(session) }
            }
        }
    }

    public func complete(_ request: ModelRequest) async throws -> ModelResponse {
        let (chained, full, fingerprint) = try bodies(request, streaming: false)
        var translator = ResponsesTranslator(
            provider: id, chains: chains, session: request.session, fingerprint: fingerprint)
        if let chained {
            do {
                let response = try await setup.transport.post(
                    "/v1/responses", json: chained, accept: "application/json")
                return try translator.response(try await setup.transport.readBody(response))
            } catch let error as ProviderError where ChainFallbackSource.rejectsChain(error) {
                if let session = request.session { chains.reset(session) }
            }
        }
        return try translator.response(try await setup.completeBody(path: "/v1/responses", body: full))
    }

    /// The chained body (when the session has a usable chain) and the full body.
    func bodies(_ request: ModelRequest, streaming: Bool) throws(ProviderError) -> (
        chained: Data?, full: Data, fingerprint: ResponseChains.Fingerprint
    ) {
        _ = try setup.checkedDescriptor(for: request, transportAccepts: Self.transportModalities)
        let fingerprint = ResponseChains.Fingerprint(messages: request.messages)
        let full = body(request, input: request.messages, previous: nil, streaming: streaming)
        guard let session = request.session, let link = chains.link(for: session, messages: request.messages) else {
            return (nil, full, fingerprint)
        }
        let tail = Array(request.messages[link.nextIndex...])
        return (body(request, input: tail, previous: link.responseID, streaming: streaming), full, fingerprint)
    }

    private func body(_ request: ModelRequest, input: [Message], previous: String?, streaming: Bool) -> Data {
        var body: [String: JSONValue] = [
            "model": .string(request.model.rawValue),
            "input": .array(input.filter { $0.role != .system }.flatMap(Self.inputItems)),
            "stream": .bool(streaming),
            "store": .bool(request.session != nil),
        ]
        // Instructions are not carried over by previous_response_id, so they go with every request.
        let system = request.messages.filter { $0.role == .system }.compactMap(\.content).filter { !$0.isEmpty }
        if !system.isEmpty { body["instructions"] = .string(system.joined(separator: "\n")) }
        if let previous { body["previous_response_id"] = .string(previous) }
        if !request.tools.isEmpty {
            body["tools"] = .array(
                request.tools.map {
                    [
                        "type": "function", "name": .string($0.name), "description": .string($0.description),
                        "parameters": $0.parameters, "strict": false,
                    ]
                })
        }
        if let maxOutputTokens = request.maxOutputTokens { body["max_output_tokens"] = .integer(maxOutputTokens) }
        return setup.encode(.object(body))
    }

    static func inputItems(_ message: Message) -> [JSONValue] {
        switch message.role {
        case .tool:
            return [
                [
                    "type": "function_call_output", "call_id": .string(message.toolCallID ?? ""),
                    "output": .string(message.content ?? ""),
                ]
            ]
        case .assistant:
            var items: [JSONValue] = []
            if let text = message.content, !text.isEmpty {
                items.append(["type": "message", "role": "assistant", "content": .string(text)])
            }
            for call in message.toolCalls {
                items.append([
                    "type": "function_call", "call_id": .string(call.id), "name": .string(call.name),
                    "arguments": .string(call.arguments.text),
                ])
            }
            return items
        default:
            guard !message.attachments.isEmpty else {
                return [
                    [
                        "type": "message", "role": .string(message.role.rawValue),
                        "content": .string(message.content ?? ""),
                    ]
                ]
            }
            var parts: [JSONValue] = []
            if let text = message.content, !text.isEmpty {
                parts.append(["type": "input_text", "text": .string(text)])
            }
            for attachment in message.attachments {
                parts.append([
                    "type": "input_image",
                    "image_url": .string("data:\(attachment.mimeType);base64,\(attachment.data.base64EncodedString())"),
                ])
            }
            return [["type": "message", "role": .string(message.role.rawValue), "content": .array(parts)]]
        }
    }
}

/// The `previous_response_id` of each session's last response, and what it covered.
public final class ResponseChains: Sendable {
    /// Identifies a history prefix: message count plus a hash of the messages.
    struct Fingerprint: Sendable, Hashable {
        let count: Int
        let hash: Int
        init(messages: some Collection<Message>) {
            var hasher = Hasher()
            for message in messages { hasher.combine(message) }
            count = messages.count
            hash = hasher.finalize()
        }
    }

    struct Link: Sendable, Hashable {
        let responseID: String
        let covered: Fingerprint
        /// Where the new input starts: after the covered messages and the response's own message.
        var nextIndex: Int { covered.count + 1 }
    }

    private let links = Mutex<[SessionID: Link]>([:])

    public init() {}

    /// The chain for `session` if `messages` extends exactly what the last response saw, followed
    /// by that response's assistant message; nil otherwise (the caller sends everything).
    func link(for session: SessionID, messages: [Message]) -> Link? {
        guard let link = links.withLock({ $0[session] }) else { return nil }
        guard messages.count > link.nextIndex, messages[link.covered.count].role == .assistant,
            Fingerprint(messages: messages.prefix(link.covered.count)) == link.covered
        else {
            reset(session)
            return nil
        }
        return link
    }

    func record(_ responseID: String, for session: SessionID, covering fingerprint: Fingerprint) {
        links.withLock { $0[session] = Link(responseID: responseID, covered: fingerprint) }
    }

    public func reset(_ session: SessionID) {
        _ = links.withLock { $0.removeValue(forKey: session) }
    }

    /// The response id chained for `session`, if any (for tests and diagnostics).
    public func responseID(for session: SessionID) -> String? { links.withLock { $0[session]?.responseID } }
}

/// Tries a chained request first; when the server rejects the chain before sending anything, runs
/// `reset` and continues with the full request.
final class ChainFallbackSource: ModelEventSource, @unchecked Sendable {
    // Touched only from `next()`, called sequentially by one consumer.
    private var current: any ModelEventSource
    private var fallback: (() -> any ModelEventSource)?
    private let reset: () -> Void

    init(first: any ModelEventSource, fallback: @escaping () -> any ModelEventSource, reset: @escaping () -> Void) {
        current = first
        self.fallback = fallback
        self.reset = reset
    }

    /// 4xx answers other than rate limiting mean the chained request itself is unacceptable
    /// (unknown or expired `previous_response_id`).
    static func rejectsChain(_ error: ProviderError) -> Bool {
        if case .httpStatus(_, let status, _, _) = error {
            return (400..<500).contains(status) && status != 429 && status != 408
        }
        return false
    }

    var hasBufferedEvent: Bool { current.hasBufferedEvent }

    func nextBuffered() throws -> ModelEvent? {
        guard let event = try current.nextBuffered() else { return nil }
        fallback = nil
        return event
    }

    func next() async throws -> ModelEvent? {
        do {
            let event = try await current.next()
            fallback = nil
            return event
        } catch let error as ProviderError where fallback != nil && Self.rejectsChain(error) {
            reset()
            current = fallback!()
            fallback = nil
            return try await current.next()
        }
    }
}

/// Responses API wire types.
enum ResponsesWire {
    struct Response: Decodable {
        var id: String?
        var status: String?
        var output: [Item]?
        var usage: UsageBlock?
        var error: ErrorBlock?
        var incompleteDetails: Incomplete?
        enum CodingKeys: String, CodingKey {
            case id, status, output, usage, error
            case incompleteDetails = "incomplete_details"
        }
    }

    struct Incomplete: Decodable { var reason: String? }

    struct Item: Decodable {
        var type: String?
        var id: String?
        var callID: String?
        var name: String?
        var arguments: FlexibleText?
        var content: [ContentPart]?
        var summary: [ContentPart]?
        enum CodingKeys: String, CodingKey {
            case type, id, name, arguments, content, summary
            case callID = "call_id"
        }
    }

    struct ContentPart: Decodable {
        var type: String?
        var text: String?
    }

    struct UsageBlock: Decodable {
        var inputTokens: Int?
        var outputTokens: Int?
        var totalTokens: Int?
        enum CodingKeys: String, CodingKey {
            case inputTokens = "input_tokens"
            case outputTokens = "output_tokens"
            case totalTokens = "total_tokens"
        }
    }

    struct ErrorBlock: Decodable {
        var code: String?
        var message: String?
    }
}

/// Responses API events → model events; records the chain on completion.
struct ResponsesTranslator: StreamTranslator {
    let provider: ProviderID
    let chains: ResponseChains
    let session: SessionID?
    let fingerprint: ResponseChains.Fingerprint
    private(set) var isComplete = false
    /// output_index → tool-call ordinal.
    private var ordinals: [Int: Int] = [:]
    private var streamedOutput = false

    init(provider: ProviderID, chains: ResponseChains, session: SessionID?, fingerprint: ResponseChains.Fingerprint) {
        self.provider = provider
        self.chains = chains
        self.session = session
        self.fingerprint = fingerprint
    }

    var acceptsEndOfInput: Bool { isComplete }
    var incompleteReason: String { "Responses stream ended before response.completed" }

    mutating func translate(_ event: SSEEvent) throws -> [ModelEvent] {
        let payload = try WireJSON.parse(event.data, provider: provider)
        switch payload["type"]?.stringValue {
        case "response.output_text.delta":
            guard let delta = payload["delta"]?.stringValue, !delta.isEmpty else { return [] }
            streamedOutput = true
            return [.textDelta(delta)]
        case "response.reasoning_summary_text.delta", "response.reasoning_text.delta":
            guard let delta = payload["delta"]?.stringValue, !delta.isEmpty else { return [] }
            return [.reasoningDelta(delta)]
        case "response.output_item.added":
            guard let item = payload["item"], item["type"]?.stringValue == "function_call" else { return [] }
            streamedOutput = true
            let ordinal = ordinals.count
            ordinals[payload["output_index"]?.intValue ?? ordinal] = ordinal
            let initial = item["arguments"].flatMap { $0.stringValue ?? ($0 == .null ? nil : $0.compactText) }
            return [
                .toolCallDelta(
                    ToolCallDelta(
                        index: ordinal, id: item["call_id"]?.stringValue ?? item["id"]?.stringValue,
                        name: item["name"]?.stringValue, argumentsFragment: (initial ?? "").isEmpty ? nil : initial))
            ]
        case "response.function_call_arguments.delta":
            guard let delta = payload["delta"]?.stringValue, !delta.isEmpty,
                let ordinal = ordinals[payload["output_index"]?.intValue ?? -1]
            else { return [] }
            return [.toolCallDelta(ToolCallDelta(index: ordinal, argumentsFragment: delta))]
        case "response.completed", "response.incomplete":
            isComplete = true
            guard let response = payload["response"] else { return [] }
            let decoded = try WireJSON.decode(
                ResponsesWire.Response.self, WireJSON.encode(response), provider: provider)
            return finish(decoded, includeOutput: !streamedOutput)
        case "response.failed":
            throw ProviderError.requestFailed(
                provider: provider,
                message: payload["response"]?["error"]?["message"]?.stringValue ?? "the response failed")
        case "error":
            throw ProviderError.requestFailed(
                provider: provider,
                message: payload["message"]?.stringValue ?? payload["code"]?.stringValue ?? "stream error")
        default:
            return []
        }
    }

    /// Usage, finish reason and — for non-streamed output — the text and calls of a final response.
    private mutating func finish(_ response: ResponsesWire.Response, includeOutput: Bool) -> [ModelEvent] {
        if let id = response.id, let session { chains.record(id, for: session, covering: fingerprint) }
        var events: [ModelEvent] = []
        if includeOutput {
            var ordinal = 0
            for item in response.output ?? [] {
                switch item.type {
                case "message":
                    let text = (item.content ?? []).filter { $0.type == "output_text" }.compactMap(\.text).joined()
                    if !text.isEmpty { events.append(.textDelta(text)) }
                case "function_call":
                    events.append(
                        .toolCallDelta(
                            ToolCallDelta(
                                index: ordinal, id: item.callID ?? item.id, name: item.name,
                                argumentsFragment: item.arguments?.text)))
                    ordinal += 1
                case "reasoning":
                    let text = (item.summary ?? []).compactMap(\.text).joined(separator: "\n")
                    if !text.isEmpty { events.append(.reasoningDelta(text)) }
                default: continue
                }
            }
        }
        if let usage = response.usage {
            events.append(
                .usage(
                    Usage(
                        promptTokens: usage.inputTokens, completionTokens: usage.outputTokens,
                        totalTokens: usage.totalTokens)))
        }
        let reason: FinishReason
        if response.status == "incomplete" {
            reason = response.incompleteDetails?.reason == "content_filter" ? .contentFilter : .length
        } else if !ordinals.isEmpty || (response.output ?? []).contains(where: { $0.type == "function_call" }) {
            reason = .toolCalls
        } else {
            reason = .stop
        }
        events.append(.finish(reason))
        return events
    }

    mutating func translateCompleteBody(_ body: Data) throws -> [ModelEvent] {
        let response = try WireJSON.decode(ResponsesWire.Response.self, body, provider: provider)
        if let error = response.error, response.output == nil {
            throw ProviderError.requestFailed(provider: provider, message: error.message ?? "the response failed")
        }
        isComplete = true
        return finish(response, includeOutput: true)
    }

    mutating func response(_ data: Data) throws -> ModelResponse {
        let events = try translateCompleteBody(data)
        var builder = ModelResponseBuilder()
        for event in events { try builder.add(event, provider: provider) }
        return try builder.build(provider: provider)
    }
}
