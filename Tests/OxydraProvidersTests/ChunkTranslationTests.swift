import OxydraCore
import Testing

@testable import OxydraProviders

/// OpenAI-compatible stream chunks are read in place (``OpenAIChatTranslator/Chunk``). What they
/// translate to must be exactly what the straightforward reading gives — a full parse into
/// dictionaries, then lookups — for well-formed chunks, odd ones (members of the wrong type,
/// repeated keys, `message` instead of `delta`, other choices) and broken ones.
@Suite("OpenAI chunk translation")
struct ChunkTranslationTests {
    enum Outcome: Equatable {
        case events([ModelEvent])
        case failed(String)
    }

    /// The reading the translator did before it read chunks in place (the oracle).
    static func expected(_ payload: String, translator: inout OpenAIChatTranslator) -> Outcome {
        let payload = payload.trimmed
        if payload.isEmpty { return .events([]) }
        let chunk: JSONValue
        do {
            chunk = try JSONParser.parse(payload)
        } catch {
            return .failed("not valid JSON (\(error))")
        }
        if let error = chunk["error"], error != .null {
            return .failed(
                "stream error: "
                    + (error["message"]?.stringValue ?? error.stringValue ?? error["type"]?.stringValue
                        ?? "the stream reported an error"))
        }
        var events: [ModelEvent] = []
        for choice in chunk["choices"]?.arrayValue ?? [] where (choice["index"]?.intValue ?? 0) == 0 {
            if let delta = choice["delta"] ?? choice["message"] {
                if let reasoning = (delta["reasoning_content"] ?? delta["reasoning"])?.stringValue, !reasoning.isEmpty {
                    events.append(.reasoningDelta(reasoning))
                }
                if let content = delta["content"]?.stringValue, !content.isEmpty { events.append(.textDelta(content)) }
                for call in delta["tool_calls"]?.arrayValue ?? [] {
                    let id = call["id"]?.stringValue
                    let name = call["function"]?["name"]?.stringValue
                    let arguments = call["function"]?["arguments"]
                    let fragment = arguments.flatMap { $0 == .null ? nil : ($0.stringValue ?? $0.compactText) }
                    if id == nil && name == nil && (fragment ?? "").isEmpty { continue }
                    events.append(
                        .toolCallDelta(ToolCallDelta(index: -1, id: id, name: name, argumentsFragment: fragment)))
                }
            }
            if let finish = choice["finish_reason"]?.stringValue, !finish.isEmpty {
                events.append(.finish(FinishReason(providerValue: finish)))
            }
        }
        if let usage = chunk["usage"], usage != .null {
            events.append(
                .usage(
                    Usage(
                        promptTokens: usage["prompt_tokens"]?.intValue,
                        completionTokens: usage["completion_tokens"]?.intValue,
                        totalTokens: usage["total_tokens"]?.intValue)))
        }
        return .events(events)
    }

    static func actual(_ payload: String, translator: inout OpenAIChatTranslator) -> Outcome {
        do {
            // Slots are the translator's own numbering: compare calls without them.
            return .events(
                try translator.translate(SSEEvent(event: nil, data: payload, id: nil)).map { event in
                    guard case .toolCallDelta(var delta) = event else { return event }
                    delta.index = -1
                    return .toolCallDelta(delta)
                })
        } catch ProviderError.responseParse(_, let message) {
            return .failed(message.components(separatedBy: ") in `").first! + ")")
        } catch ProviderError.requestFailed(_, let message) {
            return .failed("stream error: " + message)
        } catch {
            return .failed("\(error)")
        }
    }

    static let values: [String] = [
        "null", "0", "1", "0.0", "2.5", "\"0\"", "\"\"", "\"token \"", "\"é 🎉\\n\\\"q\\\"\"", "true", "[]", "{}",
        #"[1,"a"]"#, #"{"x":1}"#,
    ]

    /// A random member value: mostly the right type, sometimes anything.
    static func value(_ right: [String], _ generator: inout SystemRandomNumberGenerator) -> String {
        Bool.random(using: &generator) || right.isEmpty
            ? values.randomElement(using: &generator)! : right.randomElement(using: &generator)!
    }

    static func object(_ members: [(String, [String])], _ generator: inout SystemRandomNumberGenerator) -> String {
        var parts: [String] = []
        for (key, right) in members where Int.random(in: 0..<4, using: &generator) != 0 {
            parts.append("\"\(key)\":\(value(right, &generator))")
            if Int.random(in: 0..<8, using: &generator) == 0 { parts.append("\"\(key)\":\(value(right, &generator))") }
        }
        return "{" + parts.shuffled(using: &generator).joined(separator: Bool.random(using: &generator) ? "," : " , ")
            + "}"
    }

    static func chunk(_ generator: inout SystemRandomNumberGenerator) -> String {
        let call = object(
            [
                ("index", ["0", "1"]), ("id", ["\"call_1\""]), ("type", ["\"function\""]),
                (
                    "function",
                    [
                        #"{"name":"file_read","arguments":"{\"pa"}"#, #"{"arguments":"th\":1}"}"#,
                        #"{"arguments":{"a":1}}"#,
                    ]
                ),
            ], &generator)
        let delta = object(
            [
                ("content", ["\"token \"", "\"\"", "null"]), ("role", ["\"assistant\""]),
                ("reasoning_content", ["\"thinking\"", "null"]), ("reasoning", ["\"hmm\""]),
                ("tool_calls", ["[\(call)]", "[\(call),\(call)]", "[]"]),
            ], &generator)
        let choice = object(
            [
                ("index", ["0", "1"]), ("delta", [delta]), ("message", [delta]),
                ("finish_reason", ["null", "\"stop\"", "\"tool_calls\"", "\"\""]), ("logprobs", ["null"]),
            ], &generator)
        return object(
            [
                ("id", ["\"chatcmpl-1\""]), ("object", ["\"chat.completion.chunk\""]), ("created", ["1700000000"]),
                ("model", ["\"m\""]), ("choices", ["[\(choice)]", "[\(choice),\(choice)]", "[]"]),
                ("usage", [#"{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}"#, "null"]),
                ("error", ["null", #"{"message":"over quota"}"#, #""boom""#, #"{"type":"server_error"}"#]),
            ], &generator)
    }

    @Test func chunksTranslateAsAFullParseReadsThem() {
        var generator = SystemRandomNumberGenerator()
        var kinds: Set<String> = []
        for round in 0..<6_000 {
            var text = Self.chunk(&generator)
            // Some broken: cut short, or a stray byte somewhere.
            if round % 7 == 0, !text.isEmpty {
                let cut = Int.random(in: 0..<text.utf8.count, using: &generator)
                text = String(decoding: Array(text.utf8)[..<cut], as: UTF8.self)
            } else if round % 11 == 0 {
                var bytes = Array(text.utf8)
                bytes.insert(
                    Array("x,:]}\"\\".utf8).randomElement(using: &generator)!,
                    at: Int.random(in: 0...bytes.count, using: &generator))
                text = String(decoding: bytes, as: UTF8.self)
            }
            var oracle = OpenAIChatTranslator(provider: "p")
            var translator = OpenAIChatTranslator(provider: "p")
            let expected = Self.expected(text, translator: &oracle)
            #expect(Self.actual(text, translator: &translator) == expected, "\(text)")
            switch expected {
            case .failed(let message): kinds.insert(message.hasPrefix("stream error") ? "stream error" : "syntax")
            case .events(let events):
                kinds.insert(events.isEmpty ? "nothing" : "events")
                for event in events {
                    switch event {
                    case .textDelta: kinds.insert("text")
                    case .reasoningDelta: kinds.insert("reasoning")
                    case .toolCallDelta: kinds.insert("tool")
                    case .finish: kinds.insert("finish")
                    case .usage: kinds.insert("usage")
                    default: break
                    }
                }
            }
        }
        // The generator reached every kind of outcome.
        #expect(
            kinds == ["stream error", "syntax", "nothing", "events", "text", "reasoning", "tool", "finish", "usage"])
    }
}
