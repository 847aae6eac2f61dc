import Crypto
import OxydraCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The user's audit log: one JSON line per tool call — when, which session and turn, the tool, its
/// arguments (as the model wrote them, at most 8 KiB), the approval decision, and the result's
/// status, size and duration — in `<workspace>/logs/audit.jsonl`, a directory the agent's tools
/// cannot reach. Each record carries `prev`, the hash of the record before it, and `hash`, the
/// SHA-256 of its own canonical JSON (sorted keys, without `hash`): editing, removing or
/// reordering a record breaks the chain, which `runner audit verify` checks. At 8 MiB the file
/// is rotated (`audit.1.jsonl` … `audit.9.jsonl`, oldest dropped); the chain continues across
/// files.
public final class AuditLog: Sendable {
    public static let fileName = "audit.jsonl"
    public static let rotateBytes = 8 << 20
    public static let keptFiles = 9
    /// `prev` of the first record.
    public static let genesis = String(repeating: "0", count: 64)

    public let directory: String
    /// The size at which the file is rotated.
    let rotateBytes: Int
    private struct State {
        var sequence: Int
        var previous: String
        var descriptor: Int32
        var size: Int
        /// Calls started and not yet finished: their tool, arguments and place.
        var pending: [String: Call]
    }
    private struct Call {
        var tool: String
        var arguments: String
        var session: String
        var turn: String
        var started: Date
        var decision: String
        var approvedBy: String?
    }
    private let state: Mutex<State>

    /// Opens (creating) the log in `directory`, continuing the chain from its last record.
    public init(directory: String, rotateBytes: Int = AuditLog.rotateBytes) throws(AuditError) {
        self.directory = directory
        self.rotateBytes = rotateBytes
        let path = directory + "/" + Self.fileName
        var sequence = 0
        var previous = Self.genesis
        var needsNewline = false
        for file in Self.files(in: directory).reversed() {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8), !text.isEmpty else { continue }
            needsNewline = file == path && !text.hasSuffix("\n")
            let lines = text.split(separator: "\n")
            if let last = lines.reversed().lazy.compactMap({ Self.parse(String($0)) }).first {
                sequence = last.sequence
                previous = last.hash
                break
            }
        }
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw AuditError("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        var info = stat()
        fstat(descriptor, &info)
        // A line cut short by a crash stays as it is (verify reports it); the next record starts on a new line.
        if needsNewline { _ = write(descriptor, "\n", 1) }
        state = Mutex(
            State(
                sequence: sequence, previous: previous, descriptor: descriptor, size: Int(info.st_size), pending: [:]))
    }

    deinit {
        let descriptor = state.withLock { $0.descriptor }
        close(descriptor)
    }

    /// A tool call is about to run (or is refused): `decision` is how that was decided, `approvedBy`
    /// the client that answered.
    public func begin(
        callID: String, tool: String, arguments: String, session: String, turn: String,
        decision: String = "not_asked", approvedBy: String? = nil
    ) {
        state.withLock {
            $0.pending[callID] = Call(
                tool: tool, arguments: arguments, session: session, turn: turn, started: Date(), decision: decision,
                approvedBy: approvedBy)
        }
    }

    /// The call ended: its record is written.
    public func finish(callID: String, isError: Bool, resultBytes: Int, durationMilliseconds: Int) {
        state.withLock { state in
            guard let call = state.pending.removeValue(forKey: callID) else { return }
            var fields: [String: JSONValue] = [
                "at": .string(Timestamp.rfc3339(call.started, milliseconds: true)),
                "session": .string(call.session), "turn": .string(call.turn), "tool": .string(call.tool),
                "call_id": .string(callID), "arguments": .string(call.arguments), "decision": .string(call.decision),
                "status": .string(isError ? "error" : "ok"), "result_bytes": .integer(resultBytes),
                "duration_ms": .integer(durationMilliseconds),
            ]
            if let by = call.approvedBy { fields["approved_by"] = .string(by) }
            Self.append(fields, to: &state, directory: directory, rotateBytes: rotateBytes)
        }
    }

    /// Something done for the user that is not a tool call (`event`: `channel_refused`, …), with
    /// its details, in the same chain.
    public func event(_ event: String, _ details: [String: String]) {
        state.withLock { state in
            var fields = details.mapValues(JSONValue.string)
            fields["event"] = .string(event)
            fields["at"] = .string(Timestamp.rfc3339(Date(), milliseconds: true))
            Self.append(fields, to: &state, directory: directory, rotateBytes: rotateBytes)
        }
    }

    /// Writes one record after the last, linked to it.
    private static func append(
        _ record: [String: JSONValue], to state: inout State, directory: String, rotateBytes: Int
    ) {
        var fields = record
        fields["seq"] = .integer(state.sequence + 1)
        fields["prev"] = .string(state.previous)
        let hash = Self.hash(fields)
        fields["hash"] = .string(hash)
        var writer = JSONBytes(capacity: 512)
        writer.value(.object(fields), sortedKeys: true)
        writer.raw("\n")
        let line = writer.bytes
        if state.size + line.count > rotateBytes && state.size > 0 {
            close(state.descriptor)
            Self.rotate(directory)
            state.descriptor = open(
                directory + "/" + Self.fileName, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
            state.size = 0
        }
        var offset = 0
        while offset < line.count {
            let written = line[offset...].withUnsafeBytes { write(state.descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += written
        }
        state.size += line.count
        state.sequence += 1
        state.previous = hash
    }

    // MARK: reading and verifying

    /// A record as read back.
    public struct Record: Sendable {
        public var sequence: Int
        public var hash: String
        public var fields: [String: JSONValue]
        public var json: JSONValue { .object(fields.merging(["hash": .string(hash)]) { $1 }) }
    }

    /// The log files, oldest first (`audit.9.jsonl` … `audit.1.jsonl`, `audit.jsonl`).
    public static func files(in directory: String) -> [String] {
        var files: [String] = []
        for index in stride(from: keptFiles, through: 1, by: -1) {
            let path = directory + "/audit.\(index).jsonl"
            if access(path, F_OK) == 0 { files.append(path) }
        }
        let current = directory + "/" + fileName
        if access(current, F_OK) == 0 { files.append(current) }
        return files
    }

    static func parse(_ line: String) -> Record? {
        guard let value = try? JSONParser.parse(line), case .object(var fields) = value,
            let hash = fields.removeValue(forKey: "hash")?.stringValue, let sequence = fields["seq"]?.intValue
        else { return nil }
        return Record(sequence: sequence, hash: hash, fields: fields)
    }

    static func hash(_ fields: [String: JSONValue]) -> String {
        var canonical = JSONBytes(capacity: 512)
        canonical.value(.object(fields), sortedKeys: true)
        let digest = SHA256.hash(data: canonical.bytes)
        let digits: StaticString = "0123456789abcdef"
        return String(unsafeUninitializedCapacity: SHA256.byteCount * 2) { text in
            digits.withUTF8Buffer { digits in
                for (index, byte) in digest.enumerated() {
                    text[2 * index] = digits[Int(byte >> 4)]
                    text[2 * index + 1] = digits[Int(byte & 0x0F)]
                }
            }
            return SHA256.byteCount * 2
        }
    }

    static func rotate(_ directory: String) {
        unlink(directory + "/audit.\(keptFiles).jsonl")
        for index in stride(from: keptFiles - 1, through: 1, by: -1) {
            rename(directory + "/audit.\(index).jsonl", directory + "/audit.\(index + 1).jsonl")
        }
        rename(directory + "/" + fileName, directory + "/audit.1.jsonl")
    }

    /// What `verify` found.
    public struct Verification: Sendable {
        public var records = 0
        public var files: [String] = []
        public var firstSequence: Int?
        public var lastSequence: Int?
        /// `file:line: why`, for the first break in the chain; nil when the whole chain holds.
        public var problem: String?
    }

    /// Checks every record's hash, its link to the one before and the sequence. The oldest file
    /// kept may start mid-chain (older files were rotated away): its first record is the anchor.
    public static func verify(directory: String) -> Verification {
        var result = Verification()
        var previous: (hash: String, sequence: Int)?
        for file in files(in: directory) {
            result.files.append(file)
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                result.problem = "\(file): cannot be read"
                return result
            }
            for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let place = "\(file):\(index + 1)"
                if line.isEmpty { continue }
                guard let record = parse(String(line)) else {
                    result.problem = "\(place): not a record (a write cut short by a crash, or an edit)"
                    return result
                }
                guard hash(record.fields) == record.hash else {
                    result.problem = "\(place): record \(record.sequence) does not match its hash (it was changed)"
                    return result
                }
                let prev = record.fields["prev"]?.stringValue ?? ""
                if let previous {
                    guard prev == previous.hash, record.sequence == previous.sequence + 1 else {
                        result.problem =
                            "\(place): record \(record.sequence) does not follow record \(previous.sequence) "
                            + "(a record before it was removed, inserted or reordered)"
                        return result
                    }
                } else if record.sequence == 1 && prev != genesis {
                    result.problem = "\(place): the first record does not start the chain"
                    return result
                }
                previous = (record.hash, record.sequence)
                result.records += 1
                result.firstSequence = result.firstSequence ?? record.sequence
                result.lastSequence = record.sequence
            }
        }
        return result
    }

    /// The records (oldest first) whose time is at or after `since`.
    public static func records(directory: String, since: Date? = nil) -> [Record] {
        let from = since.map { Timestamp.rfc3339($0, milliseconds: true) }
        return files(in: directory).flatMap { file -> [Record] in
            let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { parse(String($0)) }.filter { record in
                guard let from else { return true }
                return (record.fields["at"]?.stringValue ?? "") >= from
            }
        }
    }
}

public struct AuditError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
