import OxydraAudit
import OxydraClient
import OxydraConfig
import OxydraCore

/// `runner audit verify|show`: the user's audit log, read from the workspace (no guest needed).
public enum AuditCommand {
    /// Exit 0 when the chain holds, 1 when it is broken (or unreadable).
    public static func verify(_ context: RunnerContext, json: Bool) -> CommandOutput {
        let target: UserTarget
        switch UserTarget.resolve(context) {
        case .success(let resolved): target = resolved
        case .failure(let output): return output
        }
        let result = AuditLog.verify(directory: target.logs)
        let display = result.files.map { context.display.render($0) }
        if json {
            return CommandOutput(
                standardOutput: JSONValue.compactObject([
                    "ok": .bool(result.problem == nil), "records": .integer(result.records),
                    "first_seq": result.firstSequence.map(JSONValue.integer),
                    "last_seq": result.lastSequence.map(JSONValue.integer),
                    "files": .array(display.map(JSONValue.string)), "problem": result.problem.map(JSONValue.string),
                ]).prettyText + "\n", exitCode: result.problem == nil ? 0 : 1)
        }
        if let problem = result.problem {
            return CommandOutput(
                standardError: "runner error: the audit log's chain is broken at \(problem)\n", exitCode: 1)
        }
        guard let first = result.firstSequence, let last = result.lastSequence else {
            return CommandOutput(standardOutput: "ok: the audit log is empty (no tool call yet)\n")
        }
        return CommandOutput(
            standardOutput: "ok: \(result.records) record\(result.records == 1 ? "" : "s") (\(first)–\(last)) in "
                + "\(display.joined(separator: ", ")); the chain holds\n")
    }

    public static func show(_ context: RunnerContext, since: Date?, tail: Int, json: Bool) -> CommandOutput {
        let target: UserTarget
        switch UserTarget.resolve(context) {
        case .success(let resolved): target = resolved
        case .failure(let output): return output
        }
        let records = Array(AuditLog.records(directory: target.logs, since: since).suffix(tail))
        if json { return CommandOutput(standardOutput: JSONValue.array(records.map(\.json)).prettyText + "\n") }
        if records.isEmpty { return CommandOutput(standardOutput: "no tool calls recorded\n") }
        let lines = records.map { record in
            let fields = record.fields
            let text = { (key: String) in fields[key]?.stringValue ?? "-" }
            if let event = fields["event"]?.stringValue {
                // Not a tool call (a channel refusing a stranger, …): its details as key=value.
                let details = fields.keys.filter { !["event", "at", "seq", "prev", "hash"].contains($0) }.sorted()
                    .map { "\($0)=\(TerminalText.sanitize(text($0)))" }
                return "\(record.sequence)  \(text("at"))  \(event)  " + details.joined(separator: " ")
            }
            let arguments = TerminalText.sanitize(text("arguments")).replacing("\n", with: " ")
            return "\(record.sequence)  \(text("at"))  \(text("session"))  \(text("tool"))  \(text("status"))  "
                + "\(fields["duration_ms"]?.intValue ?? 0) ms  \(ByteCount.display(fields["result_bytes"]?.intValue ?? 0))  "
                + "\(text("decision"))  " + (arguments.count > 120 ? String(arguments.prefix(119)) + "…" : arguments)
        }
        return CommandOutput(standardOutput: lines.joined(separator: "\n") + "\n")
    }
}
