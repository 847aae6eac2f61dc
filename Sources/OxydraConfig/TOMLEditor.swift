import OxydraCore

/// Changes values in a TOML file's text without rewriting the rest of it: comments, blank lines,
/// key order, quoting and spacing stay as the user wrote them.
///
/// Only the edited values' text changes: a key that is set is replaced after its `=` (a comment
/// after it stays); a new key goes at the end of its table (an existing `[table]`, the dotted keys
/// that define it, or a new `[table]` at the end of the file); a removed key loses its lines. A
/// value inside an inline table (`x = { a = 1 }`) rewrites that inline table. Every edit is checked
/// by parsing the result and comparing it with the intended configuration; when they differ the
/// edit is refused, never written.
public struct TOMLEditor: Sendable {
    public enum Edit: Sendable, Hashable {
        /// Sets the value at a key path (tables on the way are created).
        case set([String], ConfigValue)
        /// Removes a key or a whole table; nothing happens when it is absent.
        case remove([String])
    }

    public private(set) var text: String
    let source: ConfigSource

    public init(text: String, source: ConfigSource) {
        self.text = text
        self.source = source
    }

    /// Applies `edits` in order, then checks the result (see the type's description).
    public mutating func apply(_ edits: [Edit]) throws(ConfigError) {
        var expected = try TOMLDocument.parse(text, source: source)
        for edit in edits {
            switch edit {
            case .set(let path, let value):
                guard !path.isEmpty else { throw failure("an empty key path cannot be set") }
                try set(path, value, current: expected)
                expected.set(ConfigNode(value, source: source), at: path)
            case .remove(let path):
                guard !path.isEmpty else { throw failure("an empty key path cannot be removed") }
                try remove(path, current: expected)
                expected.remove(at: path)
            }
        }
        let result = try TOMLDocument.parse(text, source: source)
        guard Self.plain(result) == Self.plain(expected) else {
            throw failure("the edit could not be made without changing other values; edit the file by hand")
        }
    }

    func failure(_ message: String) -> ConfigError { ConfigError(message: message, location: source) }

    /// The value without sources and without empty tables (a table whose last key was removed
    /// means the same as no table), to compare trees.
    public static func plain(_ node: ConfigNode) -> ConfigValue {
        switch node.value {
        case .array(let items): return .array(items.map { ConfigNode(plain($0), source: .builtInDefault) })
        case .table(let entries):
            var kept: [String: ConfigNode] = [:]
            for (key, child) in entries {
                let value = plain(child)
                if case .table(let inner) = value, inner.isEmpty, case .table = child.value { continue }
                kept[key] = ConfigNode(value, source: .builtInDefault)
            }
            return .table(kept)
        default: return node.value
        }
    }

    // MARK: set and remove

    private mutating func set(_ path: [String], _ value: ConfigValue, current: ConfigNode) throws(ConfigError) {
        var layout = try TOMLLayout(text, source: source)
        try layout.refuseInsideArrayTables(path)
        let wasHeaderTable = layout.headers.contains { $0.path.starts(with: path) }
        if wasHeaderTable
            || layout.entries.contains(where: { $0.path.starts(with: path) && $0.path.count > path.count })
        {
            // A table written as headers or dotted keys is replaced as a whole.
            try remove(path, current: current)
            layout = try TOMLLayout(text, source: source)
        }
        if let entry = layout.entries.first(where: { $0.path == path }) {
            splice(entry.valueRange, with: value.tomlText)
            return
        }
        if let entry = layout.entries.first(where: { path.starts(with: $0.path) }) {
            // Inside an inline table (or through a scalar that becomes a table).
            var node = current.node(at: entry.path) ?? ConfigNode.table(source: source)
            node.set(ConfigNode(value, source: source), at: Array(path.dropFirst(entry.path.count)))
            splice(entry.valueRange, with: node.value.tomlText)
            return
        }
        if case .table(let entries) = value, wasHeaderTable, !entries.isEmpty {
            let lines = entries.keys.sorted().map { "\(ConfigPath.renderKey($0)) = \(entries[$0]!.value.tomlText)" }
            append(["[\(ConfigPath.render(path))]"] + lines, newline: layout.newline)
            return
        }
        let parent = Array(path.dropLast())
        let line = "\(ConfigPath.renderKey(path.last!)) = \(value.tomlText)"
        if let header = layout.headers.first(where: { $0.path == parent && !$0.isArray }) {
            insert(line, after: layout.lastEntryEnd(under: header) ?? header.lineEnd, newline: layout.newline)
        } else if parent.isEmpty {
            if let end = layout.lastEntryEnd(under: nil) {
                insert(line, after: end, newline: layout.newline)
            } else if let first = layout.headers.first?.lineStart {
                splice(first..<first, with: line + layout.newline + layout.newline)
            } else {
                append([line], newline: layout.newline)
            }
        } else if let owner = layout.entries.last(where: { $0.path.starts(with: parent) }),
            parent.starts(with: owner.table)
        {
            // Dotted keys already define the parent (`[a]` with `b.c = 1`, or `a.b.c = 1` at the top).
            let relative = ConfigPath.render(Array(path.dropFirst(owner.table.count)))
            insert("\(relative) = \(value.tomlText)", after: owner.lineEnd, newline: layout.newline)
        } else {
            append(["[\(ConfigPath.render(parent))]", line], newline: layout.newline)
        }
    }

    private mutating func remove(_ path: [String], current: ConfigNode) throws(ConfigError) {
        var layout = try TOMLLayout(text, source: source)
        if let entry = layout.entries.first(where: { path.starts(with: $0.path) && $0.path != path }) {
            var node = current.node(at: entry.path) ?? ConfigNode.table(source: source)
            node.remove(at: Array(path.dropFirst(entry.path.count)))
            splice(entry.valueRange, with: node.value.tomlText)
            return
        }
        // Tables written with headers: the header through its last entry (comments and blank lines
        // before the next header stay with it). From the end, so earlier offsets stay valid.
        for index in layout.headers.indices.reversed() where layout.headers[index].path.starts(with: path) {
            let header = layout.headers[index]
            let end = layout.entries.last { $0.header == index }?.next ?? header.next
            splice(header.lineStart..<end, with: "")
        }
        layout = try TOMLLayout(text, source: source)
        for entry in layout.entries.reversed() where entry.path.starts(with: path) {
            splice(entry.lineStart..<entry.next, with: "")
        }
    }

    // MARK: text surgery (byte offsets into the UTF-8 text)

    private mutating func splice(_ range: Range<Int>, with replacement: String) {
        var bytes = Array(text.utf8)
        bytes.replaceSubrange(range, with: Array(replacement.utf8))
        text = String(decoding: bytes, as: UTF8.self)
    }

    /// A new line after the line whose newline (or the end of the text) is at `offset`.
    private mutating func insert(_ line: String, after offset: Int, newline: String) {
        let atEnd = offset == text.utf8.count
        splice(offset..<offset, with: newline + line)
        if atEnd { text += newline }
    }

    /// Lines at the end of the text, after a blank line.
    private mutating func append(_ lines: [String], newline: String) {
        if !text.isEmpty && !text.hasSuffix("\n") { text += newline }
        if !text.isEmpty && !text.hasSuffix(newline + newline) { text += newline }
        text += lines.joined(separator: newline) + newline
    }
}

/// Where things are in a TOML text: table headers, key/value entries with the byte range of each
/// value, and the sections headers start. Parses just enough TOML to find extents; the full
/// parser (TOMLKit) decides validity.
struct TOMLLayout {
    struct Header {
        var path: [String]
        var isArray: Bool
        var lineStart: Int
        /// Offset of the newline ending the header line (or the end of the text).
        var lineEnd: Int
        /// Where the next line starts.
        var next: Int
    }

    struct Entry {
        /// Full key path (the table's path and the dotted key).
        var path: [String]
        /// The path of the table the entry is written in.
        var table: [String]
        /// The header the entry is under (nil: the root).
        var header: Int?
        var lineStart: Int
        var valueRange: Range<Int>
        /// Offset of the newline ending the entry's last line (or the end of the text).
        var lineEnd: Int
        /// Where the next line starts.
        var next: Int
    }

    let bytes: [UInt8]
    let source: ConfigSource
    var headers: [Header] = []
    var entries: [Entry] = []
    var arrayTables: [Header] { headers.filter(\.isArray) }
    var newline: String
    private var position = 0
    private var line = 1

    init(_ text: String, source: ConfigSource) throws(ConfigError) {
        bytes = Array(text.utf8)
        self.source = source
        newline = text.contains("\r\n") ? "\r\n" : "\n"
        try scan()
    }

    /// The end of the last entry under `header` (nil: the root).
    func lastEntryEnd(under header: Header?) -> Int? {
        let index = header.flatMap { wanted in headers.firstIndex { $0.lineStart == wanted.lineStart } }
        return entries.last { $0.header == index }?.lineEnd
    }

    func refuseInsideArrayTables(_ path: [String]) throws(ConfigError) {
        if let table = arrayTables.first(where: { path.starts(with: $0.path) && path.count > $0.path.count }) {
            throw ConfigError(
                message:
                    "\(ConfigPath.render(path)) is inside the list of tables [[\(ConfigPath.render(table.path))]]; "
                    + "set the whole list instead",
                location: source)
        }
    }

    // MARK: scanning

    private func problem(_ message: String) -> ConfigError {
        ConfigError(message: "cannot edit the file: \(message) at line \(line)", location: source)
    }

    private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    private func peek(_ offset: Int) -> UInt8? {
        position + offset < bytes.count ? bytes[position + offset] : nil
    }

    private mutating func advance() {
        if current == UInt8(ascii: "\n") { line += 1 }
        position += 1
    }

    private mutating func skipSpaces() {
        while let byte = current, byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") { advance() }
    }

    private mutating func skipComment() {
        if current == UInt8(ascii: "#") {
            while let byte = current, byte != UInt8(ascii: "\n") { advance() }
        }
    }

    /// Spaces, a comment, then the end of the line; returns the newline's offset.
    private mutating func endOfLine() throws(ConfigError) -> Int {
        skipSpaces()
        skipComment()
        if current == UInt8(ascii: "\r") { advance() }
        guard current == nil || current == UInt8(ascii: "\n") else {
            throw problem("unexpected text after a value")
        }
        let end = current == nil ? bytes.count : (bytes[position - 1] == UInt8(ascii: "\r") ? position - 1 : position)
        if current != nil { advance() }
        return end
    }

    private mutating func scan() throws(ConfigError) {
        var table: [String] = []
        var header: Int?
        while position < bytes.count {
            let lineStart = position
            skipSpaces()
            guard let byte = current else { break }
            switch byte {
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "#"):
                _ = try endOfLine()
            case UInt8(ascii: "["):
                let isArray = peek(1) == UInt8(ascii: "[")
                advance()
                if isArray { advance() }
                skipSpaces()
                let path = try key()
                skipSpaces()
                guard current == UInt8(ascii: "]") else { throw problem("a table header must end with ]") }
                advance()
                if isArray {
                    guard current == UInt8(ascii: "]") else { throw problem("a [[table]] header must end with ]]") }
                    advance()
                }
                let end = try endOfLine()
                headers.append(
                    Header(path: path, isArray: isArray, lineStart: lineStart, lineEnd: end, next: position))
                table = path
                header = headers.count - 1
            default:
                let relative = try key()
                skipSpaces()
                guard current == UInt8(ascii: "=") else { throw problem("expected = after a key") }
                advance()
                skipSpaces()
                let valueStart = position
                try value()
                let valueEnd = position
                let end = try endOfLine()
                entries.append(
                    Entry(
                        path: table + relative, table: table, header: header, lineStart: lineStart,
                        valueRange: valueStart..<valueEnd, lineEnd: end, next: position))
            }
        }
    }

    /// A dotted key: bare, "basic" or 'literal' segments.
    private mutating func key() throws(ConfigError) -> [String] {
        var segments: [String] = []
        while true {
            skipSpaces()
            guard let byte = current else { throw problem("a key is missing") }
            if byte == UInt8(ascii: "\"") {
                segments.append(try basicString())
            } else if byte == UInt8(ascii: "'") {
                segments.append(try literalString())
            } else {
                let start = position
                while let next = current, Self.isBareKey(next) { advance() }
                guard position > start else { throw problem("a key is missing") }
                segments.append(String(decoding: bytes[start..<position], as: UTF8.self))
            }
            skipSpaces()
            guard current == UInt8(ascii: ".") else { return segments }
            advance()
        }
    }

    private static func isBareKey(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
            || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "_")
            || byte == UInt8(ascii: "-")
    }

    /// A "basic" string's content (escapes decoded well enough for key names).
    private mutating func basicString() throws(ConfigError) -> String {
        advance()
        var scalars = String.UnicodeScalarView()
        var raw: [UInt8] = []
        while let byte = current, byte != UInt8(ascii: "\"") {
            if byte == UInt8(ascii: "\n") { throw problem("a string must end on its line") }
            if byte == UInt8(ascii: "\\") {
                scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
                raw = []
                advance()
                guard let escaped = current else { break }
                advance()
                switch escaped {
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "b"): scalars.append("\u{8}")
                case UInt8(ascii: "f"): scalars.append("\u{C}")
                case UInt8(ascii: "u"), UInt8(ascii: "U"):
                    let count = escaped == UInt8(ascii: "u") ? 4 : 8
                    var hex = ""
                    for _ in 0..<count {
                        guard let digit = current else { break }
                        hex.unicodeScalars.append(Unicode.Scalar(digit))
                        advance()
                    }
                    if let code = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(code) { scalars.append(scalar) }
                default: scalars.append(Unicode.Scalar(escaped))
                }
                continue
            }
            raw.append(byte)
            advance()
        }
        guard current == UInt8(ascii: "\"") else { throw problem("a string is not closed") }
        advance()
        scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
        return String(scalars)
    }

    private mutating func literalString() throws(ConfigError) -> String {
        advance()
        let start = position
        while let byte = current, byte != UInt8(ascii: "'") {
            if byte == UInt8(ascii: "\n") { throw problem("a string must end on its line") }
            advance()
        }
        guard current == UInt8(ascii: "'") else { throw problem("a string is not closed") }
        let content = String(decoding: bytes[start..<position], as: UTF8.self)
        advance()
        return content
    }

    /// Skips one value of any kind.
    private mutating func value() throws(ConfigError) {
        guard let byte = current else { throw problem("a value is missing") }
        switch byte {
        case UInt8(ascii: "\""):
            if peek(1) == UInt8(ascii: "\""), peek(2) == UInt8(ascii: "\"") {
                try multiline(quote: UInt8(ascii: "\""), escapes: true)
            } else {
                _ = try basicString()
            }
        case UInt8(ascii: "'"):
            if peek(1) == UInt8(ascii: "'"), peek(2) == UInt8(ascii: "'") {
                try multiline(quote: UInt8(ascii: "'"), escapes: false)
            } else {
                _ = try literalString()
            }
        case UInt8(ascii: "["):
            advance()
            while true {
                skipBlank()
                guard let next = current else { throw problem("an array is not closed") }
                if next == UInt8(ascii: "]") {
                    advance()
                    return
                }
                try value()
                skipBlank()
                if current == UInt8(ascii: ",") { advance() }
            }
        case UInt8(ascii: "{"):
            advance()
            while true {
                skipBlank()
                guard let next = current else { throw problem("an inline table is not closed") }
                if next == UInt8(ascii: "}") {
                    advance()
                    return
                }
                _ = try key()
                skipSpaces()
                guard current == UInt8(ascii: "=") else { throw problem("expected = in an inline table") }
                advance()
                skipSpaces()
                try value()
                skipBlank()
                if current == UInt8(ascii: ",") { advance() }
            }
        default:
            let start = position
            while let next = current,
                ![
                    UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: ","),
                    UInt8(ascii: "]"), UInt8(ascii: "}"), UInt8(ascii: "#"),
                ].contains(next)
            {
                advance()
            }
            guard position > start else { throw problem("a value is missing") }
        }
    }

    /// Whitespace, newlines and comments (inside arrays).
    private mutating func skipBlank() {
        while let byte = current {
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n")
                || byte == UInt8(ascii: "\r")
            {
                advance()
            } else if byte == UInt8(ascii: "#") {
                skipComment()
            } else {
                return
            }
        }
    }

    private mutating func multiline(quote: UInt8, escapes: Bool) throws(ConfigError) {
        for _ in 0..<3 { advance() }
        while let byte = current {
            if escapes && byte == UInt8(ascii: "\\") {
                advance()
                advance()
                continue
            }
            if byte == quote, peek(1) == quote, peek(2) == quote {
                for _ in 0..<3 { advance() }
                // Up to two more quotes belong to the content (`""""" ` ends with two quotes inside).
                var extra = 0
                while current == quote && extra < 2 {
                    advance()
                    extra += 1
                }
                return
            }
            advance()
        }
        throw problem("a multi-line string is not closed")
    }
}
