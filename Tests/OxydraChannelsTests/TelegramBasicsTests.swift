import OxydraChannels
import OxydraCore
import OxydraMemory
import OxydraTesting
import Testing

/// The pieces of the Telegram channel that stand on their own: the Bot API client against the
/// scripted Bot API, Markdown as Telegram HTML, splitting long answers, and the channel state in
/// the user's store.
@Suite("Telegram basics")
struct TelegramBasicsTests {
    @Test func theBotAPIClientSpeaksTheWireFormatAndReportsFaultsWithoutTheToken() async throws {
        let server = try await ScriptedTelegramServer.start()
        defer { Task { await server.shutdown() } }
        let api = TelegramBotAPI(baseURL: server.baseURL + "/", token: server.token)
        server.sendText(from: 42, text: "hello")
        let updates = try await api.call("getUpdates", ["offset": 0, "timeout": 1])
        #expect(updates.arrayValue?.first?["message"]?["text"] == "hello")
        let id = try #require(updates.arrayValue?.first?["update_id"]?.intValue)
        // The next poll acknowledges it: Telegram forgets it.
        let empty = try await api.call("getUpdates", ["offset": .integer(id + 1), "timeout": 0])
        #expect(empty == [])

        let sent = try await api.call(
            "sendMessage", ["chat_id": 42, "text": "<b>hi</b> &amp; bye", "parse_mode": "HTML"])
        #expect(sent["text"] == "hi & bye")
        do {
            _ = try await api.call("sendMessage", ["chat_id": 42, "text": "<script>x</script>", "parse_mode": "HTML"])
            Issue.record("Telegram's parser refuses unknown tags")
        } catch {
            #expect("\(error)".contains("400") && "\(error)".contains("can't parse entities"), "\(error)")
        }
        server.inject(.status(409, description: "Conflict: terminated by other getUpdates request"), into: "getUpdates")
        do {
            _ = try await api.call("getUpdates", ["offset": 0, "timeout": 0])
            Issue.record("expected a conflict")
        } catch {
            #expect("\(error)".contains("409") && !"\(error)".contains(server.token), "\(error)")
        }
        server.inject(.status(429, description: "Too Many Requests: retry after 3", retryAfter: 3), into: "sendMessage")
        do {
            _ = try await api.call("sendMessage", ["chat_id": 42, "text": "x"])
            Issue.record("expected 429")
        } catch {
            #expect(error == .retryAfter(3, "Too Many Requests: retry after 3"), "\(error)")
        }
        let wrong = TelegramBotAPI(baseURL: server.baseURL, token: "1:wrong")
        do {
            _ = try await wrong.call("getMe")
            Issue.record("a wrong token is refused")
        } catch {
            #expect(error == .refused(status: 401, "Unauthorized"), "\(error)")
        }
        let closed = TelegramBotAPI(baseURL: "http://127.0.0.1:1", token: server.token)
        do {
            _ = try await closed.call("getMe", timeout: .seconds(2))
            Issue.record("nothing listens there")
        } catch {
            #expect("\(error)".contains("unreachable") && !"\(error)".contains(server.token), "\(error)")
        }
    }

    @Test func markdownBecomesHTMLTelegramAcceptsAndHostileTextStaysText() throws {
        let samples = [
            "**bold** and *italic* and `code <b>` and ~~gone~~",
            "# Title\n- item with [a link](https://example.com/?a=1&b=\"2\")",
            "```swift\nlet x = a < b && c > d\n```\nafter",
            "<script>alert(1)</script> & <b>not bold</b> 3 < 4",
            "unbalanced **bold and `code` and * star and _under",
            "[bad link](javascript:alert(1)) and ``` unclosed fence <i>",
        ]
        for sample in samples {
            let html = TelegramText.html(sample)
            let parsed = try? TelegramHTML.parse(html).get()
            #expect(parsed != nil, "Telegram would refuse: \(html)")
        }
        #expect(TelegramText.html("**bold**") == "<b>bold</b>")
        #expect(TelegramText.html("<b>x</b>") == "&lt;b&gt;x&lt;/b&gt;")
        #expect(!TelegramText.html("[x](javascript:alert(1))").contains("href"))
        #expect(
            TelegramText.html("```py\nprint(1 < 2)\n```")
                == "<pre><code class=\"language-py\">print(1 &lt; 2)</code></pre>")
    }

    @Test func longAnswersSplitAtBoundariesAndCodeBlocksStayWhole() throws {
        let paragraph = String(repeating: "word ", count: 300)  // 1500 characters
        let text = [paragraph, paragraph, paragraph, paragraph].joined(separator: "\n\n")
        let pieces = TelegramText.split(text)
        #expect(pieces.count == 2 && pieces.allSatisfy { $0.utf16.count <= TelegramText.limit })
        #expect(pieces.joined(separator: "\n\n").filter { !$0.isWhitespace } == text.filter { !$0.isWhitespace })
        let code = "```\n" + (0..<600).map { "line \($0)" }.joined(separator: "\n") + "\n```"
        let cut = TelegramText.split(code)
        #expect(cut.count >= 2)
        for piece in cut {
            #expect(piece.hasPrefix("```") && piece.hasSuffix("```"), "every piece is a whole code block")
            #expect((try? TelegramHTML.parse(TelegramText.html(piece)).get()) != nil)
        }
        #expect(TelegramText.split("short") == ["short"])
    }

    @Test func updatesAndTheOffsetAreStoredTogetherAndOnce() async throws {
        let directory = try TemporaryDirectory(prefix: "oxydra-channel")
        defer { directory.remove() }
        let store = try SQLiteMemoryStore(path: directory.path + "/memory.db", user: "alice")
        #expect(try await store.channelOffset("telegram") == nil)
        try await store.recordUpdates(
            channel: "telegram", updates: [ChannelUpdate(id: 7, payload: "{}"), ChannelUpdate(id: 8, payload: "{}")],
            nextOffset: 9)
        // Delivered again (at least once): stored once.
        try await store.recordUpdates(
            channel: "telegram", updates: [ChannelUpdate(id: 8, payload: #"{"again":true}"#)], nextOffset: 9)
        #expect(try await store.channelOffset("telegram") == 9)
        #expect(try await store.pendingUpdates("telegram").map(\.id) == [7, 8])
        #expect(try await store.pendingUpdates("telegram").last?.payload == "{}")
        try await store.markUpdate(
            channel: "telegram", id: 7, state: "turn_started", turnID: "tg-7", values: ["started:7": "s:3"])
        try await store.markUpdate(channel: "telegram", id: 8, state: "done", turnID: nil, values: [:])
        let pending = try await store.pendingUpdates("telegram")
        #expect(pending.map(\.id) == [7] && pending.first?.turnID == "tg-7" && pending.first?.state == "turn_started")
        #expect(try await store.channelValue(channel: "telegram", key: "started:7") == "s:3")
        // Done, and what the turn kept forgotten, together.
        try await store.markUpdate(channel: "telegram", id: 7, state: "done", turnID: nil, values: ["started:7": nil])
        #expect(try await store.pendingUpdates("telegram").isEmpty)
        #expect(try await store.channelValue(channel: "telegram", key: "started:7") == nil)
        try await store.setChannelValue(channel: "telegram", key: "session:42", value: "s1")
        #expect(try await store.channelValue(channel: "telegram", key: "session:42") == "s1")
        try await store.setChannelValue(channel: "telegram", key: "session:42", value: nil)
        #expect(try await store.channelValue(channel: "telegram", key: "session:42") == nil)
    }
}
