import Foundation
import OxydraCore
import OxydraMemory
import OxydraTesting
import Testing

@testable import OxydraGateway

/// Sessions can be titled, renamed, archived, unarchived and deleted over the gateway.
@Suite("Session management", .serialized)
struct SessionManagementTests {
    @Test func aSessionIsTitledFromItsFirstPromptAndCanBeRenamedArchivedAndDeleted() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Teardown.run { await fixture.stop() } }
        let (client, session) = try await fixture.connected()
        fixture.server.enqueue(chunks(["ok"]))
        client.send(
            turn(
                "t1", "Plan the garden layout for spring, with tomatoes and basil near the kitchen door please\nmore",
                request: "r1"))
        try await client.next(isType("turn_completed"))
        let titled = try #require(try await fixture.store.session(SessionID(session.rawValue)))
        #expect(titled.displayName == "Plan the garden layout for spring, with tomatoes and basil…")

        client.send(.renameSession(requestID: "n", session: String(session.rawValue.prefix(8)), displayName: "Garden"))
        let renamed = try #require(Self.updated(try await client.next(isType("session_updated"))))
        #expect(renamed.displayName == "Garden")

        client.send(.archiveSession(requestID: "a", session: session.rawValue, archived: true))
        let archived = try #require(Self.updated(try await client.next(isType("session_updated"))))
        #expect(archived.archived)
        #expect(try await fixture.store.listSessions(includeArchived: false, limit: 10).sessions.isEmpty)
        client.send(.archiveSession(requestID: "u", session: session.rawValue, archived: false))
        let back = try #require(Self.updated(try await client.next(isType("session_updated"))))
        #expect(!back.archived)

        // A session another client is on cannot go; its own client can delete it, with its memory.
        let (other, _) = try await fixture.connected()
        client.send(.deleteSession(requestID: "d1", session: session.rawValue))
        let refused = try #require(Self.failure(try await client.next(isType("error"))))
        #expect(refused.code == .busy)
        #expect(refused.message.contains("open in another client"))
        other.send(.createSession(requestID: "c", displayName: nil, agentName: nil))
        try await other.next(isType("session_created"))
        client.send(.deleteSession(requestID: "d2", session: session.rawValue))
        let deleted = try #require(Self.deleted(try await client.next(isType("session_deleted"))))
        #expect(deleted.sessionID.rawValue == session.rawValue)
        #expect(try await fixture.store.session(SessionID(session.rawValue)) == nil)
        #expect(try await fixture.store.restore(SessionID(session.rawValue)).isEmpty)

        client.send(.deleteSession(requestID: "d3", session: session.rawValue))
        let gone = try #require(Self.failure(try await client.next(isType("error"))))
        #expect(gone.code == .notFound)
    }

    static func updated(_ frame: ServerFrame) -> SessionInfo? {
        if case .sessionUpdated(_, let info) = frame { info } else { nil }
    }

    static func deleted(_ frame: ServerFrame) -> SessionRef? {
        if case .sessionDeleted(_, let ref) = frame { ref } else { nil }
    }

    static func failure(_ frame: ServerFrame) -> GatewayErrorInfo? {
        if case .error(let info) = frame { info } else { nil }
    }

    /// `[sessions] title_model`: after the first answer, that model names the session.
    @Test func aTitleModelNamesTheSessionAfterItsFirstAnswer() async throws {
        let fixture = try await GatewayFixture.start(titleModel: "gpt-4o")
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue([.text("Tomatoes by the door."), .text("**Title:** \"Spring garden plans.\"\n")])
        let (client, session) = try await fixture.connected(newSession: true)
        client.send(turn("t1", "what should I plant this spring, and where?"))
        try await client.next(isType("turn_completed"))
        var title: String?
        for _ in 0..<100 {
            title = try await fixture.store.session(session)?.displayName
            if title == "Spring garden plans" { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(title == "Spring garden plans")
        let request = try #require(fixture.server.requests.last?.json)
        #expect(request["model"] == "gpt-4o")
        #expect(fixture.server.requests.count == 2)
        // Only the first turn of a session asks.
        fixture.server.enqueue(.text("ok"))
        client.send(turn("t2", "thanks"))
        try await client.next(isType("turn_completed"))
        try await Task.sleep(for: .milliseconds(100))
        #expect(fixture.server.requests.count == 3)
    }

    @Test func modelTitlesArePlainText() {
        #expect(SessionHub.plainTitle("**Title:** \"Spring garden plans.\"") == "Spring garden plans")
        #expect(SessionHub.plainTitle("\n\n# Budget review\nmore") == "Budget review")
        #expect(SessionHub.plainTitle("evil\u{1B}[2J title") == "evil[2J title")
    }

    @Test func titlesAreShortAndClean() {
        #expect(SessionHub.title(from: "  fix   the\tbuild \nthen more") == "fix the build")
        #expect(SessionHub.title(from: "\n\n") == "untitled")
        let long = String(repeating: "word ", count: 30)
        let title = SessionHub.title(from: long)
        #expect(title.hasSuffix("…") && title.count <= 61)
        #expect(SessionHub.title(from: "\u{2028} café\u{00A0} au  lait\nmore") == "café au lait")
    }

    /// The byte-wise reading of an ASCII first line gives what the `Character` one gives.
    @Test func asciiTitlesMatchTheCharacterReading() {
        let pieces = [
            "a", "Z", "7", " ", "  ", "\t", "\n", "\r", "\r\n", "\u{0B}", "\u{0C}", "\u{1C}", "\u{01}", ".", "…",
        ]
        var generator = SystemRandomNumberGenerator()
        var compared = 0
        for _ in 0..<5_000 {
            let prompt = (0..<Int.random(in: 0...30, using: &generator)).map { _ in
                pieces[Int.random(in: 0..<pieces.count, using: &generator)]
            }.joined()
            let fast = SessionHub.asciiFirstLine(of: prompt)
            if let fast {
                compared += 1
                #expect(fast == SessionHub.characterFirstLine(of: prompt), "\(prompt.debugDescription)")
            } else {
                #expect(prompt.utf8.contains { $0 >= 0x80 }, "\(prompt.debugDescription)")
            }
        }
        #expect(compared > 1_000)
    }

    @Test func framesRoundTrip() throws {
        for frame: ClientFrame in [
            .renameSession(requestID: "1", session: "abc", displayName: "x"),
            .renameSession(requestID: "2", session: "abc", displayName: nil),
            .archiveSession(requestID: "3", session: "abc", archived: false),
            .deleteSession(requestID: "4", session: "abc"),
        ] {
            #expect(try ClientFrame(parsing: frame.text) == frame)
        }
        let info = SessionInfo(
            sessionID: "s", displayName: "t", createdAt: "2026-01-01T00:00:00Z", lastActiveAt: "2026-01-01T00:00:00Z",
            archived: true)
        for frame: ServerFrame in [
            .sessionUpdated(requestID: "1", session: info),
            .sessionDeleted(requestID: "2", session: SessionRef(userID: "alice", sessionID: "s")),
        ] {
            #expect(try ServerFrame(parsing: JSONWriter.text(frame.json)) == frame)
        }
    }
}
