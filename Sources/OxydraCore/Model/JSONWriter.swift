/// Compact JSON text from a ``JSONValue`` without going through `Encoder` (the gateway writes a
/// frame per streamed token, so this is a hot path).
public enum JSONWriter {
    /// Compact text; object keys sorted when `sortedKeys` (stable output), else in hash order.
    public static func text(_ value: JSONValue, sortedKeys: Bool = false) -> String {
        var out = JSONBytes(capacity: 64)
        out.value(value, sortedKeys: sortedKeys)
        return out.text
    }

    /// Walks a string's UTF-8 in order: `run` gets each range with nothing to escape, `escape` each
    /// byte that must be escaped. The bytes are scanned eight at a time (``nextEscape(in:from:)``);
    /// most strings (a prompt, an answer) have nothing or little to escape.
    @inline(__always)
    static func forEachRun(
        in utf8: UnsafeBufferPointer<UInt8>, run: (Range<Int>) -> Void, escape: (UInt8) -> Void
    ) {
        var runStart = 0
        while let found = nextEscape(in: utf8, from: runStart) {
            if runStart != found { run(runStart..<found) }
            escape(utf8[found])
            runStart = found + 1
        }
        if runStart != utf8.count { run(runStart..<utf8.count) }
    }

    @inline(__always)
    private static func needsEscape(_ byte: UInt8) -> Bool { byte < 0x20 || byte == 0x22 || byte == 0x5C }

    /// Whether `a`'s UTF-8 comes before `b`'s in byte order — the order of sorted object keys, which
    /// is code point order. (`a.utf8.lexicographicallyPrecedes(b.utf8)` gives the same answer a
    /// byte at a time through an iterator, several times slower: an audit record sorts its keys.)
    public static func utf8Precedes(_ a: String, _ b: String) -> Bool {
        var a = a
        var b = b
        return a.withUTF8 { x in
            b.withUTF8 { y in
                for index in 0..<Swift.min(x.count, y.count) where x[index] != y[index] { return x[index] < y[index] }
                return x.count < y.count
            }
        }
    }

    /// The offset of the first byte at or after `start` that must be escaped (a control
    /// character, `"` or `\`). Eight bytes at a time: a byte of the word is flagged when it is
    /// below 0x20 or equal to 0x22 or 0x5C (the classic "has zero byte" test on the word XORed with
    /// each needle; bytes ≥ 0x80 are never flagged, so a flag is exact for its lowest byte).
    @inline(__always)
    static func nextEscape(in bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        var index = start
        let count = bytes.count
        if let base = bytes.baseAddress {
            let ones: UInt64 = 0x0101_0101_0101_0101
            let highs: UInt64 = 0x8080_8080_8080_8080
            while index + 8 <= count {
                let word = UInt64(littleEndian: UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self))
                let quote = word ^ (ones &* 0x22)
                let backslash = word ^ (ones &* 0x5C)
                let flags =
                    ((word &- ones &* 0x20) | (quote &- ones) | (backslash &- ones)) & ~word & highs
                guard flags == 0 else {
                    // Borrows only travel upwards: the lowest flagged byte is a real match.
                    return index + flags.trailingZeroBitCount / 8
                }
                index += 8
            }
        }
        while index < count {
            if needsEscape(bytes[index]) { return index }
            index += 1
        }
        return nil
    }

    /// How a byte that must be escaped is written.
    static func escape(_ byte: UInt8) -> String {
        switch byte {
        case 0x22: return "\\\""
        case 0x5C: return "\\\\"
        case 0x0A: return "\\n"
        case 0x0D: return "\\r"
        case 0x09: return "\\t"
        default:
            let hex = String(byte, radix: 16)
            return "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        }
    }
}

/// JSON written as UTF-8 bytes, for documents written often and large: a provider request body
/// carries the whole conversation on every call. Appending bytes to an array costs a capacity check
/// and a copy; appending to a `String` also re-checks what it appends (is it all ASCII) each time,
/// which was a tenth of a turn's instructions. ``JSONWriter/text(_:sortedKeys:)`` writes through
/// it too.
public struct JSONBytes: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    /// Text that is already JSON (punctuation, keys, an encoded value).
    public mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// (Disfavoured, so that a literal — `raw("{")` — is taken as the `StaticString` it is and
    /// copied as bytes, not made into a `String` first.)
    @_disfavoredOverload
    public mutating func raw(_ text: String) {
        var text = text
        text.withUTF8 { bytes.append(contentsOf: $0) }
    }

    public mutating func raw(_ other: [UInt8]) { bytes.append(contentsOf: other) }

    public mutating func raw(_ other: ArraySlice<UInt8>) { bytes.append(contentsOf: other) }

    /// A JSON string literal.
    public mutating func string(_ text: String) {
        bytes.append(0x22)
        var text = text
        text.withUTF8 { utf8 in
            JSONWriter.forEachRun(in: utf8) { run in
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[run]))
            } escape: { byte in
                // The common escapes as two bytes (a system prompt has a newline every line).
                let short: UInt8? =
                    switch byte {
                    case 0x22, 0x5C: byte
                    case 0x0A: UInt8(ascii: "n")
                    case 0x0D: UInt8(ascii: "r")
                    case 0x09: UInt8(ascii: "t")
                    default: nil
                    }
                if let short {
                    bytes.append(0x5C)
                    bytes.append(short)
                } else {
                    raw(JSONWriter.escape(byte))
                }
            }
        }
        bytes.append(0x22)
    }

    public var text: String { String(decoding: bytes, as: UTF8.self) }

    /// A value: compact, object keys sorted when `sortedKeys` (stable output), else in hash order.
    public mutating func value(_ value: JSONValue, sortedKeys: Bool = false) {
        switch value {
        case .null: raw("null")
        case .bool(let flag): flag ? raw("true") : raw("false")
        case .integer(let number): raw(String(number))
        case .number(let number):
            if number.isFinite {
                raw(number.rounded() == number && abs(number) < 1e15 ? String(Int(number)) : String(number))
            } else {
                raw("null")
            }
        case .string(let text): string(text)
        case .array(let items):
            bytes.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                self.value(item, sortedKeys: sortedKeys)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let members):
            bytes.append(UInt8(ascii: "{"))
            var first = true
            // Members in place (no second lookup per key); sorted by their UTF-8 bytes, which is
            // code point order — String's own order for the normalized keys JSON carries.
            // The order is sorted in a buffer on the stack: no array of members per object.
            if sortedKeys {
                withUnsafeTemporaryAllocation(of: [String: JSONValue].Index.self, capacity: members.count) { buffer in
                    var order = buffer
                    _ = order.initialize(from: members.indices)
                    order.sort { JSONWriter.utf8Precedes(members.keys[$0], members.keys[$1]) }
                    for index in order {
                        let (key, member) = members[index]
                        self.member(key, member, first: &first, sortedKeys: true)
                    }
                    order.deinitialize()
                }
            } else {
                for (key, member) in members { self.member(key, member, first: &first, sortedKeys: false) }
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }

    private mutating func member(_ key: String, _ member: JSONValue, first: inout Bool, sortedKeys: Bool) {
        if !first { bytes.append(UInt8(ascii: ",")) }
        first = false
        string(key)
        bytes.append(UInt8(ascii: ":"))
        value(member, sortedKeys: sortedKeys)
    }

    /// `,"key":value` for an object member after the first, left out when `value` is nil.
    public mutating func member(_ key: StaticString, _ value: Int?) {
        guard let value else { return }
        memberKey(key)
        raw(String(value))
    }

    /// `,"key":"value"` for an object member after the first, left out when `value` is nil.
    public mutating func member(_ key: StaticString, _ value: String?) {
        guard let value else { return }
        memberKey(key)
        string(value)
    }

    private mutating func memberKey(_ key: StaticString) {
        bytes.append(UInt8(ascii: ","))
        bytes.append(0x22)
        raw(key)
        bytes.append(0x22)
        bytes.append(UInt8(ascii: ":"))
    }
}
