import OxydraCore

/// The wire formats the scripted server speaks, recognised by request path.
public enum WireFormat: String, Sendable, CaseIterable {
    case openAIChat, anthropic, gemini, responses

    /// The format a request path belongs to, and whether the path asks for streaming.
    static func detect(path: String) -> (format: WireFormat, pathStreams: Bool)? {
        let route = path.split(separator: "?").first.map(String.init) ?? path
        if route.hasSuffix("/chat/completions") { return (.openAIChat, false) }
        if route.hasSuffix("/messages") { return (.anthropic, false) }
        if route.hasSuffix("/responses") { return (.responses, false) }
        if route.hasSuffix(":streamGenerateContent") { return (.gemini, true) }
        if route.hasSuffix(":generateContent") { return (.gemini, false) }
        return nil
    }
}

/// Renders a ``ScriptedReply`` as a provider would send it.
public enum WireRendering {
    struct Rendered {
        var contentType: String
        /// Body pieces in order; for streams, one SSE event each.
        var pieces: [String]
        var streaming: Bool
    }

    static func render(_ reply: ScriptedReply, format: WireFormat, streaming: Bool, model: String) -> Rendered {
        if let raw = reply.rawBody {
            return Rendered(contentType: reply.contentType ?? "application/json", pieces: [raw], streaming: false)
        }
        var rendered: Rendered
        switch (format, streaming) {
        case (.openAIChat, true):
            rendered = Rendered(
                contentType: "text/event-stream", pieces: openAIStream(reply, model: model), streaming: true)
        case (.openAIChat, false):
            rendered = Rendered(
                contentType: "application/json", pieces: [text(openAIComplete(reply, model: model))], streaming: false)
        case (.anthropic, true):
            rendered = Rendered(
                contentType: "text/event-stream", pieces: anthropicStream(reply, model: model), streaming: true)
        case (.anthropic, false):
            rendered = Rendered(
                contentType: "application/json", pieces: [text(anthropicComplete(reply, model: model))],
                streaming: false)
        case (.gemini, true):
            rendered = Rendered(contentType: "text/event-stream", pieces: geminiStream(reply), streaming: true)
        case (.gemini, false):
            rendered = Rendered(
                contentType: "application/json",
                pieces: [text(geminiResponse(reply, parts: geminiParts(reply), finish: true))], streaming: false)
        case (.responses, true):
            rendered = Rendered(
                contentType: "text/event-stream", pieces: responsesStream(reply, model: model), streaming: true)
        case (.responses, false):
            rendered = Rendered(
                contentType: "application/json", pieces: [text(responsesObject(reply, model: model))], streaming: false)
        }
        if let contentType = reply.contentType { rendered.contentType = contentType }
        return rendered
    }

    static func text(_ value: JSONValue) -> String { value.compactText }

    static func sse(_ value: JSONValue, event: String? = nil) -> String {
        (event.map { "event: \($0)\n" } ?? "") + "data: \(value.compactText)\n\n"
    }

    static func fragments(_ text: String, count: Int) -> [String] {
        let characters = Array(text)
        guard count > 1, characters.count > 1 else { return [text] }
        let size = max(1, (characters.count + count - 1) / count)
        return stride(from: 0, to: characters.count, by: size).map {
            String(characters[$0..<min($0 + size, characters.count)])
        }
    }

    static func usageJSON(_ usage: Usage) -> JSONValue {
        var object: [String: JSONValue] = [:]
        if let value = usage.promptTokens { object["prompt_tokens"] = .integer(value) }
        if let value = usage.completionTokens { object["completion_tokens"] = .integer(value) }
        if let value = usage.totalTokens { object["total_tokens"] = .integer(value) }
        return .object(object)
    }

    static func argumentsJSON(_ call: ScriptedToolCall) -> JSONValue {
        (try? JSONValue(parsing: call.arguments)) ?? ["raw": .string(call.arguments)]
    }

    // MARK: OpenAI Chat Completions

    static func openAIStream(_ reply: ScriptedReply, model: String) -> [String] {
        func chunk(_ delta: JSONValue, finish: String? = nil) -> String {
            sse([
                "id": "chatcmpl-scripted", "object": "chat.completion.chunk", "model": .string(model),
                "choices": [["index": 0, "delta": delta, "finish_reason": finish.map(JSONValue.string) ?? .null]],
            ])
        }
        var pieces = [chunk(["role": "assistant", "content": ""])]
        for piece in reply.reasoning { pieces.append(chunk(["reasoning_content": .string(piece)])) }
        for piece in reply.text { pieces.append(chunk(["content": .string(piece)])) }
        for (index, call) in reply.toolCalls.enumerated() {
            if call.fragments == 1 {
                let arguments: JSONValue = reply.argumentsAsObject ? argumentsJSON(call) : .string(call.arguments)
                pieces.append(
                    chunk([
                        "tool_calls": [
                            [
                                "index": .integer(index), "id": .string(call.id), "type": "function",
                                "function": ["name": .string(call.name), "arguments": arguments],
                            ]
                        ]
                    ]))
                continue
            }
            pieces.append(
                chunk([
                    "tool_calls": [
                        [
                            "index": .integer(index), "id": .string(call.id), "type": "function",
                            "function": ["name": .string(call.name), "arguments": ""],
                        ]
                    ]
                ]))
            for fragment in fragments(call.arguments, count: call.fragments) {
                pieces.append(
                    chunk(["tool_calls": [["index": .integer(index), "function": ["arguments": .string(fragment)]]]]))
            }
        }
        if !reply.omitEndMarker { pieces.append(chunk([:], finish: reply.effectiveFinish)) }
        if let usage = reply.usage {
            pieces.append(
                sse([
                    "id": "chatcmpl-scripted", "object": "chat.completion.chunk", "choices": [],
                    "usage": usageJSON(usage),
                ]))
        }
        if !reply.omitEndMarker { pieces.append("data: [DONE]\n\n") }
        return pieces
    }

    static func openAIComplete(_ reply: ScriptedReply, model: String) -> JSONValue {
        var message: [String: JSONValue] = [
            "role": "assistant", "content": reply.text.isEmpty ? .null : .string(reply.text.joined()),
        ]
        if !reply.toolCalls.isEmpty {
            message["tool_calls"] = .array(
                reply.toolCalls.map { call in
                    [
                        "id": .string(call.id), "type": "function",
                        "function": [
                            "name": .string(call.name),
                            "arguments": reply.argumentsAsObject ? argumentsJSON(call) : .string(call.arguments),
                        ],
                    ]
                })
        }
        if !reply.reasoning.isEmpty { message["reasoning_content"] = .string(reply.reasoning.joined()) }
        var body: [String: JSONValue] = [
            "id": "chatcmpl-scripted", "object": "chat.completion", "model": .string(model),
            "choices": [["index": 0, "message": .object(message), "finish_reason": .string(reply.effectiveFinish)]],
        ]
        if let usage = reply.usage { body["usage"] = usageJSON(usage) }
        return .object(body)
    }

    // MARK: Anthropic Messages

    static func anthropicStopReason(_ finish: String) -> String {
        switch finish {
        case "tool_calls": "tool_use"
        case "length": "max_tokens"
        default: "end_turn"
        }
    }

    static func anthropicStream(_ reply: ScriptedReply, model: String) -> [String] {
        var pieces: [String] = []
        var usage: [String: JSONValue] = ["output_tokens": 1]
        if let prompt = reply.usage?.promptTokens { usage["input_tokens"] = .integer(prompt) }
        pieces.append(
            sse(
                [
                    "type": "message_start",
                    "message": [
                        "id": "msg_scripted", "type": "message", "role": "assistant", "content": [],
                        "model": .string(model), "stop_reason": .null, "usage": .object(usage),
                    ],
                ], event: "message_start"))
        pieces.append(sse(["type": "ping"], event: "ping"))
        var index = 0
        if !reply.reasoning.isEmpty {
            pieces.append(
                sse(
                    [
                        "type": "content_block_start", "index": .integer(index),
                        "content_block": ["type": "thinking", "thinking": ""],
                    ], event: "content_block_start"))
            for piece in reply.reasoning {
                pieces.append(
                    sse(
                        [
                            "type": "content_block_delta", "index": .integer(index),
                            "delta": ["type": "thinking_delta", "thinking": .string(piece)],
                        ], event: "content_block_delta"))
            }
            pieces.append(sse(["type": "content_block_stop", "index": .integer(index)], event: "content_block_stop"))
            index += 1
        }
        if !reply.text.isEmpty {
            pieces.append(
                sse(
                    [
                        "type": "content_block_start", "index": .integer(index),
                        "content_block": ["type": "text", "text": ""],
                    ], event: "content_block_start"))
            for piece in reply.text {
                pieces.append(
                    sse(
                        [
                            "type": "content_block_delta", "index": .integer(index),
                            "delta": ["type": "text_delta", "text": .string(piece)],
                        ], event: "content_block_delta"))
            }
            pieces.append(sse(["type": "content_block_stop", "index": .integer(index)], event: "content_block_stop"))
            index += 1
        }
        for call in reply.toolCalls {
            pieces.append(
                sse(
                    [
                        "type": "content_block_start", "index": .integer(index),
                        "content_block": [
                            "type": "tool_use", "id": .string(call.id), "name": .string(call.name), "input": [:],
                        ],
                    ], event: "content_block_start"))
            for fragment in fragments(call.arguments, count: call.fragments) {
                pieces.append(
                    sse(
                        [
                            "type": "content_block_delta", "index": .integer(index),
                            "delta": ["type": "input_json_delta", "partial_json": .string(fragment)],
                        ], event: "content_block_delta"))
            }
            pieces.append(sse(["type": "content_block_stop", "index": .integer(index)], event: "content_block_stop"))
            index += 1
        }
        var delta: [String: JSONValue] = [
            "type": "message_delta", "delta": ["stop_reason": .string(anthropicStopReason(reply.effectiveFinish))],
        ]
        if let output = reply.usage?.completionTokens { delta["usage"] = ["output_tokens": .integer(output)] }
        pieces.append(sse(.object(delta), event: "message_delta"))
        if !reply.omitEndMarker { pieces.append(sse(["type": "message_stop"], event: "message_stop")) }
        return pieces
    }

    static func anthropicComplete(_ reply: ScriptedReply, model: String) -> JSONValue {
        var content: [JSONValue] = []
        if !reply.reasoning.isEmpty {
            content.append(["type": "thinking", "thinking": .string(reply.reasoning.joined())])
        }
        if !reply.text.isEmpty { content.append(["type": "text", "text": .string(reply.text.joined())]) }
        for call in reply.toolCalls {
            content.append([
                "type": "tool_use", "id": .string(call.id), "name": .string(call.name), "input": argumentsJSON(call),
            ])
        }
        var body: [String: JSONValue] = [
            "id": "msg_scripted", "type": "message", "role": "assistant", "model": .string(model),
            "content": .array(content), "stop_reason": .string(anthropicStopReason(reply.effectiveFinish)),
        ]
        if let usage = reply.usage {
            body["usage"] = [
                "input_tokens": .integer(usage.promptTokens ?? 0),
                "output_tokens": .integer(usage.completionTokens ?? 0),
            ]
        }
        return .object(body)
    }

    // MARK: Gemini

    static func geminiParts(_ reply: ScriptedReply) -> [JSONValue] {
        var parts: [JSONValue] = reply.reasoning.map { ["text": .string($0), "thought": true] }
        parts += reply.text.map { ["text": .string($0)] }
        for call in reply.toolCalls {
            parts.append([
                "functionCall": ["name": .string(call.name), "args": argumentsJSON(call)],
                // Gemini sends signatures as base64 (the official SDK decodes them to bytes).
                "thoughtSignature": .string(Self.thoughtSignature(call.id)),
            ])
        }
        return parts
    }

    /// The base64 signature the scripted Gemini attaches to call `id`.
    public static func thoughtSignature(_ id: String) -> String { Data("sig-\(id)".utf8).base64EncodedString() }

    static func geminiResponse(_ reply: ScriptedReply, parts: [JSONValue], finish: Bool) -> JSONValue {
        var candidate: [String: JSONValue] = ["content": ["role": "model", "parts": .array(parts)], "index": 0]
        if finish {
            candidate["finishReason"] = .string(reply.effectiveFinish == "length" ? "MAX_TOKENS" : "STOP")
        }
        var body: [String: JSONValue] = ["candidates": [.object(candidate)], "modelVersion": "scripted"]
        if finish, let usage = reply.usage {
            var metadata: [String: JSONValue] = [:]
            if let value = usage.promptTokens { metadata["promptTokenCount"] = .integer(value) }
            if let value = usage.completionTokens { metadata["candidatesTokenCount"] = .integer(value) }
            if let value = usage.totalTokens { metadata["totalTokenCount"] = .integer(value) }
            body["usageMetadata"] = .object(metadata)
        }
        return .object(body)
    }

    static func geminiStream(_ reply: ScriptedReply) -> [String] {
        let parts = geminiParts(reply)
        var pieces = parts.map { sse(geminiResponse(reply, parts: [$0], finish: false)) }
        if !reply.omitEndMarker { pieces.append(sse(geminiResponse(reply, parts: [], finish: true))) }
        return pieces
    }

    // MARK: OpenAI Responses

    static func responsesObject(_ reply: ScriptedReply, model: String) -> JSONValue {
        var output: [JSONValue] = []
        if !reply.reasoning.isEmpty {
            output.append([
                "type": "reasoning", "id": "rs_1",
                "summary": [["type": "summary_text", "text": .string(reply.reasoning.joined())]],
            ])
        }
        if !reply.text.isEmpty {
            output.append([
                "type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                "content": [["type": "output_text", "text": .string(reply.text.joined()), "annotations": []]],
            ])
        }
        for call in reply.toolCalls {
            output.append([
                "type": "function_call", "id": .string("fc_\(call.id)"), "call_id": .string(call.id),
                "name": .string(call.name), "arguments": .string(call.arguments), "status": "completed",
            ])
        }
        var body: [String: JSONValue] = [
            "id": .string(reply.responseID), "object": "response", "model": .string(model),
            "status": .string(reply.effectiveFinish == "length" ? "incomplete" : "completed"), "output": .array(output),
        ]
        if let usage = reply.usage {
            body["usage"] = [
                "input_tokens": .integer(usage.promptTokens ?? 0),
                "output_tokens": .integer(usage.completionTokens ?? 0),
                "total_tokens": .integer(usage.totalTokens ?? 0),
            ]
        }
        return .object(body)
    }

    static func responsesStream(_ reply: ScriptedReply, model: String) -> [String] {
        var pieces = [
            sse(
                ["type": "response.created", "response": ["id": .string(reply.responseID), "status": "in_progress"]],
                event: "response.created")
        ]
        var outputIndex = 0
        for piece in reply.reasoning {
            pieces.append(
                sse(
                    [
                        "type": "response.reasoning_summary_text.delta", "output_index": .integer(outputIndex),
                        "delta": .string(piece),
                    ], event: "response.reasoning_summary_text.delta"))
        }
        if !reply.reasoning.isEmpty { outputIndex += 1 }
        if !reply.text.isEmpty {
            pieces.append(
                sse(
                    [
                        "type": "response.output_item.added", "output_index": .integer(outputIndex),
                        "item": ["type": "message", "id": "msg_1", "role": "assistant"],
                    ], event: "response.output_item.added"))
            for piece in reply.text {
                pieces.append(
                    sse(
                        [
                            "type": "response.output_text.delta", "output_index": .integer(outputIndex),
                            "item_id": "msg_1", "content_index": 0, "delta": .string(piece),
                        ], event: "response.output_text.delta"))
            }
            let text = JSONValue.string(reply.text.joined())
            pieces.append(
                sse(
                    [
                        "type": "response.output_text.done", "output_index": .integer(outputIndex), "item_id": "msg_1",
                        "content_index": 0, "text": text,
                    ], event: "response.output_text.done"))
            pieces.append(
                sse(
                    [
                        "type": "response.output_item.done", "output_index": .integer(outputIndex),
                        "item": [
                            "type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                            "content": [["type": "output_text", "text": text, "annotations": []]],
                        ],
                    ], event: "response.output_item.done"))
            outputIndex += 1
        }
        for call in reply.toolCalls {
            pieces.append(
                sse(
                    [
                        "type": "response.output_item.added", "output_index": .integer(outputIndex),
                        "item": [
                            "type": "function_call", "id": .string("fc_\(call.id)"), "call_id": .string(call.id),
                            "name": .string(call.name), "arguments": "",
                        ],
                    ], event: "response.output_item.added"))
            for fragment in fragments(call.arguments, count: call.fragments) {
                pieces.append(
                    sse(
                        [
                            "type": "response.function_call_arguments.delta", "output_index": .integer(outputIndex),
                            "item_id": .string("fc_\(call.id)"), "delta": .string(fragment),
                        ], event: "response.function_call_arguments.delta"))
            }
            pieces.append(
                sse(
                    [
                        "type": "response.function_call_arguments.done", "output_index": .integer(outputIndex),
                        "item_id": .string("fc_\(call.id)"), "arguments": .string(call.arguments),
                    ], event: "response.function_call_arguments.done"))
            pieces.append(
                sse(
                    [
                        "type": "response.output_item.done", "output_index": .integer(outputIndex),
                        "item": [
                            "type": "function_call", "id": .string("fc_\(call.id)"), "call_id": .string(call.id),
                            "name": .string(call.name), "arguments": .string(call.arguments), "status": "completed",
                        ],
                    ], event: "response.output_item.done"))
            outputIndex += 1
        }
        if !reply.omitEndMarker {
            pieces.append(
                sse(
                    ["type": "response.completed", "response": responsesObject(reply, model: model)],
                    event: "response.completed"))
        }
        return pieces
    }
}
