import OxydraCore

/// Lays the chat out on a screen of `columns` × `rows` and redraws only the rows that changed.
///
/// Each transcript entry is laid out once per width and kept; a streamed answer re-renders only
/// its unfinished line (see `Markdown`). Only the entries that reach the screen are looked at, so
/// the cost of a delta does not grow with the conversation. When new lines push the history up,
/// the terminal scrolls it (a scroll region) instead of the renderer rewriting every row.
public struct Renderer: Sendable {
    private var previous: [String] = []
    private var previousSize = (columns: 0, rows: 0)
    private var cache: [Int: Laid] = [:]
    /// Rows written by the last `draw` (the benchmark's "no full redraw" check).
    public private(set) var lastRowsWritten = 0
    /// Whether the last `draw` scrolled the history instead of rewriting it.
    public private(set) var lastScrolled = 0

    /// An entry's lines at one width, with what they were made from.
    private struct Laid: Sendable {
        var width: Int
        var bytes: Int
        var variant: Int
        var lines: [String]
        var markdown: Markdown?
    }

    public struct Frame: Sendable {
        public var rows: [String]
        public var cursor: (row: Int, column: Int)
        public var historyHeight: Int
    }

    public init() {}

    /// The screen as rows of text with SGR styling, and where the cursor goes.
    public static func layout(_ state: ChatState, columns: Int, rows: Int) -> (rows: [String], cursor: (Int, Int)) {
        var renderer = Renderer()
        let frame = renderer.layout(state, columns: columns, rows: rows)
        return (frame.rows, frame.cursor)
    }

    public mutating func layout(_ state: ChatState, columns: Int, rows: Int, now: ContinuousClock.Instant = .now)
        -> Frame
    {
        let style = Style(enabled: state.color)
        let inputLines =
            state.search.map { Self.searchLayout($0, width: columns) } ?? Self.inputLayout(state.editor, width: columns)
        let inputHeight = min(max(inputLines.lines.count, 1), max(rows / 3, 1))
        let historyHeight = max(rows - inputHeight - 1, 0)

        // Walk back from the newest entry until the screen (and the scrolled-away part) is full.
        let needed = historyHeight + state.scroll
        var chunks: [[String]] = []
        var collected = 0
        var index = state.entries.count - 1
        while index >= 0 && collected < needed {
            var lines = entryLines(state, index, columns: columns, style: style, now: now)
            if state.entries[index].kind == .user && index > 0 { lines.insert("", at: 0) }
            collected += lines.count
            chunks.append(lines)
            index -= 1
        }
        if cache.count > 2 * state.entries.count + 64 {
            let live = Set(state.entries.map(\.id))
            cache = cache.filter { live.contains($0.key) }
        }
        var history: [String] = []
        history.reserveCapacity(collected)
        for chunk in chunks.reversed() { history += chunk }
        let scroll = min(state.scroll, max(history.count - historyHeight, 0))
        let end = history.count - scroll
        let start = max(end - historyHeight, 0)
        var screen = Array(repeating: "", count: historyHeight - (end - start))
        screen += history[start..<end]

        screen.append(
            Self.statusBar(state, columns: columns, style: style, scrolled: scroll > 0, now: now))

        let visibleInput = Array(inputLines.lines.suffix(inputHeight))
        let hidden = inputLines.lines.count - visibleInput.count
        screen += visibleInput
        let cursorRow = historyHeight + 1 + max(inputLines.cursorRow - hidden, 0)
        return Frame(rows: screen, cursor: (cursorRow, inputLines.cursorColumn), historyHeight: historyHeight)
    }

    /// The lines of entry `index`, from the cache when nothing it depends on changed.
    private mutating func entryLines(
        _ state: ChatState, _ index: Int, columns: Int, style: Style, now: ContinuousClock.Instant
    ) -> [String] {
        let entry = state.entries[index]
        let streaming = index == state.streamingEntry && state.isStreaming
        if let tool = entry.tool {
            return toolLines(entry, tool, focused: state.focusedTool == index, columns: columns, style: style, now: now)
        }
        let bytes = entry.text.utf8.count
        if var laid = cache[entry.id], laid.width == columns {
            if laid.bytes != bytes, var markdown = laid.markdown {
                laid.lines = markdown.render(entry.text)
                laid.markdown = markdown
                laid.bytes = bytes
                cache[entry.id] = laid
            }
            if laid.bytes == bytes { return streaming ? Self.withCursor(laid.lines, columns: columns) : laid.lines }
        }
        var laid: Laid
        if entry.kind == .assistant {
            var markdown = Markdown(width: columns, color: state.color)
            laid = Laid(
                width: columns, bytes: bytes, variant: 0, lines: markdown.render(entry.text), markdown: markdown)
        } else {
            laid = Laid(
                width: columns, bytes: bytes, variant: 0, lines: Self.plainLines(entry, columns: columns, style: style))
        }
        cache[entry.id] = laid
        return streaming ? Self.withCursor(laid.lines, columns: columns) : laid.lines
    }

    private static func withCursor(_ lines: [String], columns: Int) -> [String] {
        var lines = lines.isEmpty ? [""] : lines
        if TextLayout.width(of: TextLayout.sanitize(lines[lines.count - 1])) < columns {
            lines[lines.count - 1] += "▌"
        } else {
            lines.append("▌")
        }
        return lines
    }

    private static func plainLines(_ entry: ChatState.Entry, columns: Int, style: Style) -> [String] {
        let (label, body): ([Span], TextStyle) =
            switch entry.kind {
            case .user: ([Span("you: ", TextStyle(bold: true, color: 36))], TextStyle(color: 36))
            case .assistant: ([], .plain)
            case .tool: ([Span("  ")], .faint)
            case .system: ([Span("  ")], TextStyle(dim: true, color: 33))
            case .error: ([Span("error: ", TextStyle(bold: true, color: 31))], TextStyle(color: 31))
            }
        let hanging = [Span(String(repeating: " ", count: StyledText.width(of: label)))]
        var lines: [String] = []
        for (number, paragraph) in entry.text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let wrapped = StyledText.wrap(
                [Span(String(paragraph), body)], width: columns, first: number == 0 ? label : hanging, rest: hanging)
            lines += wrapped.map { StyledText.encode($0, color: style.enabled) }
        }
        return lines
    }

    static let spinner: [Character] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]

    /// A tool call: one line (icon, summary, duration or a spinner with the time so far), and when
    /// expanded its arguments and output.
    private mutating func toolLines(
        _ entry: ChatState.Entry, _ tool: ChatState.ToolView, focused: Bool, columns: Int, style: Style,
        now: ContinuousClock.Instant
    ) -> [String] {
        let icon: Span
        let time: String
        switch tool.status {
        case .running(let since):
            let tenths = Self.tenths(now - since)
            icon = Span(String(Self.spinner[tenths % Self.spinner.count]), TextStyle(color: 36))
            time = "\(tenths / 10).\(tenths % 10) s"
        case .succeeded(let milliseconds):
            icon = Span("✓", TextStyle(color: 32))
            time = Self.duration(milliseconds)
        case .failed(let milliseconds):
            icon = Span("✗", TextStyle(color: 31))
            time = Self.duration(milliseconds)
        }
        var head: [Span] = [Span(focused ? "▸ " : "  ", TextStyle(bold: true)), icon, Span(" ")]
        head.append(Span(tool.summary, focused ? TextStyle(bold: true) : .faint))
        if let note = tool.note { head.append(Span(": " + note, TextStyle(color: 31))) }
        head.append(Span(" · " + time, .faint))
        let expandable = tool.arguments != nil || tool.output != nil
        if focused && expandable {
            head.append(Span(tool.expanded ? "  (Ctrl+O hides)" : "  (Ctrl+O shows)", .faint))
        }
        let first = StyledText.encode(Self.cut(head, width: columns), color: style.enabled)
        guard tool.expanded else { return [first] }

        let variant = (tool.output?.utf8.count ?? -1) &* 31 &+ (tool.arguments?.utf8.count ?? -1)
        if let laid = cache[entry.id], laid.width == columns, laid.variant == variant {
            return [first] + laid.lines
        }
        var body: [String] = []
        let indent = [Span("    ")]
        func section(_ title: String, _ text: String) {
            body.append(
                StyledText.encode([Span("    " + title, TextStyle(bold: true, dim: true))], color: style.enabled))
            for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
                body += StyledText.wrap(
                    [Span(String(line), .faint)], width: columns, first: indent, rest: indent, hard: true
                )
                .map { StyledText.encode($0, color: style.enabled) }
            }
        }
        if let arguments = tool.arguments { section("arguments", arguments) }
        if let output = tool.output {
            section("output", output.hasSuffix("\n") ? String(output.dropLast()) : output)
        } else if case .running = tool.status {
            body.append(StyledText.encode([Span("    running…", .faint)], color: style.enabled))
        }
        cache[entry.id] = Laid(width: columns, bytes: 0, variant: variant, lines: body)
        return [first] + body
    }

    static func tenths(_ duration: Duration) -> Int {
        max(Int(duration.components.seconds) * 10 + Int(duration.components.attoseconds / 100_000_000_000_000_000), 0)
    }

    static func duration(_ milliseconds: Int) -> String {
        milliseconds < 1000 ? "\(milliseconds) ms" : "\(milliseconds / 1000).\(milliseconds % 1000 / 100) s"
    }

    /// The spans cut to one line of `width` columns (with `…`).
    private static func cut(_ spans: [Span], width: Int) -> [Span] {
        guard StyledText.width(of: spans) > width else { return spans }
        var out: [Span] = []
        var used = 0
        for span in spans {
            var text = ""
            for character in span.text {
                let characterWidth = TextLayout.width(of: character)
                if used + characterWidth > width - 1 { break }
                text.append(character)
                used += characterWidth
            }
            if !text.isEmpty { out.append(Span(text, span.style)) }
            if used >= width - 1 || text.count < span.text.count { break }
        }
        out.append(Span("…", .faint))
        return out
    }

    static func statusBar(
        _ state: ChatState, columns: Int, style: Style, scrolled: Bool, now: ContinuousClock.Instant = .now
    ) -> String {
        let connection: String
        switch state.connection {
        case .connecting: connection = "○ connecting"
        case .connected: connection = "● connected"
        case .disconnected(let reason): connection = "✗ " + reason
        }
        var parts = [connection, "session " + (state.session.map(ChatState.shortID) ?? "-")]
        if let model = state.model { parts.append(model.model) }
        if state.isStreaming {
            var activity = "streaming" + (state.progress.map { ": " + $0 } ?? "")
            if let since = state.turnStartedAt {
                let tenths = Self.tenths(now - since)
                activity = "\(Self.spinner[tenths % Self.spinner.count]) \(activity) \(tenths / 10) s"
            }
            parts.append(activity)
        } else {
            parts.append("idle")
        }
        if state.queuedPrompt != nil { parts.append("1 queued (Esc removes)") }
        if !state.attachments.isEmpty {
            parts.append("📎 \(state.attachments.count) \(state.attachments.count == 1 ? "file" : "files")")
        }
        if let context = state.context {
            let percent = min(context.used * 100 / max(context.window, 1), 999)
            parts.append(
                "context \(TokenCount.display(context.used))/\(TokenCount.display(context.window)) (\(percent)%)")
        }
        if state.turnsCompleted > 0 {
            parts.append("\(state.turnsCompleted) turn\(state.turnsCompleted == 1 ? "" : "s")" + state.costText)
        }
        if scrolled { parts.append("scrolled (PgDn)") }
        parts.append(state.isStreaming ? "Ctrl+C cancel" : "Ctrl+C ×2 quit · /help")
        let text = TextLayout.truncate(" " + parts.joined(separator: " │ "), width: columns)
        let padded = text + String(repeating: " ", count: max(columns - TextLayout.width(of: text), 0))
        return "\u{1B}[7m" + padded + "\u{1B}[0m"
    }

    /// The reverse search prompt in place of the input.
    static func searchLayout(_ search: HistorySearch, width: Int) -> (
        lines: [String], cursorRow: Int, cursorColumn: Int
    ) {
        let label = "(search\(search.failed ? " failed" : "")) ‘\(search.query)’: "
        let text = TextLayout.truncate(label + (search.match ?? "").replacingNewlines(), width: max(width, 1))
        return ([text], 0, min(TextLayout.width(of: label) - 2, max(width - 1, 0)))
    }

    /// The input wrapped to the width with its `› ` prompt, and the cursor's place in it.
    static func inputLayout(_ editor: InputEditor, width: Int) -> (lines: [String], cursorRow: Int, cursorColumn: Int) {
        let available = max(width - 2, 1)
        var lines: [String] = []
        var cursorRow = 0
        var cursorColumn = 2
        for (row, characters) in editor.lines.enumerated() {
            var line = ""
            var used = 0
            var first = true
            for (column, character) in characters.enumerated() {
                if row == editor.row && column == editor.column {
                    cursorRow = lines.count
                    cursorColumn = 2 + used
                }
                let characterWidth = TextLayout.width(of: character)
                if used + characterWidth > available {
                    lines.append((first && lines.count == 0 ? "› " : "  ") + line)
                    first = false
                    line = ""
                    used = 0
                    if row == editor.row && column == editor.column {
                        cursorRow = lines.count
                        cursorColumn = 2
                    }
                }
                line.append(character)
                used += characterWidth
            }
            if row == editor.row && editor.column >= characters.count {
                cursorRow = lines.count
                cursorColumn = 2 + used
                if used >= available {
                    lines.append((lines.isEmpty ? "› " : "  ") + line)
                    line = ""
                    cursorRow = lines.count
                    cursorColumn = 2
                }
            }
            lines.append((lines.isEmpty ? "› " : "  ") + line)
        }
        return (lines, cursorRow, cursorColumn)
    }

    /// Escape sequences that bring the terminal from the previous frame to this one.
    public mutating func draw(_ state: ChatState, columns: Int, rows: Int, now: ContinuousClock.Instant = .now)
        -> String
    {
        let frame = layout(state, columns: columns, rows: rows, now: now)
        let screen = frame.rows
        // One synchronized update (DEC mode 2026): terminals that support it show the frame at
        // once, the others ignore the mode; the cursor is hidden while rows are written either way.
        var out = "\u{1B}[?2026h\u{1B}[?25l"
        lastScrolled = 0
        if previousSize != (columns, rows) {
            out += "\u{1B}[2J"
            previous = []
            previousSize = (columns, rows)
        } else if let shift = Self.shift(from: previous, to: screen, height: frame.historyHeight) {
            // The history moved up: let the terminal scroll it and write only the rows that came in.
            let height = frame.historyHeight
            out += "\u{1B}[1;\(height)r\u{1B}[\(height);1H\u{1B}[\(shift)S\u{1B}[r"
            previous =
                Array(previous[shift..<height]) + Array(repeating: "\u{0}", count: shift)
                + previous[height...]
            lastScrolled = shift
        }
        var written = 0
        for (index, row) in screen.enumerated() where index >= previous.count || previous[index] != row {
            out += "\u{1B}[\(index + 1);1H" + row + "\u{1B}[0m\u{1B}[K"
            written += 1
        }
        lastRowsWritten = written
        previous = screen
        out += "\u{1B}[\(frame.cursor.row + 1);\(min(frame.cursor.column, columns - 1) + 1)H\u{1B}[?25h\u{1B}[?2026l"
        return out
    }

    /// How many rows the history moved up between two frames, when scrolling them and writing
    /// the rest costs fewer rows than rewriting every changed one.
    static func shift(from previous: [String], to screen: [String], height: Int) -> Int? {
        guard height > 4, previous.count == screen.count, screen.count >= height else { return nil }
        var changed = 0
        for index in 0..<height where previous[index] != screen[index] { changed += 1 }
        guard changed > 3 else { return nil }
        var best: (shift: Int, cost: Int)?
        for shift in 1...min(8, height - 2) {
            // Rows that keep their content after the scroll; the ones below are written.
            var matching = 0
            var content = 0
            while matching < height - shift, screen[matching] == previous[matching + shift] {
                if !screen[matching].isEmpty { content += 1 }
                matching += 1
            }
            let cost = height - matching
            if content > 0, cost < (best?.cost ?? changed - 1) { best = (shift, cost) }
        }
        return best?.shift
    }

    /// Forget the screen (after Ctrl-L or anything else that may have scribbled on it).
    public mutating func invalidate() { previousSize = (0, 0) }
}

/// SGR styling that turns into plain text under `NO_COLOR`.
struct Style: Sendable {
    let enabled: Bool
    func apply(_ text: String, _ code: String) -> String {
        guard enabled, !text.isEmpty else { return text }
        return "\u{1B}[\(code)m" + text + "\u{1B}[0m"
    }
}

extension String {
    fileprivate func replacingNewlines() -> String {
        String(map { $0 == "\n" ? "⏎" : $0 })
    }
}
