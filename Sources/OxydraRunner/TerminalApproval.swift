import Dispatch
import OxydraClient
import OxydraCore

#if canImport(Glibc)
    import Glibc
#endif

/// `runner ask` on a terminal: approval requests are asked on `/dev/tty` (y / n / a).
public enum TerminalApproval {
    /// The prompter, or nil when standard error is not a terminal or there is no `/dev/tty`
    /// (scripts, CI): then requests are denied unless `--approve-all`/`--approve` allow them.
    public static func prompter() -> (@Sendable (ApprovalRequest) async -> (ApprovalDecision, ApprovalScope))? {
        guard isatty(2) == 1 else { return nil }
        let probe = open("/dev/tty", O_RDWR | O_CLOEXEC)
        guard probe >= 0 else { return nil }
        close(probe)
        return { request in
            await withCheckedContinuation { continuation in
                // A blocking read on its own thread, so the turn's frames keep flowing.
                DispatchQueue.global().async {
                    continuation.resume(returning: ask(request))
                }
            }
        }
    }

    static func ask(_ request: ApprovalRequest) -> (ApprovalDecision, ApprovalScope) {
        let tty = open("/dev/tty", O_RDWR | O_CLOEXEC)
        guard tty >= 0 else { return (.deny, .once) }
        defer { close(tty) }
        var text =
            "\n⚠ approval needed: \(TerminalText.sanitize(request.summary))\n  \(TerminalText.sanitize(request.reason))"
        text += " · risk \(request.risk.rawValue)\n"
        for line in TerminalText.sanitize(request.details).split(separator: "\n").prefix(8) { text += "  │ \(line)\n" }
        text += "  Allow? [y] once · [n] deny · [a] \(TerminalText.sanitize(request.kindLabel)) for this session: "
        _ = text.withCString { write(tty, $0, strlen($0)) }
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while read(tty, &byte, 1) == 1, byte != 10 { line.append(byte) }
        switch String(decoding: line, as: UTF8.self).trimmed.lowercased() {
        case "y", "yes": return (.allow, .once)
        case "a", "always": return (.allow, .session)
        default: return (.deny, .once)
        }
    }
}
