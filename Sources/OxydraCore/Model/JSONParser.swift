/// Why a text is not JSON, with the byte offset of the problem.
public struct JSONSyntaxError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public var offset: Int
    public var description: String { "\(message) at byte \(offset)" }
}

/// A small, fast JSON parser producing ``JSONValue`` directly from UTF-8 bytes.
///
/// Streamed model responses carry one small JSON document per event; Foundation's decoders cost
/// several times the network time for those, so the stream translators use this parser instead.
/// It follows RFC 8259 (no comments, no trailing commas), keeps integers that fit in `Int` as
/// `.integer`, and limits nesting to 512 levels.
public struct JSONParser {
    @inlinable public static var maxDepth: Int { 512 }

    public static func parse(_ text: String) throws(JSONSyntaxError) -> JSONValue {
        var text = text
        return try text.withUTF8 { bytes in Result { () throws(JSONSyntaxError) in try parse(bytes) } }.get()
    }

    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(JSONSyntaxError) -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.position == bytes.count else { throw parser.error("unexpected data after the JSON value") }
        return value
    }

    // The reader below (``read(_:_:)``, ``readObject(_:)``, ``readArray(_:)``) is inlined into its
    // callers in other modules, closures and all: a stream chunk's reader then walks the document
    // in one function instead of through a closure call per container, key and value.
    @usableFromInline let bytes: UnsafeBufferPointer<UInt8>
    @usableFromInline var position = 0
    /// How many containers the reader (``read(_:_:)``) is inside.
    @usableFromInline var readerDepth = 0
    @usableFromInline init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    @usableFromInline func error(_ message: String) -> JSONSyntaxError {
        JSONSyntaxError(message: message, offset: position)
    }

    @inlinable mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x0A, 0x0D, 0x09: position += 1
            default: return
            }
        }
    }

    @usableFromInline mutating func parseValue(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        guard position < bytes.count else { throw error("unexpected end of JSON") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw error("unexpected character")
        }
    }

    private mutating func literal(_ word: StaticString, _ value: JSONValue) throws(JSONSyntaxError) -> JSONValue {
        let count = word.utf8CodeUnitCount
        guard position + count <= bytes.count else { throw error("unexpected end of JSON") }
        let matches = word.withUTF8Buffer { expected in
            (0..<count).allSatisfy { bytes[position + $0] == expected[$0] }
        }
        guard matches else { throw error("invalid literal") }
        position += count
        return value
    }

    private mutating func parseObject(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        guard depth <= Self.maxDepth else { throw error("JSON nested too deeply") }
        position += 1
        var object: [String: JSONValue] = [:]
        skipWhitespace()
        if position < bytes.count && bytes[position] == UInt8(ascii: "}") {
            position += 1
            return .object(object)
        }
        while true {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw error("expected a key") }
            let key = try parseString()
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw error("expected `:`") }
            position += 1
            skipWhitespace()
            object[key] = try parseValue(depth: depth)
            skipWhitespace()
            guard position < bytes.count else { throw error("unexpected end of JSON") }
            if bytes[position] == UInt8(ascii: ",") {
                position += 1
                continue
            }
            guard bytes[position] == UInt8(ascii: "}") else { throw error("expected `,` or `}`") }
            position += 1
            return .object(object)
        }
    }

    private mutating func parseArray(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        guard depth <= Self.maxDepth else { throw error("JSON nested too deeply") }
        position += 1
        var array: [JSONValue] = []
        skipWhitespace()
        if position < bytes.count && bytes[position] == UInt8(ascii: "]") {
            position += 1
            return .array(array)
        }
        while true {
            skipWhitespace()
            array.append(try parseValue(depth: depth))
            skipWhitespace()
            guard position < bytes.count else { throw error("unexpected end of JSON") }
            if bytes[position] == UInt8(ascii: ",") {
                position += 1
                continue
            }
            guard bytes[position] == UInt8(ascii: "]") else { throw error("expected `,` or `]`") }
            position += 1
            return .array(array)
        }
    }

    /// Moves past a value, checking it exactly as ``parseValue(depth:)`` would, without building it.
    @usableFromInline mutating func skipValue(depth: Int) throws(JSONSyntaxError) {
        guard position < bytes.count else { throw error("unexpected end of JSON") }
        switch bytes[position] {
        case UInt8(ascii: "{"): try skipContainer(closing: UInt8(ascii: "}"), depth: depth + 1)
        case UInt8(ascii: "["): try skipContainer(closing: UInt8(ascii: "]"), depth: depth + 1)
        case UInt8(ascii: "\""): try skipString()
        default: _ = try parseValue(depth: depth)  // literals and numbers build nothing on the heap
        }
    }

    private mutating func skipContainer(closing: UInt8, depth: Int) throws(JSONSyntaxError) {
        try walkContainer(closing: closing, depth: depth) { (parser: inout JSONParser) throws(JSONSyntaxError) in
            if closing == UInt8(ascii: "}") {
                _ = try parser.memberKey { (parser: inout JSONParser) throws(JSONSyntaxError) in try parser.skipString()
                }
            }
            try parser.skipValue(depth: depth)
        }
    }

    /// The key of an object member and its `:`, through `key` (which reads or skips the string),
    /// leaving the parser at the member's value.
    @inlinable mutating func memberKey<Key>(_ key: (inout JSONParser) throws(JSONSyntaxError) -> Key)
        throws(JSONSyntaxError) -> Key
    {
        guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw error("expected a key") }
        let result = try key(&self)
        skipWhitespace()
        guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw error("expected `:`") }
        position += 1
        skipWhitespace()
        return result
    }

    /// The container that comes next (its opening bracket at `position`), one item — a member or
    /// an element, which `item` reads — at a time: the checks and errors of a container.
    @inlinable mutating func walkContainer(
        closing: UInt8, depth: Int, _ item: (inout JSONParser) throws(JSONSyntaxError) -> Void
    ) throws(JSONSyntaxError) {
        guard depth <= Self.maxDepth else { throw error("JSON nested too deeply") }
        position += 1
        skipWhitespace()
        if position < bytes.count && bytes[position] == closing {
            position += 1
            return
        }
        while true {
            skipWhitespace()
            try item(&self)
            skipWhitespace()
            guard position < bytes.count else { throw error("unexpected end of JSON") }
            if bytes[position] == UInt8(ascii: ",") {
                position += 1
                continue
            }
            guard bytes[position] == closing else {
                throw error(closing == UInt8(ascii: "}") ? "expected `,` or `}`" : "expected `,` or `]`")
            }
            position += 1
            return
        }
    }

    /// An ASCII string without escapes is only scanned; anything else goes through ``parseString()``
    /// so that it is checked the same way.
    private mutating func skipString() throws(JSONSyntaxError) {
        var scan = position + 1
        while scan < bytes.count {
            let byte = bytes[scan]
            if byte == UInt8(ascii: "\"") {
                position = scan + 1
                return
            }
            if byte == UInt8(ascii: "\\") || byte >= 0x80 || byte < 0x20 { break }
            scan += 1
        }
        _ = try parseString()
    }

    private mutating func parseString() throws(JSONSyntaxError) -> String {
        position += 1
        let start = position
        // Fast path: no escapes.
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                guard let text = String(exactUTF8: UnsafeBufferPointer(rebasing: bytes[start..<position])) else {
                    throw error("string is not valid UTF-8")
                }
                position += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw error("control character in string") }
            position += 1
        }
        var scratch = [UInt8](UnsafeBufferPointer(rebasing: bytes[start..<position]))
        while position < bytes.count {
            let byte = bytes[position]
            switch byte {
            case UInt8(ascii: "\""):
                position += 1
                guard let text = String(exactUTF8: scratch[...]) else {
                    throw error("string is not valid UTF-8")
                }
                return text
            case UInt8(ascii: "\\"):
                position += 1
                guard position < bytes.count else { throw error("unexpected end of JSON") }
                let escape = bytes[position]
                position += 1
                switch escape {
                case UInt8(ascii: "\""): scratch.append(0x22)
                case UInt8(ascii: "\\"): scratch.append(0x5C)
                case UInt8(ascii: "/"): scratch.append(0x2F)
                case UInt8(ascii: "b"): scratch.append(0x08)
                case UInt8(ascii: "f"): scratch.append(0x0C)
                case UInt8(ascii: "n"): scratch.append(0x0A)
                case UInt8(ascii: "r"): scratch.append(0x0D)
                case UInt8(ascii: "t"): scratch.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"),
                            bytes[position + 1] == UInt8(ascii: "u")
                        else { throw error("unpaired surrogate in \\u escape") }
                        position += 2
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw error("invalid surrogate pair") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw error("unpaired surrogate in \\u escape")
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw error("invalid \\u escape") }
                    scratch.append(contentsOf: Array(String(Character(unicode)).utf8))
                default:
                    throw error("invalid escape")
                }
            default:
                if byte < 0x20 { throw error("control character in string") }
                scratch.append(byte)
                position += 1
            }
        }
        throw error("unterminated string")
    }

    private mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw error("unexpected end of JSON") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw error("invalid \\u escape")
            }
            value = value * 16 + digit
            position += 1
        }
        return value
    }

    /// The value of an optional `-` and decimal digits (already checked), nil when it does not
    /// fit in `Int`. Negative numbers are summed downwards so that `Int.min` fits.
    private static func integer(_ text: UnsafeBufferPointer<UInt8>) -> Int? {
        let negative = text.first == UInt8(ascii: "-")
        var value = 0
        for byte in text[(negative ? 1 : 0)...] {
            let digit = Int(byte &- UInt8(ascii: "0"))
            let (scaled, scaleOverflow) = value.multipliedReportingOverflow(by: 10)
            let (next, addOverflow) =
                negative ? scaled.subtractingReportingOverflow(digit) : scaled.addingReportingOverflow(digit)
            if scaleOverflow || addOverflow { return nil }
            value = next
        }
        return value
    }

    private mutating func parseNumber() throws(JSONSyntaxError) -> JSONValue {
        let start = position
        var isInteger = true
        if bytes[position] == UInt8(ascii: "-") { position += 1 }
        guard position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) else {
            throw error("invalid number")
        }
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
        } else {
            while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) {
                position += 1
            }
        }
        if position < bytes.count && bytes[position] == UInt8(ascii: ".") {
            isInteger = false
            position += 1
            let digits = position
            while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) {
                position += 1
            }
            guard position > digits else { throw error("invalid number") }
        }
        if position < bytes.count && (bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E")) {
            isInteger = false
            position += 1
            if position < bytes.count && (bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-"))
            {
                position += 1
            }
            let digits = position
            while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) {
                position += 1
            }
            guard position > digits else { throw error("invalid number") }
        }
        // An integer is summed digit by digit (what `Int(_:)` of its text gives, without the
        // text); one beyond `Int`'s range goes on as a `Double`, as before.
        if isInteger, let integer = Self.integer(UnsafeBufferPointer(rebasing: bytes[start..<position])) {
            return .integer(integer)
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        guard let number = Double(text) else { throw error("invalid number") }
        return .number(number)
    }
}

// MARK: reading a document piece by piece

extension JSONParser {
    /// Reads one JSON document with `body`, which takes what it wants and leaves the rest: a value
    /// it does not take is skipped. Everything is checked exactly as ``parse(_:)-(String)`` checks it
    /// (same errors at the same byte), but nothing is built that `body` does not ask for — a stream
    /// chunk's reader needs three strings, not three dictionaries.
    @inlinable
    public static func read(_ text: String, _ body: (inout JSONParser) throws(JSONSyntaxError) -> Void)
        throws(JSONSyntaxError)
    {
        var text = text
        try text.withUTF8 { bytes in
            Result { () throws(JSONSyntaxError) in
                var parser = JSONParser(bytes: bytes)
                parser.skipWhitespace()
                try parser.consume(body)
                parser.skipWhitespace()
                guard parser.position == bytes.count else { throw parser.error("unexpected data after the JSON value") }
            }
        }.get()
    }

    /// Whether the next value is an object (then ``readObject(_:)`` reads it).
    @inlinable public var atObject: Bool { position < bytes.count && bytes[position] == UInt8(ascii: "{") }

    /// Whether the next value is an array (then ``readArray(_:)`` reads it).
    @inlinable public var atArray: Bool { position < bytes.count && bytes[position] == UInt8(ascii: "[") }

    /// Calls `member` with each key of the object that comes next (``atObject``) and the reader
    /// placed at its value; a value `member` does not read is skipped. Keys come in document order,
    /// repeated keys as often as they appear. A key is valid only during its call.
    @inlinable
    public mutating func readObject(_ member: (JSONKey, inout JSONParser) throws(JSONSyntaxError) -> Void)
        throws(JSONSyntaxError)
    {
        guard atObject else { throw error("expected an object") }
        try readContainer(closing: UInt8(ascii: "}")) { (reader: inout JSONParser) throws(JSONSyntaxError) in
            let key = try reader.memberKey { (reader: inout JSONParser) throws(JSONSyntaxError) in try reader.readKey()
            }
            try reader.consume { (value: inout JSONParser) throws(JSONSyntaxError) in try member(key, &value) }
        }
    }

    /// A key of printable ASCII without escapes (nearly every key) is taken as the bytes it is;
    /// anything else goes through ``parseString()``, decoded and checked the same way.
    @usableFromInline mutating func readKey() throws(JSONSyntaxError) -> JSONKey {
        var scan = position + 1
        while scan < bytes.count {
            let byte = bytes[scan]
            if byte == UInt8(ascii: "\"") {
                let key = JSONKey(bytes: UnsafeBufferPointer(rebasing: bytes[(position + 1)..<scan]))
                position = scan + 1
                return key
            }
            if byte == UInt8(ascii: "\\") || byte >= 0x80 || byte < 0x20 { break }
            scan += 1
        }
        return JSONKey(decoded: try parseString())
    }

    /// Calls `element` with the reader placed at each element of the array that comes next
    /// (``atArray``); an element `element` does not read is skipped.
    @inlinable
    public mutating func readArray(_ element: (inout JSONParser) throws(JSONSyntaxError) -> Void)
        throws(JSONSyntaxError)
    {
        guard atArray else { throw error("expected an array") }
        try readContainer(closing: UInt8(ascii: "]")) { (reader: inout JSONParser) throws(JSONSyntaxError) in
            try reader.consume(element)
        }
    }

    /// A container of the reader's, one level deeper than the reader is.
    @inlinable mutating func readContainer(
        closing: UInt8, _ item: (inout JSONParser) throws(JSONSyntaxError) -> Void
    ) throws(JSONSyntaxError) {
        let depth = readerDepth + 1
        readerDepth = depth
        defer { readerDepth = depth - 1 }
        try walkContainer(closing: closing, depth: depth, item)
    }

    /// The value that comes next, built.
    @inlinable public mutating func readValue() throws(JSONSyntaxError) -> JSONValue {
        try parseValue(depth: readerDepth)
    }

    /// Moves past the value that comes next, checking it without building it.
    @inlinable public mutating func skipValue() throws(JSONSyntaxError) { try skipValue(depth: readerDepth) }

    /// Runs `body` at a value and skips the value if `body` left it where it was.
    @inlinable mutating func consume(_ body: (inout JSONParser) throws(JSONSyntaxError) -> Void) throws(JSONSyntaxError)
    {
        let start = position
        try body(&self)
        if position == start { try skipValue(depth: readerDepth) }
    }
}

/// An object member's key as ``JSONParser/readObject(_:)`` found it: the document's own bytes when
/// the key is plain ASCII (no `String` is made for keys a reader only compares), else the decoded
/// text. Compared with a literal in a `switch` (`case "choices":`) exactly as the decoded `String`
/// would be. Valid only during the call it is passed to.
public struct JSONKey {
    // Inlinable (and always inlined: a `switch` of ten cases made ten calls per key), so that a
    // `switch` over keys in another module compares with each literal's length and bytes known at
    // compile time.
    @usableFromInline let bytes: UnsafeBufferPointer<UInt8>
    @usableFromInline let decoded: String?

    @usableFromInline init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
        decoded = nil
    }

    @usableFromInline init(decoded: String) {
        bytes = UnsafeBufferPointer(start: nil, count: 0)
        self.decoded = decoded
    }

    /// The key as text.
    public var string: String { decoded ?? String(decoding: bytes, as: UTF8.self) }

    @inlinable @inline(__always)
    public static func ~= (pattern: StaticString, key: JSONKey) -> Bool {
        if let decoded = key.decoded { return decoded == pattern.description }
        let count = pattern.utf8CodeUnitCount
        guard count == key.bytes.count else { return false }
        let literal = pattern.utf8Start
        for offset in 0..<count where literal[offset] != key.bytes[offset] { return false }
        return true
    }
}
