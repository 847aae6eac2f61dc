import OxydraCore

/// Google Gemini (`provider_type = "gemini"`): `POST {base}/v1beta/models/{model}:generateContent`
/// and `:streamGenerateContent?alt=sse`, authenticated with `x-goog-api-key`.
public struct GeminiProvider: WireProvider {
    let setup: ProviderSetup

    init(setup: ProviderSetup) { self.setup = setup }

    static let transportModalities: Set<InputModality> = Set(InputModality.allCases)

    static func path(for model: ModelID, streaming: Bool) -> String {
        var name = model.rawValue
        if name.hasPrefix("models/") { name.removeFirst("models/".count) }
        return "/v1beta/models/\(percentEncoded(name))"
            + (streaming ? ":streamGenerateContent?alt=sse" : ":generateContent")
    }

    /// Percent-encodes everything but RFC 3986 unreserved characters (model ids are path segments).
    static func percentEncoded(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                result += "%" + (hex.count == 1 ? "0" : "") + hex
            }
        }
        return result
    }

    public func stream(_ request: ModelRequest) -> ModelEventStream {
        setup.eventStream(
            path: Self.path(for: request.model, streaming: true), translator: GeminiTranslator(provider: id)
        ) {
            () throws(ProviderError) in try requestBody(request)
        }
    }

    public func complete(_ request: ModelRequest) async throws -> ModelResponse {
        let data = try await setup.completeBody(
            path: Self.path(for: request.model, streaming: false), body: try requestBody(request))
        var translator = GeminiTranslator(provider: id)
        return try translator.response(data)
    }

    func requestBody(_ request: ModelRequest) throws(ProviderError) -> Data {
        _ = try setup.checkedDescriptor(for: request, transportAccepts: Self.transportModalities)
        var namesByCallID: [String: String] = [:]
        var contents: [(role: String, parts: [JSONValue])] = []
        for message in request.messages where message.role != .system {
            var parts: [JSONValue] = []
            let role: String
            switch message.role {
            case .tool:
                role = "user"
                let callID = message.toolCallID ?? ""
                let name = namesByCallID[callID] ?? (callID.isEmpty ? "unknown_function" : callID)
                let content = message.content ?? ""
                var response: JSONValue = ["result": .string(content)]
                if let parsed = try? JSONValue(parsing: content), parsed.objectValue != nil { response = parsed }
                var functionResponse: [String: JSONValue] = ["name": .string(name), "response": response]
                if !callID.isEmpty { functionResponse["id"] = .string(callID) }
                parts.append(["functionResponse": .object(functionResponse)])
            default:
                role = message.role == .assistant ? "model" : "user"
                if let text = message.content, !text.isEmpty { parts.append(["text": .string(text)]) }
                for attachment in message.attachments {
                    parts.append([
                        "inlineData": [
                            "mimeType": .string(attachment.mimeType),
                            "data": .string(attachment.data.base64EncodedString()),
                        ]
                    ])
                }
                for call in message.toolCalls {
                    namesByCallID[call.id] = call.name
                    let args: JSONValue =
                        switch call.arguments {
                        case .json(let value) where value.objectValue != nil: value
                        default: ["invalid_arguments": .string(call.arguments.text)]
                        }
                    var part: [String: JSONValue] = ["functionCall": ["name": .string(call.name), "args": args]]
                    if let signature = call.metadata?["thought_signature"] { part["thoughtSignature"] = signature }
                    parts.append(.object(part))
                }
            }
            if parts.isEmpty { continue }
            if let last = contents.last, last.role == role {
                contents[contents.count - 1].parts += parts
            } else {
                contents.append((role, parts))
            }
        }
        guard !contents.isEmpty else {
            throw .requestFailed(provider: id, message: "the conversation has no user or model content to send")
        }
        var body: [String: JSONValue] = [
            "contents": .array(contents.map { ["role": .string($0.role), "parts": .array($0.parts)] })
        ]
        let system = request.messages.filter { $0.role == .system }.compactMap(\.content).filter { !$0.isEmpty }
        if !system.isEmpty {
            body["systemInstruction"] = ["parts": [["text": .string(system.joined(separator: "\n\n"))]]]
        }
        if !request.tools.isEmpty {
            body["tools"] = [
                [
                    "functionDeclarations": .array(
                        request.tools.map {
                            [
                                "name": .string($0.name), "description": .string($0.description),
                                "parameters": Self.geminiSchema($0.parameters),
                            ]
                        })
                ]
            ]
        }
        if let maxOutputTokens = request.maxOutputTokens {
            body["generationConfig"] = ["maxOutputTokens": .integer(maxOutputTokens)]
        }
        return setup.encode(.object(body))
    }

    /// Gemini accepts an OpenAPI subset of JSON Schema: `additionalProperties` and `$schema` are removed.
    static func geminiSchema(_ schema: JSONValue) -> JSONValue {
        switch schema {
        case .object(let object):
            var result: [String: JSONValue] = [:]
            for (key, value) in object where key != "additionalProperties" && key != "$schema" {
                result[key] = geminiSchema(value)
            }
            return .object(result)
        case .array(let items): return .array(items.map(geminiSchema))
        default: return schema
        }
    }
}

/// Gemini stream payloads (each a whole `GenerateContentResponse`) → model events. Function calls
/// arrive whole; their index counts across the stream (Gemini restarts it in every chunk).
struct GeminiTranslator: StreamTranslator {
    let provider: ProviderID
    let isComplete = false
    private var sawFinish = false
    private var nextToolIndex = 0

    init(provider: ProviderID) { self.provider = provider }

    var acceptsEndOfInput: Bool { sawFinish }
    var incompleteReason: String { "Gemini stream ended without a finishReason" }

    mutating func translate(_ event: SSEEvent) throws -> [ModelEvent] {
        try events(try WireJSON.parse(event.data, provider: provider))
    }

    /// One `GenerateContentResponse`, read with the project's JSON parser (fields Gemini adds later
    /// are ignored; a field of the wrong type is an error naming it).
    private mutating func events(_ payload: JSONValue) throws -> [ModelEvent] {
        guard payload.objectValue != nil else {
            throw ProviderError.responseParse(
                provider: provider, message: "expected a JSON object, got \(payload.typeName)")
        }
        if let error = payload["error"] {
            let message =
                error["message"]?.stringValue ?? error["status"]?.stringValue ?? "the stream reported an error"
            if let code = error["code"]?.intValue, code == 429 || code >= 500 {
                throw ProviderError.httpStatus(provider: provider, status: code, message: message)
            }
            throw ProviderError.requestFailed(provider: provider, message: message)
        }
        let candidates = try field(payload, "candidates", \.arrayValue, "an array") ?? []
        let usageBlock = payload["usageMetadata"]
        if payload["promptFeedback"]?["blockReason"] != nil, candidates.isEmpty {
            // The prompt itself was blocked by Gemini's safety filter.
            sawFinish = true
            return [.finish(.contentFilter)] + (usageBlock.map { [.usage(usage($0))] } ?? [])
        }
        var events: [ModelEvent] = []
        if let candidate = candidates.first {
            let parts = try candidate["content"].flatMap { try field($0, "parts", \.arrayValue, "an array") } ?? []
            for part in parts {
                if let call = part["functionCall"], let name = call["name"]?.stringValue {
                    let index = nextToolIndex
                    nextToolIndex += 1
                    let metadata: JSONValue? = part["thoughtSignature"]?.stringValue.map {
                        ["thought_signature": .string($0)]
                    }
                    events.append(
                        .toolCallDelta(
                            ToolCallDelta(
                                index: index,
                                id: call["id"]?.stringValue ?? "call_\(UUID().uuidString.lowercased())", name: name,
                                argumentsFragment: (call["args"] ?? .object([:])).compactText, metadata: metadata)))
                } else if let text = try field(part, "text", \.stringValue, "a string"), !text.isEmpty {
                    events.append(part["thought"] == .bool(true) ? .reasoningDelta(text) : .textDelta(text))
                }
            }
            if let reason = candidate["finishReason"]?.stringValue, !reason.isEmpty {
                sawFinish = true
                events.append(
                    .finish(nextToolIndex > 0 && reason == "STOP" ? .toolCalls : FinishReason(providerValue: reason)))
            }
        }
        if let usageBlock { events.append(.usage(usage(usageBlock))) }
        return events
    }

    /// An optional field that, when present (and not null), must have the expected type.
    private func field<T>(_ object: JSONValue, _ key: String, _ read: (JSONValue) -> T?, _ expected: String) throws
        -> T?
    {
        guard let value = object[key], value != .null else { return nil }
        guard let typed = read(value) else {
            throw ProviderError.responseParse(
                provider: provider, message: "`\(key)` should be \(expected), got \(value.typeName)")
        }
        return typed
    }

    private func usage(_ block: JSONValue) -> Usage {
        let completion = block["candidatesTokenCount"]?.intValue.map {
            $0 + (block["thoughtsTokenCount"]?.intValue ?? 0)
        }
        return Usage(
            promptTokens: block["promptTokenCount"]?.intValue, completionTokens: completion,
            totalTokens: block["totalTokenCount"]?.intValue)
    }

    mutating func translateCompleteBody(_ body: Data) throws -> [ModelEvent] {
        let events = try events(try WireJSON.parse(String(decoding: body, as: UTF8.self), provider: provider))
        sawFinish = true
        return events
    }

    mutating func response(_ data: Data) throws -> ModelResponse {
        let payload = try WireJSON.parse(String(decoding: data, as: UTF8.self), provider: provider)
        let events = try events(payload)
        guard payload["candidates"]?.arrayValue?.isEmpty == false || payload["promptFeedback"]?["blockReason"] != nil
        else {
            throw ProviderError.responseParse(provider: provider, message: "response has no candidates")
        }
        var builder = ModelResponseBuilder()
        for event in events { try builder.add(event, provider: provider) }
        return try builder.build(provider: provider)
    }
}
