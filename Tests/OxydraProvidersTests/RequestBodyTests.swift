import Foundation
import OxydraConfig
import OxydraCore
import OxydraTesting
import Testing

@testable import OxydraProviders

/// Request bodies as the real APIs expect them (snapshots of the JSON each provider sends).
@Suite("Request bodies")
struct RequestBodyTests {
    private func sentBody(
        _ type: ProviderType, messages: [Message] = fullConversation, tools: [ToolDeclaration] = [readTool]
    )
        async throws -> (JSONValue, RecordedRequest)
    {
        let fixture = try await ProviderFixture.start(type)
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue(.text("ok"))
        _ = try await fixture.stream(messages, tools: tools)
        let request = try #require(fixture.server.requests.first)
        return (try #require(request.json), request)
    }

    @Test func openAIChat() async throws {
        let (body, request) = try await sentBody(.openai)
        #expect(request.path == "/v1/chat/completions")
        #expect(request.header("Authorization") == "Bearer sk-test-KEY-123")
        let expected: JSONValue = [
            "model": "gpt-4o-mini", "stream": true, "stream_options": ["include_usage": true], "tool_choice": "auto",
            "messages": [
                ["role": "system", "content": "You are Oxydra."],
                ["role": "user", "content": "Read /shared/a.txt"],
                [
                    "role": "assistant", "content": "Reading it.",
                    "tool_calls": [
                        [
                            "id": "call_1", "type": "function",
                            "function": ["name": "file_read", "arguments": #"{"path":"/shared/a.txt"}"#],
                        ]
                    ],
                ],
                ["role": "tool", "tool_call_id": "call_1", "content": "hello"],
                ["role": "user", "content": "Thanks"],
            ],
            "tools": [
                [
                    "type": "function",
                    "function": [
                        "name": "file_read", "description": "Read a file",
                        "parameters": [
                            "type": "object", "properties": ["path": ["type": "string"]], "required": ["path"],
                        ],
                    ],
                ]
            ],
        ]
        #expect(body == expected)
    }

    /// The tools array is encoded once per guest and spliced into each body: the bytes are exactly
    /// those of encoding the whole body, and changed tools are encoded again.
    @Test func cachedToolsEncodeExactlyLikeTheWholeBody() {
        let members: [String: JSONValue] = [
            "model": "m", "stream": true, "tool_choice": "auto",
            "messages": [["role": "user", "content": "hi \"there\"\n"]],
        ]
        let tools: JSONValue = [["type": "function", "function": ["name": "a", "parameters": ["type": "object"]]]]
        var whole = members
        whole["tools"] = tools
        #expect(
            WireJSON.encode(members, encoded: ["tools": Array(JSONWriter.text(tools, sortedKeys: true).utf8)])
                == WireJSON.encode(.object(whole)))
        var withoutMessages = whole
        withoutMessages["messages"] = nil
        #expect(
            WireJSON.encode(
                withoutMessages,
                encoded: ["messages": Array(JSONWriter.text(whole["messages"]!, sortedKeys: true).utf8)])
                == WireJSON.encode(.object(whole)))
        #expect(WireJSON.encode([:], encoded: ["tools": Array("[]".utf8)]) == WireJSON.encode(["tools": []]))

        let cache = EncodedToolsCache()
        var encodings = 0
        func text(_ tools: [ToolDeclaration]) -> String {
            String(
                decoding: cache.bytes(for: tools) { tools in
                    encodings += 1
                    return .array(tools.map { .string($0.name) })
                }, as: UTF8.self)
        }
        let first = [readTool]
        #expect(text(first) == #"["file_read"]"#)
        #expect(text(first) == #"["file_read"]"#)
        #expect(text([readTool]) == #"["file_read"]"#)
        #expect(encodings == 1)
        var renamed = readTool
        renamed.name = "other"
        #expect(text([renamed]) == #"["other"]"#)
        #expect(encodings == 2)
    }

    /// The system prompt's encoding is kept and reused: each request carries its own prompt, the
    /// same one twice and then a changed one, written exactly as the writer writes it.
    @Test func theCachedSystemPromptWritesTheSameBody() async throws {
        let fixture = try await ProviderFixture.start(.openai)
        defer { Teardown.run { await fixture.stop() } }
        let prompts = ["Rules:\n\t- one \"two\"\u{1}", "Rules:\n\t- one \"two\"\u{1}", "changed é\n"]
        for prompt in prompts {
            fixture.server.enqueue(.text("ok"))
            _ = try await fixture.stream([.system(prompt), .user("hi")], tools: [])
        }
        #expect(fixture.server.requests.count == 3)
        for (request, prompt) in zip(fixture.server.requests, prompts) {
            let first = try #require(request.json?["messages"]?.arrayValue?.first)
            #expect(first == ["role": "system", "content": .string(prompt)])
            var direct = JSONBytes()
            OpenAIChatProvider.writeWireMessage(.system(prompt), into: &direct)
            #expect(String(decoding: request.body, as: UTF8.self).contains(#"["# + direct.text + ","))
        }
    }

    /// A session's next request reuses the bytes of the messages its last request began with; the
    /// body is byte for byte what writing every message gives, whatever changed in between: the
    /// history grown, a message edited, the start dropped (as a summary does), a request without a
    /// session, more sessions than are kept.
    @Test func theCachedHistoryWritesTheSameBody() async throws {
        let fixture = try await ProviderFixture.start(.openai)
        defer { Teardown.run { await fixture.stop() } }
        let cache = try #require(fixture.provider.inner as? OpenAIChatProvider).encodedHistory
        var histories: [SessionID: [Message]] = [:]
        var sent: [[Message]] = []
        func send(_ messages: [Message], _ session: SessionID?) async throws {
            fixture.server.enqueue(.text("ok"))
            _ = try await fixture.stream(messages, session: session)
            sent.append(messages)
        }
        for round in 0..<3 {
            for index in 0..<(EncodedHistoryCache.sessions + 2) {
                let session = SessionID("s\(index)")
                var history = histories[session] ?? [.system("Rules \(index)\n\t\"q\"")]
                history += [.user("question \(round) é"), .assistant("answer \(round)\n")]
                histories[session] = history
                try await send(history + [.user("next")], session)
            }
        }
        #expect(cache.keptSessions.count == EncodedHistoryCache.sessions)
        var edited = try #require(histories["s9"])
        edited[2] = .assistant("an edited answer")
        try await send(edited, "s9")
        try await send(Array(edited.dropFirst(3)), "s9")
        try await send(edited, nil)
        try await send([], "s9")
        // A history longer than is kept is written whole, and the session's shorter one forgotten.
        try await send([.user(String(repeating: "long ", count: EncodedHistoryCache.maxBytes / 4))], "s9")
        #expect(!cache.keptSessions.contains("s9"))
        try await send(edited, "s9")
        #expect(cache.keptSessions.last == "s9")
        #expect(fixture.server.requests.count == sent.count)
        for (request, messages) in zip(fixture.server.requests, sent) {
            var expected = JSONBytes()
            expected.raw("[")
            for (position, message) in messages.enumerated() {
                if position > 0 { expected.raw(",") }
                OpenAIChatProvider.writeWireMessage(message, into: &expected)
            }
            expected.raw("]")
            #expect(String(decoding: request.body, as: UTF8.self).contains(#""messages":"# + expected.text + ","))
        }
    }

    /// Messages written straight out are byte for byte what the writer makes of their wire form.
    @Test func openAIMessagesWrittenDirectlyMatchTheWriter() {
        var messages =
            fullConversation + [
                .assistant(nil, toolCalls: [ToolCall(id: "a\"1", name: "x", arguments: ToolArguments(parsing: "{}"))]),
                .assistant(
                    "two calls\n",
                    toolCalls: [
                        ToolCall(
                            id: "c1", name: "file_read", arguments: ToolArguments(parsing: #"{"path":"é \"q\""}"#)),
                        ToolCall(id: "c2", name: "web_fetch", arguments: ToolArguments(parsing: "not json")),
                    ]),
                Message(role: .tool, content: nil),
                .system("Rules:\n\t- one\u{1}"),
            ]
        var image = Message.user("look")
        image.attachments = [Attachment(mimeType: "image/png", data: Data([1, 2, 3]))]
        messages.append(image)
        for message in messages {
            var direct = JSONBytes()
            OpenAIChatProvider.writeWireMessage(message, into: &direct)
            #expect(direct.text == JSONWriter.text(OpenAIChatProvider.wireMessage(message), sortedKeys: true))
        }
    }

    @Test func anthropic() async throws {
        let (body, request) = try await sentBody(.anthropic)
        #expect(request.path == "/v1/messages")
        #expect(request.header("x-api-key") == "sk-test-KEY-123")
        #expect(request.header("anthropic-version") == "2023-06-01")
        #expect(request.header("Authorization") == nil)
        let expected: JSONValue = [
            "model": "claude-haiku-4-5", "max_tokens": 64000, "stream": true, "system": "You are Oxydra.",
            "tool_choice": ["type": "auto"],
            "tools": [
                [
                    "name": "file_read", "description": "Read a file",
                    "input_schema": [
                        "type": "object", "properties": ["path": ["type": "string"]], "required": ["path"],
                    ],
                ]
            ],
            "messages": [
                ["role": "user", "content": [["type": "text", "text": "Read /shared/a.txt"]]],
                [
                    "role": "assistant",
                    "content": [
                        ["type": "text", "text": "Reading it."],
                        ["type": "tool_use", "id": "call_1", "name": "file_read", "input": ["path": "/shared/a.txt"]],
                    ],
                ],
                [
                    "role": "user",
                    "content": [
                        ["type": "tool_result", "tool_use_id": "call_1", "content": "hello"],
                        ["type": "text", "text": "Thanks"],
                    ],
                ],
            ],
        ]
        #expect(body == expected)
    }

    @Test func gemini() async throws {
        let (body, request) = try await sentBody(.gemini)
        #expect(request.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
        #expect(request.header("x-goog-api-key") == "sk-test-KEY-123")
        let expected: JSONValue = [
            "systemInstruction": ["parts": [["text": "You are Oxydra."]]],
            "tools": [
                [
                    "functionDeclarations": [
                        [
                            "name": "file_read", "description": "Read a file",
                            "parameters": [
                                "type": "object", "properties": ["path": ["type": "string"]], "required": ["path"],
                            ],
                        ]
                    ]
                ]
            ],
            "contents": [
                ["role": "user", "parts": [["text": "Read /shared/a.txt"]]],
                [
                    "role": "model",
                    "parts": [
                        ["text": "Reading it."],
                        ["functionCall": ["name": "file_read", "args": ["path": "/shared/a.txt"]]],
                    ],
                ],
                [
                    "role": "user",
                    "parts": [
                        ["functionResponse": ["id": "call_1", "name": "file_read", "response": ["result": "hello"]]],
                        ["text": "Thanks"],
                    ],
                ],
            ],
        ]
        #expect(body == expected)
    }

    @Test func responses() async throws {
        let (body, request) = try await sentBody(.openaiResponses)
        #expect(request.path == "/v1/responses")
        let expected: JSONValue = [
            "model": "gpt-5", "stream": true, "store": false, "instructions": "You are Oxydra.",
            "tools": [
                [
                    "type": "function", "name": "file_read", "description": "Read a file", "strict": false,
                    "parameters": ["type": "object", "properties": ["path": ["type": "string"]], "required": ["path"]],
                ]
            ],
            "input": [
                ["type": "message", "role": "user", "content": "Read /shared/a.txt"],
                ["type": "message", "role": "assistant", "content": "Reading it."],
                [
                    "type": "function_call", "call_id": "call_1", "name": "file_read",
                    "arguments": #"{"path":"/shared/a.txt"}"#,
                ],
                ["type": "function_call_output", "call_id": "call_1", "output": "hello"],
                ["type": "message", "role": "user", "content": "Thanks"],
            ],
        ]
        #expect(body == expected)
    }

    @Test(arguments: ["", "/v1", "/v1/", "/api/v1"])
    func baseURLWithOrWithoutV1(_ suffix: String) async throws {
        let fixture = try await ProviderFixture.start(.openai, baseSuffix: suffix)
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue(.text("ok"))
        _ = try await fixture.stream()
        let expected = suffix.hasPrefix("/api") ? "/api/v1/chat/completions" : "/v1/chat/completions"
        #expect(fixture.server.requests.first?.path == expected)
    }

    @Test func extraHeadersAreSentAndMayReplaceAuth() async throws {
        let fixture = try await ProviderFixture.start(
            .openai, apiKey: nil,
            extraHeaders: ["HTTP-Referer": "https://example.org", "Authorization": "Bearer proxy-token"])
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue(.text("ok"))
        _ = try await fixture.stream()
        let request = try #require(fixture.server.requests.first)
        #expect(request.header("HTTP-Referer") == "https://example.org")
        #expect(request.header("Authorization") == "Bearer proxy-token")
    }
}

@Suite("Format specifics")
struct FormatSpecificTests {
    @Test func openAIServersThatOmitUsageOrSendObjectArgumentsOrWholeCalls() async throws {
        let fixture = try await ProviderFixture.start(.openai)
        defer { Teardown.run { await fixture.stop() } }
        var reply = ScriptedReply.toolCalls([
            ScriptedToolCall(id: "call_1", name: "file_read", arguments: #"{"path":"/a"}"#, fragments: 1),
            ScriptedToolCall(id: "call_2", name: "file_read", arguments: #"{"path":"/b"}"#, fragments: 1),
        ])
        reply.usage = nil
        reply.argumentsAsObject = true
        fixture.server.enqueue([reply, reply])
        let streamed = try await fixture.stream()
        #expect(streamed.usage == nil)
        #expect(streamed.message.toolCalls.map(\.arguments) == [.json(["path": "/a"]), .json(["path": "/b"])])
        let complete = try await fixture.provider.complete(fixture.request([.user("x")]))
        #expect(complete.message.toolCalls.map(\.arguments) == [.json(["path": "/a"]), .json(["path": "/b"])])
    }

    @Test func openAIServerThatNumbersEveryCallZero() async throws {
        let fixture = try await ProviderFixture.start(.openai)
        defer { Teardown.run { await fixture.stop() } }
        let chunk = { (id: String, path: String) in
            #"data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"\#(id)","type":"function","function":{"name":"file_read","arguments":"{\"path\":\"\#(path)\"}"}}]}}]}"#
                + "\n\n"
        }
        fixture.server.enqueue(
            .raw(
                chunk("c1", "/a") + chunk("c2", "/b")
                    + #"data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#
                    + "\n\ndata: [DONE]\n\n"))
        let response = try await fixture.stream()
        #expect(response.message.toolCalls.map(\.id) == ["c1", "c2"])
    }

    @Test func openAIStreamWithoutDoneAfterFinishIsComplete() async throws {
        let fixture = try await ProviderFixture.start(.openai, maxAttempts: 1)
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue(
            .raw(
                #"data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}"# + "\n\n"
                    + #"data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"# + "\n\n"))
        #expect(try await fixture.stream().message.content == "hi")
    }

    @Test func openAIErrorInsideTheStream() async throws {
        let fixture = try await ProviderFixture.start(.openai)
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue(.raw(#"data: {"error":{"message":"model overloaded","type":"server_error"}}"# + "\n\n"))
        await #expect {
            try await fixture.stream()
        } throws: { error in
            "\(error)" == "provider request failed for `scripted`: model overloaded"
        }
    }

    @Test func anthropicMaxTokensFromRequestAndOverloadErrors() async throws {
        let fixture = try await ProviderFixture.start(.anthropic)
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue([
            .raw(
                "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
            ),
            .text("after overload"),
        ])
        var request = fixture.request([.user("x")])
        request.maxOutputTokens = 1234
        let response = try await fixture.provider.stream(request).collect(provider: "scripted")
        #expect(response.message.content == "after overload")
        #expect(fixture.server.requests.map { $0.json?["max_tokens"] } == [1234, 1234])
    }

    @Test func geminiThoughtSignaturesRoundTripAndIndicesSpanTheStream() async throws {
        let fixture = try await ProviderFixture.start(.gemini)
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue([
            .toolCalls([
                ScriptedToolCall(id: "g1", name: "file_read", arguments: #"{"path":"/a"}"#),
                ScriptedToolCall(id: "g2", name: "file_list", arguments: #"{"path":"/b"}"#),
            ]),
            .text("done"),
        ])
        let first = try await fixture.stream(tools: [readTool])
        let calls = first.message.toolCalls
        #expect(calls.map(\.name) == ["file_read", "file_list"])
        #expect(
            calls.map { $0.metadata?["thought_signature"] }
                == [.string(WireRendering.thoughtSignature("g1")), .string(WireRendering.thoughtSignature("g2"))])
        #expect(Set(calls.map(\.id)).count == 2)
        let followUp: [Message] = [
            .user("Hi"), first.message,
            .toolResult(callID: calls[0].id, content: #"{"text":"A"}"#),
            .toolResult(callID: calls[1].id, content: "B"),
        ]
        _ = try await fixture.stream(followUp, tools: [readTool])
        let sent = try #require(fixture.server.requests.last?.json)
        let contents = try #require(sent["contents"])
        #expect(
            contents == [
                ["role": "user", "parts": [["text": "Hi"]]],
                [
                    "role": "model",
                    "parts": [
                        [
                            "functionCall": ["name": "file_read", "args": ["path": "/a"]],
                            "thoughtSignature": .string(WireRendering.thoughtSignature("g1")),
                        ],
                        [
                            "functionCall": ["name": "file_list", "args": ["path": "/b"]],
                            "thoughtSignature": .string(WireRendering.thoughtSignature("g2")),
                        ],
                    ],
                ],
                [
                    "role": "user",
                    "parts": [
                        [
                            "functionResponse": [
                                "id": .string(calls[0].id), "name": "file_read", "response": ["text": "A"],
                            ]
                        ],
                        [
                            "functionResponse": [
                                "id": .string(calls[1].id), "name": "file_list", "response": ["result": "B"],
                            ]
                        ],
                    ],
                ],
            ])
    }

    @Test func geminiSchemasLoseUnsupportedKeywords() {
        let schema: JSONValue = [
            "$schema": "x", "type": "object", "additionalProperties": false,
            "properties": ["tags": ["type": "array", "items": ["type": "object", "additionalProperties": false]]],
        ]
        #expect(
            GeminiProvider.geminiSchema(schema)
                == ["type": "object", "properties": ["tags": ["type": "array", "items": ["type": "object"]]]])
    }
}

@Suite("Responses API chaining")
struct ResponsesChainingTests {
    @Test func chainsArePerSessionAndSendOnlyTheNewTail() async throws {
        let fixture = try await ProviderFixture.start(.openaiResponses)
        defer { Teardown.run { await fixture.stop() } }
        var first = ScriptedReply.text("First answer")
        first.responseID = "resp_A1"
        var other = ScriptedReply.text("Other session")
        other.responseID = "resp_B1"
        var second = ScriptedReply.text("Second answer")
        second.responseID = "resp_A2"
        fixture.server.enqueue([first, other, second])

        let history: [Message] = [.system("Be brief."), .user("One")]
        let answer = try await fixture.stream(history, session: "A")
        _ = try await fixture.stream([.system("Be brief."), .user("Other")], session: "B")
        _ = try await fixture.stream(history + [answer.message, .user("Two")], session: "A")

        let bodies = fixture.server.requests.compactMap(\.json)
        #expect(bodies[0]["previous_response_id"] == nil)
        #expect(bodies[0]["store"] == true)
        #expect(bodies[1]["previous_response_id"] == nil)
        #expect(bodies[2]["previous_response_id"] == "resp_A1")
        #expect(bodies[2]["input"] == [["type": "message", "role": "user", "content": "Two"]])
        #expect(bodies[2]["instructions"] == "Be brief.")
        #expect(fixture.chains.responseID(for: "A") == "resp_A2")
        #expect(fixture.chains.responseID(for: "B") == "resp_B1")
    }

    @Test func trimmedHistoryResetsTheChain() async throws {
        let fixture = try await ProviderFixture.start(.openaiResponses)
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue([.text("a"), .text("b")])
        let answer = try await fixture.stream([.user("One"), .assistant("x"), .user("Two")], session: "S")
        // The runtime summarised: the history no longer starts with what was sent.
        _ = try await fixture.stream(
            [.system("Summary: ..."), .user("Two"), answer.message, .user("Three")], session: "S")
        let last = try #require(fixture.server.requests.last?.json)
        #expect(last["previous_response_id"] == nil)
        #expect((last["input"].flatMap { if case .array(let items) = $0 { items.count } else { nil } }) == 3)
    }

    @Test func rejectedChainIsResetAndTheFullHistoryResent() async throws {
        let fixture = try await ProviderFixture.start(.openaiResponses)
        defer { Teardown.run { await fixture.stop() } }
        var first = ScriptedReply.text("a")
        first.responseID = "resp_old"
        fixture.server.enqueue([
            first, .status(404, message: "Previous response with id 'resp_old' not found."), .text("b"),
        ])
        let answer = try await fixture.stream([.user("One")], session: "S")
        let second = try await fixture.stream([.user("One"), answer.message, .user("Two")], session: "S")
        #expect(second.message.content == "b")
        let bodies = fixture.server.requests.compactMap(\.json)
        #expect(bodies.count == 3)
        #expect(bodies[1]["previous_response_id"] == "resp_old")
        #expect(bodies[2]["previous_response_id"] == nil)
        #expect((bodies[2]["input"].flatMap { if case .array(let items) = $0 { items.count } else { nil } }) == 3)
    }
}

@Suite("Images and model checks")
struct AttachmentTests {
    let png = Attachment(mimeType: "image/png", data: Data([0x89, 0x50, 0x4E, 0x47]))
    let pdf = Attachment(mimeType: "application/pdf", data: Data("%PDF-1.4".utf8))

    @Test func openAIImagesBecomeDataURIParts() async throws {
        let fixture = try await ProviderFixture.start(.openai)
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue(.text("a cat"))
        _ = try await fixture.stream([.user("What is this?", attachments: [png])])
        let message = try #require(fixture.server.requests.first?.json?["messages"])
        #expect(
            message == [
                [
                    "role": "user",
                    "content": [
                        ["type": "text", "text": "What is this?"],
                        ["type": "image_url", "image_url": ["url": "data:image/png;base64,iVBORw=="]],
                    ],
                ]
            ])
    }

    @Test func anthropicTakesPDFsAsDocuments() async throws {
        let fixture = try await ProviderFixture.start(.anthropic)
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue(.text("ok"))
        _ = try await fixture.stream([.user("Summarise", attachments: [pdf])])
        let content = try #require(fixture.server.requests.first?.json?["messages"])
        #expect(
            content == [
                [
                    "role": "user",
                    "content": [
                        ["type": "text", "text": "Summarise"],
                        [
                            "type": "document",
                            "source": ["type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQ="],
                        ],
                    ],
                ]
            ])
    }

    @Test func geminiAndResponsesImages() async throws {
        let gemini = try await ProviderFixture.start(.gemini)
        defer { Teardown.run { await gemini.stop() } }
        gemini.server.enqueue(.text("ok"))
        _ = try await gemini.stream([.user("See", attachments: [png])])
        #expect(
            gemini.server.requests.first?.json?["contents"]
                == [
                    [
                        "role": "user",
                        "parts": [["text": "See"], ["inlineData": ["mimeType": "image/png", "data": "iVBORw=="]]],
                    ]
                ])
        let responses = try await ProviderFixture.start(.openaiResponses)
        defer { Teardown.run { await responses.stop() } }
        responses.server.enqueue(.text("ok"))
        _ = try await responses.stream([.user("See", attachments: [png])])
        #expect(
            responses.server.requests.first?.json?["input"]
                == [
                    [
                        "type": "message", "role": "user",
                        "content": [
                            ["type": "input_text", "text": "See"],
                            ["type": "input_image", "image_url": "data:image/png;base64,iVBORw=="],
                        ],
                    ]
                ])
    }

    @Test func unsupportedAttachmentsFailBeforeAnyRequest() async throws {
        let openAI = try await ProviderFixture.start(.openai)
        defer { Teardown.run { await openAI.stop() } }
        await #expect {
            try await openAI.stream([.user("Summarise", attachments: [pdf])])
        } throws: { error in
            "\(error)"
                == "provider request failed for `scripted`: model `gpt-4o-mini` does not accept pdf input "
                + "(`application/pdf`; it accepts image, text)"
        }
        let local = try await ProviderFixture.start(.openai, model: "llama3.1:8b", skipCatalog: true)
        defer { Teardown.run { await local.stop() } }
        await #expect {
            try await local.stream([.user("Look", attachments: [png])])
        } throws: { error in
            "\(error)".contains("model `llama3.1:8b` does not accept image input")
        }
        #expect(openAI.server.requests.isEmpty && local.server.requests.isEmpty)
    }
}

@Suite("Provider construction")
struct ProviderFactoryTests {
    @Test func unknownModelFailsBeforeNetworkIO() async throws {
        let server = try await ScriptedModelServer.start()
        defer { Teardown.run { try? await server.shutdown() } }
        var config = AgentConfig()
        config.providers.registry["openai"]?.baseURL = server.baseURL
        config.selection.model = "gpt-4o-mni"
        #expect {
            try ProviderFactory.selected(config, catalog: .builtIn, environment: ["OPENAI_API_KEY": "k"])
        } throws: { error in
            "\(error)".hasPrefix("unknown model `gpt-4o-mni` for catalog provider `openai`; did you mean `gpt-4o-mini`")
        }
        #expect(server.requests.isEmpty)
    }

    @Test func missingKeySaysWhichVariableToSet() {
        var config = AgentConfig()
        config.selection.provider = "anthropic"
        config.selection.model = "claude-haiku-4-5"
        #expect {
            try ProviderFactory.selected(config, catalog: .builtIn, environment: [:])
        } throws: { error in
            "\(error)"
                == "no API key for provider `anthropic`: set `api_key` in [providers.registry.anthropic], "
                + "or export one of ANTHROPIC_API_KEY, API_KEY"
        }
    }

    @Test func selectedProviderTypes() throws {
        for (type, model) in [
            (ProviderType.openai, "gpt-4o-mini"), (.anthropic, "claude-haiku-4-5"), (.gemini, "gemini-2.5-flash"),
            (.openaiResponses, "gpt-5"),
        ] {
            var config = AgentConfig()
            config.providers.registry["x"] = ProviderEntry(type: type)
            config.selection.provider = "x"
            config.selection.model = model
            let provider = try ProviderFactory.selected(config, catalog: .builtIn, environment: ["API_KEY": "k"])
            #expect(provider.id == "x")
            #expect(try provider.capabilities(for: ModelID(model)).streaming)
        }
    }

    @Test func retryPolicyBackoff() {
        let policy = RetryPolicy(
            maxAttempts: 5, backoffBase: .milliseconds(250), backoffMax: .milliseconds(2000), jitter: false)
        #expect(
            (1...5).map { policy.delay(afterAttempt: $0) } == [
                .milliseconds(250), .milliseconds(500), .milliseconds(1000), .milliseconds(2000), .milliseconds(2000),
            ])
        let jittered = RetryPolicy(
            maxAttempts: 5, backoffBase: .milliseconds(1000), backoffMax: .milliseconds(1000), jitter: true)
        for _ in 0..<100 {
            let delay = jittered.delay(afterAttempt: 3)
            #expect(delay >= .milliseconds(500) && delay <= .milliseconds(1000))
        }
        #expect(ProviderTransport.retryAfter("2") == 2)
        #expect(ProviderTransport.retryAfter("soon") == nil)
        let date = ProviderTransport.retryAfter("Wed, 21 Oct 2015 07:28:00 GMT")
        #expect(date == 0)
        #expect(HTTPDate.parse("Wed, 21 Oct 2015 07:28:00 GMT")?.timeIntervalSince1970 == 1_445_412_480)
    }
}
