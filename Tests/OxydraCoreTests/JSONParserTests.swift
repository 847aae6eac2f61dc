import Foundation
import Testing

@testable import OxydraCore

@Suite("JSON parser")
struct JSONParserTests {
    @Test(arguments: [
        #"{"a":1,"b":[true,false,null],"c":{"d":"e"},"f":-0.5,"h":""}"#,
        #"  [ 1 , 2.25 , "x" , { } , [ ] ]  "#,
        #""\"\\\/\b\f\n\r\t\u00e9\u65E5\ud83c\udf89""#,
        #"{"nested":{"deep":[[[[{"k":[1,{"z":null}]}]]]]}}"#,
        "9007199254740993", "-12", "0", "3.14159", "1E-7",
    ])
    func agreesWithFoundation(_ text: String) throws {
        let ours = try JSONParser.parse(text)
        let foundation = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        #expect(ours == foundation)
    }

    /// Integers are summed digit by digit: the same value as `Int(_:)` of their text, and a
    /// `Double` one past either end of `Int`'s range.
    @Test(arguments: [
        "0", "-0", "7", "-7", "10", "1234567890", "-1234567890", "9223372036854775807", "-9223372036854775808",
        "9223372036854775808", "-9223372036854775809", "99999999999999999999", "00",
    ])
    func integersAreWhatIntOfTheirTextGives(_ text: String) throws {
        if text == "00" {
            #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(text) }
        } else if let integer = Int(text) {
            let parsed = try JSONParser.parse(text)
            #expect(parsed == .integer(integer), "\(text)")
        } else {
            #expect(try JSONParser.parse(text) == .number(Double(text)!), "\(text)")
        }
    }

    @Test func escapesAndUnicode() throws {
        #expect(try JSONParser.parse(#""caf\u00e9 \ud83c\udf89 日本""#) == .string("café 🎉 日本"))
        #expect(try JSONParser.parse(#"{"k":"a\"b"}"#) == ["k": "a\"b"])
        #expect(try JSONParser.parse("1e3") == .number(1000))
    }

    @Test(arguments: [
        ("", "unexpected end of JSON at byte 0"), ("{", "expected a key at byte 1"),
        ("[1,]", "unexpected character at byte 3"),
        (#"{"a" 1}"#, "expected `:` at byte 5"), ("tru", "unexpected end of JSON at byte 0"),
        ("nul!", "invalid literal at byte 0"),
        ("01", "unexpected data after the JSON value at byte 1"), ("1.", "invalid number at byte 2"),
        ("-", "invalid number at byte 1"),
        ("\"abc", "unterminated string at byte 4"), ("\"a\u{1}\"", "control character in string at byte 2"),
        (#""\x""#, "invalid escape at byte 3"), (#""\ud83c""#, #"unpaired surrogate in \u escape at byte 7"#),
        ("{} {}", "unexpected data after the JSON value at byte 3"),
    ])
    func errorsSayWhatAndWhere(_ text: String, _ message: String) {
        #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(text) }
        do {
            _ = try JSONParser.parse(text)
        } catch {
            #expect(error.description == message)
        }
    }

    /// A value read piece by piece (``JSONParser/read(_:_:)``): members taken are what a full parse
    /// holds, the others are skipped; reading everything rebuilds the full parse.
    @Test(arguments: [
        #"{"id":"chatcmpl-123456789012345678","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"content":"token "},"finish_reason":null}],"usage":null}"#,
        #"{"skip":{"deep":[1,{"z":"caf\u00e9 \ud83c\udf89"}],"e":"a\"b"},"choices":[],"skip2":"日本 \n","usage":{"prompt_tokens":3}}"#,
        #"{"choices":1,"choices":2}"#, #"{}"#, #"[{"skip":1}]"#, #""text""#, "12", " [ ] ",
        #"{"a":{"b":[{},[],{"c":null}]}}"#,
    ])
    func theReaderTakesWhatItReadsAndChecksTheRest(_ text: String) throws {
        let kept = ["choices", "usage", "error"]
        let full = try JSONParser.parse(text)
        var taken: [String: JSONValue] = [:]
        var top: JSONValue?
        try JSONParser.read(text) { (reader: inout JSONParser) throws(JSONSyntaxError) in
            guard reader.atObject else {
                top = try reader.readValue()
                return
            }
            try reader.readObject { (key: JSONKey, reader: inout JSONParser) throws(JSONSyntaxError) in
                if kept.contains(key.string) { taken[key.string] = try reader.readValue() }
            }
        }
        let expected = full.objectValue.map { JSONValue.object($0.filter { kept.contains($0.key) }) } ?? full
        #expect((top ?? .object(taken)) == expected)
        #expect(try Self.rebuilt(text) == full)
    }

    /// A key compares with a literal exactly as its decoded text does, whether the reader kept it
    /// as the document's bytes (plain ASCII) or decoded it (escapes, non-ASCII).
    @Test(arguments: [
        #""choices""#, #""ch\u006fices""#, #""choices ""#, #""choice""#, #""Choices""#, #""ch\"oices""#,
        #""chöices""#, #""\u0063hoices""#, #""""#, #""choices\u0000""#, #""\u212Aey""#, #""Key""#,
    ])
    func keysCompareAsTheirDecodedText(_ key: String) throws {
        let decoded = try #require(try JSONParser.parse(key).stringValue)
        var matched: [Bool] = []
        var texts: [String] = []
        try JSONParser.read("{\(key):1}") { (reader: inout JSONParser) throws(JSONSyntaxError) in
            try reader.readObject { (key: JSONKey, _: inout JSONParser) throws(JSONSyntaxError) in
                texts.append(key.string)
                switch key {
                case "choices": matched.append(true)
                case "Key": matched.append(true)
                default: matched.append(false)
                }
            }
        }
        #expect(texts == [decoded])
        #expect(matched == [decoded == "choices" || decoded == "Key"])
    }

    /// The whole value through the reader's containers.
    static func rebuilt(_ text: String) throws(JSONSyntaxError) -> JSONValue {
        var value = JSONValue.null
        try JSONParser.read(text) { (reader: inout JSONParser) throws(JSONSyntaxError) in value = try rebuild(&reader) }
        return value
    }

    static func rebuild(_ reader: inout JSONParser) throws(JSONSyntaxError) -> JSONValue {
        if reader.atObject {
            var members: [String: JSONValue] = [:]
            try reader.readObject { (key: JSONKey, reader: inout JSONParser) throws(JSONSyntaxError) in
                members[key.string] = try rebuild(&reader)
            }
            return .object(members)
        }
        if reader.atArray {
            var elements: [JSONValue] = []
            try reader.readArray { (reader: inout JSONParser) throws(JSONSyntaxError) in
                elements.append(try rebuild(&reader))
            }
            return .array(elements)
        }
        return try reader.readValue()
    }

    /// What the reader skips is checked as strictly as what it builds: the same error at the same
    /// byte as a full parse, whether it skips everything or takes everything.
    @Test(arguments: [
        #"{"x":"a\#u{1}"}"#, #"{"x":"\x"}"#, #"{"x":[1,]}"#, #"{"x":{"y" 1}}"#, #"{"x":{"y":1,}}"#,
        #"{"x":"\ud83c"}"#, #"{"x":"abc"#, #"{"x":[1 2]}"#, #"{"x":{"y":1 "z":2}}"#, #"{"x":tru}"#, #"{"x":-}"#,
        #"{"x":{1:2}}"#, #"{"x":[1],}"#, #"{"x":1} 2"#, "[1,[2,]]", "{", "",
        #"{"x":"# + String(repeating: "[", count: 600) + String(repeating: "]", count: 600) + "}",
        String(repeating: "[", count: 600) + String(repeating: "]", count: 600),
    ])
    func theReaderReportsTheSameErrors(_ text: String) {
        var full: String?
        var skipped: String?
        var taken: String?
        do { _ = try JSONParser.parse(text) } catch { full = error.description }
        do {
            try JSONParser.read(text) { (reader: inout JSONParser) throws(JSONSyntaxError) in
                if reader.atObject { try reader.readObject { _, _ in } }
            }
        } catch { skipped = error.description }
        do { _ = try Self.rebuilt(text) } catch { taken = error.description }
        #expect(full != nil)
        #expect(skipped == full)
        #expect(taken == full)
    }

    /// Strings written by ``JSONWriter`` read back the same through Foundation, whatever they hold:
    /// escapes next to combining marks, CR LF, control characters, emoji sequences.
    @Test(arguments: [
        "plain", "", "a\"\u{301}b", "line\r\nnext\n", "tab\tand\u{1}\u{1F}", "\\ back \\",
        "\u{1F600}\"\u{200D}\u{1F600}", "ends with quote\"", "\"starts", "日本語 \u{7F}",
        String(repeating: "You are Oxydra.\n", count: 200),
    ])
    func writerStringsRoundTrip(_ text: String) throws {
        let written = JSONWriter.text(.string(text))
        let decoded = try JSONSerialization.jsonObject(with: Data(written.utf8), options: .fragmentsAllowed)
        #expect((decoded as? String).map { Array($0.unicodeScalars) } == Array(text.unicodeScalars))
        #expect(!written.utf8.contains { $0 < 0x20 })
    }

    /// The writer's eight-bytes-at-a-time scan finds every byte to escape wherever it falls in a
    /// word (next to multi-byte characters, runs of them, at the ends): its output (as a `String`
    /// from ``JSONWriter``, and as the bytes of ``JSONBytes``) equals a character-by-character
    /// escaper's on generated strings.
    @Test func writerEscapesMatchACharacterByCharacterEscaper() {
        let pieces = [
            "a", "\"", "\\", "\n", "\r", "\t", "\u{01}", "\u{1F}", " ", "é", "€", "😀", "\u{7F}", "~", "]", "|",
        ]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let text = (0..<Int.random(in: 0...40, using: &generator)).map { _ in
                pieces[Int.random(in: 0..<(Bool.random(using: &generator) ? 1 : pieces.count), using: &generator)]
            }.joined()
            var expected = "\""
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\"": expected += "\\\""
                case "\\": expected += "\\\\"
                case "\n": expected += "\\n"
                case "\r": expected += "\\r"
                case "\t": expected += "\\t"
                case _ where scalar.value < 0x20:
                    let hex = String(scalar.value, radix: 16)
                    expected += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                default: expected.unicodeScalars.append(scalar)
                }
            }
            expected += "\""
            #expect(JSONWriter.text(.string(text)) == expected, "\(text.debugDescription)")
            var bytes = JSONBytes(capacity: 0)
            bytes.string(text)
            #expect(bytes.text == expected, "\(text.debugDescription)")
        }
    }

    /// Sorted objects of every size (the keys are ordered in a stack buffer) read back as written,
    /// with their keys in byte order.
    @Test(arguments: [0, 1, 2, 5, 40, 300])
    func sortedObjectsOfEverySize(_ count: Int) throws {
        var members: [String: JSONValue] = [:]
        for index in 0..<count { members["k\((index * 7919) % 1000)-é"] = .integer(index) }
        let text = JSONWriter.text(.object(["outer": .object(members)]), sortedKeys: true)
        #expect(try JSONParser.parse(text) == .object(["outer": .object(members)]))
        let keys = try #require(
            (JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])?["outer"] as? [String: Any]
        ).keys
        #expect(keys.count == count)
        let positions = members.keys.map { text.utf8.firstRange(of: Array("\"\($0)\"".utf8))!.lowerBound }
        let order = zip(members.keys, positions).sorted { $0.1 < $1.1 }.map(\.0)
        #expect(order == members.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
    }

    /// The key order of sorted objects: byte order of the UTF-8, as the standard library's
    /// comparison of the two `utf8` views gives it — prefixes, multi-byte characters, small
    /// (inline) and long strings alike.
    @Test func keyOrderIsTheUTF8ByteOrder() {
        let pieces = ["", "a", "b", "ab", "é", "e\u{301}", "漢", "🎉", "_", "Z", "\u{7F}", "\u{80}", "key"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5_000 {
            let a = (0..<Int.random(in: 0...6, using: &generator)).map { _ in pieces.randomElement()! }.joined()
            let b = (0..<Int.random(in: 0...6, using: &generator)).map { _ in pieces.randomElement()! }.joined()
            #expect(JSONWriter.utf8Precedes(a, b) == a.utf8.lexicographicallyPrecedes(b.utf8), "\(a) \(b)")
            #expect(!JSONWriter.utf8Precedes(a, a))
        }
        let long = String(repeating: "x", count: 40)
        #expect(JSONWriter.utf8Precedes(long, long + "y") && !JSONWriter.utf8Precedes(long + "y", long))
    }

    @Test func depthIsLimited() {
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(deep) }
        let fine = String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
        #expect((try? JSONParser.parse(fine)) != nil)
    }

    @Test func invalidUTF8InStringsIsRejected() {
        let bytes: [UInt8] = [0x22, 0xFF, 0x22]
        #expect(throws: JSONSyntaxError.self) { try bytes.withUnsafeBufferPointer { try JSONParser.parse($0) } }
    }

    /// The parser's (and the event-stream parser's) UTF-8 check accepts and rejects exactly what
    /// the standard library's validating initializer does: edge cases (overlong forms, surrogates,
    /// code points past U+10FFFF, cut sequences, a real U+FFFD), then many generated byte strings
    /// that are mostly well formed.
    @Test func exactUTF8AgreesWithTheStandardLibrary() {
        let cases: [[UInt8]] = [
            [], Array("plain".utf8), Array("é€😀".utf8), [0xEF, 0xBF, 0xBD], [0xC0, 0x80], [0xC1, 0xBF],
            [0xE0, 0x80, 0x80],
            [0xED, 0xA0, 0x80], [0xED, 0x9F, 0xBF], [0xF4, 0x8F, 0xBF, 0xBF], [0xF4, 0x90, 0x80, 0x80],
            [0xF5, 0x80, 0x80, 0x80],
            [0xE2, 0x82], [0x61, 0xF0, 0x9F, 0x98], [0x80], [0xFF], [0xFE, 0xFF], [0x61, 0x00, 0x62],
        ]
        var generator = SystemRandomNumberGenerator()
        let pieces: [[UInt8]] = [
            Array("a".utf8), Array("é".utf8), Array("€".utf8), Array("😀".utf8), [0xEF, 0xBF, 0xBD], [0x80], [0xC3],
            [0xF0, 0x9F],
            [0xED, 0xB0, 0x80], [0xFF],
        ]
        let generated = (0..<5_000).map { _ in
            (0..<Int.random(in: 0...8, using: &generator)).flatMap { _ in
                pieces[Int.random(in: 0..<(Bool.random(using: &generator) ? 5 : pieces.count), using: &generator)]
            }
        }
        for bytes in cases + generated {
            let expected = String(validating: bytes, as: UTF8.self)
            #expect(bytes.withUnsafeBufferPointer { String(exactUTF8: $0) } == expected, "\(bytes)")
            #expect(String(exactUTF8: bytes[...]) == expected, "\(bytes)")
        }
        #expect(String(exactUTF8: [0xEF, 0xBF, 0xBD][...]) == "\u{FFFD}")
    }
}
