import Foundation
import Testing

@testable import OxydraCore

private func roundTrip<T: Codable & Equatable>(_ value: T) throws -> T {
    let data = try JSONEncoder().encode(value)
    return try JSONDecoder().decode(T.self, from: data)
}

private func json(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

@Suite("Core contracts round-trip through JSON")
struct CodableRoundTripTests {
    @Test(arguments: [
        JSONValue.null, .bool(true), .integer(-42), .number(2.5), .string("héllo \"q\" \n"),
        .array([.integer(1), .string("a"), .null]),
        .object(["nested": .object(["list": .array([.bool(false), .number(0.125)])]), "n": .integer(7)]),
    ])
    func jsonValue(_ value: JSONValue) throws {
        #expect(try roundTrip(value) == value)
    }

    @Test func jsonValueKeepsIntegersApartFromFloats() throws {
        let parsed = try JSONValue(parsing: #"{"count": 5, "ratio": 0.5}"#)
        #expect(parsed["count"] == .integer(5))
        #expect(parsed["ratio"] == .number(0.5))
        #expect(parsed.compactText == #"{"count":5,"ratio":0.5}"#)
    }

    @Test func messageWithToolCallsAndAttachments() throws {
        let message = Message(
            role: .assistant, content: "Let me look.",
            toolCalls: [
                ToolCall(id: "call_1", name: "file_read", arguments: ["path": "/shared/a.txt"]),
                ToolCall(
                    id: "call_2", name: "web_fetch", arguments: .malformed(raw: #"{"url": "#, error: "unexpected end"),
                    metadata: ["thought_signature": "abc"]),
            ],
            attachments: [Attachment(mimeType: "image/png", data: Data([0, 1, 2, 255]))])
        #expect(try roundTrip(message) == message)
    }

    /// The stored form written without an encoder is the encoder's JSON (compared as values: key
    /// order and slash escaping may differ) and decodes back to the same message.
    @Test func storedJSONIsTheEncodersJSON() throws {
        let messages: [Message] = [
            .user("hi"), .system("Rules:\n\t1. \"quoted\" / slashed é 🙂\u{1}"),
            .toolResult(callID: "c1", content: ""), Message(role: .assistant, content: nil),
            Message(
                role: .assistant, content: "Let me look.",
                toolCalls: [
                    ToolCall(id: "call_1", name: "file_read", arguments: ["path": "/shared/a.txt", "n": 3, "r": 0.25]),
                    ToolCall(
                        id: "call_2", name: "web_fetch",
                        arguments: .malformed(raw: #"{"url": "#, error: "unexpected end"),
                        metadata: ["thought_signature": "abc", "nested": ["k": [1, 2]]]),
                ],
                attachments: [Attachment(mimeType: "image/png", data: Data([0, 1, 2, 255]))]),
            Message(role: .user, content: "see", attachments: [Attachment(mimeType: "application/pdf", data: Data())]),
        ]
        for message in messages {
            let stored = message.storedJSON
            let encoded = String(decoding: try JSONEncoder().encode(message), as: UTF8.self)
            #expect(try JSONValue(parsing: stored) == JSONValue(parsing: encoded), "\(stored)")
            #expect(try JSONDecoder().decode(Message.self, from: Data(stored.utf8)) == message)
        }
    }

    @Test func messageOmitsEmptyFieldsAndIgnoresUnknownOnes() throws {
        #expect(try json(Message.user("hi")) == #"{"content":"hi","role":"user"}"#)
        #expect(
            try json(Message.toolResult(callID: "c1", content: "ok"))
                == #"{"content":"ok","role":"tool","tool_call_id":"c1"}"#)
        let decoded = try JSONDecoder().decode(
            Message.self, from: Data(#"{"role":"user","content":"x","future_field":{"a":1}}"#.utf8))
        #expect(decoded == .user("x"))
    }

    @Test func malformedToolArgumentsAreKeptNotReplaced() throws {
        let arguments = ToolArguments(parsing: #"{"path": "/shared/a"#)
        guard case .malformed(let raw, let error) = arguments else {
            Issue.record("expected malformed arguments, got \(arguments)")
            return
        }
        #expect(raw == #"{"path": "/shared/a"#)
        #expect(error.hasPrefix("not valid JSON"))
        #expect(ToolArguments(parsing: "  ") == .json(.object([:])))
        #expect(ToolArguments(parsing: #"{"a":1}"#) == .json(["a": 1]))
        let call = ToolCall(id: "x", name: "t", arguments: arguments)
        #expect(try json(call).contains(#""arguments_error""#))
    }

    @Test func attachmentRejectsInvalidBase64() {
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(Attachment.self, from: Data(#"{"mime_type":"image/png","data":"%%%"}"#.utf8))
        }
    }

    @Test(arguments: [
        ModelEvent.textDelta("Hel"), .reasoningDelta("thinking"),
        .toolCallDelta(ToolCallDelta(index: 1, id: "call_9", name: "file_list", argumentsFragment: #"{"pa"#)),
        .toolCallDelta(ToolCallDelta(index: 0, argumentsFragment: "th\"}", metadata: ["sig": "s"])),
        .usage(Usage(promptTokens: 10, completionTokens: 5, totalTokens: 15)), .usage(Usage()),
        .finish(.stop), .finish(.toolCalls), .finish(.other("weird")), .connectionLost("reset by peer"),
    ])
    func modelEvent(_ event: ModelEvent) throws {
        #expect(try roundTrip(event) == event)
    }

    @Test func usageMergesFieldWise() {
        let first = Usage(promptTokens: 100)
        let merged = first.merged(with: Usage(completionTokens: 20))
        #expect(merged == Usage(promptTokens: 100, completionTokens: 20))
        #expect(merged.effectiveTotal == 120)
        #expect(Usage().effectiveTotal == nil)
        #expect(Usage(promptTokens: 1, completionTokens: 2, totalTokens: 9).effectiveTotal == 9)
    }

    @Test(arguments: [
        ("stop", FinishReason.stop), ("end_turn", .stop), ("STOP", .stop), ("tool_use", .toolCalls),
        ("tool_calls", .toolCalls), ("max_tokens", .length), ("MAX_TOKENS", .length), ("SAFETY", .contentFilter),
        ("something_new", .other("something_new")),
    ])
    func finishReasonMapping(_ raw: String, _ expected: FinishReason) {
        #expect(FinishReason(providerValue: raw) == expected)
    }

    @Test func identifiersEncodeAsBareStrings() throws {
        #expect(try json(SessionID("s-1")) == #""s-1""#)
        #expect(try roundTrip(ModelID("gpt-4o")) == "gpt-4o")
        #expect(try roundTrip(ProviderID("local-ollama")) == ProviderID("local-ollama"))
        #expect(try json([UserID("alice"): 1].keys.first!) == #""alice""#)
    }

    @Test func toolDeclarationAndSafetyTier() throws {
        let declaration = ToolDeclaration(
            name: "file_read", description: "Read a file",
            parameters: ["type": "object", "properties": ["path": ["type": "string"]], "required": ["path"]])
        #expect(try roundTrip(declaration) == declaration)
        #expect(try json(SafetyTier.readOnly) == #""read_only""#)
        #expect(try roundTrip(SafetyTier.privileged) == .privileged)
        #expect(SafetyTier.readOnly < .sideEffecting && SafetyTier.sideEffecting < .privileged)
    }
}

@Suite("Identifiers")
struct IdentifierTests {
    @Test(arguments: ["alice", "bob_2", "team-a", "Ünïcode"])
    func validUserIDs(_ raw: String) throws {
        #expect(try UserID.validated(raw).rawValue == raw)
    }

    @Test(arguments: [
        ("", "invalid user id ``: it is empty; use letters, digits, `-` or `_`"),
        (" alice", "invalid user id ` alice`: it has leading or trailing whitespace; use letters, digits, `-` or `_`"),
        ("a/b", "invalid user id `a/b`: it contains a path separator; use letters, digits, `-` or `_`"),
        ("a\\b", "invalid user id `a\\b`: it contains a path separator; use letters, digits, `-` or `_`"),
        ("..", "invalid user id `..`: it contains `..` or is `.`; use letters, digits, `-` or `_`"),
        ("x..y", "invalid user id `x..y`: it contains `..` or is `.`; use letters, digits, `-` or `_`"),
        (".", "invalid user id `.`: it contains `..` or is `.`; use letters, digits, `-` or `_`"),
        ("a\u{7}", "invalid user id `a\u{7}`: it contains a control character; use letters, digits, `-` or `_`"),
    ])
    func invalidUserIDs(_ raw: String, _ message: String) {
        #expect {
            try UserID.validated(raw)
        } throws: { error in
            "\(error)" == message
        }
    }
}

@Suite("Error messages")
struct ErrorMessageTests {
    @Test func providerErrors() {
        #expect(
            ProviderError.missingAPIKey(provider: "openai", variables: ["OPENAI_API_KEY", "API_KEY"]).description
                == "no API key for provider `openai`: set `api_key` in [providers.registry.openai], "
                + "or export one of OPENAI_API_KEY, API_KEY")
        #expect(
            ProviderError.httpStatus(provider: "anthropic", status: 429, message: "rate limited").description
                == "provider `anthropic` returned HTTP 429: rate limited")
        #expect(ProviderError.httpStatus(provider: "p", status: 429, message: "").isRetryable)
        #expect(ProviderError.httpStatus(provider: "p", status: 503, message: "").isRetryable)
        #expect(ProviderError.httpStatus(provider: "p", status: 408, message: "").isRetryable)
        #expect(!ProviderError.httpStatus(provider: "p", status: 400, message: "").isRetryable)
        #expect(!ProviderError.httpStatus(provider: "p", status: 401, message: "").isRetryable)
        #expect(ProviderError.transport(provider: "p", message: "reset").isRetryable)
    }

    @Test func toolErrors() {
        #expect(
            ToolError.blocked(tool: "file_read", reason: "PathOutsideAllowedRoots", detail: "/etc/passwd").description
                == "blocked by security policy (PathOutsideAllowedRoots): /etc/passwd")
        #expect(
            ToolError.unknownTool(name: "file_raed", available: ["file_list", "file_read"]).description
                == "unknown tool `file_raed`; did you mean `file_read`?; available tools: file_list, file_read")
        #expect(
            ToolError.invalidArguments(tool: "file_read", message: "\"path\" is a required property").description
                == "invalid arguments for tool file_read: \"path\" is a required property")
    }

    @Test func runtimeErrors() {
        #expect(RuntimeError.cancelled.description == "turn cancelled")
        #expect(
            RuntimeError.budgetExceeded(detail: "runtime.max_turns (8) reached").description
                == "turn budget exceeded: runtime.max_turns (8) reached")
    }
}

@Suite("Suggestions")
struct SuggestionTests {
    @Test func editDistance() {
        #expect(Suggestions.editDistance("max_turn", "max_turns") == 1)
        #expect(Suggestions.editDistance("trun", "turn") == 1)
        #expect(Suggestions.editDistance("", "abc") == 3)
        #expect(Suggestions.editDistance("same", "same") == 0)
    }

    @Test func closest() {
        let keys = ["turn_timeout_secs", "max_turns", "max_cost", "context_budget", "summarization"]
        #expect(Suggestions.closest(to: "max_turn", in: keys, limit: 1) == ["max_turns"])
        #expect(Suggestions.closest(to: "context_budgte", in: keys, limit: 1) == ["context_budget"])
        #expect(Suggestions.closest(to: "zzzzzzzz", in: keys).isEmpty)
        #expect(Suggestions.closest(to: "gpt4o", in: ["gpt-4o", "gpt-4o-mini", "o3"]).first == "gpt-4o")
    }
}

@Suite("Money for people")
struct MoneyDisplayTests {
    @Test func centsWithAFloor() {
        #expect(Money.display(0) == "$0")
        #expect(Money.display(0.000_04) == "<$0.01")
        #expect(Money.display(0.004_9) == "<$0.01")
        #expect(Money.display(0.005) == "$0.01")
        #expect(Money.display(0.42) == "$0.42")
        #expect(Money.display(0.4) == "$0.40")
        #expect(Money.display(12.3) == "$12.30")
        #expect(Money.format(0.000_04) == "0.0000")
    }
}
