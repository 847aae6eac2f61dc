import OxydraConfig
import OxydraCore
import OxydraProviders
import OxydraRuntime
import OxydraTesting
import OxydraTools
import Testing

@testable import OxydraMemory

extension ToolRegistry {
    func call(_ name: String, _ arguments: String, session: SessionID? = "s1") async throws -> ToolOutcome {
        try await run(
            ToolCall(id: "c", name: name, arguments: ToolArguments(parsing: arguments)),
            context: ToolContext(user: "alice", session: session),
            limit: .seconds(30))
    }
}

@Suite("Memory and scratchpad tools")
struct MemoryToolTests {
    @Test func saveSearchUpdateDelete() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let registry = ToolRegistry(MemoryTools.all(store: try fixture.open()))
        let saved = try JSONValue(
            parsing: try await registry.call(
                "memory_save", #"{"content":"Bob prefers tea over coffee","tags":["Bob","drinks"]}"#
            ).text)
        let noteID = try #require(saved["note_id"]?.stringValue)
        #expect(noteID.hasPrefix("note-") && saved["message"] == "Note saved successfully.")
        _ = try await registry.call("memory_save", #"{"content":"The office wifi password is on the fridge"}"#)

        let found = try JSONValue(
            parsing: try await registry.call("memory_search", #"{"query":"what does Bob drink","top_k":1}"#).text)
        #expect(found.arrayValue?.count == 1)
        #expect(found.arrayValue?.first?["note_id"] == .string(noteID))
        #expect(found.arrayValue?.first?["tags"] == ["bob", "drinks"])
        let tagged = try JSONValue(
            parsing: try await registry.call("memory_search", #"{"query":"office","tags":["drinks"]}"#).text)
        #expect(tagged.arrayValue?.allSatisfy { $0["note_id"] == .string(noteID) } == true)

        let updated = try await registry.call(
            "memory_update", #"{"note_id":"\#(noteID)","content":"Bob now prefers coffee","tags":["bob"]}"#)
        #expect(updated.text.contains("Note updated successfully."))
        let missing = try await registry.call("memory_update", #"{"note_id":"note-missing","content":"x"}"#)
        #expect(missing.text == "tool execution failed for memory_update: note `note-missing` not found")
        #expect(
            try await registry.call("memory_delete", #"{"note_id":"\#(noteID)"}"#).text.contains(
                "Note deleted successfully."))
        #expect(try await registry.call("memory_delete", #"{"note_id":"\#(noteID)"}"#).isError)
    }

    @Test func conversationSearchIsOptIn() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let store = try fixture.open()
        _ = try await store.append([.user("the meeting moved to thursday at noon")], to: "s1")
        let registry = ToolRegistry(MemoryTools.all(store: store))
        #expect(try await registry.call("memory_search", #"{"query":"meeting thursday"}"#).text == "[\n\n]")
        let withConversation = try JSONValue(
            parsing: try await registry.call(
                "memory_search", #"{"query":"meeting thursday","include_conversation":true}"#
            ).text)
        #expect(withConversation.arrayValue?.first?["source"] == "conversation")
    }

    @Test(arguments: [
        ("memory_search", #"{"query":"x","top_k":0}"#, "at /top_k: 0 is less than the minimum of 1"),
        ("memory_search", #"{"query":"x","top_k":21}"#, "at /top_k: 21 is greater than the maximum of 20"),
        ("memory_search", #"{"query":""}"#, "at /query: '' should be non-empty"),
        (
            "memory_save", #"{"content":"x","tags":["\#(String(repeating: "t", count: 65))"]}"#,
            "string of 65 characters is too long (maximum 64)"
        ),
        (
            "memory_save", #"{"content":"x","tags":[\#((0..<17).map { "\"t\($0)\"" }.joined(separator: ","))]}"#,
            "array has 17 items; at most 16 allowed"
        ),
        ("memory_update", #"{"content":"x"}"#, #""note_id" is a required property"#),
        ("memory_delete", #"{"note_id":""}"#, "at /note_id: '' should be non-empty"),
        ("scratchpad_write", #"{"items":[]}"#, "[] should have at least 1 item"),
        (
            "scratchpad_write", #"{"items":[\#((0..<33).map { "\"i\($0)\"" }.joined(separator: ","))]}"#,
            "array has 33 items; at most 32 allowed"
        ),
        (
            "scratchpad_write", #"{"items":["\#(String(repeating: "x", count: 241))"]}"#,
            "string of 241 characters is too long (maximum 240)"
        ),
        ("scratchpad_read", #"{"extra":1}"#, "Additional properties are not allowed ('extra' was unexpected)"),
    ])
    func validationErrors(_ tool: String, _ arguments: String, _ message: String) async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let outcome = try await ToolRegistry(MemoryTools.all(store: try fixture.open())).call(tool, arguments)
        #expect(outcome.isError)
        #expect(outcome.text.contains(message), "\(outcome.text)")
    }

    @Test func scratchpadIsPerSession() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let registry = ToolRegistry(MemoryTools.all(store: try fixture.open()))
        let written = try JSONValue(
            parsing: try await registry.call("scratchpad_write", #"{"items":[" plan A ","  ","step 2"]}"#).text)
        #expect(written["item_count"] == 2 && written["updated"] == true)
        let again = try JSONValue(
            parsing: try await registry.call("scratchpad_write", #"{"items":["plan A","step 2"]}"#).text)
        #expect(again["updated"] == false)
        let read = try JSONValue(parsing: try await registry.call("scratchpad_read", "{}").text)
        #expect(read["items"] == ["plan A", "step 2"] && read["session_id"] == "s1")
        #expect(
            try JSONValue(parsing: try await registry.call("scratchpad_read", "{}", session: "s2").text)["item_count"]
                == 0)
        #expect(
            try JSONValue(parsing: try await registry.call("scratchpad_clear", "{}").text)["message"]
                == "Scratchpad cleared successfully.")
        #expect(
            try JSONValue(parsing: try await registry.call("scratchpad_clear", "{}").text)["message"]
                == "Scratchpad was already empty.")
        #expect(
            try await registry.call("scratchpad_read", "{}", session: nil).text
                == "tool execution failed for scratchpad_read: no session is active")
    }
}

@Suite("Memory in the runtime")
struct RuntimeMemoryTests {
    @Test func recallInjectsNotesAndOldMessagesButNotTheContextItself() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let server = try await ScriptedModelServer.start()
        defer { Teardown.run { try? await server.shutdown() } }
        let store = try fixture.open()
        _ = try await store.saveNote("The user's cat is called Miso", tags: ["pets"])
        var config = AgentConfig()
        config.providers.registry["openai"]?.baseURL = server.baseURL
        let provider = try ProviderFactory.selected(config, catalog: .builtIn, environment: [:])
        let runtime = AgentRuntime(
            provider: provider, tools: ToolRegistry(MemoryTools.all(store: store)),
            model: try ModelSelection.resolve(config, catalog: .builtIn),
            settings: RuntimeSettings(config.runtime), systemPrompt: "You are a test.", store: store, recallLimit: 4)
        server.enqueue(.text("Miso!"))
        _ = try await runtime.run(session: "s1", history: [], input: .user("what is my cat called?"))
        let messages = try #require(server.requests.first?.json?["messages"]?.arrayValue)
        let recall = try #require(
            messages.first { $0["content"]?.stringValue?.hasPrefix("Retrieved memory snippets:") == true },
            "\(messages)")
        let text = try #require(recall["content"]?.stringValue)
        #expect(text.contains("The user's cat is called Miso"))
        #expect(!text.contains("what is my cat called"), "the current question was recalled as memory")
        #expect(messages.last?["content"] == "what is my cat called?")
    }

    @Test func restartRestoresTheHistoryTheRuntimeContinuesFrom() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let server = try await ScriptedModelServer.start()
        defer { Teardown.run { try? await server.shutdown() } }
        var config = AgentConfig()
        config.providers.registry["openai"]?.baseURL = server.baseURL
        func runtime(_ store: SQLiteMemoryStore) throws -> AgentRuntime {
            AgentRuntime(
                provider: try ProviderFactory.selected(config, catalog: .builtIn, environment: [:]),
                tools: ToolRegistry([]),
                model: try ModelSelection.resolve(config, catalog: .builtIn), settings: RuntimeSettings(config.runtime),
                systemPrompt: "You are a test.", store: store)
        }
        server.enqueue([.text("Nice to meet you, Ada."), .text("You are Ada.")])
        _ = try await runtime(try fixture.open()).run(session: "s", history: [], input: .user("I am Ada"))
        // A new process: everything comes back from the database.
        let reopened = try fixture.open()
        let history = try await reopened.restore("s").map(\.message)
        #expect(history == [.user("I am Ada"), .assistant("Nice to meet you, Ada.")])
        _ = try await runtime(reopened).run(session: "s", history: history, input: .user("who am I?"))
        let sent = try #require(server.requests.last?.json?["messages"]?.arrayValue)
        #expect(
            sent.dropFirst().map { $0["content"]?.stringValue } == ["I am Ada", "Nice to meet you, Ada.", "who am I?"])
        #expect(try await reopened.restore("s").count == 4)
    }

    @Test func remoteStoresAreRefusedClearly() {
        var config = MemoryConfig()
        config.remoteURL = "libsql://memory.example"
        #expect {
            try MemoryFactory.open(config, workspaceRoot: "/tmp", user: "alice")
        } throws: { error in
            "\(error)".hasPrefix(
                "not supported by this memory store: memory.remote_url is set, but a remote memory store is not supported yet"
            )
        }
    }
}
