import OxydraConfig
import OxydraCore
import OxydraRuntime
import OxydraTesting
import OxydraTools
import Synchronization
import Testing

/// A store that records which writes asked for a sync, in order.
actor SyncRecordingStore: EphemeralBackedStore {
    let inner = EphemeralMemoryStore()
    private(set) var writes: [String] = []

    private func record(_ kind: String, _ messages: [Message]) {
        writes += messages.map { "\(kind) \($0.role.rawValue)" }
    }

    func append(_ messages: [Message], to session: SessionID) async throws(MemoryError) -> [StoredMessage] {
        record("synced", messages)
        return try await inner.append(messages, to: session)
    }
    func appendWithoutSync(_ messages: [Message], to session: SessionID) async throws(MemoryError) -> [StoredMessage] {
        record("unsynced", messages)
        return try await inner.append(messages, to: session)
    }
    func sync(_ session: SessionID) async throws(MemoryError) { writes.append("sync") }
}

/// A turn pays one sync per answer: the user's message and tool results ride on the next synced
/// write, and a turn that ends before it syncs on its way out.
@Suite("Turn syncs")
struct TurnSyncTests {
    func runtime(_ server: ScriptedModelServer, store: SyncRecordingStore) throws -> AgentRuntime {
        var config = AgentConfig()
        config.providers.registry["openai"]?.baseURL = server.baseURL
        config.selection.model = "gpt-4o-mini"
        config.reliability.maxAttempts = 1
        let log = ToolLog()
        return try makeRuntime(
            config, store: store,
            tools: ToolRegistry([
                TimedTool(name: "slow_read", safety: .readOnly, log: log),
                TimedTool(name: "slow_write", safety: .sideEffecting, log: log),
            ]))
    }

    /// One turn (prompt "go") on these scripted replies: the store's writes in order, and the
    /// answer's text (nil when the turn failed).
    func turn(_ replies: ScriptedReply...) async throws -> (writes: [String], answer: String?) {
        let server = try await ScriptedModelServer.start()
        defer { Teardown.run { try? await server.shutdown() } }
        for reply in replies { server.enqueue(reply) }
        let store = SyncRecordingStore()
        let result = try? await runtime(server, store: store).run(session: "s", history: [], input: .user("go"))
        return (await store.writes, result?.answer.content)
    }

    @Test func theUsersMessageReachesTheDiskWithTheAnswer() async throws {
        let (writes, answer) = try await turn(.text("hello"))
        #expect(answer == "hello")
        #expect(writes == ["unsynced user", "synced assistant"])
    }

    @Test func toolResultsRideOnTheNextAnswer() async throws {
        let (writes, answer) = try await turn(.toolCalls([call("c1", "no_such_tool", "{}")]), .text("done"))
        #expect(answer == "done")
        #expect(writes == ["unsynced user", "synced assistant", "unsynced tool", "synced assistant"])
    }

    /// The provider fails before any answer: the user's message is synced as the turn ends.
    @Test func aFailedTurnSyncsWhatItWroteWithoutASync() async throws {
        let (writes, answer) = try await turn(.status(400, message: "bad request"))
        #expect(answer == nil)
        #expect(writes == ["unsynced user", "sync"])
    }

    /// Cancelled while the model streams: the partial answer is a synced write, so nothing more.
    @Test func aCancelledTurnEndsSynced() async throws {
        let server = try await ScriptedModelServer.start()
        defer { Teardown.run { try? await server.shutdown() } }
        var slow = ScriptedReply.text("one two three four five six seven eight nine ten")
        slow.chunkDelay = .milliseconds(200)
        server.enqueue(slow)
        let store = SyncRecordingStore()
        let runtime = try runtime(server, store: store)
        let turn = Task { try await runtime.run(session: "s", history: [], input: .user("hi")) }
        while try await store.inner.restore("s").isEmpty { try await Task.sleep(for: .milliseconds(5)) }
        try await Task.sleep(for: .milliseconds(500))
        turn.cancel()
        _ = try? await turn.value
        #expect(await store.writes == ["unsynced user", "synced assistant"])
    }

    // Calls that only read act on nothing: their answer rides on the next synced write like the
    // user's message; an answer with a call that may act is synced before that call runs.

    @Test func anAnswerThatOnlyReadsIsNotSyncedOnItsOwn() async throws {
        let (writes, answer) = try await turn(
            .toolCalls([call("c1", "slow_read", #"{"millis":1}"#)]), .text("done"))
        #expect(answer == "done")
        #expect(writes == ["unsynced user", "unsynced assistant", "unsynced tool", "synced assistant"])
    }

    @Test func anAnswerWithACallThatMayActIsSyncedBeforeItRuns() async throws {
        let (writes, answer) = try await turn(
            .toolCalls([call("c1", "slow_read", #"{"millis":1}"#), call("c2", "slow_write", #"{"millis":1}"#)]),
            .text("done"))
        #expect(answer == "done")
        #expect(
            writes == [
                "unsynced user", "synced assistant", "unsynced tool", "unsynced tool", "synced assistant",
            ])
    }

    /// A turn that fails after a reading answer still ends synced.
    @Test func aTurnThatFailsAfterAReadingAnswerSyncsOnItsWayOut() async throws {
        let (writes, answer) = try await turn(
            .toolCalls([call("c1", "slow_read", #"{"millis":1}"#)]), .status(400, message: "bad request"))
        #expect(answer == nil)
        #expect(writes == ["unsynced user", "unsynced assistant", "unsynced tool", "sync"])
    }
}
