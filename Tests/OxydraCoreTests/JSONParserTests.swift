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
}
