/// The guest's log files, read by the control socket's `logs` operation and by `runner logs` when
/// the guest is not running.
public enum LogReader {
    public static let roles = ["runtime", "stderr", "sidecar"]

    /// Log files by role.
    public static func files(role: String, directory: String) -> [String]? {
        switch role {
        case "runtime": [directory + "/oxydra-vm.log"]
        case "stderr": [directory + "/oxydra-vm.stderr.log"]
        case "sidecar": [directory + "/shell-daemon.log"]
        default: nil
        }
    }

    /// The last `tail` lines, or everything after byte `offset`; `next_offset` is where to continue.
    public static func read(role: String, directory: String, tail: Int, offset: Int?) -> ControlResponse {
        guard let files = files(role: role, directory: directory), let path = files.first else {
            return .failure("unknown log role `\(role)`; use runtime, stderr or sidecar")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            return .logs(lines: [], nextOffset: 0, files: [])
        }
        let bytes = [UInt8](data)
        if let offset {
            let start = min(offset, bytes.count)
            // Only whole lines; a partial last line is returned on the next poll.
            let end = (bytes[start...].lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 }) ?? start
            let text = String(decoding: bytes[start..<end], as: UTF8.self)
            return .logs(
                lines: text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init),
                nextOffset: end, files: files)
        }
        let text = String(decoding: bytes, as: UTF8.self)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        let end = (bytes.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 }) ?? 0
        return .logs(lines: Array(lines.suffix(tail)), nextOffset: end, files: files)
    }
}
