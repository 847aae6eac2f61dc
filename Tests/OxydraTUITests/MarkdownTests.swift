import Foundation
import OxydraClient
import OxydraCore
import OxydraTesting
import Testing

@testable import OxydraTUI

@Suite("Markdown on the terminal")
struct MarkdownTests {
    static func plain(_ text: String, width: Int = 40) -> [String] {
        var markdown = Markdown(width: width, color: false)
        return markdown.render(text)
    }

    @Test func blocksWithoutColourStayReadable() {
        let text = """
            # Title
            Some **bold**, *italic*, `code` and [a link](https://example.com).
            ## Part
            - one
            - two with a long line that has to wrap somewhere
              - nested
            1. first
            - [x] done
            > quoted *text*
            ---
            """
        #expect(
            Self.plain(text) == [
                "Title",
                "═════",
                "Some bold, italic, `code` and a link",
                "(https://example.com).",
                "Part",
                "────",
                "• one",
                "• two with a long line that has to wrap",
                "  somewhere",
                "  ◦ nested",
                "1. first",
                "• ☑ done",
                "│ quoted text",
                String(repeating: "─", count: 40),
            ])
    }

    @Test func emphasisMarkersThatCloseNothingStayText() {
        #expect(
            Self.plain("2 * 3 * 4 and snake_case_name and ***both***") == ["2 * 3 * 4 and snake_case_name and both"])
        #expect(Self.plain("an `unclosed code span") == ["an `unclosed code span"])
        #expect(Self.plain(#"escaped \*stars\*"#) == ["escaped *stars*"])
    }

    @Test func colourStylesTheInlineParts() {
        var markdown = Markdown(width: 80, color: true)
        let line = markdown.render("**bold** and `code`")[0]
        #expect(line == "\u{1B}[0;1mbold\u{1B}[0m and \u{1B}[0;33mcode\u{1B}[0m")
    }

    @Test func fencedCodeIsHighlightedAndWrappedHard() {
        let text = """
            ```swift
            func add(_ a: Int) -> Int { return a + 1 } // adds one
            ```
            """
        #expect(
            Self.plain(text, width: 30) == [
                "╭─ swift",
                "│ func add(_ a: Int) -> Int { ",
                "│ return a + 1 } // adds one",
                "╰─",
            ])
        var markdown = Markdown(width: 80, color: true)
        let lines = markdown.render(text)
        #expect(lines[1].contains("\u{1B}[0;35mfunc\u{1B}[0m"))
        #expect(lines[1].contains("\u{1B}[0;36mInt\u{1B}[0m"))
        #expect(lines[1].contains("\u{1B}[0;3;90m// adds one\u{1B}[0m"))
        #expect(lines[1].contains("\u{1B}[0;33m1\u{1B}[0m"))
        // Markdown inside a code block is code.
        #expect(Self.plain("```\n# not a heading\n**x**\n```") == ["╭─", "│ # not a heading", "│ **x**", "╰─"])
    }

    @Test func highlighterCarriesBlockCommentsAndStringsAcrossLines() {
        var python = Highlighter(language: "python")
        _ = python.highlight("s = '''start")
        #expect(python.highlight("middle") == [Span("middle", Highlighter.string)])
        #expect(python.highlight("end''' # note").last == Span("# note", Highlighter.comment))
        var c = Highlighter(language: "c")
        _ = c.highlight("int x; /* open")
        #expect(c.highlight("still */ return").first == Span("still */", Highlighter.comment))
        var shell = Highlighter(language: "bash")
        #expect(shell.highlight("echo $HOME # hi").contains(Span("$HOME", Highlighter.variable)))
        var unknown = Highlighter(language: "brainfuck")
        #expect(unknown.highlight("+++.") == [Span("+++.")])
    }

    @Test func tablesAreBoxedAlignedAndFitTheWidth() {
        let text = """
            | Name | Qty | Note |
            |:-----|----:|:----:|
            | apple | 3 | red |
            | kiwi | 12 | `x|y` |
            """
        #expect(
            Self.plain(text) == [
                "┌───────┬─────┬───────┐",
                "│ Name  │ Qty │ Note  │",
                "├───────┼─────┼───────┤",
                "│ apple │   3 │  red  │",
                "│ kiwi  │  12 │ `x|y` │",
                "└───────┴─────┴───────┘",
            ])
        // Too wide: the widest column wraps inside its cell.
        let wide = "| a | b |\n|---|---|\n| short | " + String(repeating: "long ", count: 12) + "|"
        let lines = Self.plain(wide, width: 30)
        #expect(lines.allSatisfy { TextLayout.width(of: $0) <= 30 })
        #expect(lines.count > 5)
        // Far too narrow for columns: each row becomes `header: value` lines.
        let narrow = Self.plain("| k | v | w | x |\n|---|---|---|---|\n| 1 | 2 | 3 | 4 |", width: 12)
        #expect(narrow == ["k: 1", "v: 2", "w: 3", "x: 4"])
    }

    /// A streamed answer rendered delta by delta ends exactly as the whole text rendered at once,
    /// wherever the deltas split it.
    @Test func streamingRendersTheSameAsTheWholeText() {
        let text = """
            # Plan
            Here is **some** text.

            | a | b |
            |---|---|
            | 1 | 2 |
            After the table.
            ```python
            def f():
                return '''multi
            line'''
            ```
            - done
            """
        let whole = Self.plain(text)
        for step in [1, 3, 7, 16] {
            var markdown = Markdown(width: 40, color: false)
            var shown = ""
            var last: [String] = []
            for character in text {
                shown.append(character)
                if shown.count % step == 0 { last = markdown.render(shown) }
            }
            last = markdown.render(shown)
            #expect(last == whole, "deltas of \(step) characters")
        }
        // Text that does not extend the previous one starts over.
        var markdown = Markdown(width: 40, color: false)
        _ = markdown.render("# one\nabc\n")
        #expect(markdown.render("x") == ["x"])
    }
}

@Suite("The chat screen")
struct ChatScreenTests {
    static let ref = SessionRef(userID: "alice", sessionID: "runtime-alice")
    static let header = TurnHeader(requestID: "r", session: ref, turn: TurnRef(turnID: "t", state: .running))

    /// A plain-text state on the session with a turn running.
    static func connected() -> ChatState {
        var state = ChatState(user: "alice", color: false)
        state.apply(.helloAck(requestID: "h", protocolVersion: 1, session: ref, activeTurn: nil))
        state.activeTurn = "t"
        return state
    }

    /// A conversation of about 200 screen lines.
    static func conversation(color: Bool) -> ChatState {
        var state = ChatState(user: "alice", color: color)
        state.apply(.helloAck(requestID: "h", protocolVersion: 1, session: ref, activeTurn: nil))
        for turn in 0..<10 {
            state.append(.user, "question \(turn)")
            state.append(
                .assistant,
                "## Answer \(turn)\nSome **text** with `code`.\n```swift\nlet x = \(turn)\n```\n| a | b |\n|---|---|\n| 1 | 2 |\n"
                    + (0..<8).map { "- point \($0) of the answer" }.joined(separator: "\n"))
        }
        return state
    }

    @Test func aDeltaRewritesOnlyTheRowsItChanges() {
        var state = Self.conversation(color: true)
        var renderer = Renderer()
        _ = renderer.draw(state, columns: 80, rows: 24)
        state.activeTurn = "t"
        state.apply(.turnStarted(Self.header))
        state.apply(.assistantDelta(Self.header, delta: "The answer starts"))
        _ = renderer.draw(state, columns: 80, rows: 24)
        var maxRows = 0
        for word in ["here", "and", "goes", "on"] {
            state.apply(.assistantDelta(Self.header, delta: " " + word))
            _ = renderer.draw(state, columns: 80, rows: 24)
            maxRows = max(maxRows, renderer.lastRowsWritten)
        }
        // The growing line and the status bar (its elapsed time), nothing else.
        #expect(maxRows <= 2)
        // A new line scrolls the history instead of rewriting it.
        state.apply(.assistantDelta(Self.header, delta: "\nsecond line"))
        let output = renderer.draw(state, columns: 80, rows: 24)
        #expect(renderer.lastScrolled == 1)
        #expect(renderer.lastRowsWritten <= 3)
        #expect(output.contains("\u{1B}[1;22r"))
    }

    @Test func scrollingTheTerminalGivesTheSameScreenAsRewritingIt() {
        // Replays what draw() sends on a model screen, checking it against the layout.
        var state = Self.conversation(color: false)
        var renderer = Renderer()
        var screen = Array(repeating: "", count: 12)
        func apply(_ output: String) {
            var rest = Substring(output)
            var top = 1
            var bottom = 12
            var row = 1
            var text = ""
            while let escape = rest.firstIndex(of: "\u{1B}") {
                text += rest[..<escape]
                rest = rest[rest.index(after: escape)...]
                guard rest.first == "[" else { continue }
                let body = rest.dropFirst().prefix { !$0.isLetter }
                let final = rest.dropFirst(body.count + 1).first!
                rest = rest.dropFirst(body.count + 2)
                let numbers = body.split(separator: ";").compactMap { Int($0.filter(\.isNumber)) }
                switch final {
                case "r": (top, bottom) = numbers.count == 2 ? (numbers[0], numbers[1]) : (1, 12)
                case "S":
                    for _ in 0..<(numbers.first ?? 1) {
                        screen.remove(at: top - 1)
                        screen.insert("", at: bottom - 1)
                    }
                case "J": screen = Array(repeating: "", count: 12)
                case "H":
                    row = numbers.first ?? 1
                    text = ""
                case "K": screen[row - 1] = text
                default: break
                }
            }
        }
        apply(renderer.draw(state, columns: 50, rows: 12))
        state.activeTurn = "t"
        var text = ""
        for piece in ["Line one", " more\nline two\n", "line three\nline four", "\n\n| a |\n", "|---|\n| b |\nend"] {
            text += piece
            state.apply(.assistantDelta(Self.header, delta: piece))
            apply(renderer.draw(state, columns: 50, rows: 12))
            let expected = Renderer.layout(state, columns: 50, rows: 12).rows
            #expect(screen.prefix(10) == expected.prefix(10), "after \(text.debugDescription)")
        }
    }

    @Test func toolCallsAreOneLineThatExpands() {
        var state = Self.connected()
        state.apply(
            .toolCall(
                Self.header,
                ToolCallInfo(
                    callID: "c1", name: "shell_exec", summary: "shell_exec(command=ls)", arguments: #"{"command":"ls"}"#
                )
            ))
        let start = ContinuousClock.now
        var renderer = Renderer()
        var rows = renderer.layout(state, columns: 60, rows: 10, now: start + .milliseconds(2300)).rows
        #expect(
            rows.contains {
                $0.hasPrefix("▸ ⠹ shell_exec(command=ls) · 2.3 s") || $0.contains("shell_exec(command=ls) · 2.")
            })
        state.apply(
            .toolResult(
                Self.header,
                ToolResultInfo(
                    callID: "c1", name: "shell_exec", isError: false, durationMilliseconds: 1234, summary: "a.txt",
                    output: "a.txt\nb.txt\n")))
        rows = renderer.layout(state, columns: 60, rows: 10).rows
        #expect(rows.contains("▸ ✓ shell_exec(command=ls) · 1.2 s  (Ctrl+O shows)"))
        #expect(!rows.contains("    b.txt"))
        state.toggleFocusedTool()
        rows = renderer.layout(state, columns: 60, rows: 10).rows
        #expect(
            Array(rows.suffix(8).prefix(6)) == [
                "▸ ✓ shell_exec(command=ls) · 1.2 s  (Ctrl+O hides)", "    arguments", #"    {"command":"ls"}"#,
                "    output", "    a.txt", "    b.txt",
            ])
        // A failed call says why; focus moves between calls.
        state.apply(
            .toolCall(Self.header, ToolCallInfo(callID: "c2", name: "file_read", summary: "file_read(path=/x)")))
        state.apply(
            .toolResult(
                Self.header,
                ToolResultInfo(
                    callID: "c2", name: "file_read", isError: true, durationMilliseconds: 5, summary: "no such file")))
        rows = renderer.layout(state, columns: 60, rows: 12).rows
        #expect(rows.contains("▸ ✗ file_read(path=/x): no such file · 5 ms"))
        #expect(rows.contains("  ✓ shell_exec(command=ls) · 1.2 s"))
        state.moveToolFocus(-1)
        #expect(state.entries[state.focusedTool!].tool?.callID == "c1")
    }

    @Test func theStatusBarCountsAndMeasures() {
        var state = Self.connected()
        state.apply(
            .turnCompleted(
                Self.header,
                TurnCompletion(message: "hi", costUSD: 0.0004, contextTokens: 12_345, contextWindow: 128_000)))
        var bar = Renderer.statusBar(state, columns: 120, style: Style(enabled: false), scrolled: false)
        #expect(bar.contains("context 12k/128k (9%) │ 1 turn · <$0.01 │"))
        state.activeTurn = "t2"
        state.apply(
            .turnCompleted(
                TurnHeader(requestID: "r", session: Self.ref, turn: TurnRef(turnID: "t2", state: .running)),
                TurnCompletion(message: "hi", costUSD: 0.02, contextTokens: 1_500, contextWindow: 4096)))
        state.attachments = [.init(name: "a.png", mimeType: "image/png", data: Data())]
        bar = Renderer.statusBar(state, columns: 120, style: Style(enabled: false), scrolled: false)
        #expect(bar.contains("📎 1 file │ context 1.5k/4.0k (36%) │ 2 turns · $0.02"))
        state.activeTurn = "t3"
        let now = ContinuousClock.now
        state.turnStartedAt = now - .seconds(3)
        bar = Renderer.statusBar(state, columns: 120, style: Style(enabled: false), scrolled: false, now: now)
        #expect(bar.contains("streaming 3 s") || bar.contains(" streaming"))
        #expect(bar.contains(" 3 s"))
    }

    @Test func reverseSearchFindsEarlierPrompts() {
        var editor = InputEditor(history: ["git status", "make test", "git log", "echo hi"])
        var search = HistorySearch()
        search.query = "git"
        search.update(in: editor)
        #expect(search.match == "git log")
        search.older(in: editor)
        #expect(search.match == "git status")
        search.older(in: editor)
        #expect(search.failed && search.match == "git status")
        search.query = "nothing"
        search.update(in: editor)
        #expect(search.failed)
        editor.load("make test")
        #expect(editor.text == "make test" && editor.column == 9)
        let (lines, _, _) = Renderer.searchLayout(HistorySearch(query: "ma", match: "make test"), width: 40)
        #expect(lines == ["(search) ‘ma’: make test"])
    }
}

@Suite("Streaming a long answer")
struct StreamingRedrawTests {
    /// Whatever the answer holds (a table that grows and re-lays its columns, a code block), a
    /// delta never rewrites the whole screen.
    @Test func noDeltaRedrawsTheWholeScreen() {
        var state = ChatScreenTests.conversation(color: true)
        var renderer = Renderer()
        let now = ContinuousClock.now
        _ = renderer.draw(state, columns: 100, rows: 40, now: now)
        state.activeTurn = "t"
        let answer =
            "## Result\nThe build failed because **two** targets link `Foundation`.\n\n```swift\nimport X\nlet y = 1\n```\n\n"
            + "| target | links | fix |\n|---|:---:|---|\n| oxydra-vm | yes | use FoundationEssentials |\n"
            + "| shell-daemon | no | — |\n\n1. Edit `Package.swift`.\n2. Rebuild.\n> Note: CI checks it.\n"
        var worst = 0
        var piece = ""
        for character in answer {
            piece.append(character)
            guard character == " " || character == "\n" else { continue }
            state.apply(.assistantDelta(ChatScreenTests.header, delta: piece))
            piece = ""
            _ = renderer.draw(state, columns: 100, rows: 40, now: now)
            worst = max(worst, renderer.lastRowsWritten)
        }
        // The table (up to 7 rows re-laid when a row changes its column widths) plus the status bar.
        #expect(worst <= 9)
    }
}

@Suite("Attaching files")
struct AttachingTests {
    @Test func droppedPathsAndTypes() throws {
        let directory = try TemporaryDirectory(prefix: "oxydra-attach")
        defer { directory.remove() }
        try directory.write("x", to: "my photo.png")
        let path = directory.path + "/my photo.png"
        #expect(AttachmentFile.droppedPath("'\(path)'") == path)
        #expect(AttachmentFile.droppedPath(path.replacing(" ", with: "\\ ") + " ") == path)
        #expect(AttachmentFile.droppedPath("file://" + path.replacing(" ", with: "%20")) == path)
        #expect(AttachmentFile.droppedPath("look at " + path) == nil)
        #expect(AttachmentFile.droppedPath(directory.path) == nil)
        #expect(AttachmentFile.droppedPath(path + "\nsecond line") == nil)
        let file = try AttachmentFile.load(path)
        #expect(file.name == "my photo.png" && file.mimeType == "image/png" && file.data == Data("x".utf8))
        #expect(AttachmentFile.mimeType(of: "notes.MD") == "text/markdown")
        #expect(AttachmentFile.mimeType(of: "blob", data: Data([0xFF, 0xD8, 0xFF, 0])) == "image/jpeg")
        #expect(AttachmentFile.mimeType(of: "archive") == "application/octet-stream")
        #expect(throws: AttachmentFile.Failure.self) { try AttachmentFile.load(directory.path + "/missing") }
        try Data(count: (8 << 20) + 1).write(to: URL(fileURLWithPath: directory.path + "/big.bin"))
        #expect {
            try AttachmentFile.load(directory.path + "/big.bin")
        } throws: { error in
            "\(error)" == "cannot attach \(directory.path)/big.bin: it holds 8388609 bytes, more than the 8 MiB "
                + "(8388608 bytes) a turn's attachments may hold"
        }
    }
}
