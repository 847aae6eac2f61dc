import OxydraClient
import OxydraCore
import OxydraTesting
import Testing

@testable import OxydraTUI

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Terminal UI pieces")
struct TUITests {
    @Test func keysDecodeAcrossSplitReads() {
        var decoder = KeyDecoder()
        #expect(decoder.decode(Array("hé".utf8)) == [.character("h"), .character("é")])
        // An arrow key split in the middle, then Alt-Enter, Ctrl-C, a split UTF-8 character.
        #expect(decoder.decode([0x1B, 0x5B]) == [])
        #expect(decoder.decode([0x41, 0x1B, 0x0D, 0x03]) == [.up, .newline, .control("c")])
        let snowman = Array("☃".utf8)
        #expect(decoder.decode(snowman.prefix(2)) == [])
        #expect(decoder.decode(snowman.suffix(1)) == [.character("☃")])
        #expect(
            decoder.decode(Array("\u{1B}[5~\u{1B}[3~\u{1B}OH\r\u{7F}".utf8)) == [
                .pageUp, .delete, .home, .enter, .backspace,
            ])
        #expect(decoder.decode([0x1B]) == [.escape])
    }

    @Test func bracketedPasteIsOneKeyEvenWithNewlinesAndEscapes() {
        var decoder = KeyDecoder()
        let keys = decoder.decode(Array("\u{1B}[200~line one\nline two\u{1B}[201~x".utf8))
        #expect(keys == [.paste("line one\nline two"), .character("x")])
    }

    /// Terminals send CR, LF or CR LF for the line breaks of a paste: all of them stay line breaks.
    @Test func pastedLineBreaksSurviveWhateverTheTerminalSends() {
        #expect(TextLayout.pasted("one\rtwo\r\rfour") == "one\ntwo\n\nfour")
        #expect(TextLayout.pasted("one\r\ntwo\n\nfour\r\n") == "one\ntwo\n\nfour\n")
        #expect(TextLayout.pasted("tab\there\u{1B}[31m red") == "tab    here red")
    }

    @Test func untrustedTextCannotDriveTheTerminal() {
        let hostile = "ok\u{1B}]0;pwned title\u{07} \u{1B}[2J\u{1B}[31mred\u{1B}[0m\u{9B}31m\u{00}\tend\r\nnext"
        #expect(TextLayout.sanitize(hostile) == "ok red    end\nnext")
    }

    @Test func wrappingRespectsWidthsAndWords() {
        #expect(TextLayout.wrap("the quick brown fox", width: 10) == ["the quick", "brown fox"])
        #expect(TextLayout.wrap("abcdefghij", width: 4) == ["abcd", "efgh", "ij"])
        #expect(TextLayout.wrap("漢字漢字", width: 5) == ["漢字", "漢字"])
        #expect(TextLayout.wrap("a\n\nb", width: 5) == ["a", "", "b"])
        #expect(TextLayout.width(of: "e\u{301}") == 1)
        #expect(TextLayout.truncate("abcdefgh", width: 5) == "abcd…")
    }

    @Test func theEditorHandlesLinesCursorAndHistory() {
        var editor = InputEditor()
        editor.insert("hello")
        editor.insertNewline()
        editor.insert("world")
        #expect(editor.text == "hello\nworld")
        editor.up()
        editor.end()
        editor.backspace()
        #expect(editor.text == "hell\nworld")
        editor.down()
        editor.home()
        editor.backspace()
        #expect(editor.text == "hellworld")
        #expect(editor.submit() == "hellworld")
        editor.insert("second")
        _ = editor.submit()
        editor.insert("draft")
        editor.up()
        #expect(editor.text == "second")
        editor.up()
        #expect(editor.text == "hellworld")
        editor.down()
        editor.down()
        #expect(editor.text == "draft")
        editor.deleteWordBackward()
        #expect(editor.isEmpty)
    }

    static let ref = SessionRef(userID: "alice", sessionID: "runtime-alice")

    @Test func chatStateFollowsATurnAndAReplay() {
        var state = ChatState(user: "alice", color: false)
        state.apply(.helloAck(requestID: "h", protocolVersion: 1, session: Self.ref, activeTurn: nil))
        #expect(state.connection == .connected)
        // A replayed answer from before this client connected is labelled and not counted.
        let old = TurnHeader(requestID: "r0", session: Self.ref, turn: TurnRef(turnID: "old", state: .completed))
        state.apply(.turnCompleted(old, TurnCompletion(message: "earlier answer", costUSD: 1)))
        #expect(state.turnsCompleted == 0)
        #expect(state.entries.suffix(2).map(\.text) == ["last answer in this session:", "earlier answer"])

        state.activeTurn = "t1"
        let header = TurnHeader(requestID: "r1", session: Self.ref, turn: TurnRef(turnID: "t1", state: .running))
        state.apply(.turnStarted(header))
        state.apply(.assistantDelta(header, delta: "Hel"))
        state.apply(.toolCall(header, ToolCallInfo(callID: "c", name: "file_read", summary: "file_read(path=/a)")))
        state.apply(.assistantDelta(header, delta: "lo\u{1B}[2J"))
        state.apply(.turnCompleted(header, TurnCompletion(message: "Hello", costUSD: 0.5)))
        #expect(!state.isStreaming)
        #expect(state.turnsCompleted == 1)
        #expect(state.totalCost == 0.5)
        #expect(state.entries.suffix(3).map(\.text) == ["Hel", "⚙ file_read(path=/a)", "lo"])
    }

    @Test func anApprovalRequestIsShownWithItsKeysAndItsOutcome() {
        var state = ChatState(user: "alice", color: false)
        state.apply(.helloAck(requestID: "h", protocolVersion: 1, session: Self.ref, activeTurn: nil))
        let header = TurnHeader(requestID: "r1", session: Self.ref, turn: TurnRef(turnID: "t1", state: .running))
        state.apply(.turnStarted(header))
        let request = ApprovalRequest(
            approvalID: "ap_1", callID: "c1", tool: "shell_exec", summary: "shell_exec(command=rm -rf build)",
            risk: .medium, reason: "runs `rm` commands", details: "{\"command\":\"rm -rf build\u{1B}[2J\"}",
            expiresAt: "2026-12-03T10:00:00Z", kindLabel: "`rm` commands")
        state.apply(.approvalRequest(header, request))
        state.apply(.approvalRequest(header, request))  // offered again (a reconnect): shown once
        #expect(state.approvals.map(\.approvalID) == ["ap_1"])
        let prompt = state.entries.last?.text ?? ""
        #expect(prompt.hasPrefix("⚠ approval needed: shell_exec(command=rm -rf build)"))
        #expect(prompt.contains("y allow once · n deny · a allow `rm` commands for this session"))
        #expect(!prompt.contains("\u{1B}"), "hostile arguments cannot drive the terminal")
        #expect(TUIApp.approvalKeys["a"]! == (.allow, .session) && TUIApp.approvalKeys["n"]! == (.deny, .once))
        state.apply(
            .approvalResolved(
                header,
                ApprovalResolution(
                    approvalID: "ap_1", decision: .allow, scope: .session, reason: .answered, answeredBy: "web#2")))
        #expect(state.approvals.isEmpty)
        #expect(state.entries.last?.text == "✓ allowed (session) by web#2: shell_exec(command=rm -rf build)")
        // Another session's request is not this client's to answer.
        let other = TurnHeader(
            requestID: "r2", session: SessionRef(userID: "alice", sessionID: "other"),
            turn: TurnRef(turnID: "t9", state: .running))
        state.apply(.approvalRequest(other, request))
        #expect(state.approvals.isEmpty)
    }

    @Test func landingOnASessionShowsItsHistoryInPlaceOfTheReplay() {
        var state = ChatState(user: "alice", color: false)
        state.apply(.helloAck(requestID: "h", protocolVersion: 1, session: Self.ref, activeTurn: nil))
        #expect(state.needsHistory)
        state.needsHistory = false
        state.historyPending = Self.ref.sessionID
        let old = TurnHeader(requestID: "r0", session: Self.ref, turn: TurnRef(turnID: "old", state: .completed))
        state.apply(.turnCompleted(old, TurnCompletion(message: "answer two")))
        state.apply(
            .history(
                requestID: "g", session: Self.ref,
                entries: [
                    HistoryEntry(role: "user", text: "question one"),
                    HistoryEntry(role: "assistant", text: "", toolNames: ["file_read"]),
                    HistoryEntry(role: "tool", text: "3 lines", toolNames: ["file_read"]),
                    HistoryEntry(role: "assistant", text: "answer two"),
                ], truncated: false))
        #expect(
            state.entries.map(\.text) == [
                "connected to session \(Self.ref.sessionID)", "earlier in this session:", "question one",
                "⚙ file_read", "  ↳ file_read: 3 lines", "answer two",
            ])
        #expect(state.historyPending == nil)
        // A history nobody asked for (or for another session) changes nothing.
        let before = state.entries
        state.apply(
            .history(
                requestID: "x", session: Self.ref, entries: [HistoryEntry(role: "user", text: "?")], truncated: false))
        #expect(state.entries == before)
    }

    @Test func theLayoutFitsAPlainTerminalWithoutColour() {
        var state = ChatState(user: "alice", color: false)
        state.apply(.helloAck(requestID: "h", protocolVersion: 1, session: Self.ref, activeTurn: nil))
        state.append(.user, "question")
        state.append(.assistant, String(repeating: "word ", count: 40))
        state.editor.insert("typing")
        let (rows, cursor) = Renderer.layout(state, columns: 80, rows: 24)
        #expect(rows.count == 24)
        let status = rows[22]
        #expect(status.contains("● connected │ session runtime-alice │ idle"))
        #expect(rows[23] == "› typing")
        #expect(cursor == (23, 8))
        #expect(rows.contains("you: question"))
        // Without colour only the status bar is styled (reverse video).
        #expect(rows.enumerated().allSatisfy { $0.offset == 22 || !$0.element.contains("\u{1B}[") })
        #expect(rows.allSatisfy { TextLayout.width(of: TextLayout.sanitize($0)) <= 80 })
    }

    @Test func redrawsOnlyTheRowsThatChanged() {
        var state = ChatState(user: "alice", color: true)
        var renderer = Renderer()
        let first = renderer.draw(state, columns: 40, rows: 10)
        #expect(first.contains("\u{1B}[2J"))
        state.editor.insert("x")
        let second = renderer.draw(state, columns: 40, rows: 10)
        #expect(!second.contains("\u{1B}[2J"))
        #expect(second.contains("\u{1B}[10;1H› x"))
        #expect(!second.contains("\u{1B}[1;1H"))
    }
}

@Suite("Terminal text filter")
struct TerminalTextTests {
    /// A sequence split across streamed deltas is removed whole, never shown half.
    @Test func sequencesSplitAcrossPiecesAreRemovedWhole() {
        let text = "a\u{1B}]0;pwned title\u{07}b\u{1B}[2Jc\u{1B}]52;c;ZXZpbA==\u{1B}\\d\u{1B}7e"
        for split in 0...text.unicodeScalars.count {
            let scalars = Array(text.unicodeScalars)
            var first = ""
            var second = ""
            first.unicodeScalars.append(contentsOf: scalars[..<split])
            second.unicodeScalars.append(contentsOf: scalars[split...])
            var filter = TerminalText.Filter()
            #expect(filter.feed(first) + filter.feed(second) == "abcde", "split at \(split)")
        }
    }
}

@Suite("Streamed answers on screen")
struct StreamedAnswerTests {
    @Test func aSequenceSplitAcrossDeltasNeverReachesTheScreen() {
        var state = ChatState(user: "alice", color: false)
        let ref = SessionRef(userID: "alice", sessionID: "s")
        state.apply(.helloAck(requestID: "h", protocolVersion: 1, session: ref, activeTurn: nil))
        let header = TurnHeader(requestID: "r", session: ref, turn: TurnRef(turnID: "t", state: .running))
        for delta in ["safe\u{1B}]0;pw", "ned title\u{07} te", "xt\u{1B}", "[2J end"] {
            state.apply(.assistantDelta(header, delta: delta))
        }
        #expect(state.entries.last?.text == "safe text end")
    }
}

@Suite("Prompt history")
struct PromptHistoryTests {
    @Test func promptsSurviveRunsWithTheirLineBreaksPrivately() throws {
        let directory = try TemporaryDirectory(prefix: "oxydra-history")
        defer { directory.remove() }
        let history = PromptHistory(path: directory.path + "/state/oxydra/prompt_history")
        history.append("first")
        history.append("two\nlines \"quoted\"")
        #expect(history.load() == ["first", "two\nlines \"quoted\""])
        var info = stat()
        #expect(stat(history.path, &info) == 0 && info.st_mode & 0o777 == 0o600)
        var editor = InputEditor(history: history.load())
        editor.up()
        #expect(editor.text == "two\nlines \"quoted\"")
        #expect(
            PromptHistory.standard(environment: ["HOME": "/home/a"])?.path
                == "/home/a/.local/state/oxydra/prompt_history")
        #expect(PromptHistory.standard(environment: ["HOME": "/home/a", "OXYDRA_TUI_HISTORY_FILE": ""]) == nil)
    }
}
