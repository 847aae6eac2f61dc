import Foundation
import OxydraAudit
import OxydraCore
import OxydraTesting
import Testing

@Suite("Audit log")
struct AuditLogTests {
    static func write(_ log: AuditLog, _ count: Int, from start: Int = 0) {
        for index in start..<(start + count) {
            log.begin(callID: "c\(index)", tool: "shell_exec", arguments: #"{"command":"ls"}"#, session: "s", turn: "t")
            log.finish(callID: "c\(index)", isError: index % 2 == 1, resultBytes: 10, durationMilliseconds: 3)
        }
    }

    /// Records hashed elsewhere (Python's `hashlib` over `json.dumps(sort_keys=True,
    /// separators=(",", ":"))`) verify, and a log opened on them continues their chain: the hash is
    /// SHA-256 of the canonical JSON, in lowercase hex, whoever wrote it.
    @Test func recordsHashedElsewhereVerifyAndTheChainContinues() throws {
        let directory = try TemporaryDirectory(prefix: "oxydra-audit")
        defer { directory.remove() }
        let fixture = [
            #"{"arguments":"{\"path\":\"/shared/notes.txt\"}","at":"2026-12-04T21:00:01.000Z","call_id":"c1","decision":"not_asked","duration_ms":3,"hash":"2e185d36575b1a4f43d6d5cd235bbb0c6c3aa9e19e2bbc723779d6e0e20e332c","prev":"0000000000000000000000000000000000000000000000000000000000000000","result_bytes":10,"seq":1,"session":"s","status":"ok","tool":"file_read","turn":"t"}"#,
            #"{"arguments":"{\"path\":\"/shared/notes.txt\"}","at":"2026-12-04T21:00:02.000Z","call_id":"c2","decision":"not_asked","duration_ms":3,"hash":"1bbbc4819198afff18dbfb44b454185e23f9d5560fc375e883fda1f45b1d7299","prev":"2e185d36575b1a4f43d6d5cd235bbb0c6c3aa9e19e2bbc723779d6e0e20e332c","result_bytes":10,"seq":2,"session":"s","status":"error","tool":"file_read","turn":"t"}"#,
        ]
        try directory.write(fixture.joined(separator: "\n") + "\n", to: AuditLog.fileName)
        let before = AuditLog.verify(directory: directory.path)
        #expect(before.problem == nil && before.records == 2, "\(before.problem ?? "")")
        Self.write(try AuditLog(directory: directory.path), 1, from: 2)
        let after = AuditLog.verify(directory: directory.path)
        #expect(after.problem == nil && after.records == 3 && after.lastSequence == 3, "\(after.problem ?? "")")
        let records = AuditLog.records(directory: directory.path)
        #expect(records.last?.fields["prev"] == "1bbbc4819198afff18dbfb44b454185e23f9d5560fc375e883fda1f45b1d7299")
    }

    @Test func theChainHoldsAcrossReopeningAndRotation() throws {
        let directory = try TemporaryDirectory(prefix: "oxydra-audit")
        defer { directory.remove() }
        Self.write(try AuditLog(directory: directory.path, rotateBytes: 1200), 5)
        // A new process continues the chain where the last record left it.
        Self.write(try AuditLog(directory: directory.path, rotateBytes: 1200), 4, from: 5)
        let result = AuditLog.verify(directory: directory.path)
        #expect(result.problem == nil, "\(result.problem ?? "")")
        #expect(result.records == 9 && result.firstSequence == 1 && result.lastSequence == 9)
        #expect(result.files.count > 1, "rotated: \(result.files)")
        let records = AuditLog.records(directory: directory.path)
        #expect(records.map(\.sequence) == Array(1...9))
        #expect(records[1].fields["status"] == "error" && records[0].fields["tool"] == "shell_exec")
    }

    @Test func anEditARemovalAndATornLineAreFound() throws {
        let directory = try TemporaryDirectory(prefix: "oxydra-audit")
        defer { directory.remove() }
        Self.write(try AuditLog(directory: directory.path), 3)
        let path = directory.path + "/audit.jsonl"
        let original = try String(contentsOfFile: path, encoding: .utf8)
        var lines = original.split(separator: "\n").map(String.init)

        try lines.enumerated().map {
            $0.offset == 1
                ? $0.element.replacing("\"ok\"", with: "\"error\"").replacing(
                    "\"error\"", with: "\"ok\"") : $0.element
        }.joined(separator: "\n").appending("\n")
            .write(toFile: path, atomically: true, encoding: .utf8)
        // Record 2 was an error; now it says ok.
        let edited = AuditLog.verify(directory: directory.path)
        #expect(
            edited.problem?.hasSuffix("audit.jsonl:2: record 2 does not match its hash (it was changed)") == true,
            "\(edited.problem ?? "-")")

        lines.remove(at: 1)
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let removed = AuditLog.verify(directory: directory.path)
        #expect(removed.problem?.contains("record 3 does not follow record 1") == true, "\(removed.problem ?? "-")")

        try (original + "{\"seq\":4,\"at\"").write(toFile: path, atomically: true, encoding: .utf8)
        let torn = AuditLog.verify(directory: directory.path)
        #expect(torn.problem?.hasSuffix(":4: not a record (a write cut short by a crash, or an edit)") == true)
        // Writing on after a crash starts a new line and links to the last whole record.
        Self.write(try AuditLog(directory: directory.path), 1, from: 3)
        #expect(AuditLog.records(directory: directory.path).last?.sequence == 4)
    }
}
