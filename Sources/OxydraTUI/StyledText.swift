/// Attributes of a run of text on the terminal.
struct TextStyle: Hashable, Sendable {
    var bold = false
    var italic = false
    var underline = false
    var dim = false
    var strike = false
    /// An SGR foreground colour (31…37, 90…97).
    var color: Int?

    static let plain = TextStyle()
    static let faint = TextStyle(dim: true)

    func with(_ change: (inout TextStyle) -> Void) -> TextStyle {
        var copy = self
        change(&copy)
        return copy
    }

    /// The SGR parameters after a reset (`0;1;36`).
    var parameters: String {
        var codes = "0"
        if bold { codes += ";1" }
        if dim { codes += ";2" }
        if italic { codes += ";3" }
        if underline { codes += ";4" }
        if strike { codes += ";9" }
        if let color { codes += ";\(color)" }
        return codes
    }
}

/// Text with one style.
struct Span: Hashable, Sendable {
    var text: String
    var style: TextStyle

    init(_ text: String, _ style: TextStyle = .plain) {
        self.text = text
        self.style = style
    }
}

extension Array where Element == Span {
    /// Appends `text`, extending the last span when it has the same style.
    mutating func append(_ text: some StringProtocol, _ style: TextStyle) {
        guard !text.isEmpty else { return }
        if let last = self.last, last.style == style {
            self[count - 1].text += text
        } else {
            append(Span(String(text), style))
        }
    }
}

/// Lines of styled text: wrapping to a width and encoding as terminal output.
enum StyledText {
    /// The line as terminal text: SGR sequences around styled runs when `color`, plain text otherwise.
    static func encode(_ line: [Span], color: Bool) -> String {
        var out = ""
        for span in line where !span.text.isEmpty {
            if color && span.style != .plain {
                out += "\u{1B}[" + span.style.parameters + "m" + span.text + "\u{1B}[0m"
            } else {
                out += span.text
            }
        }
        return out
    }

    static func width(of line: [Span]) -> Int { line.reduce(0) { $0 + TextLayout.width(of: $1.text) } }

    /// Wraps `spans` (no newlines) to `width` columns, breaking after spaces where possible, else
    /// inside a word. Every line starts with `first` (the first) or `rest` (the others); the width
    /// includes the prefix. `hard` breaks anywhere (code).
    static func wrap(_ spans: [Span], width: Int, first: [Span] = [], rest: [Span] = [], hard: Bool = false)
        -> [[Span]]
    {
        var lines: [[Span]] = []
        var line: [(Character, Int)] = []
        var lineWidth = 0
        var lastSpace: Int?
        var styles: [TextStyle] = []
        var styleIndex: [TextStyle: Int] = [:]
        func prefixWidth() -> Int { StyledText.width(of: lines.isEmpty ? first : rest) }
        func flush(_ characters: ArraySlice<(Character, Int)>) {
            var out = lines.isEmpty ? first : rest
            var current: Int?
            var text = ""
            for (character, style) in characters {
                if style != current {
                    if let current, !text.isEmpty { out.append(Span(text, styles[current])) }
                    text = ""
                    current = style
                }
                text.append(character)
            }
            if let current, !text.isEmpty { out.append(Span(text, styles[current])) }
            lines.append(out)
        }
        var available = max(width - prefixWidth(), 1)
        for span in spans {
            let style: Int
            if let known = styleIndex[span.style] {
                style = known
            } else {
                style = styles.count
                styles.append(span.style)
                styleIndex[span.style] = style
            }
            for character in span.text {
                let characterWidth = TextLayout.width(of: character)
                if lineWidth + characterWidth > available, !line.isEmpty {
                    if !hard, let space = lastSpace, space > 0 {
                        flush(line[..<space])
                        line = Array(line[(space + 1)...])
                        lineWidth = line.reduce(0) { $0 + TextLayout.width(of: $1.0) }
                    } else {
                        flush(line[...])
                        line = []
                        lineWidth = 0
                    }
                    lastSpace = nil
                    available = max(width - prefixWidth(), 1)
                }
                if character == " " { lastSpace = line.count }
                line.append((character, style))
                lineWidth += characterWidth
            }
        }
        flush(line[...])
        return lines
    }

    /// `line` padded with spaces (or cut) to exactly `width` columns, aligned left, right or centred.
    static func fit(_ line: [Span], width: Int, alignment: Markdown.Alignment = .left) -> [Span] {
        let used = Self.width(of: line)
        guard used <= width else {
            return wrap(line, width: width, hard: true).first ?? []
        }
        let gap = width - used
        let left =
            switch alignment {
            case .left: 0
            case .right: gap
            case .center: gap / 2
            }
        var out: [Span] = []
        if left > 0 { out.append(Span(String(repeating: " ", count: left))) }
        out += line
        if gap - left > 0 { out.append(Span(String(repeating: " ", count: gap - left))) }
        return out
    }
}
