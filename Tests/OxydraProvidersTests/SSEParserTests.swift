import OxydraCore
import Testing

@testable import OxydraProviders

private func parse(_ pieces: [[UInt8]], maxLine: Int = SSEParser.defaultMaxLineBytes) throws -> [SSEEvent] {
    var parser = SSEParser(maxLineBytes: maxLine)
    var events: [SSEEvent] = []
    for piece in pieces { events += try parser.feed(piece) }
    return events + (try parser.finish())
}

private func parse(_ text: String) throws -> [SSEEvent] { try parse([Array(text.utf8)]) }

@Suite("SSE parser")
struct SSEParserTests {
    @Test func basicEventsCommentsAndNames() throws {
        let events = try parse(
            ": keep-alive\n\ndata: one\n\nevent: update\ndata: {\"a\":1}\nid: 7\n\ndata:no-space\n\nretry: 100\ndata: x\n\n"
        )
        #expect(
            events == [
                SSEEvent(data: "one"), SSEEvent(event: "update", data: #"{"a":1}"#, id: "7"),
                SSEEvent(data: "no-space", id: "7"), SSEEvent(data: "x", id: "7"),
            ])
    }

    @Test func multiLineDataJoinsWithNewlines() throws {
        #expect(try parse("data: line one\ndata: line two\ndata:\n\n") == [SSEEvent(data: "line one\nline two\n")])
    }

    @Test(arguments: ["\n", "\r\n", "\r"])
    func lineEndings(_ ending: String) throws {
        let text = ["event: e", "data: a", "", "data: b", "", ""].joined(separator: ending)
        #expect(try parse(text) == [SSEEvent(event: "e", data: "a"), SSEEvent(data: "b")])
    }

    @Test func eventWithoutDataIsDropped() throws {
        #expect(try parse("event: ping\n\ndata: real\n\n") == [SSEEvent(data: "real")])
    }

    @Test func pendingEventIsFlushedAtEndOfInput() throws {
        #expect(try parse("data: tail") == [SSEEvent(data: "tail")])
        #expect(try parse("data: tail\n") == [SSEEvent(data: "tail")])
    }

    /// Every split position of a corpus with CRLF, multi-byte UTF-8 (2, 3 and 4 bytes) and comments
    /// gives the same events as parsing it whole.
    @Test func splitAtEveryBytePosition() throws {
        let corpus = Array(
            "event: café\r\ndata: {\"text\":\"naïve — 日本語 🎉\"}\r\n\r\n: comment\r\ndata: 二\ndata: 🎉🎉\n\ndata: [DONE]\r\n\r\n"
                .utf8)
        let whole = try parse([corpus])
        #expect(whole.count == 3)
        #expect(whole[0].data == #"{"text":"naïve — 日本語 🎉"}"#)
        for split in 0...corpus.count {
            #expect(try parse([Array(corpus[..<split]), Array(corpus[split...])]) == whole, "split at \(split)")
        }
        #expect(try parse(corpus.map { [$0] }) == whole)
    }

    @Test func randomFragmentation() throws {
        var generator = SystemRandomNumberGenerator()
        var text = ""
        // Every kind of line break, at every offset within an eight-byte word (the scanner's unit).
        for index in 0..<200 {
            let end = ["\n", "\r\n", "\r"][index % 3]
            text += index % 7 == 0 ? ": note \(index)\r\n" : ""
            text += "event: e\(index % 3)" + end + "data: {\"i\":\(index),\"s\":\"é🎉\(index)\"}" + end
            text +=
                String(repeating: "x", count: index % 8).isEmpty
                ? end : "data: " + String(repeating: "x", count: index % 8) + end + end
        }
        let bytes = Array(text.utf8)
        let whole = try parse([bytes])
        #expect(whole.count == 200)
        #expect(
            whole.map(\.data)
                == (0..<200).map { index in
                    "{\"i\":\(index),\"s\":\"é🎉\(index)\"}"
                        + (index % 8 == 0 ? "" : "\n" + String(repeating: "x", count: index % 8))
                })
        #expect(whole.map(\.event) == (0..<200).map { "e\($0 % 3)" })
        for _ in 0..<50 {
            var pieces: [[UInt8]] = []
            var position = 0
            while position < bytes.count {
                let size = Int.random(in: 1...64, using: &generator)
                pieces.append(Array(bytes[position..<min(position + size, bytes.count)]))
                position += size
            }
            #expect(try parse(pieces) == whole)
        }
    }

    @Test func overlongLinesAreRejected() {
        #expect(throws: SSEError.lineTooLong(limit: 16)) {
            try parse([Array("data: 0123456789".utf8), Array("abcdef\n\n".utf8)], maxLine: 16)
        }
        #expect("\(SSEError.lineTooLong(limit: 16))" == "event stream line longer than 16 bytes")
    }

    @Test func invalidUTF8IsRejected() {
        #expect(throws: SSEError.invalidUTF8) {
            try parse([[0x64, 0x61, 0x74, 0x61, 0x3A, 0x20, 0xFF, 0xFE, 0x0A, 0x0A]])
        }
    }
}

@Suite("Tool-call accumulation")
struct ToolCallAccumulatorTests {
    @Test func interleavedFragmentsAssembleByIndex() throws {
        var accumulator = ToolCallAccumulator()
        accumulator.add(ToolCallDelta(index: 1, id: "b", name: "file_list", argumentsFragment: "{\"pa"))
        accumulator.add(ToolCallDelta(index: 0, id: "a", name: "file_read", argumentsFragment: ""))
        accumulator.add(ToolCallDelta(index: 0, argumentsFragment: "{\"path\":"))
        accumulator.add(ToolCallDelta(index: 1, argumentsFragment: "th\":\"/tmp\"}"))
        accumulator.add(ToolCallDelta(index: 0, argumentsFragment: "\"/shared/é\"}"))
        let calls = try accumulator.build()
        #expect(
            calls == [
                ToolCall(id: "a", name: "file_read", arguments: ["path": "/shared/é"]),
                ToolCall(id: "b", name: "file_list", arguments: ["path": "/tmp"]),
            ])
    }

    @Test func missingIDOrNameIsARecoverableError() {
        var noName = ToolCallAccumulator()
        noName.add(ToolCallDelta(index: 0, id: "a", argumentsFragment: "{}"))
        #expect(throws: ToolCallAssemblyError.missingName(index: 0)) { try noName.build() }
        var noID = ToolCallAccumulator()
        noID.add(ToolCallDelta(index: 2, name: "x"))
        #expect(throws: ToolCallAssemblyError.missingID(index: 2)) { try noID.build() }
        #expect(
            "\(ToolCallAssemblyError.missingName(index: 0))"
                == "streamed tool call at index 0 is missing its function name")
    }

    @Test func invalidArgumentsAreReportedNotReplaced() throws {
        var accumulator = ToolCallAccumulator()
        accumulator.add(ToolCallDelta(index: 0, id: "a", name: "t", argumentsFragment: "{\"path\": \"/x\""))
        let call = try #require(try accumulator.build().first)
        guard case .malformed(let raw, _) = call.arguments else {
            Issue.record("expected malformed arguments")
            return
        }
        #expect(raw == "{\"path\": \"/x\"")
    }

    @Test func emptyArgumentsMeanNoArguments() throws {
        var accumulator = ToolCallAccumulator()
        accumulator.add(ToolCallDelta(index: 0, id: "a", name: "scratchpad_read"))
        #expect(try accumulator.build() == [ToolCall(id: "a", name: "scratchpad_read", arguments: [:])])
    }

    @Test func concatenatedObjectsFanOut() throws {
        var accumulator = ToolCallAccumulator()
        accumulator.add(
            ToolCallDelta(index: 0, id: "c", name: "file_read", argumentsFragment: #"{"path":"/a"}{"path":"/b}"}"#))
        let calls = try accumulator.build()
        #expect(
            calls == [
                ToolCall(id: "c_0", name: "file_read", arguments: ["path": "/a"]),
                ToolCall(id: "c_1", name: "file_read", arguments: ["path": "/b}"]),
            ])
    }

    @Test func firstMetadataWins() throws {
        var accumulator = ToolCallAccumulator()
        accumulator.add(ToolCallDelta(index: 0, id: "a", name: "t", metadata: ["thought_signature": "s1"]))
        accumulator.add(ToolCallDelta(index: 0, argumentsFragment: "{}", metadata: ["thought_signature": "s2"]))
        #expect(try accumulator.build().first?.metadata == ["thought_signature": "s1"])
    }
}
