/// Lays the chat out on a screen of `columns` × `rows` and redraws only the rows that changed.
public struct Renderer: Sendable {
    private var previous: [String] = []
    private var previousSize = (columns: 0, rows: 0)

    public init() {}

    /// The screen as rows of text with SGR styling, and where the cursor goes.
    public static func layout(_ state: ChatState, columns: Int, rows: Int) -> (rows: [String], cursor: (Int, Int)) {
        let style = Style(enabled: state.color)
        let inputLines = Self.inputLayout(state.editor, width: columns)
        let inputHeight = min(max(inputLines.lines.count, 1), max(rows / 3, 1))
        let historyHeight = max(rows - inputHeight - 1, 0)

        var history: [String] = []
        for (index, entry) in state.entries.enumerated() {
            if entry.kind == .user && index > 0 { history.append("") }
            let (label, body) = Self.decorate(entry, style: style)
            let labelWidth = TextLayout.width(of: label.plain)
            let streaming = index == state.streamingEntry && state.isStreaming
            let wrapped = TextLayout.wrap(entry.text + (streaming ? "▌" : ""), width: max(columns - labelWidth, 1))
            for (lineIndex, line) in wrapped.enumerated() {
                let prefix = lineIndex == 0 ? label.styled : String(repeating: " ", count: labelWidth)
                history.append(prefix + body(line))
            }
        }
        let maxScroll = max(history.count - historyHeight, 0)
        let scroll = min(state.scroll, maxScroll)
        let end = history.count - scroll
        let start = max(end - historyHeight, 0)
        var screen = Array(history[start..<end])
        while screen.count < historyHeight { screen.insert("", at: 0) }

        screen.append(Self.statusBar(state, columns: columns, style: style, scrolled: scroll > 0))

        let visibleInput = Array(inputLines.lines.suffix(inputHeight))
        let hidden = inputLines.lines.count - visibleInput.count
        screen += visibleInput
        let cursorRow = historyHeight + 1 + max(inputLines.cursorRow - hidden, 0)
        return (screen, (cursorRow, inputLines.cursorColumn))
    }

    private static func decorate(_ entry: ChatState.Entry, style: Style) -> (
        label: (plain: String, styled: String), body: (String) -> String
    ) {
        switch entry.kind {
        case .user: (("you: ", style.apply("you: ", "1;36")), { style.apply($0, "36") })
        case .assistant: (("", ""), { $0 })
        case .tool: (("  ", "  "), { style.apply($0, "2") })
        case .system: (("  ", "  "), { style.apply($0, "2;33") })
        case .error: (("error: ", style.apply("error: ", "1;31")), { style.apply($0, "31") })
        }
    }

    static func statusBar(_ state: ChatState, columns: Int, style: Style, scrolled: Bool) -> String {
        let connection: String
        switch state.connection {
        case .connecting: connection = "○ connecting"
        case .connected: connection = "● connected"
        case .disconnected(let reason): connection = "✗ " + reason
        }
        var parts = [connection, "session " + (state.session.map(ChatState.shortID) ?? "-")]
        parts.append(state.isStreaming ? "streaming" + (state.progress.map { ": " + $0 } ?? "") : "idle")
        if state.queuedPrompt != nil { parts.append("1 queued (Esc removes)") }
        if state.turnsCompleted > 0 { parts.append("\(state.turnsCompleted) turns" + state.costText) }
        if scrolled { parts.append("scrolled (PgDn)") }
        parts.append(state.isStreaming ? "Ctrl+C cancel" : "Ctrl+C ×2 quit · /help")
        let text = TextLayout.truncate(" " + parts.joined(separator: " │ "), width: columns)
        let padded = text + String(repeating: " ", count: max(columns - TextLayout.width(of: text), 0))
        return style.enabled ? "\u{1B}[7m" + padded + "\u{1B}[0m" : "\u{1B}[7m" + padded + "\u{1B}[0m"
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
    public mutating func draw(_ state: ChatState, columns: Int, rows: Int) -> String {
        let (screen, cursor) = Self.layout(state, columns: columns, rows: rows)
        var out = "\u{1B}[?25l"
        if previousSize != (columns, rows) {
            out += "\u{1B}[2J"
            previous = []
            previousSize = (columns, rows)
        }
        for (index, row) in screen.enumerated() where index >= previous.count || previous[index] != row {
            out += "\u{1B}[\(index + 1);1H" + row + "\u{1B}[0m\u{1B}[K"
        }
        previous = screen
        out += "\u{1B}[\(cursor.0 + 1);\(min(cursor.1, columns - 1) + 1)H\u{1B}[?25h"
        return out
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
