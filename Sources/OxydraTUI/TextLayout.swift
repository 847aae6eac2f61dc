import OxydraClient

/// Display widths, sanitising and wrapping of text for the terminal.
public enum TextLayout {
    /// Columns a character takes: 0 for combining marks and zero-width characters, 2 for East Asian
    /// wide characters and most emoji, else 1.
    public static func width(of character: Character) -> Int {
        guard let first = character.unicodeScalars.first else { return 0 }
        let value = first.value
        switch first.properties.generalCategory {
        case .nonspacingMark, .enclosingMark, .format: return 0
        default: break
        }
        if (0x1100...0x115F).contains(value) || (0x2E80...0xA4CF).contains(value) || (0xAC00...0xD7A3).contains(value)
            || (0xF900...0xFAFF).contains(value) || (0xFE30...0xFE4F).contains(value)
            || (0xFF00...0xFF60).contains(value) || (0xFFE0...0xFFE6).contains(value)
            || (0x1F300...0x1F64F).contains(value) || (0x1F900...0x1F9FF).contains(value)
            || (0x20000...0x3FFFD).contains(value)
        {
            return 2
        }
        return 1
    }

    public static func width(of text: some StringProtocol) -> Int {
        text.reduce(0) { $0 + width(of: $1) }
    }

    /// Removes terminal control sequences and control characters (see `TerminalText`); tabs become
    /// four spaces, newlines stay.
    public static func sanitize(_ text: String) -> String { TerminalText.sanitize(text) }

    /// Pasted text with its line breaks kept whatever the terminal sent (CR LF, CR or LF), then
    /// sanitised (a lone CR would otherwise be dropped as a control character and join lines).
    public static func pasted(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        var normalized = String.UnicodeScalarView()
        var index = 0
        while index < scalars.count {
            if scalars[index] == "\r" {
                normalized.append("\n")
                if index + 1 < scalars.count, scalars[index + 1] == "\n" { index += 1 }
            } else {
                normalized.append(scalars[index])
            }
            index += 1
        }
        return sanitize(String(normalized))
    }

    /// Wraps `text` (already sanitised) to `width` columns, breaking at spaces where possible.
    /// Every newline starts a new line; an empty text is one empty line.
    public static func wrap(_ text: String, width columns: Int) -> [String] {
        let width = max(columns, 1)
        var lines: [String] = []
        for paragraph in text.split(separator: "\n", omittingEmptySubsequences: false) {
            var line = ""
            var lineWidth = 0
            var lastSpace: String.Index?
            for character in paragraph {
                let characterWidth = Self.width(of: character)
                if lineWidth + characterWidth > width {
                    if let space = lastSpace, space > line.startIndex {
                        let rest = String(line[line.index(after: space)...])
                        lines.append(String(line[..<space]))
                        line = rest
                        lineWidth = self.width(of: rest)
                    } else {
                        lines.append(line)
                        line = ""
                        lineWidth = 0
                    }
                    lastSpace = nil
                }
                if character == " " { lastSpace = line.endIndex }
                line.append(character)
                lineWidth += characterWidth
            }
            lines.append(line)
        }
        return lines
    }

    /// `text` cut to `width` columns (with `…` when cut).
    public static func truncate(_ text: String, width: Int) -> String {
        guard self.width(of: text) > width else { return text }
        var out = ""
        var used = 0
        for character in text {
            let characterWidth = self.width(of: character)
            if used + characterWidth > width - 1 { break }
            out.append(character)
            used += characterWidth
        }
        return out + "…"
    }
}
