import Foundation
import Logging
import OxydraGateway
import Testing

@Suite("File log lines")
struct FileLogHandlerTests {
    /// One line per record: the time in milliseconds, level, label, message, an error, then the
    /// logger's and the record's metadata sorted by key (the record's value wins).
    @Test func aRecordIsOneLineWithSortedMetadata() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("oxydra-log-\(UUID()).log").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let sink = try LogSink(path: path)
        var logger = Logger(label: "oxydra.test") { FileLogHandler(label: $0, sink: sink, level: .debug) }
        logger[metadataKey: "user"] = "alice"
        logger[metadataKey: "b"] = "from the logger"
        logger.info("turn completed", metadata: ["b": "2", "a": "1", "ms": "é ü"])
        logger.debug("plain")
        logger.trace("left out")
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(
            separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 3 && lines[2].isEmpty)
        let stamp = #/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /#
        #expect(try stamp.prefixMatch(in: lines[0]) != nil)
        #expect(lines[0].dropFirst(25) == "info oxydra.test: turn completed a=1 b=2 ms=é ü user=alice")
        #expect(lines[1].dropFirst(25) == "debug oxydra.test: plain b=from the logger user=alice")
    }
}
