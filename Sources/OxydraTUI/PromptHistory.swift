import OxydraCore

#if canImport(Glibc)
    import Glibc
#endif

/// Prompts kept across sessions and runs of the terminal UI, like a shell's history: one JSON
/// string per line in a file only its owner can read (0600), the newest 1,000 kept.
public struct PromptHistory: Sendable {
    public static let limit = 1000
    public let path: String

    public init(path: String) { self.path = path }

    /// `$OXYDRA_TUI_HISTORY_FILE` (empty: no history), else `$XDG_STATE_HOME/oxydra/prompt_history`,
    /// else `~/.local/state/oxydra/prompt_history`; nil without a home.
    public static func standard(environment: [String: String]) -> PromptHistory? {
        if let explicit = environment["OXYDRA_TUI_HISTORY_FILE"] {
            return explicit.isEmpty ? nil : PromptHistory(path: explicit)
        }
        if let state = environment["XDG_STATE_HOME"], state.hasPrefix("/") {
            return PromptHistory(path: state + "/oxydra/prompt_history")
        }
        guard let home = environment["HOME"], home.hasPrefix("/") else { return nil }
        return PromptHistory(path: home + "/.local/state/oxydra/prompt_history")
    }

    /// The stored prompts, oldest first (unreadable lines are skipped).
    public func load() -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        let prompts = String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap { line in
            (try? JSONParser.parse(String(line)))?.stringValue
        }
        return Array(prompts.suffix(Self.limit))
    }

    /// Appends `prompt`; rewrites the file with the newest ``limit`` when it has grown well past it.
    public func append(_ prompt: String) {
        let directory = String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
        if !directory.isEmpty {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let line = JSONWriter.text(.string(prompt)) + "\n"
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return }
        let bytes = Array(line.utf8)
        _ = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        var info = stat()
        let size = fstat(descriptor, &info) == 0 ? Int(info.st_size) : 0
        close(descriptor)
        if size > 2 << 20 { compact() }
    }

    private func compact() {
        let kept = load().map { JSONWriter.text(.string($0)) }.joined(separator: "\n") + "\n"
        let temporary = path + ".tmp"
        unlink(temporary)
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return }
        let bytes = Array(kept.utf8)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        close(descriptor)
        if written == bytes.count { rename(temporary, path) } else { unlink(temporary) }
    }
}
