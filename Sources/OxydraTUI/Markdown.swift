import OxydraCore

/// Markdown for the terminal: headings, emphasis, inline code, links, lists (with task boxes),
/// block quotes, rules, tables and fenced code blocks with syntax highlighting, wrapped to a width.
/// A line break in the source is a line break on screen (as in chat apps and GitHub comments).
///
/// Rendering is incremental: lines that ended are rendered once and kept; each new delta of a
/// streamed answer renders only the line still being written (and a table still growing).
/// Without colour (`NO_COLOR`) the structure stays readable: rules under headings, bullets,
/// `│` before quotes, box-drawn tables, backticks around inline code.
struct Markdown: Sendable {
    enum Alignment: Sendable { case left, right, center }

    let width: Int
    let color: Bool
    /// Encoded lines of blocks that can no longer change.
    private var committed: [String] = []
    /// How much of the source (UTF-8 bytes) `committed` and `table` cover.
    private var consumed = 0
    private var state = BlockState()
    /// Source lines of a table still being read (a table is laid out once all its rows are known).
    private var table: [String] = []

    struct BlockState: Sendable {
        /// The open code fence: its marker (```` ``` ```` or `~~~`), its length and highlighter.
        var fence: (marker: Character, length: Int, highlighter: Highlighter)?
        var lastWasBlank = true
    }

    init(width: Int, color: Bool) {
        self.width = max(width, 8)
        self.color = color
    }

    /// The rendered lines of `source`, which must extend the source of the previous call (streamed
    /// text only grows). Text that does not is rendered from scratch.
    mutating func render(_ source: String) -> [String] {
        let utf8 = source.utf8
        if consumed > utf8.count { self = Markdown(width: width, color: color) }
        var start = utf8.index(utf8.startIndex, offsetBy: consumed)
        while let newline = utf8[start...].firstIndex(of: 0x0A) {
            let line = String(decoding: utf8[start..<newline], as: UTF8.self)
            consume(line)
            start = utf8.index(after: newline)
            consumed = utf8.distance(from: utf8.startIndex, to: start)
        }
        let tail = String(decoding: utf8[start...], as: UTF8.self)
        var scratch = self
        if !tail.isEmpty { scratch.consume(tail) }
        scratch.flushTable()
        return scratch.committed
    }

    private mutating func consume(_ line: String) {
        if state.fence == nil, Self.isTableRow(line) {
            table.append(line)
            return
        }
        flushTable()
        append(renderLine(line))
    }

    private mutating func flushTable() {
        guard !table.isEmpty else { return }
        append(renderTable(table))
        table = []
        state.lastWasBlank = false
    }

    private mutating func append(_ lines: [[Span]]) {
        for line in lines { committed.append(StyledText.encode(line, color: color)) }
    }

    // MARK: blocks

    private static let rule = TextStyle.faint

    private mutating func renderLine(_ raw: String) -> [[Span]] {
        let line = raw.hasSuffix("\r") ? String(raw.dropLast()) : raw
        let trimmed = line.drop { $0 == " " }
        let indent = line.count - trimmed.count

        if var fence = state.fence {
            if indent < 4, trimmed.first == fence.marker,
                trimmed.prefix { $0 == fence.marker }.count >= fence.length,
                trimmed.drop(while: { $0 == fence.marker }).allSatisfy(\.isWhitespace)
            {
                state.fence = nil
                state.lastWasBlank = false
                return [[Span("╰─", Self.rule)]]
            }
            let spans = fence.highlighter.highlight(line)
            state.fence = fence
            let gutter = [Span("│ ", Self.rule)]
            return StyledText.wrap(spans, width: width, first: gutter, rest: gutter, hard: true)
        }

        if indent < 4, let marker = trimmed.first, marker == "`" || marker == "~" {
            let length = trimmed.prefix { $0 == marker }.count
            let info = trimmed.dropFirst(length).trimmed
            if length >= 3, marker == "~" || !info.contains("`") {
                let language = String(info.prefix { !$0.isWhitespace })
                state.fence = (marker, length, Highlighter(language: language))
                state.lastWasBlank = false
                return [[Span("╭─" + (language.isEmpty ? "" : " " + language), Self.rule)]]
            }
        }

        if trimmed.allSatisfy(\.isWhitespace) {
            defer { state.lastWasBlank = true }
            return state.lastWasBlank ? [] : [[]]
        }
        state.lastWasBlank = false

        if indent < 4, trimmed.first == "#" {
            let level = trimmed.prefix { $0 == "#" }.count
            let rest = trimmed.dropFirst(level)
            if level <= 6, rest.isEmpty || rest.first == " " {
                let text = String(rest.trimmed.reversed().drop { $0 == "#" }.reversed()).trimmed
                var style = TextStyle(bold: true)
                if color { style.color = level == 1 ? 35 : level == 2 ? 36 : nil }
                if level >= 3 && color { style.underline = level == 3 }
                var lines = StyledText.wrap(Self.inline(text, base: style, color: color), width: width)
                if level <= 2 {
                    let ruleWidth = min(lines.map(StyledText.width).max() ?? 0, width)
                    lines.append([Span(String(repeating: level == 1 ? "═" : "─", count: ruleWidth), Self.rule)])
                }
                return lines
            }
        }

        if indent < 4, Self.isRule(trimmed) {
            return [[Span(String(repeating: "─", count: width), Self.rule)]]
        }

        if indent < 4, trimmed.first == ">" {
            var depth = 0
            var rest = trimmed[...]
            while rest.first == ">" {
                depth += 1
                rest = rest.dropFirst().drop { $0 == " " }
            }
            let bar = [Span(String(repeating: "│ ", count: depth), Self.rule)]
            let spans = Self.inline(String(rest), base: TextStyle(italic: color, dim: color), color: color)
            return StyledText.wrap(spans, width: width, first: bar, rest: bar)
        }

        if let item = Self.listItem(trimmed) {
            let level = min(indent / 2, 6)
            let pad = String(repeating: "  ", count: level)
            var marker = item.marker
            if item.ordered == nil { marker = ["•", "◦", "▪"][level % 3] }
            var body = item.body
            if body.hasPrefix("[ ] ") || body.hasPrefix("[x] ") || body.hasPrefix("[X] ") {
                marker += body.hasPrefix("[ ]") ? " ☐" : " ☑"
                body = String(body.dropFirst(4))
            }
            let first = [Span(pad), Span(marker + " ", TextStyle(bold: false, color: color ? 33 : nil))]
            let hanging = [Span(pad + String(repeating: " ", count: TextLayout.width(of: marker) + 1))]
            return StyledText.wrap(
                Self.inline(body, base: .plain, color: color), width: width, first: first, rest: hanging)
        }

        let pad = [Span(String(repeating: " ", count: min(indent, 8)))]
        return StyledText.wrap(
            Self.inline(String(trimmed), base: .plain, color: color), width: width, first: pad, rest: pad)
    }

    static func isRule(_ text: Substring) -> Bool {
        guard let first = text.first, first == "-" || first == "*" || first == "_" else { return false }
        var count = 0
        for character in text {
            if character == first {
                count += 1
            } else if character != " " {
                return false
            }
        }
        return count >= 3
    }

    static func listItem(_ text: Substring) -> (marker: String, ordered: Int?, body: String)? {
        guard let first = text.first else { return nil }
        if first == "-" || first == "*" || first == "+" {
            let rest = text.dropFirst()
            guard rest.first == " " else { return nil }
            return (String(first), nil, String(rest.drop { $0 == " " }))
        }
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, digits.count <= 9 else { return nil }
        let rest = text.dropFirst(digits.count)
        guard let delimiter = rest.first, delimiter == "." || delimiter == ")", rest.dropFirst().first == " " else {
            return nil
        }
        return (String(digits) + String(delimiter), Int(digits), String(rest.dropFirst().drop { $0 == " " }))
    }

    // MARK: tables

    static func isTableRow(_ line: String) -> Bool {
        let trimmed = line.trimmed
        return trimmed.hasPrefix("|") && trimmed.count >= 2
    }

    /// The cells of a `| a | b |` row (pipes inside backticks or escaped with `\` do not split).
    static func cells(_ line: String) -> [String] {
        var cells: [String] = []
        var current = ""
        var inCode = false
        var escaped = false
        var trimmed = Substring(line.trimmed)
        if trimmed.first == "|" { trimmed = trimmed.dropFirst() }
        for character in trimmed {
            if escaped {
                if character != "|" { current.append("\\") }
                current.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "`" {
                inCode.toggle()
                current.append(character)
            } else if character == "|" && !inCode {
                cells.append(current.trimmed)
                current = ""
            } else {
                current.append(character)
            }
        }
        if !current.trimmed.isEmpty { cells.append(current.trimmed) }
        return cells
    }

    static func alignments(_ cells: [String]) -> [Alignment]? {
        var out: [Alignment] = []
        for cell in cells {
            let core = cell.drop { $0 == ":" }.reversed().drop { $0 == ":" }
            guard !core.isEmpty, core.allSatisfy({ $0 == "-" }) else { return nil }
            let left = cell.hasPrefix(":")
            let right = cell.hasSuffix(":")
            out.append(left && right ? .center : right ? .right : .left)
        }
        return out
    }

    private func renderTable(_ source: [String]) -> [[Span]] {
        var rows = source.map(Self.cells)
        var alignment: [Alignment] = []
        var hasHeader = false
        if rows.count >= 2, let found = Self.alignments(rows[1]) {
            alignment = found
            hasHeader = true
            rows.remove(at: 1)
        }
        let columns = rows.map(\.count).max() ?? 0
        guard columns > 0 else { return [] }
        let styled: [[[Span]]] = rows.enumerated().map { index, row in
            (0..<columns).map { column in
                let text = column < row.count ? row[column] : ""
                return Self.inline(text, base: TextStyle(bold: hasHeader && index == 0), color: color)
            }
        }
        let natural = (0..<columns).map { column in
            max(styled.map { StyledText.width(of: $0[column]) }.max() ?? 0, 1)
        }
        let available = width - (3 * columns + 1)
        guard available >= 3 * columns else {
            return narrowTable(styled, hasHeader: hasHeader)
        }
        let widths = Self.share(natural, available: available)
        var out: [[Span]] = []
        func border(_ left: String, _ middle: String, _ right: String) -> [Span] {
            [
                Span(
                    left + widths.map { String(repeating: "─", count: $0 + 2) }.joined(separator: middle) + right,
                    Self.rule)
            ]
        }
        out.append(border("┌", "┬", "┐"))
        for (index, row) in styled.enumerated() {
            let wrapped = (0..<columns).map { StyledText.wrap(row[$0], width: widths[$0]) }
            let height = wrapped.map(\.count).max() ?? 1
            for lineIndex in 0..<height {
                var line = [Span("│ ", Self.rule)]
                for column in 0..<columns {
                    let cell = lineIndex < wrapped[column].count ? wrapped[column][lineIndex] : []
                    let align = column < alignment.count ? alignment[column] : .left
                    line += StyledText.fit(cell, width: widths[column], alignment: align)
                    line.append(Span(column == columns - 1 ? " │" : " │ ", Self.rule))
                }
                out.append(line)
            }
            if index == 0 && hasHeader && styled.count > 1 { out.append(border("├", "┼", "┤")) }
        }
        out.append(border("└", "┴", "┘"))
        return out
    }

    /// Column widths that fit `available`: narrow columns keep their width, wide ones share the rest.
    static func share(_ natural: [Int], available: Int) -> [Int] {
        guard natural.reduce(0, +) > available else { return natural }
        var widths = natural
        var open = Set(natural.indices)
        var budget = available
        while true {
            let fair = max(budget / max(open.count, 1), 3)
            let fitting = open.filter { natural[$0] <= fair }
            if fitting.isEmpty {
                var remainder = budget - fair * open.count
                for index in open.sorted() {
                    widths[index] = fair + (remainder > 0 ? 1 : 0)
                    remainder -= 1
                }
                return widths
            }
            for index in fitting {
                widths[index] = natural[index]
                budget -= natural[index]
                open.remove(index)
            }
            if open.isEmpty { return widths }
        }
    }

    /// A table too wide for the screen: each row as `header: value` lines.
    private func narrowTable(_ rows: [[[Span]]], hasHeader: Bool) -> [[Span]] {
        var out: [[Span]] = []
        let header = hasHeader ? rows[0] : []
        for (index, row) in rows.enumerated() where !(hasHeader && index == 0) {
            if !out.isEmpty { out.append([Span("─", Self.rule)]) }
            for (column, cell) in row.enumerated() {
                let name = column < header.count ? header[column].map(\.text).joined() : ""
                let label = name.isEmpty ? [] : [Span(name + ": ", TextStyle(bold: true))]
                out += StyledText.wrap(label + cell, width: width, rest: [Span("  ")])
            }
        }
        return out
    }

    // MARK: inline

    static let codeStyle = TextStyle(color: 33)

    /// Emphasis (`*`, `_`, `**`, `__`, `~~`), inline code, links and autolinks as styled spans.
    static func inline(_ text: String, base: TextStyle, color: Bool) -> [Span] {
        var out: [Span] = []
        let characters = Array(text)
        parse(characters, 0..<characters.count, style: base, color: color, into: &out)
        return out
    }

    private static func parse(
        _ c: [Character], _ range: Range<Int>, style: TextStyle, color: Bool, into out: inout [Span]
    ) {
        func emit(_ text: some StringProtocol, _ style: TextStyle) { out.append(text, style) }
        func run(of character: Character, at index: Int) -> Int {
            var end = index
            while end < range.upperBound, c[end] == character { end += 1 }
            return end - index
        }
        /// The next `count` × `character` closing an emphasis opened before `from`.
        func closer(_ character: Character, count: Int, from: Int) -> Int? {
            var index = from
            while index + count <= range.upperBound {
                if c[index] == "\\" {
                    index += 2
                    continue
                }
                if c[index] == "`" {
                    let ticks = run(of: "`", at: index)
                    index += ticks
                    continue
                }
                if c[index] == character {
                    let length = run(of: character, at: index)
                    // `***both***`: the bold closes on the last two, the italic inside on the first.
                    let end = index + (count == 2 ? length - 2 : 0)
                    let after = index + length
                    if count == 2 ? length >= 2 : length == 1, index > from, !c[index - 1].isWhitespace,
                        character != "_" || after >= range.upperBound || !(c[after].isLetter || c[after].isNumber)
                    {
                        return end
                    }
                    index += length
                    continue
                }
                index += 1
            }
            return nil
        }
        var index = range.lowerBound
        while index < range.upperBound {
            let character = c[index]
            switch character {
            case "\\" where index + 1 < range.upperBound && (c[index + 1].isPunctuation || c[index + 1].isSymbol):
                emit(String(c[index + 1]), style)
                index += 2
            case "`":
                let ticks = run(of: "`", at: index)
                var search = index + ticks
                var found: Int?
                while search < range.upperBound {
                    if c[search] == "`" {
                        let length = run(of: "`", at: search)
                        if length == ticks {
                            found = search
                            break
                        }
                        search += length
                    } else {
                        search += 1
                    }
                }
                guard let end = found else {
                    emit(String(c[index..<(index + ticks)]), style)
                    index += ticks
                    continue
                }
                var inner = String(c[(index + ticks)..<end])
                if inner.hasPrefix(" ") && inner.hasSuffix(" ") && inner.count > 2 {
                    inner = String(inner.dropFirst().dropLast())
                }
                if color {
                    emit(inner, style.with { $0.color = codeStyle.color })
                } else {
                    emit("`" + inner + "`", style)
                }
                index = end + ticks
            case "*", "_", "~":
                let length = run(of: character, at: index)
                let opens =
                    index + length < range.upperBound && !c[index + length].isWhitespace
                    && (character != "_" || index == range.lowerBound
                        || !(c[index - 1].isLetter || c[index - 1].isNumber))
                let wanted = character == "~" ? 2 : min(length, 2)
                if opens, character != "~" || length == 2,
                    let end = closer(character, count: wanted, from: index + wanted)
                {
                    let inner: TextStyle =
                        character == "~"
                        ? style.with { $0.strike = true }
                        : wanted == 2 ? style.with { $0.bold = true } : style.with { $0.italic = true }
                    parse(c, (index + wanted)..<end, style: inner, color: color, into: &out)
                    index = end + wanted
                } else {
                    emit(String(c[index..<(index + length)]), style)
                    index += length
                }
            case "[", "!":
                let image = character == "!"
                let open = image ? index + 1 : index
                guard open < range.upperBound, c[open] == "[",
                    let close = c[open..<range.upperBound].firstIndex(of: "]"),
                    close + 1 < range.upperBound, c[close + 1] == "(",
                    let end = c[(close + 1)..<range.upperBound].firstIndex(of: ")")
                else {
                    emit(String(character), style)
                    index += 1
                    continue
                }
                let label = String(c[(open + 1)..<close])
                let url = String(c[(close + 2)..<end]).split(separator: " ").first.map(String.init) ?? ""
                if image {
                    emit("[image: " + (label.isEmpty ? "untitled" : label) + "]", style.with { $0.dim = color })
                } else {
                    parse(
                        c, (open + 1)..<close,
                        style: style.with {
                            $0.underline = color
                            $0.color = color ? 34 : nil
                        },
                        color: color, into: &out)
                }
                if !url.isEmpty, url != label {
                    emit(" (" + url + ")", style.with { $0.dim = color })
                }
                index = end + 1
            case "<":
                if let end = c[index..<range.upperBound].firstIndex(of: ">") {
                    let inside = String(c[(index + 1)..<end])
                    if inside.hasPrefix("http://") || inside.hasPrefix("https://") || inside.hasPrefix("mailto:") {
                        emit(
                            inside,
                            style.with {
                                $0.underline = color
                                $0.color = color ? 34 : nil
                            })
                        index = end + 1
                        continue
                    }
                }
                emit("<", style)
                index += 1
            default:
                var end = index + 1
                while end < range.upperBound, !"\\`*_~[!<".contains(c[end]) { end += 1 }
                emit(String(c[index..<end]), style)
                index = end
            }
        }
    }
}
