import OxydraCore

/// The multi-line prompt editor: a cursor in lines of text, and recall of earlier prompts.
public struct InputEditor: Sendable {
    public private(set) var lines: [[Character]] = [[]]
    public private(set) var row = 0
    public private(set) var column = 0
    private var history: [String] = []
    private var historyIndex: Int?
    private var draft: String?

    public init() {}

    /// An editor that recalls `history` (oldest first) with ↑/↓.
    public init(history: [String]) { self.history = Array(history.suffix(PromptHistory.limit)) }

    public var text: String { lines.map { String($0) }.joined(separator: "\n") }
    public var isEmpty: Bool { lines.count == 1 && lines[0].isEmpty }

    public mutating func insert(_ text: String) {
        for character in text {
            if character == "\n" || character == "\r\n" {
                insertNewline()
            } else {
                lines[row].insert(character, at: column)
                column += 1
            }
        }
    }

    public mutating func insertNewline() {
        let rest = Array(lines[row][column...])
        lines[row].removeSubrange(column...)
        lines.insert(rest, at: row + 1)
        row += 1
        column = 0
    }

    public mutating func backspace() {
        if column > 0 {
            column -= 1
            lines[row].remove(at: column)
        } else if row > 0 {
            let line = lines.remove(at: row)
            row -= 1
            column = lines[row].count
            lines[row] += line
        }
    }

    public mutating func delete() {
        if column < lines[row].count {
            lines[row].remove(at: column)
        } else if row + 1 < lines.count {
            lines[row] += lines.remove(at: row + 1)
        }
    }

    public mutating func deleteWordBackward() {
        while column > 0 && lines[row][column - 1] == " " { backspace() }
        while column > 0 && lines[row][column - 1] != " " { backspace() }
    }

    public mutating func moveLeft() {
        if column > 0 {
            column -= 1
        } else if row > 0 {
            row -= 1
            column = lines[row].count
        }
    }

    public mutating func moveRight() {
        if column < lines[row].count {
            column += 1
        } else if row + 1 < lines.count {
            row += 1
            column = 0
        }
    }

    public mutating func home() { column = 0 }
    public mutating func end() { column = lines[row].count }

    /// Up: the previous line, or on the first line the previous prompt from history.
    public mutating func up() {
        if row > 0 {
            row -= 1
            column = min(column, lines[row].count)
            return
        }
        guard !history.isEmpty else { return }
        if historyIndex == nil { draft = text }
        let index = max((historyIndex ?? history.count) - 1, 0)
        historyIndex = index
        replace(with: history[index])
    }

    /// Down: the next line, or on the last line the next prompt from history (then the draft).
    public mutating func down() {
        if row + 1 < lines.count {
            row += 1
            column = min(column, lines[row].count)
            return
        }
        guard let index = historyIndex else { return }
        if index + 1 < history.count {
            historyIndex = index + 1
            replace(with: history[index + 1])
        } else {
            historyIndex = nil
            replace(with: draft ?? "")
            draft = nil
        }
    }

    public mutating func clear() {
        lines = [[]]
        row = 0
        column = 0
    }

    /// Takes the text out (for sending) and remembers it.
    public mutating func submit() -> String {
        let value = text
        if !value.trimmed.isEmpty, history.last != value {
            history.append(value)
            if history.count > PromptHistory.limit { history.removeFirst() }
        }
        historyIndex = nil
        draft = nil
        clear()
        return value
    }

    /// The newest earlier prompt containing `query` that is older than `before` (an index into the
    /// history; nil: from the newest).
    func search(_ query: String, before: Int? = nil) -> (index: Int, text: String)? {
        guard !query.isEmpty else { return nil }
        let end = min(before ?? history.count, history.count)
        guard end > 0 else { return nil }
        for index in stride(from: end - 1, through: 0, by: -1) where history[index].contains(query) {
            return (index, history[index])
        }
        return nil
    }

    /// Puts `text` in the editor (an accepted search), cursor at its end.
    public mutating func load(_ text: String) {
        historyIndex = nil
        draft = nil
        replace(with: text)
    }

    private mutating func replace(with text: String) {
        clear()
        insert(text)
    }
}

/// Ctrl+R: an incremental search back through earlier prompts. Typing narrows it, Ctrl+R again
/// goes to an older match, Enter (or an arrow key) takes the match into the editor, Esc or Ctrl+G
/// leaves it.
public struct HistorySearch: Sendable, Hashable {
    public var query = ""
    public var match: String?
    /// The match's place in the history, where Ctrl+R continues from.
    var index: Int?
    public var failed = false

    public init() {}

    init(query: String, match: String?) {
        self.query = query
        self.match = match
    }

    /// Searches again after the query changed (from the newest prompt).
    mutating func update(in editor: InputEditor) {
        if let found = editor.search(query) {
            (index, match, failed) = (found.index, found.text, false)
        } else {
            failed = !query.isEmpty
            if query.isEmpty { (index, match) = (nil, nil) }
        }
    }

    /// The next older match (Ctrl+R pressed again).
    mutating func older(in editor: InputEditor) {
        if let found = editor.search(query, before: index) {
            (index, match, failed) = (found.index, found.text, false)
        } else {
            failed = true
        }
    }
}
