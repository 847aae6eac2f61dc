import OxydraCore

/// Anthropic Messages (`provider_type = "anthropic"`): `POST {base}/v1/messages` with
/// `x-api-key` and `anthropic-version: 2023-06-01`.
public struct AnthropicProvider: WireProvider {
    let setup: ProviderSetup

    init(setup: ProviderSetup) { self.setup = setup }

    public static let apiVersion = "2023-06-01"
    static let transportModalities: Set<InputModality> = [.text, .image, .pdf]

    static let path = "/v1/messages"

    public func stream(_ request: ModelRequest) -> ModelEventStream {
        setup.eventStream(path: Self.path, translator: AnthropicTranslator(provider: id)) { () throws(ProviderError) in
            try requestBody(request, streaming: true)
        }
    }

    public func complete(_ request: ModelRequest) async throws -> ModelResponse {
        let data = try await setup.completeBody(path: Self.path, body: try requestBody(request, streaming: false))
        return try AnthropicTranslator.response(data, provider: id)
    }

    func requestBody(_ request: ModelRequest, streaming: Bool) throws(ProviderError) -> Data {
        let descriptor = try setup.checkedDescriptor(for: request, transportAccepts: Self.transportModalities)
        let system = request.messages.filter { $0.role == .system }.compactMap { $0.content?.trimmed }
            .filter { !$0.isEmpty }
        var messages: [(role: String, blocks: [JSONValue])] = []
        for message in request.messages where message.role != .system {
            let role = message.role == .assistant ? "assistant" : "user"
            let blocks = try Self.blocks(for: message, provider: id)
            if blocks.isEmpty { continue }
            // Consecutive messages of one role are merged: the API wants user and assistant to
            // alternate, and all results of one assistant turn's tool calls in the next user message.
            if let last = messages.last, last.role == role {
                messages[messages.count - 1].blocks += blocks
            } else {
                messages.append((role, blocks))
            }
        }
        guard !messages.isEmpty else {
            throw .requestFailed(provider: id, message: "the conversation has no user or assistant message to send")
        }
        var body: [String: JSONValue] = [
            "model": .string(request.model.rawValue),
            "max_tokens": .integer(request.maxOutputTokens ?? descriptor.capabilities.outputTokens),
            "messages": .array(messages.map { ["role": .string($0.role), "content": .array($0.blocks)] }),
            "stream": .bool(streaming),
        ]
        if !system.isEmpty { body["system"] = .string(system.joined(separator: "\n\n")) }
        if !request.tools.isEmpty {
            body["tools"] = .array(
                request.tools.map {
                    ["name": .string($0.name), "description": .string($0.description), "input_schema": $0.parameters]
                })
            body["tool_choice"] = ["type": "auto"]
        }
        return setup.encode(.object(body))
    }

    /// A tool call id as Anthropic accepts it (`^[a-zA-Z0-9_-]+$`): ids another provider made
    /// (`call.1/x` from an OpenAI-compatible server, after a failover or a `/model` switch) get
    /// their other characters replaced and a hash of the original, so two ids never collide.
    static func wireID(_ id: String) -> String {
        let valid =
            !id.isEmpty
            && id.utf8.allSatisfy { byte in
                (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                    || byte == 0x5F || byte == 0x2D
            }
        guard !valid else { return id }
        let kept = String(
            id.unicodeScalars.map { scalar in
                scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar))
                    ? Character(scalar) : "_"
            })
        let hash = String(StableHash.fnv1a(id.utf8) & 0xFFFF_FFFF, radix: 16)
        return String(kept.prefix(48)) + "_" + hash
    }

    static func blocks(for message: Message, provider: ProviderID) throws(ProviderError) -> [JSONValue] {
        var blocks: [JSONValue] = []
        switch message.role {
        case .tool:
            guard let callID = message.toolCallID, !callID.isEmpty else {
                throw .requestFailed(provider: provider, message: "a tool result has no tool_call_id")
            }
            blocks.append([
                "type": "tool_result", "tool_use_id": .string(wireID(callID)),
                "content": .string(message.content ?? ""),
            ])
        default:
            if let text = message.content, !text.trimmed.isEmpty {
                blocks.append(["type": "text", "text": .string(text)])
            }
            for attachment in message.attachments {
                let kind = attachment.modality == .pdf ? "document" : "image"
                blocks.append([
                    "type": .string(kind),
                    "source": [
                        "type": "base64", "media_type": .string(attachment.mimeType),
                        "data": .string(attachment.data.base64EncodedString()),
                    ],
                ])
            }
            for call in message.toolCalls {
                let input: JSONValue
                switch call.arguments {
                case .json(let value) where value.objectValue != nil: input = value
                default: input = ["invalid_arguments": .string(call.arguments.text)]
                }
                blocks.append([
                    "type": "tool_use", "id": .string(wireID(call.id)), "name": .string(call.name), "input": input,
                ])
            }
        }
        return blocks
    }
}

/// Anthropic Messages wire types.
enum AnthropicWire {
    struct MessageBlock: Decodable {
        var content: [ContentBlock]?
        var stopReason: String?
        var usage: UsageBlock?
        enum CodingKeys: String, CodingKey {
            case content, usage
            case stopReason = "stop_reason"
        }
    }

    struct ContentBlock: Decodable {
        var type: String
        var text: String?
        var thinking: String?
        var id: String?
        var name: String?
        var input: JSONValue?
    }

    struct UsageBlock: Decodable {
        var inputTokens: Int?
        var outputTokens: Int?
        enum CodingKeys: String, CodingKey {
            case inputTokens = "input_tokens"
            case outputTokens = "output_tokens"
        }
    }

    struct ErrorBlock: Decodable {
        var type: String?
        var message: String?
    }
}

/// Anthropic SSE events → model events.
struct AnthropicTranslator: StreamTranslator {
    let provider: ProviderID
    private(set) var isComplete = false
    private var promptTokens: Int?
    /// Content-block index → tool-call ordinal (only tool_use blocks get one).
    private var ordinals: [Int: Int] = [:]

    init(provider: ProviderID) { self.provider = provider }

    var acceptsEndOfInput: Bool { isComplete }
    var incompleteReason: String { "Anthropic stream ended before message_stop" }

    mutating func translate(_ event: SSEEvent) throws -> [ModelEvent] {
        let payload = try WireJSON.parse(event.data, provider: provider)
        switch payload["type"]?.stringValue {
        case "message_start":
            promptTokens = payload["message"]?["usage"]?["input_tokens"]?.intValue
            return promptTokens.map { [.usage(Usage(promptTokens: $0))] } ?? []
        case "content_block_start":
            guard let block = payload["content_block"] else { return [] }
            switch block["type"]?.stringValue {
            case "tool_use":
                let ordinal = ordinals.count
                ordinals[payload["index"]?.intValue ?? ordinal] = ordinal
                var fragment: String?
                if let input = block["input"], input != .object([:]), input != .null { fragment = input.compactText }
                return [
                    .toolCallDelta(
                        ToolCallDelta(
                            index: ordinal, id: block["id"]?.stringValue, name: block["name"]?.stringValue,
                            argumentsFragment: fragment))
                ]
            case "text":
                if let text = block["text"]?.stringValue, !text.isEmpty { return [.textDelta(text)] }
                return []
            default:
                return []
            }
        case "content_block_delta":
            guard let delta = payload["delta"] else { return [] }
            switch delta["type"]?.stringValue {
            case "text_delta":
                guard let text = delta["text"]?.stringValue, !text.isEmpty else { return [] }
                return [.textDelta(text)]
            case "thinking_delta":
                guard let text = delta["thinking"]?.stringValue, !text.isEmpty else { return [] }
                return [.reasoningDelta(text)]
            case "input_json_delta":
                guard let fragment = delta["partial_json"]?.stringValue, !fragment.isEmpty,
                    let ordinal = ordinals[payload["index"]?.intValue ?? -1]
                else { return [] }
                return [.toolCallDelta(ToolCallDelta(index: ordinal, argumentsFragment: fragment))]
            default:
                return []
            }
        case "message_delta":
            var events: [ModelEvent] = []
            if let output = payload["usage"]?["output_tokens"]?.intValue {
                let total = promptTokens.map { $0 + output }
                events.append(.usage(Usage(promptTokens: promptTokens, completionTokens: output, totalTokens: total)))
            }
            if let reason = payload["delta"]?["stop_reason"]?.stringValue {
                events.append(.finish(FinishReason(providerValue: reason)))
            }
            return events
        case "message_stop":
            isComplete = true
            return []
        case "error":
            let error = payload["error"]
            throw Self.streamError(
                AnthropicWire.ErrorBlock(type: error?["type"]?.stringValue, message: error?["message"]?.stringValue),
                provider: provider)
        default:
            return []  // ping, content_block_stop and future event types
        }
    }

    /// Overload and server errors mid-stream are retryable like their HTTP statuses (529, 500).
    static func streamError(_ error: AnthropicWire.ErrorBlock?, provider: ProviderID) -> ProviderError {
        let message = error?.message ?? error?.type ?? "the stream reported an error"
        switch error?.type {
        case "overloaded_error": return .httpStatus(provider: provider, status: 529, message: message)
        case "api_error": return .httpStatus(provider: provider, status: 500, message: message)
        case "rate_limit_error": return .httpStatus(provider: provider, status: 429, message: message)
        default: return .requestFailed(provider: provider, message: message)
        }
    }

    mutating func translateCompleteBody(_ body: Data) throws -> [ModelEvent] {
        let response = try Self.response(body, provider: provider)
        isComplete = true
        return response.asEvents
    }

    static func response(_ data: Data, provider: ProviderID) throws -> ModelResponse {
        let message = try WireJSON.decode(AnthropicWire.MessageBlock.self, data, provider: provider)
        var texts: [String] = []
        var reasoning: [String] = []
        var calls: [ToolCall] = []
        for block in message.content ?? [] {
            switch block.type {
            case "text": if let text = block.text, !text.isEmpty { texts.append(text) }
            case "thinking": if let thinking = block.thinking { reasoning.append(thinking) }
            case "tool_use":
                guard let id = block.id, let name = block.name else {
                    throw ProviderError.responseParse(provider: provider, message: "tool_use block without id or name")
                }
                calls.append(ToolCall(id: id, name: name, arguments: .json(block.input ?? .object([:]))))
            default: continue
            }
        }
        let input = message.usage?.inputTokens
        let output = message.usage?.outputTokens
        let total = input.flatMap { input in output.map { input + $0 } }
        return ModelResponse(
            message: .assistant(texts.isEmpty ? nil : texts.joined(), toolCalls: calls),
            finishReason: message.stopReason.map(FinishReason.init(providerValue:)),
            usage: message.usage == nil
                ? nil : Usage(promptTokens: input, completionTokens: output, totalTokens: total),
            reasoning: reasoning.isEmpty ? nil : reasoning.joined())
    }
}
