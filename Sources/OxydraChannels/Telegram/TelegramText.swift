import OxydraCore

/// Model Markdown as Telegram messages: split to Telegram's 4096-character limit at paragraph,
/// line or code-block boundaries, and rendered as the small HTML subset Telegram accepts, with
/// everything else escaped (model output is hostile; it must never break the parse or add markup).
public enum TelegramText {
    /// Telegram's limit on a message's text after entity parsing, in UTF-16 code units.
    public static let limit = 4096

    /// Pieces of at most `limit` UTF-16 units, cut at a blank line, else a line break, else a space;
    /// a code block cut in two is closed and reopened so each piece renders on its own.
    public static func split(_ text: String, limit: Int = limit) -> [String] {
        var pieces: [String] = []
        var rest = Substring(text)
        while rest.utf16.count > limit {
            let window = prefix(rest, utf16: limit - 8)
            var cut = window.endIndex
            for separator in ["\n\n", "\n", " "] {
                if let end = lastEnd(of: separator, in: window), end > window.startIndex {
                    cut = end
                    break
                }
            }
            var piece = String(rest[..<cut])
            rest = rest[cut...]
            // Inside an open fence: close it here and open it again in the next piece.
            let fences = piece.split(separator: "```", omittingEmptySubsequences: false).count - 1
            if fences % 2 == 1 {
                let opening = lastEnd(of: "```", in: Substring(piece)).map { piece[$0...] } ?? ""
                let language = opening.prefix { !$0.isNewline && !$0.isWhitespace }
                piece += (piece.hasSuffix("\n") ? "" : "\n") + "```"
                rest = Substring("```\(language)\n") + rest
            }
            pieces.append(piece.trimmingTrailingNewlines)
        }
        if !rest.isEmpty || pieces.isEmpty { pieces.append(String(rest)) }
        return pieces
    }

    /// Where the last occurrence of `needle` in `text` ends.
    static func lastEnd(of needle: String, in text: Substring) -> String.Index? {
        var index = text.endIndex
        while index > text.startIndex {
            index = text.index(before: index)
            if text[index...].hasPrefix(needle) { return text.index(index, offsetBy: needle.count) }
        }
        return nil
    }

    private static func prefix(_ text: Substring, utf16 count: Int) -> Substring {
        var index = text.startIndex
        var used = 0
        while index < text.endIndex {
            let next = text.index(after: index)
            let width = text[index..<next].utf16.count
            if used + width > count { break }
            used += width
            index = next
        }
        return text[..<index]
    }

    /// Telegram HTML for `markdown`: fenced code → `<pre><code>`, `` `code` ``, `**bold**`,
    /// `*italic*`/`_italic_`, `~~strike~~`, `[text](https://…)`, `# heading` → bold. Everything is
    /// escaped first; tags are only ever added in matched pairs.
    public static func html(_ markdown: String) -> String {
        var output = ""
        let parts = markdown.split(separator: "```", omittingEmptySubsequences: false).map(String.init)
        for (index, part) in parts.enumerated() {
            if index % 2 == 1 && index < parts.count - 1 {
                var body = Substring(part)
                var language = ""
                if let newline = body.firstIndex(of: "\n") {
                    let head = body[..<newline]
                    if head.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "+" || $0 == "_" }) {
                        language = String(head)
                        body = body[body.index(after: newline)...]
                    }
                }
                if body.hasSuffix("\n") { body = body.dropLast() }
                let attribute = language.isEmpty ? "" : " class=\"language-\(language)\""
                output += "<pre><code\(attribute)>\(escape(String(body)))</code></pre>"
            } else {
                let text = index % 2 == 1 ? "```" + part : part
                output += text.split(separator: "\n", omittingEmptySubsequences: false).map { inline(String($0)) }
                    .joined(separator: "\n")
            }
        }
        return output
    }

    public static func escape(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            default: result.append(character)
            }
        }
        return result
    }

    /// One line outside code blocks.
    static func inline(_ line: String) -> String {
        var text = escape(line)
        if let heading = text.firstMatch(of: #/^#{1,6}\s+(.+)$/#) { text = "<b>\(heading.1)</b>" }
        // Code spans first; their content is not formatted further.
        var spans: [String] = []
        text = text.replacing(#/`([^`]+)`/#) { match in
            spans.append("<code>\(match.1)</code>")
            return "\u{1}\(spans.count - 1)\u{2}"
        }
        text = text.replacing(#/\*\*([^*]+)\*\*/#) { "<b>\($0.1)</b>" }
        text = text.replacing(#/~~([^~]+)~~/#) { "<s>\($0.1)</s>" }
        text = text.replacing(#/(^|[^*\w])\*([^*\s][^*]*)\*/#) { "\($0.1)<i>\($0.2)</i>" }
        text = text.replacing(#/(^|[^_\w])_([^_\s][^_]*)_(?!\w)/#) { "\($0.1)<i>\($0.2)</i>" }
        text = text.replacing(#/\[([^\]]+)\]\((https?://[^\s)"]+)\)/#) { "<a href=\"\($0.2)\">\($0.1)</a>" }
        for (index, span) in spans.enumerated() { text = text.replacing("\u{1}\(index)\u{2}", with: span) }
        return text
    }
}

extension String {
    fileprivate var trimmingTrailingNewlines: String {
        var copy = self
        while copy.hasSuffix("\n") { copy.removeLast() }
        return copy
    }
}
