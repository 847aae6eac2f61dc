import Foundation
import OxydraCore
import OxydraTesting
import Testing

/// Why the official SDKs cannot be run here; nil when they can.
let officialSDKsUnavailable: String? = {
    let check = Process()
    check.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    check.arguments = ["python3", "-c", "import openai, anthropic, google.genai"]
    check.standardOutput = FileHandle.nullDevice
    check.standardError = FileHandle.nullDevice
    do {
        try check.run()
        check.waitUntilExit()
    } catch {
        return "python3 cannot be started: \(error)"
    }
    return check.terminationStatus == 0
        ? nil : "the official SDKs are not installed (pip install openai anthropic google-genai)"
}()

/// The scripted model server is only a fair stand-in for the providers if real client code accepts
/// what it sends. Here the official Python SDKs (openai, anthropic, google-genai) talk to it —
/// streaming and not, text and tool calls, and errors — so a wire format only our own parser
/// accepts would fail.
@Suite(
    "Official SDKs against the scripted server", .serialized, .timeLimit(.minutes(2)),
    .enabled(
        if: Capability.shouldRun(officialSDKsUnavailable),
        "\(Capability.skipReason("official SDK tests", officialSDKsUnavailable))"))
struct OfficialSDKTests {
    @Test func theSDKsAreInstalled() {
        #expect(officialSDKsUnavailable == nil, "required but missing: \(officialSDKsUnavailable ?? "")")
    }

    /// Each step: what the server answers, and what the Python client does with it.
    static let script = #"""
        import json, sys
        base = sys.argv[1]
        out = {}
        def record(name, action):
            try:
                out[name] = action()
            except Exception as error:
                out[name] = {"error": type(error).__name__, "status": getattr(error, "status_code", None) or getattr(error, "code", None)}

        import openai
        oa = openai.OpenAI(base_url=base + "/v1", api_key="sk-test", max_retries=0)
        def chat_stream():
            text, calls = "", {}
            for chunk in oa.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True):
                if not chunk.choices:
                    continue
                delta = chunk.choices[0].delta
                text += delta.content or ""
                for call in delta.tool_calls or []:
                    entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                    entry["id"] = call.id or entry["id"]
                    if call.function:
                        entry["name"] = call.function.name or entry["name"]
                        entry["arguments"] += call.function.arguments or ""
            return {"text": text, "calls": list(calls.values())}
        def chat_plain():
            reply = oa.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
            message = reply.choices[0].message
            return {"text": message.content or "", "calls": [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments} for c in message.tool_calls or []], "usage": reply.usage.total_tokens}
        record("chat_stream_text", chat_stream)
        record("chat_stream_tools", chat_stream)
        record("chat_plain_text", chat_plain)
        record("chat_plain_tools", chat_plain)
        record("chat_error", chat_plain)

        def responses_stream():
            text, calls = "", []
            for event in oa.responses.create(model="m", input="hi", stream=True):
                if event.type == "response.output_text.delta":
                    text += event.delta
                if event.type == "response.output_item.done" and event.item.type == "function_call":
                    calls.append({"id": event.item.call_id, "name": event.item.name, "arguments": event.item.arguments})
            return {"text": text, "calls": calls}
        def responses_plain():
            reply = oa.responses.create(model="m", input="hi")
            calls = [{"id": i.call_id, "name": i.name, "arguments": i.arguments} for i in reply.output if i.type == "function_call"]
            return {"text": reply.output_text, "calls": calls}
        record("responses_stream_text", responses_stream)
        record("responses_stream_tools", responses_stream)
        record("responses_plain_text", responses_plain)

        import anthropic
        an = anthropic.Anthropic(base_url=base, api_key="sk-ant-test", max_retries=0)
        def messages_stream():
            with an.messages.stream(model="m", max_tokens=100, messages=[{"role": "user", "content": "hi"}]) as stream:
                text = "".join(stream.text_stream)
                final = stream.get_final_message()
            calls = [{"id": b.id, "name": b.name, "arguments": json.dumps(b.input, sort_keys=True)} for b in final.content if b.type == "tool_use"]
            return {"text": text, "calls": calls, "stop": final.stop_reason}
        def messages_plain():
            reply = an.messages.create(model="m", max_tokens=100, messages=[{"role": "user", "content": "hi"}])
            text = "".join(b.text for b in reply.content if b.type == "text")
            calls = [{"id": b.id, "name": b.name, "arguments": json.dumps(b.input, sort_keys=True)} for b in reply.content if b.type == "tool_use"]
            return {"text": text, "calls": calls, "stop": reply.stop_reason}
        record("messages_stream_text", messages_stream)
        record("messages_stream_tools", messages_stream)
        record("messages_plain_text", messages_plain)
        record("messages_error", messages_plain)

        from google import genai
        from google.genai import types
        ge = genai.Client(api_key="g-test", http_options=types.HttpOptions(base_url=base, api_version="v1beta"))
        def gemini_stream():
            text, calls = "", []
            for chunk in ge.models.generate_content_stream(model="m", contents="hi"):
                text += chunk.text or ""
                for call in chunk.function_calls or []:
                    calls.append({"id": call.id or "", "name": call.name, "arguments": json.dumps(call.args, sort_keys=True)})
            return {"text": text, "calls": calls}
        def gemini_plain():
            reply = ge.models.generate_content(model="m", contents="hi")
            calls = [{"id": c.id or "", "name": c.name, "arguments": json.dumps(c.args, sort_keys=True)} for c in reply.function_calls or []]
            return {"text": reply.text or "", "calls": calls}
        record("gemini_stream_text", gemini_stream)
        record("gemini_stream_tools", gemini_stream)
        record("gemini_plain_text", gemini_plain)
        record("gemini_error", gemini_plain)
        print(json.dumps(out))
        """#

    @Test func theOfficialClientsReadEveryReply() async throws {
        let server = try await ScriptedModelServer.start()
        defer { Teardown.run { try? await server.shutdown() } }
        let text = ScriptedReply.text("Hello from the scripted model")
        let tools = ScriptedReply.toolCalls([
            ScriptedToolCall(id: "call_1", name: "file_read", arguments: #"{"path": "/shared/a.txt"}"#),
            ScriptedToolCall(id: "call_2", name: "web_search", arguments: #"{"query": "swift"}"#, fragments: 1),
        ])
        // In the order the script makes its requests.
        server.enqueue([
            text, tools, text, tools, .status(429, message: "slow down"),
            text, tools, text,
            text, tools, text, .status(500, message: "overloaded"),
            text, tools, text, .status(400, message: "bad request"),
        ])
        let result = try await ChildProcess.runTool(
            "/usr/bin/env", ["python3", "-c", Self.script, server.baseURL],
            environment: [
                "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin",
                "HOME": ProcessInfo.processInfo.environment["HOME"] ?? "/tmp", "NO_PROXY": "*",
            ])
        try #require(result.exitCode == 0, "\(result.standardError)")
        let out = try JSONValue(parsing: result.standardOutput)
        let hello = "Hello from the scripted model"
        let file = #"{"path": "/shared/a.txt"}"#
        let search = #"{"query": "swift"}"#
        func calls(_ key: String) -> [[String]] {
            (out[key]?["calls"]?.arrayValue ?? []).map { call in
                ["id", "name", "arguments"].map { call[$0]?.stringValue ?? "" }
            }
        }
        func sameJSON(_ a: String, _ b: String) -> Bool {
            (try? JSONValue(parsing: a)) == (try? JSONValue(parsing: b))
        }
        for key in [
            "chat_stream_text", "chat_plain_text", "responses_stream_text", "responses_plain_text",
            "messages_stream_text", "messages_plain_text", "gemini_stream_text", "gemini_plain_text",
        ] {
            #expect(out[key]?["text"]?.stringValue == hello, "\(key): \(out[key]?.compactText ?? "missing")")
        }
        #expect(out["chat_plain_text"]?["usage"]?.intValue == 18)
        for key in [
            "chat_stream_tools", "chat_plain_tools", "responses_stream_tools", "messages_stream_tools",
            "gemini_stream_tools",
        ] {
            let found = calls(key)
            #expect(found.count == 2, "\(key): \(out[key]?.compactText ?? "missing")")
            guard found.count == 2 else { continue }
            #expect(found.map { $0[1] } == ["file_read", "web_search"], "\(key)")
            #expect(sameJSON(found[0][2], file) && sameJSON(found[1][2], search), "\(key): \(found)")
            if !key.hasPrefix("gemini") { #expect(found.map { $0[0] } == ["call_1", "call_2"], "\(key)") }
        }
        #expect(out["messages_stream_text"]?["stop"]?.stringValue == "end_turn")
        #expect(out["messages_stream_tools"]?["stop"]?.stringValue == "tool_use")
        #expect(out["chat_error"]?["error"]?.stringValue == "RateLimitError")
        #expect(out["chat_error"]?["status"]?.intValue == 429)
        #expect(out["messages_error"]?["error"]?.stringValue == "InternalServerError")
        #expect(out["gemini_error"]?["status"]?.intValue == 400, "\(out["gemini_error"]?.compactText ?? "")")
    }
}
