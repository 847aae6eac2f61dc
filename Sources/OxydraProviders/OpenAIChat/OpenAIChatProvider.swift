import OxydraCore

/// OpenAI Chat Completions (`provider_type = "openai"`): OpenAI itself and every compatible server
/// (Ollama, llama.cpp, vLLM, LM Studio, OpenRouter). `POST {base}/v1/chat/completions`.
public struct OpenAIChatProvider: WireProvider {
    let setup: ProviderSetup
    /// The `tools` array as sent: the same on every call of a guest, encoded once.
    let encodedTools = EncodedToolsCache()
    let encodedSystemPrompt = EncodedTextCache()
    let encodedHistory = EncodedHistoryCache()

    init(setup: ProviderSetup) { self.setup = setup }

    static let transportModalities: Set<InputModality> = [.text, .image]
    static let path = "/v1/chat/completions"

    public func stream(_ request: ModelRequest) -> ModelEventStream {
        // llama-cpp-python cannot stream a tool call chosen under "auto": it sends an empty stream.
        let provider = self
        var fallback: (@Sendable () throws(ProviderError) -> Data)?
        if !request.tools.isEmpty {
            fallback = { () throws(ProviderError) -> Data in try provider.requestBody(request, streaming: false) }
        }
        return setup.eventStream(
            path: Self.path, translator: OpenAIChatTranslator(provider: id),
            body: { () throws(ProviderError) in try requestBody(request, streaming: true) }, fallbackBody: fallback)
    }

    public func complete(_ request: ModelRequest) async throws -> ModelResponse {
        let data = try await setup.completeBody(path: Self.path, body: try requestBody(request, streaming: false))
        return try OpenAIChatTranslator.response(data, provider: id)
    }

    /// The JSON body for `request`.
    func requestBody(_ request: ModelRequest, streaming: Bool) throws(ProviderError) -> Data {
        _ = try setup.checkedDescriptor(for: request, transportAccepts: Self.transportModalities)
        var body: [String: JSONValue] = ["model": .string(request.model.rawValue), "stream": .bool(streaming)]
        if streaming { body["stream_options"] = ["include_usage": true] }
        if let maxOutputTokens = request.maxOutputTokens { body["max_tokens"] = .integer(maxOutputTokens) }
        // Room for the history's text plus its punctuation: no regrowth while it is written.
        let messages = encodedHistory.encode(
            request.messages, session: request.session,
            capacity: request.messages.reduce(64) { $0 + ($1.content?.utf8.count ?? 0) + 64 }
        ) { position, message, out in
            if position == 0 && message.role == .system && message.attachments.isEmpty {
                // What `writeWireMessage` writes for it, with the prompt's encoding reused.
                out.raw(#"{"content":"#)
                out.raw(encodedSystemPrompt.bytes(for: message.content ?? ""))
                out.raw(#","role":"system"}"#)
            } else {
                Self.writeWireMessage(message, into: &out)
            }
        }
        if request.tools.isEmpty { return WireJSON.encode(body, encoded: ["messages": messages]) }
        body["tool_choice"] = "auto"
        let tools = encodedTools.bytes(for: request.tools) { tools in
            .array(
                tools.map { tool in
                    [
                        "type": "function",
                        "function": [
                            "name": .string(tool.name), "description": .string(tool.description),
                            "parameters": tool.parameters,
                        ],
                    ]
                })
        }
        return WireJSON.encode(body, encoded: ["messages": messages, "tools": tools])
    }

    /// ``wireMessage(_:)`` written straight out, exactly as the writer would write it (keys in
    /// order): a request carries the whole history, and building a dictionary per message only to
    /// sort and write it again was most of a request body's cost.
    static func writeWireMessage(_ message: Message, into out: inout JSONBytes) {
        if message.role == .user && !message.attachments.isEmpty {
            out.raw(JSONWriter.text(wireMessage(message), sortedKeys: true))
            return
        }
        out.raw(#"{"content":"#)
        out.string(message.content ?? "")
        out.raw(#","role":"#)
        out.string(message.role.rawValue)
        switch message.role {
        case .assistant where !message.toolCalls.isEmpty:
            out.raw(#","tool_calls":["#)
            for (position, call) in message.toolCalls.enumerated() {
                if position > 0 { out.raw(",") }
                out.raw(#"{"function":{"arguments":"#)
                out.string(call.arguments.text)
                out.raw(#","name":"#)
                out.string(call.name)
                out.raw(#"},"id":"#)
                out.string(call.id)
                out.raw(#","type":"function"}"#)
            }
            out.raw("]")
        case .tool:
            out.raw(#","tool_call_id":"#)
            out.string(message.toolCallID ?? "")
        default: break
        }
        out.raw("}")
    }

    static func wireMessage(_ message: Message) -> JSONValue {
        var wire: [String: JSONValue] = ["role": .string(message.role.rawValue)]
        switch message.role {
        case .user where !message.attachments.isEmpty:
            var parts: [JSONValue] = []
            if let text = message.content, !text.isEmpty { parts.append(["type": "text", "text": .string(text)]) }
            for attachment in message.attachments {
                let url = "data:\(attachment.mimeType);base64,\(attachment.data.base64EncodedString())"
                parts.append(["type": "image_url", "image_url": ["url": .string(url)]])
            }
            wire["content"] = .array(parts)
        case .assistant:
            // An empty string, never null: llama-cpp-python rejects `content: null` next to tool
            // calls (500, "Input should be a valid string") and its templates fail without the key;
            // OpenAI and the other servers accept "".
            wire["content"] = .string(message.content ?? "")
            if !message.toolCalls.isEmpty {
                wire["tool_calls"] = .array(
                    message.toolCalls.map { call in
                        [
                            "id": .string(call.id), "type": "function",
                            "function": ["name": .string(call.name), "arguments": .string(call.arguments.text)],
                        ]
                    })
            }
        case .tool:
            wire["content"] = .string(message.content ?? "")
            wire["tool_call_id"] = .string(message.toolCallID ?? "")
        default:
            wire["content"] = .string(message.content ?? "")
        }
        return .object(wire)
    }
}

/// Chat Completions wire types (only the fields Oxydra reads).
enum OpenAIChatWire {
    struct Completion: Decodable {
        var choices: [Choice]?
        var usage: UsageBlock?
        var error: ErrorBlock?
    }

    struct Choice: Decodable {
        var index: Int?
        var message: MessageBlock?
        var delta: MessageBlock?
        var finishReason: String?
        enum CodingKeys: String, CodingKey {
            case index, message, delta
            case finishReason = "finish_reason"
        }
    }

    struct MessageBlock: Decodable {
        var content: String?
        var reasoningContent: String?
        var reasoning: String?
        var toolCalls: [ToolCallBlock]?
        enum CodingKeys: String, CodingKey {
            case content, reasoning
            case reasoningContent = "reasoning_content"
            case toolCalls = "tool_calls"
        }
    }

    struct ToolCallBlock: Decodable {
        var index: Int?
        var id: String?
        var function: FunctionBlock?
    }

    struct FunctionBlock: Decodable {
        var name: String?
        var arguments: FlexibleText?
    }

    struct UsageBlock: Decodable {
        var promptTokens: Int?
        var completionTokens: Int?
        var totalTokens: Int?
        enum CodingKeys: String, CodingKey {
            case promptTokens = "prompt_tokens"
            case completionTokens = "completion_tokens"
            case totalTokens = "total_tokens"
        }
        var usage: Usage {
            Usage(promptTokens: promptTokens, completionTokens: completionTokens, totalTokens: totalTokens)
        }
    }

    struct ErrorBlock: Decodable {
        var message: String?
        var type: String?
    }
}

/// Chat Completions stream chunks → model events.
struct OpenAIChatTranslator: StreamTranslator {
    let provider: ProviderID
    private(set) var isComplete = false
    private var sawFinish = false
    /// Stable call positions across the stream: by the server's index, by id when the server
    /// reuses an index for a different call, and by order when it sends no index.
    private var slotIDs: [Int: String] = [:]
    private var indexByServerIndex: [Int: Int] = [:]
    private var nextIndex = 0

    init(provider: ProviderID) { self.provider = provider }

    var acceptsEndOfInput: Bool { isComplete || sawFinish }
    var incompleteReason: String { "OpenAI-compatible stream ended before [DONE]" }

    mutating func translate(_ event: SSEEvent) throws -> [ModelEvent] {
        var events: [ModelEvent] = []
        try translate(event, into: &events)
        return events
    }

    mutating func translate(_ event: SSEEvent, into events: inout [ModelEvent]) throws {
        let payload = event.data.trimmed
        if payload.isEmpty { return }
        if payload == "[DONE]" {
            isComplete = true
            return
        }
        // Stream chunks are the hot path of every OpenAI-compatible server: they are read in place
        // (``Chunk``), checked as strictly as a full parse, with no dictionary built per chunk.
        let chunk: Chunk
        do {
            chunk = try Chunk(payload)
        } catch {
            throw ProviderError.responseParse(
                provider: provider, message: "not valid JSON (\(error)) in `\(payload.prefix(200))`")
        }
        if let error = chunk.error, error != .null {
            let message = error["message"]?.stringValue ?? error.stringValue ?? error["type"]?.stringValue
            throw ProviderError.requestFailed(provider: provider, message: message ?? "the stream reported an error")
        }
        // Each choice is read where it is (a copy of one cost as much as reading its JSON).
        for position in chunk.choices.indices where (chunk.choices[position].index?.intValue ?? 0) == 0 {
            // `delta` when the choice has one (whatever its value), else `message`.
            if let delta = chunk.choices[position].delta ?? chunk.choices[position].message {
                if let reasoning = (delta.reasoningContent ?? delta.reasoning)?.stringValue, !reasoning.isEmpty {
                    events.append(.reasoningDelta(reasoning))
                }
                if let content = delta.content?.stringValue, !content.isEmpty { events.append(.textDelta(content)) }
                for (position, call) in (delta.toolCalls?.arrayValue ?? []).enumerated() {
                    let function = call["function"]
                    let id = call["id"]?.stringValue
                    let name = function?["name"]?.stringValue
                    let arguments = function?["arguments"]
                    let fragment = arguments.flatMap { $0 == .null ? nil : ($0.stringValue ?? $0.compactText) }
                    if id == nil && name == nil && (fragment ?? "").isEmpty { continue }
                    let index = slot(serverIndex: call["index"]?.intValue, id: id, position: position)
                    events.append(
                        .toolCallDelta(ToolCallDelta(index: index, id: id, name: name, argumentsFragment: fragment)))
                }
            }
            if let finish = chunk.choices[position].finishReason?.stringValue, !finish.isEmpty {
                sawFinish = true
                events.append(.finish(FinishReason(providerValue: finish)))
            }
        }
        if let usage = chunk.usage, usage != .null {
            events.append(
                .usage(
                    Usage(
                        promptTokens: usage["prompt_tokens"]?.intValue,
                        completionTokens: usage["completion_tokens"]?.intValue,
                        totalTokens: usage["total_tokens"]?.intValue)))
        }
    }

    /// What a stream chunk says, read in place: the members the translator uses, each as the
    /// dictionary of a full parse would hold it (a repeated key: its last value; a member of the
    /// wrong type: as it came, for the translator to ignore as before). Everything else (the id,
    /// model name and timestamp every chunk repeats) is checked and skipped.
    struct Chunk {
        struct Delta {
            var content: JSONValue?
            var reasoningContent: JSONValue?
            var reasoning: JSONValue?
            var toolCalls: JSONValue?
        }

        struct Choice {
            var index: JSONValue?
            /// Present (an object or not) when the choice has the member.
            var delta: Delta?
            var message: Delta?
            var finishReason: JSONValue?
        }

        var choices: [Choice] = []
        var usage: JSONValue?
        var error: JSONValue?

        private init() {}

        init(_ payload: String) throws(JSONSyntaxError) {
            var chunk = Chunk()
            try JSONParser.read(payload) { (reader: inout JSONParser) throws(JSONSyntaxError) in
                guard reader.atObject else { return }
                try reader.readObject { (key: JSONKey, reader: inout JSONParser) throws(JSONSyntaxError) in
                    switch key {
                    case "choices":
                        chunk.choices = []
                        guard reader.atArray else { return }
                        try reader.readArray { (reader: inout JSONParser) throws(JSONSyntaxError) in
                            chunk.choices.append(try Self.choice(&reader))
                        }
                    case "usage": chunk.usage = try reader.readValue()
                    case "error": chunk.error = try reader.readValue()
                    default: break
                    }
                }
            }
            self = chunk
        }

        private static func choice(_ reader: inout JSONParser) throws(JSONSyntaxError) -> Choice {
            var choice = Choice()
            guard reader.atObject else { return choice }
            try reader.readObject { (key: JSONKey, reader: inout JSONParser) throws(JSONSyntaxError) in
                switch key {
                case "index": choice.index = try reader.readValue()
                case "delta": choice.delta = try delta(&reader)
                case "message": choice.message = try delta(&reader)
                case "finish_reason": choice.finishReason = try reader.readValue()
                default: break
                }
            }
            return choice
        }

        private static func delta(_ reader: inout JSONParser) throws(JSONSyntaxError) -> Delta {
            var delta = Delta()
            guard reader.atObject else { return delta }
            try reader.readObject { (key: JSONKey, reader: inout JSONParser) throws(JSONSyntaxError) in
                switch key {
                case "content": delta.content = try reader.readValue()
                case "reasoning_content": delta.reasoningContent = try reader.readValue()
                case "reasoning": delta.reasoning = try reader.readValue()
                case "tool_calls": delta.toolCalls = try reader.readValue()
                default: break
                }
            }
            return delta
        }
    }

    private mutating func slot(serverIndex: Int?, id: String?, position: Int) -> Int {
        let serverIndex = serverIndex ?? -1 - position
        if let existing = indexByServerIndex[serverIndex] {
            // Same index but a different id: a server that numbers every call 0. Give it its own slot.
            if let id, let known = slotIDs[existing], known != id {
                let fresh = nextIndex
                nextIndex += 1
                indexByServerIndex[serverIndex] = fresh
                slotIDs[fresh] = id
                return fresh
            }
            if let id { slotIDs[existing] = id }
            return existing
        }
        let fresh = nextIndex
        nextIndex += 1
        indexByServerIndex[serverIndex] = fresh
        if let id { slotIDs[fresh] = id }
        return fresh
    }

    mutating func translateCompleteBody(_ body: Data) throws -> [ModelEvent] {
        let response = try Self.response(body, provider: provider)
        isComplete = true
        return response.asEvents
    }

    static func response(_ data: Data, provider: ProviderID) throws -> ModelResponse {
        let completion = try WireJSON.decode(OpenAIChatWire.Completion.self, data, provider: provider)
        if let error = completion.error {
            throw ProviderError.requestFailed(
                provider: provider, message: error.message ?? "the server reported an error")
        }
        guard let choice = completion.choices?.first, let message = choice.message else {
            throw ProviderError.responseParse(provider: provider, message: "response has no choices")
        }
        var calls: [ToolCall] = []
        for (position, call) in (message.toolCalls ?? []).enumerated() {
            guard let name = call.function?.name, !name.isEmpty else {
                throw ProviderError.responseParse(
                    provider: provider, message: "tool call at index \(position) is missing its function name")
            }
            let id = call.id.flatMap { $0.isEmpty ? nil : $0 } ?? "call_\(position)"
            calls.append(
                ToolCall(id: id, name: name, arguments: ToolArguments(parsing: call.function?.arguments?.text ?? "")))
        }
        let text = message.content.flatMap { $0.isEmpty ? nil : $0 }
        return ModelResponse(
            message: .assistant(text, toolCalls: calls),
            finishReason: choice.finishReason.map(FinishReason.init(providerValue:)),
            usage: completion.usage?.usage, reasoning: message.reasoningContent ?? message.reasoning)
    }
}

extension ModelResponse {
    /// The response as the events a stream would have carried (for servers that answer a streaming
    /// request with one JSON document).
    var asEvents: [ModelEvent] {
        var events: [ModelEvent] = []
        if let reasoning, !reasoning.isEmpty { events.append(.reasoningDelta(reasoning)) }
        if let text = message.content, !text.isEmpty { events.append(.textDelta(text)) }
        for (index, call) in message.toolCalls.enumerated() {
            events.append(
                .toolCallDelta(
                    ToolCallDelta(
                        index: index, id: call.id, name: call.name, argumentsFragment: call.arguments.text,
                        metadata: call.metadata)))
        }
        if let usage { events.append(.usage(usage)) }
        if let finishReason { events.append(.finish(finishReason)) }
        return events
    }
}
