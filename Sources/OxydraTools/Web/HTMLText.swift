/// Turns HTML into readable plain text: scripts, styles and markup removed, block elements on
/// their own lines, entities decoded, whitespace collapsed. Not a browser — enough for a model to
/// read an article.
public enum HTMLText {
    public struct Result: Sendable, Hashable {
        public var title: String?
        public var text: String
    }

    static let blockTags: Set<String> = [
        "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "section", "article",
        "header", "footer", "blockquote", "pre", "hr", "dt", "dd", "nav", "main", "aside", "figure", "form",
    ]
    static let hiddenTags: Set<String> = ["script", "style", "noscript", "template", "svg", "iframe"]

    public static func convert(_ html: String) -> Result {
        var output = ""
        var title: String?
        var index = html.startIndex
        var skipUntil: String?
        var titleText: String?
        while index < html.endIndex {
            let character = html[index]
            if character == "<" {
                guard let close = html[index...].firstIndex(of: ">") else { break }
                let inner = html[html.index(after: index)..<close]
                index = html.index(after: close)
                if inner.hasPrefix("!--") {
                    if !inner.hasSuffix("--"), let end = html[index...].firstRange(of: "-->") { index = end.upperBound }
                    continue
                }
                let closing = inner.hasPrefix("/")
                let name = inner.drop { $0 == "/" }.prefix { $0.isLetter || $0.isNumber }.lowercased()
                if let hidden = skipUntil {
                    if closing && name == hidden { skipUntil = nil }
                    continue
                }
                if name == "title" {
                    if closing {
                        title = titleText.map { collapse(decodeEntities($0)) }
                        titleText = nil
                    } else {
                        titleText = ""
                    }
                    continue
                }
                if !closing && hiddenTags.contains(name) && !inner.hasSuffix("/") {
                    skipUntil = name
                    continue
                }
                if blockTags.contains(name) { output += "\n" }
                if name == "li" && !closing { output += "- " }
                continue
            }
            let next = html[index...].firstIndex(of: "<") ?? html.endIndex
            if skipUntil == nil {
                if titleText != nil {
                    titleText! += html[index..<next]
                } else {
                    output += html[index..<next]
                }
            }
            index = next
        }
        let lines = decodeEntities(output).split(separator: "\n", omittingEmptySubsequences: false).map {
            collapse(String($0))
        }
        return Result(title: title, text: lines.filter { !$0.isEmpty }.joined(separator: "\n"))
    }

    static func collapse(_ text: String) -> String {
        text.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }

    static let named: [String: String] = [
        "amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'", "nbsp": " ", "mdash": "—", "ndash": "–",
        "hellip": "…", "copy": "©", "reg": "®", "laquo": "«", "raquo": "»", "rsquo": "’", "lsquo": "‘", "ldquo": "“",
        "rdquo": "”",
    ]

    static func decodeEntities(_ text: String) -> String {
        guard text.contains("&") else { return text }
        var result = ""
        var index = text.startIndex
        while index < text.endIndex {
            guard text[index] == "&", let semicolon = text[index...].prefix(12).firstIndex(of: ";") else {
                result.append(text[index])
                index = text.index(after: index)
                continue
            }
            let entity = text[text.index(after: index)..<semicolon]
            var decoded: String?
            if entity.hasPrefix("#x") || entity.hasPrefix("#X") {
                decoded = UInt32(entity.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init).map {
                    String(Character($0))
                }
            } else if entity.hasPrefix("#") {
                decoded = UInt32(entity.dropFirst()).flatMap(Unicode.Scalar.init).map { String(Character($0)) }
            } else {
                decoded = named[String(entity)]
            }
            if let decoded {
                result += decoded
                index = text.index(after: semicolon)
            } else {
                result.append("&")
                index = text.index(after: index)
            }
        }
        return result
    }
}
